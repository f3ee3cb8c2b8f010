"""Driver checks: an NVIDIA driver that answers, is new enough for TensorFlow's CUDA, and lets CUDA start.

NVML failing is a fact with a cause, not "no driver": a driver updated without a reboot, a container
started without the GPU, a module that is not loaded, WSL2 without its library folder. Each has its own fix.
"""

from __future__ import annotations

from typing import Optional

from packaging.version import Version

from oddoctor import compat, hookimpl
from oddoctor.checks import Check, Context, Result, check, fail, ok, skip, unknown, warn
from oddoctor.compat import logs
from oddoctor.snapshot import Snapshot
from oddoctor_plugins._advice import LINUX, View, format_driver, gpu_expected, gpu_gate, view

RELOAD = ("sudo rmmod nvidia_uvm nvidia_drm nvidia_modeset nvidia && sudo modprobe nvidia")
CONTAINER_FIX = ("Start the container with the GPU: docker run --gpus all ... (or --runtime=nvidia; Kubernetes: "
                 "request nvidia.com/gpu), with the NVIDIA Container Toolkit installed on the host")


def driver_floor_text(v: View) -> str:
    """' >= 525.60.13 (for CUDA 12.5.1, TensorFlow's build)', from the compat tables; '' when unknown.

    Without TensorFlow's build, the floor is that of the newest TensorFlow for this Python.
    """
    os_ = v.driver_os or LINUX
    cuda, _ = v.build_cuda()
    why = f"for CUDA {cuda}, TensorFlow's build"
    if cuda is None and v.python is not None and v.tf_os is not None:
        newest = compat.newest_tf_for_python(v.python, v.tf_os)
        if newest is None:
            return ""
        cuda, why = newest.cuda_version, f"for TensorFlow {newest.series}'s CUDA {newest.cuda}"
    floor = compat.min_driver_for_cuda(cuda, os_) if cuda is not None else None
    return f" >= {format_driver(floor)} ({why})" if floor else ""


def _nvml_cause(v: View) -> Optional[tuple[str, str, str]]:
    """(kind, message, fix) for what NVML (or the kernel) says went wrong, or None."""
    snap = v.snap
    err = snap.nvml.error or ""
    runtime = logs.find_any(snap, logs.DOCKER_NO_GPU_RUNTIME)
    if runtime:
        return ("no-runtime", f"Docker has no GPU runtime: {logs.short(runtime[0])}",
                "Install the NVIDIA Container Toolkit (nvidia-container-toolkit; formerly nvidia-docker2) on the host, "
                "run sudo nvidia-ctk runtime configure --runtime=docker && sudo systemctl restart docker, then "
                "docker run --gpus all ...")
    mism = logs.find_re(snap, logs.DRIVER_MISMATCH)
    if "Driver/library version mismatch" in err or "LibRmVersionMismatch" in err or mism:
        quote = logs.short(mism[0][0]) if mism else err
        return ("mismatch", f"the NVIDIA kernel module and the driver's libraries differ (driver updated without "
                f"a reboot): {quote}", f"Reboot (or reload the module: {RELOAD}); check with nvidia-smi")
    nodes = snap.hardware.dev_nvidia
    gpu_nodes = [d for d in (nodes or []) if d.rstrip("0123456789") == "/dev/nvidia" and d != "/dev/nvidia"]
    no_lib = "LibraryNotFound" in err or bool(logs.find_any(snap, logs.LIBCUDA_MISSING))
    no_node = logs.find_any(snap, logs.NO_DEVICE_NODE)
    if no_node and not gpu_nodes:
        nodes = nodes or []
    if v.container and (no_lib or nodes == [] or (nodes is not None and not gpu_nodes)):
        if gpu_nodes and no_lib:
            return ("container-libs", f"this container has the GPU device nodes but not the driver's libraries "
                    f"({err or 'libcuda.so.1 not found'})",
                    "Run the container with NVIDIA_DRIVER_CAPABILITIES=compute,utility (or --gpus all, which sets "
                    "it) so the NVIDIA Container Toolkit mounts libcuda and libnvidia-ml")
        what = (logs.short(no_node[0]) if no_node else "no /dev/nvidia* device nodes"
                if nodes is not None and not gpu_nodes else (err or "no driver"))
        return ("container", f"this container was started without the GPU ({what})", CONTAINER_FIX)
    if no_node:
        return ("not-loaded", f"the NVIDIA kernel module is not loaded: {logs.short(no_node[0])}",
                "Load it with sudo modprobe nvidia (if that fails: reinstall the NVIDIA driver{floor} and reboot) and "
                "check with nvidia-smi")
    if "DriverNotLoaded" in err or "couldn't communicate with the NVIDIA driver" in err:
        bound = [d.driver for d in (snap.hardware.pci_nvidia or []) if d.driver]
        if "nouveau" in bound:
            return ("nouveau", "the open-source nouveau driver holds the GPU; the NVIDIA driver is not loaded",
                    "Install the NVIDIA driver{floor} (it blacklists nouveau) and reboot")
        return ("not-loaded", f"the NVIDIA kernel module is not loaded: {err}",
                "Load it with sudo modprobe nvidia (if that fails: reinstall the NVIDIA driver{floor}; with Secure "
                "Boot on, enroll the module's key or turn Secure Boot off) and check with nvidia-smi")
    if "NoPermission" in err or "Insufficient Permissions" in err:
        return ("permission", f"NVML refused access: {err}",
                "Give this user access to /dev/nvidia* (add it to the video group, or fix the device permissions)")
    if no_lib:
        return ("no-lib", f"the NVIDIA driver's libraries are not installed: {err or 'libcuda.so.1 not found'}",
                "Install the NVIDIA driver{floor} and reboot; check with nvidia-smi")
    if err:
        return ("other", f"NVML failed: {err}", "Reinstall the NVIDIA driver{floor} and reboot; check with nvidia-smi")
    return None


@check(id="driver.present", title="NVIDIA driver present and answering")
def driver_present(snap: Snapshot, ctx: Context) -> Result:
    """An NVIDIA driver answers through NVML (the library nvidia-smi uses); if not, why not.

    Typical fix: reboot after a driver update; docker run --gpus all; sudo modprobe nvidia; install the
    driver at or above the floor of TensorFlow's CUDA (named).
    """
    v = view(snap)
    n = snap.nvml
    if v.system == "Darwin":
        return skip("macOS has no NVIDIA CUDA driver (see platform.macos-no-cuda)")
    if v.driver is not None:
        cuda = f", supports CUDA up to {n.cuda_driver_version}" if n.cuda_driver_version else ""
        return ok(f"NVIDIA driver {n.driver_version or v.driver}{cuda}",
                  details={"driver": n.driver_version, "cuda_driver": n.cuda_driver_version})
    if ctx.cpu_only:
        return skip(f"no driver version ({n.error or 'NVML not asked'}); --cpu given")
    if v.wsl and ("LibraryNotFound" in (n.error or "") or logs.find_any(snap, logs.LIBCUDA_MISSING)):
        return skip("WSL2 without the Windows driver's libraries (see platform.wsl-driver)")
    cause = _nvml_cause(v)
    exp = gpu_expected(v, ctx)
    evidence = "; ".join(v.hw_evidence)
    details = {"nvml_error": n.error, "hardware_evidence": v.hw_evidence}
    if exp and v.nvidia_hw is False and (cause is None or cause[0] not in ("mismatch", "no-runtime")):
        # --gpu (or the report) expects a GPU the machine does not have: no driver fix can help.
        return fail(f"a GPU is expected, but this machine has no NVIDIA GPU ({'; '.join(_no_gpu_evidence(v))})",
                    fix=f"Run on a machine (or VM, or cloud instance) with an NVIDIA GPU and the NVIDIA driver"
                        f"{driver_floor_text(v)}, or drop --gpu to use the CPU", details=details)
    if cause is not None and (exp or cause[0] in ("mismatch", "no-runtime")):
        kind, message, fix = cause
        details["cause"] = kind
        return fail(message + (f" [{evidence}]" if evidence and kind not in ("container",) else ""),
                    fix=fix.replace("{floor}", driver_floor_text(v)), details=details)
    if exp is False:
        return skip(f"no NVIDIA GPU on this machine ({'; '.join(_no_gpu_evidence(v))}): GPU checks do not apply "
                    "(pass --gpu if one is expected)")
    if exp is None:
        return unknown("driver.version", v.unknown("driver.version") or "")
    if n.available and n.gpus is not None and not n.driver_version:
        return unknown("driver.version", "NVML answered without a driver version")
    if cause is None and n.available is None:
        return unknown("driver.version", v.unknown("driver.version") or "")
    return fail(f"an NVIDIA GPU is here ({evidence or '--gpu given'}) but no NVIDIA driver answers"
                + (f": {n.error}" if n.error else ""),
                fix=f"Install the NVIDIA driver{driver_floor_text(v)} and reboot; check with nvidia-smi",
                details=details)


def _no_gpu_evidence(v: View) -> list[str]:
    snap = v.snap
    out = []
    if snap.hardware.pci_nvidia == []:
        out.append("no NVIDIA PCI device")
    if snap.hardware.dev_nvidia == []:
        out.append("no /dev/nvidia*")
    if snap.nvml.gpus == []:
        out.append("the driver lists no GPU")
    return out or ["nothing shows one"]


def _next_floor(drv, os_: str):
    """The lowest driver floor above ``drv``: what the oldest CUDA this driver cannot run needs."""
    above = sorted({f for f in (compat.min_driver_for_cuda(r.cuda, os_) for r in compat.driver_rows())
                    if f is not None and f > drv})
    if not above:
        return None, None
    floor = above[0]
    cuda = min((Version(r.cuda) for r in compat.driver_rows() if compat.min_driver_for_cuda(r.cuda, os_) == floor),
               default=None)
    return floor, cuda


@check(id="driver.cuda-floor", title="NVIDIA driver new enough for TensorFlow's CUDA")
def driver_cuda_floor(snap: Snapshot, ctx: Context) -> Result:
    """The driver meets the floor of the CUDA TF was built with (minor-version compatibility applied).

    Typical fix: upgrade the NVIDIA driver to the named floor, or install the newest TensorFlow this driver runs.
    """
    v = view(snap)
    insufficient = (logs.find(snap, logs.DRIVER_INSUFFICIENT) + logs.find(snap, logs.UNSUPPORTED_PTX)
                    + logs.find(snap, logs.DRIVER_POSSIBLY_INSUFFICIENT))
    gate = gpu_gate(v, ctx) if not insufficient else None
    if gate is not None:
        return gate
    os_ = v.driver_os or LINUX
    drv = v.driver
    req = logs.find_re(snap, logs.CONTAINER_CUDA_REQUIREMENT)
    if req:  # the container's CUDA image asks for the full toolkit driver of its CUDA, not minor-version compat
        line, m = req[0]
        need_c = compat.driver_need(m.group(1), os_)
        floor = (need_c.toolkit_driver or need_c.minimum) if need_c else None
        return fail(f"the container needs CUDA {m.group(1)} and the host driver {drv or ''} is older: "
                    f"{logs.short(line)}".replace("driver  is", "driver is"),
                    fix=f"Upgrade the host's NVIDIA driver to >= {format_driver(floor)} (CUDA {m.group(1)}), or use a "
                        "container image of an older CUDA", details={"log_line": line})
    if v.is_cuda_build is False:
        return skip("TensorFlow is not a CUDA build")
    cuda, where = v.build_cuda()
    runtimes = v.runtime_cudas()
    if cuda is None and runtimes:
        cuda, where = runtimes[0], "the CUDA runtime that loads"
    if cuda is None:
        if drv is not None and insufficient:
            floor, next_cuda = _next_floor(drv, os_)
            at_least = (f" (CUDA {next_cuda}, the oldest release this driver cannot run, needs >= "
                        f"{format_driver(floor)})") if floor else ""
            return fail(f"driver {snap.nvml.driver_version or drv} is too old for the CUDA runtime TensorFlow loads: "
                        f"{logs.short(insufficient[0])}",
                        fix=f"Upgrade the NVIDIA driver to the floor of TensorFlow's CUDA{at_least}; `oddoctor compat "
                            "--tf <version>` names the exact floor", details={"log_line": insufficient[0]})
        return unknown("tf.build_cuda", v.unknown("tf.build_cuda") or "")
    if drv is None:
        floor = compat.min_driver_for_cuda(cuda, os_)
        max_cuda = v.driver_max_cuda
        if max_cuda is not None and max_cuda.major < cuda.major:
            return fail(f"the driver supports CUDA up to {max_cuda}; TensorFlow {v.tf_version} was built with "
                        f"CUDA {cuda}", fix=f"Upgrade the NVIDIA driver to >= {format_driver(floor)}",
                        details={"driver_max_cuda": str(max_cuda), "cuda": str(cuda)})
        if insufficient:
            return fail(f"the NVIDIA driver is too old for CUDA {cuda} (TensorFlow {v.tf_version or ''}'s build): "
                        f"{logs.short(insufficient[0])}",
                        fix=f"Upgrade the NVIDIA driver to >= {format_driver(floor)} (CUDA {cuda} on {os_})",
                        details={"cuda": str(cuda), "log_line": insufficient[0], "minimum": format_driver(floor)})
        return unknown("driver.version", v.unknown("driver.version") or "")
    # A runtime newer than TF's build raises the floor (a pip cudart 12.8 under a 12.5 build; conda's cudatoolkit).
    cudas = [cuda] + [c for c in runtimes if c.major == cuda.major and c > cuda]
    needs = [n for n in (compat.driver_need(c, os_) for c in cudas) if n is not None]
    if not needs:
        return skip(f"no driver floor known for CUDA {cuda} on {os_}")
    need = max(needs, key=lambda n: n.minimum)
    details = {"driver": str(drv), "cuda": str(need.cuda), "cuda_from": where,
               "minimum": format_driver(need.minimum), "minimum_kind": need.minimum_kind,
               "toolkit_driver": format_driver(need.toolkit_driver), "os": os_,
               "driver_max_cuda": snap.nvml.cuda_driver_version}
    shown = snap.nvml.driver_version or format_driver(drv)
    if drv < need.minimum or insufficient:
        newest = compat.newest_tf_for_driver(drv, v.python, v.tf_os or LINUX, driver_os=os_)
        alt = (f", or {compat.pip_install(newest, v.tf_os or LINUX)} (newest TensorFlow this driver runs: "
               f"CUDA {newest.cuda}, cuDNN {newest.cudnn})") if newest else ""
        floor = need.minimum if drv < need.minimum else max(need.minimum, need.toolkit_driver or need.minimum)
        quote = f": {logs.short(insufficient[0])}" if insufficient else ""
        if insufficient:
            details["log_line"] = insufficient[0]
        return fail(f"driver {shown} is too old for CUDA {need.cuda} (needs >= {format_driver(floor)} on {os_}){quote}",
                    fix=f"Upgrade the NVIDIA driver to >= {format_driver(floor)}{alt}", details=details)
    if need.toolkit_driver is not None and drv < need.toolkit_driver:
        return warn(f"driver {shown} runs CUDA {need.cuda} through minor-version compatibility only; PTX JIT "
                    f"(new GPUs, XLA) needs >= {format_driver(need.toolkit_driver)}",
                    fix=f"Upgrade the NVIDIA driver to >= {format_driver(need.toolkit_driver)} if kernels fail "
                        "with CUDA_ERROR_UNSUPPORTED_PTX_VERSION", details=details)
    return ok(f"driver {shown} >= {format_driver(need.minimum)} needed by CUDA {need.cuda}", details=details)


@check(id="driver.cuda-init", title="CUDA starts (TensorFlow's cuInit)")
def driver_cuda_init(snap: Snapshot, ctx: Context) -> Result:
    """TensorFlow's own cuInit call succeeded: its log names no CUDA start-up failure.

    Typical fix: sudo modprobe nvidia_uvm or reboot (error 999/303 after suspend); docker run --gpus all
    (no device); drop cuda-compat from LD_LIBRARY_PATH on a GeForce GPU (804).
    """
    v = view(snap)
    # TensorFlow logs a failed cuInit on every machine without a driver (CUDA error 303): only where a GPU
    # is meant does it say something.
    gate = gpu_gate(v, ctx, "CUDA start-up checks")
    if gate is not None:
        return gate
    details: dict[str, object] = {}
    compat_lines = logs.find_any(snap, logs.COMPAT_NOT_SUPPORTED)
    if compat_lines:
        details["log_line"] = compat_lines[0]
        return fail(f"CUDA forward compatibility was attempted on a GPU that does not support it: "
                    f"{logs.short(compat_lines[0])}",
                    fix="Remove the cuda-compat folder (e.g. /usr/local/cuda/compat) from LD_LIBRARY_PATH (forward "
                        "compatibility works on data-center GPUs only), or upgrade the NVIDIA driver"
                        f"{driver_floor_text(v)}", details=details)
    cuinit = logs.find_re(snap, logs.CUINIT_FAIL)
    unknown_lines = [ln for ln, _ in cuinit if any(k in ln for k in logs.CUINIT_UNKNOWN)] or \
        logs.find_any(snap, ("cuInit: UNKNOWN ERROR", "CUDA_ERROR_UNKNOWN"))
    if unknown_lines:
        details["log_line"] = unknown_lines[0]
        return fail(f"CUDA could not start: {logs.short(unknown_lines[0])}",
                    fix="sudo modprobe nvidia_uvm (the unified-memory module is often missing after a suspend/resume "
                        "or at boot), or reboot; then check with nvidia-smi", details=details)
    if logs.find_any(snap, logs.NO_DEVICE_NODE) or logs.find_any(snap, logs.DOCKER_NO_GPU_RUNTIME):
        return skip("CUDA has no device node to open (see driver.present)")
    no_dev = [ln for ln, _ in cuinit if any(k in ln for k in logs.NO_DEVICE)]
    if no_dev:
        details["log_line"] = no_dev[0]
        vis = v.visibility
        if vis is not None and vis.value is not None:
            return skip(f"CUDA found no device because CUDA_VISIBLE_DEVICES={vis.value!r} hides them "
                        "(see gpu.cuda-visible-devices)", details=details)
        if v.container:
            return fail(f"CUDA finds no GPU in this container: {logs.short(no_dev[0])}", fix=CONTAINER_FIX,
                        details=details)
        return fail(f"CUDA finds no GPU: {logs.short(no_dev[0])}",
                    fix="Check nvidia-smi; unset CUDA_VISIBLE_DEVICES (or set it to a listed GPU index); in a "
                        "container: docker run --gpus all", details=details)
    if cuinit:
        details["log_line"] = cuinit[0][0]
        return fail(f"CUDA could not start: {logs.short(cuinit[0][0])}",
                    fix=f"Reinstall the NVIDIA driver{driver_floor_text(v)} and reboot; check with nvidia-smi",
                    details=details)
    if snap.tensorflow.gpus:
        return ok(f"TensorFlow started CUDA and lists {len(snap.tensorflow.gpus)} GPU(s)")
    if not v.log:
        return unknown("tf.log", "no TensorFlow log in the snapshot (give one with --log)")
    return ok("TensorFlow's log shows no cuInit failure")


CHECKS: list[Check] = [driver_present, driver_cuda_floor, driver_cuda_init]


@hookimpl
def oddoctor_checks() -> list[Check]:
    return list(CHECKS)
