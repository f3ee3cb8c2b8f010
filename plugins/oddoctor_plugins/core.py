"""Built-in core checks: platform, driver, TensorFlow import, CUDA build, GPU visibility and memory.

The compatibility knowledge (which versions fit together) lives in :mod:`oddoctor_plugins.compat`.
"""

from __future__ import annotations

import os

from oddoctor import hookimpl
from oddoctor.checks import Check, Context, Result, check, fail, ok, skip, warn
from oddoctor.snapshot import Snapshot
from oddoctor.units import format_bytes

#: Another process holding more than this share of a GPU's memory is worth a warning.
OTHER_PROCESS_SHARE = 0.5
SUPPORTED_MACHINES = {"x86_64", "amd64", "aarch64", "arm64"}


def _pip_tf(snap: Snapshot) -> str:
    """The install line for a GPU TensorFlow that fits this platform."""
    if snap.platform.system == "Windows":
        return "pip install 'tensorflow<2.11' (native Windows GPU ends at 2.10), or use WSL2"
    if snap.platform.system == "Darwin":
        return "pip install tensorflow (macOS has no CUDA: CPU, or tensorflow-metal on Apple silicon)"
    return "pip install 'tensorflow[and-cuda]'"


@check(id="platform.supported", title="Platform supported by TensorFlow")
def platform_supported(snap: Snapshot) -> Result:
    """64-bit Python on an OS and CPU architecture that TensorFlow ships wheels for.

    Typical fix: install a 64-bit Python; use Linux x86_64 (or WSL2) for GPU TensorFlow.
    """
    p = snap.platform
    where = f"{p.system} {p.machine}".strip() + (" (WSL)" if p.is_wsl else "")
    details = {"system": p.system, "machine": p.machine, "distro": p.distro, "wsl": p.is_wsl}
    if snap.python.bits and snap.python.bits != 64:
        return fail(f"{snap.python.bits}-bit Python {snap.python.version}: TensorFlow has 64-bit wheels only",
                    fix="Install a 64-bit Python (x86_64 or arm64 build) and recreate the environment",
                    details=details)
    if p.system not in ("Linux", "Windows", "Darwin"):
        return warn(f"{where or 'unknown platform'}: TensorFlow publishes no wheels for this OS",
                    fix="Use Linux x86_64 (or WSL2 on Windows) for GPU TensorFlow", details=details)
    if p.machine.lower() not in SUPPORTED_MACHINES:
        return warn(f"{where}: no official TensorFlow wheels for CPU architecture {p.machine}",
                    fix="Use an x86_64 or aarch64 machine, or build TensorFlow from source", details=details)
    return ok(f"{where}" + (f", {p.distro}" if p.distro else "") + ": TensorFlow ships wheels for it",
              details=details)


@check(id="driver.present", title="NVIDIA driver present")
def driver_present(snap: Snapshot, ctx: Context) -> Result:
    """An NVIDIA driver answers through NVML (the library nvidia-smi uses).

    Typical fix: install the NVIDIA driver at or above the floor of TensorFlow's CUDA (named), or --cpu.
    """
    n = snap.nvml
    if snap.platform.system == "Darwin":
        return skip("macOS has no NVIDIA CUDA driver (see platform.macos-no-cuda)")
    if n.available and n.driver_version:
        cuda = f", supports CUDA up to {n.cuda_driver_version}" if n.cuda_driver_version else ""
        return ok(f"NVIDIA driver {n.driver_version}{cuda}",
                  details={"driver": n.driver_version, "cuda_driver": n.cuda_driver_version})
    if ctx.cpu_only:
        return skip(f"no NVIDIA driver ({n.error or 'NVML not available'}); --cpu given")
    why = n.error or "NVML reported no driver version"
    floor = _driver_floor_text(snap)
    return fail(f"no NVIDIA driver found: {why}",
                fix=f"Install the NVIDIA driver{floor} and reboot; check with nvidia-smi "
                    "(or pass --cpu to diagnose for CPU-only use)",
                details={"nvml_error": why})


def _driver_floor_text(snap: Snapshot) -> str:
    """' >= 525.60.13 (for CUDA 12.5.1, TensorFlow's build)', from the compat tables.

    Without TensorFlow's build info, the floor is that of the newest TensorFlow for this Python.
    """
    from oddoctor import compat

    os_name = "windows" if snap.platform.system == "Windows" else "linux"
    cuda = (snap.tensorflow.build_info or {}).get("cuda_version")
    why = f"for CUDA {cuda}, TensorFlow's build"
    try:
        if not cuda and snap.python.version:
            newest = compat.newest_tf_for_python(snap.python.version, os_name)
            if newest is None:
                return ""
            cuda, why = newest.cuda, f"for TensorFlow {newest.version}'s CUDA {newest.cuda}"
        floor = compat.min_driver_for_cuda(cuda, os_name) if cuda else None
    except Exception:  # noqa: BLE001 - the fix text degrades to no number, the verdict stands
        return ""
    return f" >= {compat.format_driver(floor)} ({why})" if floor else ""


@check(id="tf.importable", title="TensorFlow importable", timeout_s=10.0)
def tf_importable(snap: Snapshot) -> Result:
    """`import tensorflow` succeeds in a fresh process (probed in a child with a timeout).

    Typical fix: pip install the TensorFlow for this platform; a crash, hang or ImportError is quoted with its cure.
    """
    tf = snap.tensorflow
    pr = tf.probe
    details = {"distribution": tf.distribution, "version": tf.version, "exit_code": pr.exit_code,
               "signal": pr.signal, "timed_out": pr.timed_out, "elapsed_s": pr.elapsed_s}
    if tf.importable:
        return ok(f"TensorFlow {tf.version} imports ({tf.distribution or 'tensorflow'}, "
                  f"{pr.elapsed_s or 0:.1f} s)", details=details)
    if not pr.ran and tf.importable is None:
        return skip("the TensorFlow probe did not run")
    if not tf.installed and not pr.timed_out and not pr.signal and pr.error and "ModuleNotFoundError" in pr.error:
        return fail("TensorFlow is not installed in this environment", fix=_pip_tf(snap), details=details)
    tail = "\n".join(pr.stderr_tail[-12:])
    details["stderr_tail"] = tail
    last = _last_error_line(pr.stderr_tail)
    if pr.timed_out:
        return fail(f"`import tensorflow` hung for more than {pr.timeout_s:g} s",
                    fix="Run `python -X importtime -c 'import tensorflow'` to see where it stops; a stuck "
                        "NFS/home path or a CUDA init that waits on the driver are the usual causes "
                        "(raise the limit with --tf-timeout)", details=details)
    if pr.signal:
        hint = ("the CPU lacks an instruction the wheel needs (AVX): use a wheel built for it"
                if pr.signal == "SIGILL" else "a native library (CUDA, cuDNN, protobuf) crashed on load")
        return fail(f"`import tensorflow` was killed by {pr.signal}" + (f": {last}" if last else ""),
                    fix=f"Reinstall in a clean environment: python -m venv .venv && {_pip_tf(snap)} "
                        f"({hint})", details=details)
    err = pr.error or last or "unknown error"
    if "numpy" in err.lower() and ("_ARRAY_API" in err or "compiled using NumPy 1.x" in tail):
        fix = "pip install 'numpy<2' (this TensorFlow was built against NumPy 1.x)"
    elif "protobuf" in err.lower() or "Descriptors cannot be created directly" in tail:
        fix = "pip install 'protobuf<4' (or set PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python)"
    elif _cuda_lib_missing(snap):
        fix = _cuda_install_fix(snap) + " (see cuda.runtime-match)"
    else:
        fix = f"Reinstall in a clean environment: python -m venv .venv && {_pip_tf(snap)}"
    return fail(f"`import tensorflow` failed: {err}", fix=fix, details=details)


def _cuda_lib_missing(snap: Snapshot) -> bool:
    """TensorFlow 1.x links CUDA at import: its ImportError names the CUDA library it could not load."""
    from oddoctor.compat import logs

    return bool(logs.failed_libs(snap))


def _cuda_install_fix(snap: Snapshot) -> str:
    # The compat plugin owns the install advice (pip wheels vs conda vs PATH); one implementation.
    from oddoctor_plugins.compat import _build, _install_fix

    return _install_fix(snap, _build(snap))


def _last_error_line(lines: list[str]) -> str:
    """The line of a crash log that says what happened ('Fatal Python error: ...'), else the last one."""
    text = [ln.strip() for ln in lines if ln.strip()]
    for ln in reversed(text):
        low = ln.lower()
        if "error" in low or "fatal" in low or "abort" in low or "segmentation" in low:
            return ln
    return text[-1] if text else ""


@check(id="tf.cuda-build", title="TensorFlow is a CUDA build")
def tf_cuda_build(snap: Snapshot, ctx: Context) -> Result:
    """The installed TensorFlow was compiled with CUDA, and for which CUDA/cuDNN.

    Typical fix: pip uninstall the CPU-only package and pip install 'tensorflow[and-cuda]'.
    """
    tf = snap.tensorflow
    if not tf.importable:
        return skip("TensorFlow does not import")
    if snap.platform.system == "Darwin":
        return skip("macOS has no CUDA build of TensorFlow (see platform.macos-no-cuda)")
    bi = tf.build_info or {}
    cuda_build = bi.get("is_cuda_build", tf.built_with_cuda)
    details = {k: bi.get(k) for k in ("cuda_version", "cudnn_version", "cuda_compute_capabilities")}
    if cuda_build:
        return ok(f"TensorFlow {tf.version} is a CUDA build: CUDA {bi.get('cuda_version', '?')}, "
                  f"cuDNN {bi.get('cudnn_version', '?')}", details=details)
    if ctx.cpu_only:
        return ok(f"TensorFlow {tf.version} is a CPU-only build (fine with --cpu)", details=details)
    if snap.nvml.gpus:  # one root cause, one failure: the compat check names the versioned fix
        return skip(f"TensorFlow {tf.version} is a CPU-only build on a GPU machine (see tf.cpu-build-with-gpu)",
                    details=details)
    return fail(f"TensorFlow {tf.version} ({tf.distribution or 'tensorflow'}) is a CPU-only build: it cannot use a GPU",
                fix=f"pip uninstall -y {tf.distribution or 'tensorflow'} && {_pip_tf(snap)}", details=details)


@check(id="gpu.visible", title="GPUs visible to NVML and to TensorFlow")
def gpu_visible(snap: Snapshot, ctx: Context) -> Result:
    """TensorFlow sees as many GPUs as the driver reports (after CUDA_VISIBLE_DEVICES).

    Typical fix: unset CUDA_VISIBLE_DEVICES; install the CUDA/cuDNN TensorFlow could not load.
    """
    nv = len(snap.nvml.gpus)
    tf = snap.tensorflow
    cvd = snap.env.get("CUDA_VISIBLE_DEVICES")
    details = {"nvml_gpus": nv, "tf_gpus": len(tf.gpus), "CUDA_VISIBLE_DEVICES": cvd}
    if ctx.cpu_only:
        return skip("--cpu given")
    if not snap.nvml.available:
        return skip("no NVIDIA driver (see driver.present)")
    if nv == 0:
        return fail("the driver reports no GPU", fix="Check `nvidia-smi`; reseat/enable the GPU or pass it "
                    "through to the container (docker run --gpus all)", details=details)
    if not tf.importable:
        return skip(f"{nv} GPU(s) seen by NVML; TensorFlow does not import")
    expected = nv
    if cvd is not None:
        ids = [x for x in cvd.split(",") if x.strip() and x.strip() != "-1"]
        expected = min(nv, len(ids))
        if expected == 0:
            return fail(f"CUDA_VISIBLE_DEVICES={cvd!r} hides every GPU from TensorFlow",
                        fix="unset CUDA_VISIBLE_DEVICES (or set it to the GPU index, e.g. CUDA_VISIBLE_DEVICES=0)",
                        details=details)
    if len(tf.gpus) >= expected:
        return ok(f"TensorFlow sees {len(tf.gpus)} of {nv} GPU(s)", details=details)
    if not tf.gpus and (tf.build_info.get("is_cuda_build", tf.built_with_cuda) is False):
        return skip(f"NVML sees {nv} GPU(s), TensorFlow sees none: it is a CPU-only build "
                    "(see tf.cpu-build-with-gpu)", details=details)
    if len(tf.gpus) < expected and _cuda_lib_missing(snap):
        return skip(f"TensorFlow sees {len(tf.gpus)} of {expected} GPU(s): it could not load a CUDA library "
                    "(see tf.gpu-libs-loaded)", details=details)
    if not tf.gpus:
        return fail(f"NVML sees {nv} GPU(s), TensorFlow sees none",
                    fix="See tf.gpu-libs-loaded and cuda.* results for the library TensorFlow could not "
                        "load; run with TF_CPP_MIN_LOG_LEVEL=0 to see its log", details=details)
    return warn(f"TensorFlow sees {len(tf.gpus)} of {expected} GPU(s) it should see",
                fix="Check CUDA_VISIBLE_DEVICES and TensorFlow's log for 'Ignoring visible gpu device'",
                details=details)


@check(id="gpu.min-vram", title="Free GPU memory for the job")
def gpu_min_vram(snap: Snapshot, ctx: Context) -> Result | list[Result]:
    """Each GPU has at least --min-vram free (without --min-vram: reports free memory).

    Typical fix: stop the processes holding the GPU, pick another with CUDA_VISIBLE_DEVICES, or lower the batch.
    """
    if ctx.cpu_only:
        return skip("--cpu given")
    gpus = [g for g in snap.nvml.gpus if g.memory_free_bytes is not None]
    if not gpus:
        return skip("no GPU memory figures (no driver or NVML could not read them)")
    need = ctx.min_vram_bytes
    results: list[Result] = []
    for g in gpus:
        rid = f"gpu.min-vram.gpu{g.index}"
        free, total = g.memory_free_bytes or 0, g.memory_total_bytes or 0
        what = f"GPU {g.index} ({g.name}): {format_bytes(free)} free of {format_bytes(total)}"
        details = {"gpu": g.index, "free_bytes": free, "total_bytes": total, "required_bytes": need}
        if need is None:
            results.append(ok(what, details=details, id=rid))
        elif free >= need:
            results.append(ok(f"{what} >= {format_bytes(need)} asked", details=details, id=rid))
        elif total and total < need:
            results.append(fail(f"{what}: the card has less than the {format_bytes(need)} asked",
                                fix="Use a GPU with more memory, a smaller batch size, or mixed precision "
                                    "(tf.keras.mixed_precision.set_global_policy('mixed_float16'))",
                                details=details, id=rid))
        else:
            others = ", ".join(f"pid {p.pid} {p.name}".strip() for p in g.processes) or "none listed"
            results.append(fail(f"{what}, {format_bytes(need)} asked (processes: {others})",
                                fix=f"Free memory on GPU {g.index} (stop the processes above) or pick another "
                                    "GPU with CUDA_VISIBLE_DEVICES; lower the batch size",
                                details=details, id=rid))
    return results


@check(id="gpu.other-processes", title="GPU memory held by other processes")
def gpu_other_processes(snap: Snapshot, ctx: Context) -> Result | list[Result]:
    """No other process holds most of a GPU's memory (TensorFlow would fail to allocate).

    Typical fix: stop them or use another GPU; export TF_FORCE_GPU_ALLOW_GROWTH=true to share.
    """
    if ctx.cpu_only:
        return skip("--cpu given")
    gpus = [g for g in snap.nvml.gpus if g.memory_total_bytes]
    if not gpus:
        return skip("no GPU memory figures")
    me = os.getpid() if snap.source == "collected" else -1
    results: list[Result] = []
    for g in gpus:
        rid = f"gpu.other-processes.gpu{g.index}"
        total = g.memory_total_bytes or 1
        others = [p for p in g.processes if p.pid != me]
        held = sum(p.used_bytes or 0 for p in others)
        if not any(p.used_bytes is not None for p in others):
            held = max(held, g.memory_used_bytes or 0) if others else 0
        share = held / total
        details = {"gpu": g.index, "held_bytes": held, "total_bytes": total,
                   "processes": [{"pid": p.pid, "name": p.name, "used_bytes": p.used_bytes} for p in others]}
        if others and share >= OTHER_PROCESS_SHARE:
            who = ", ".join(f"pid {p.pid}" + (f" ({p.name})" if p.name else "")
                            + (f" {format_bytes(p.used_bytes)}" if p.used_bytes else "") for p in others)
            results.append(warn(
                f"GPU {g.index}: {len(others)} other process(es) hold {share:.0%} of its memory: {who}",
                fix="Stop them, or run on another GPU (CUDA_VISIBLE_DEVICES=<index>), and share with "
                    "TF_FORCE_GPU_ALLOW_GROWTH=true so TensorFlow does not try to take the whole card",
                details=details, id=rid))
        else:
            results.append(ok(f"GPU {g.index}: other processes hold {share:.0%} of its memory",
                              details=details, id=rid))
    return results


CHECKS: list[Check] = [platform_supported, driver_present, tf_importable, tf_cuda_build, gpu_visible,
                       gpu_min_vram, gpu_other_processes]


@hookimpl
def oddoctor_checks() -> list[Check]:
    return list(CHECKS)
