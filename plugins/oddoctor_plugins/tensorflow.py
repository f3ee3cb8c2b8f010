"""TensorFlow checks: it imports, it is a CUDA build where a GPU is meant, and it loaded its GPU libraries."""

from __future__ import annotations

from typing import Optional

from packaging.version import Version

from oddoctor import compat, hookimpl
from oddoctor.checks import Check, Context, Result, check, fail, ok, skip, unknown, warn
from oddoctor.compat import logs
from oddoctor.snapshot import KernelRun, Snapshot
from oddoctor.units import format_bytes
from oddoctor_plugins._advice import (
    JIT_CACHE,
    LINUX,
    View,
    cc_fix,
    dirname,
    gpu_expected,
    gpu_gate,
    install_fix,
    installed_tf_gate,
    memory_fix,
    newest_for_this_machine,
    pip_tf,
    view,
)


@check(id="tf.importable", title="TensorFlow importable", timeout_s=10.0)
def tf_importable(snap: Snapshot, ctx: Context) -> Result:
    """`import tensorflow` succeeds in a fresh process (probed in a child with a timeout).

    Typical fix: pip install the TensorFlow pinned for this driver, Python and OS; a crash, hang or
    ImportError is quoted with its cure.
    """
    v = view(snap)
    tf = snap.tensorflow
    pr = tf.probe
    details = {"distribution": tf.distribution, "version": tf.version, "exit_code": pr.exit_code,
               "signal": pr.signal, "timed_out": pr.timed_out, "elapsed_s": pr.elapsed_s}
    if v.planned is not None:
        now = f"{tf.distribution or 'tensorflow'} {tf.version} is installed" if tf.installed and tf.version \
            else "no TensorFlow is installed" if tf.installed is False else "the installed TensorFlow is unknown"
        line = _planned_install(v, ctx)
        details["install"] = line
        return ok(f"judged for TensorFlow {v.planned} (--tf; {now}); the other checks say whether it fits; "
                  f"install it with: {line}", details=details)
    if v.tf_imports:
        took = f", {pr.elapsed_s:.1f} s" if pr.elapsed_s is not None and tf.importable else ""
        how = "imports" if tf.importable else "ran (its own log shows it at work)"
        return ok(f"TensorFlow {tf.version or ''} {how} ({tf.distribution or 'tensorflow'}{took})".replace("  ", " "),
                  details=details)
    if snap.python.bits is not None and snap.python.bits != 64:
        return skip(f"{snap.python.bits}-bit Python: no TensorFlow installs here (see python.tf-range)",
                    details=details)
    not_installed = v.tf_installed is False or (pr.error and "No module named 'tensorflow'" in pr.error)
    if not_installed and not pr.timed_out and not pr.signal:
        return fail("TensorFlow is not installed in this environment", fix=pip_tf(v, ctx), details=details)
    if v.tf_imports is None and not pr.ran:
        return unknown("tf.importable", "the TensorFlow probe did not run and the report does not say")
    tail = "\n".join(pr.stderr_tail[-12:])
    details["stderr_tail"] = tail
    last = _last_error_line(list(pr.stderr_tail) + list(snap.user_log))
    if pr.timed_out:
        return fail(f"`import tensorflow` hung for more than {pr.timeout_s or 0:g} s",
                    fix="Run `python -X importtime -c 'import tensorflow'` to see where it stops; a stuck "
                        "NFS/home path or a CUDA init that waits on the driver are the usual causes "
                        "(raise the limit with --tf-timeout)", details=details)
    crashing = [lib for lib in (snap.cuda_libs.cudart or []) + (snap.cuda_libs.cudnn or [])
                if lib.error and "crashed the process" in lib.error and lib.path]
    if pr.signal and crashing:
        lib = crashing[0]
        where = dirname(lib.path or "")
        details["crashing_library"] = lib.path
        fix = (f"Remove {where} from LD_LIBRARY_PATH (or delete that broken copy) and reinstall the CUDA library it "
               f"holds: loading {lib.path} crashes any process" if lib.source == "ld_library_path" else
               f"Reinstall or remove {lib.path}: loading it crashes any process")
        return fail(f"`import tensorflow` was killed by {pr.signal}, and loading {lib.path} ({lib.source}) alone "
                    f"crashes a process too: {lib.error}", fix=fix, details=details)
    if pr.signal:
        hint = ("the CPU lacks an instruction the wheel needs (AVX): use a wheel built for it"
                if pr.signal == "SIGILL" else "a native library (CUDA, cuDNN, protobuf) crashed on load")
        return fail(f"`import tensorflow` was killed by {pr.signal}" + (f": {last}" if last else ""),
                    fix=f"Reinstall in a clean environment: python -m venv .venv && {pip_tf(v, ctx)} "
                        f"({hint})", details=details)
    err = pr.error or last or "unknown error"
    # One root cause, one failure: the packages/cuda checks own these causes and name the pinned fix.
    for needles, owner in ((logs.NUMPY_ABI, "packages.numpy-abi"), (logs.PROTOBUF_TOO_NEW, "packages.protobuf")):
        if logs.find_any(snap, needles):
            return skip(f"`import tensorflow` failed: {logs.short(err)} (see {owner})", details=details)
    if logs.failed_libs(snap):
        return skip(f"`import tensorflow` failed: {logs.short(err)} (a CUDA library is missing: see "
                    "cuda.runtime-match)", details=details)
    if "DLL load failed" in err and v.native_windows:
        fix = ("Install the Microsoft Visual C++ Redistributable for Visual Studio 2015-2022 (x64), then "
               f"{pip_tf(v, ctx)}; for TensorFlow < 2.11 with a GPU also the CUDA/cuDNN DLLs of its tested build")
    else:
        fix = f"Reinstall in a clean environment: python -m venv .venv && {pip_tf(v, ctx)}"
    return fail(f"`import tensorflow` failed: {logs.short(err)}", fix=fix, details=details)


def _planned_install(v: View, ctx: Context) -> str:
    """The pinned install line of the release judged with --tf, uninstalling what is there first."""
    b = compat.tf_build_for(v.planned, v.tf_os or LINUX) if v.planned is not None else None
    if b is None:
        return f"pip install 'tensorflow=={v.planned}'"
    gpu = gpu_expected(v, ctx) is not False
    spec = compat.pip_spec(b, v.tf_os or LINUX) if gpu else f"tensorflow=={b.series}.*"
    old = v.tf_distributions or []
    # A plain `tensorflow` is replaced by pip itself; anything else (tensorflow-gpu, -cpu, several) goes first.
    pre = f"pip uninstall -y {' '.join(old)} && " if old and old != ["tensorflow"] else ""
    return f"{pre}pip install '{spec}'"


def _last_error_line(lines: list[str]) -> str:
    """The line of a crash log that says what happened ('Fatal Python error: ...'), else the last one."""
    text = [ln.strip() for ln in lines if ln.strip()]
    for ln in reversed(text):
        low = ln.lower()
        if "error" in low or "fatal" in low or "abort" in low or "segmentation" in low:
            return ln
    return text[-1] if text else ""


@check(id="tf.cuda-build", title="TensorFlow is a CUDA build", requires=("tf.importable",))
def tf_cuda_build(snap: Snapshot, ctx: Context) -> Result:
    """The installed TensorFlow was compiled with CUDA, and for which CUDA/cuDNN.

    Typical fix: pip uninstall the CPU-only package and pip install 'tensorflow[and-cuda]==X.*'.
    """
    v = view(snap)
    tf = snap.tensorflow
    if v.planned is not None:
        return skip(f"TensorFlow {v.planned} is not installed yet (--tf)")
    if not v.tf_imports:
        return skip("TensorFlow does not import (see tf.importable)")
    if v.system == "Darwin":
        return skip("macOS has no CUDA build of TensorFlow (see platform.macos-no-cuda)")
    bi = tf.build_info or {}
    details = {k: bi.get(k) for k in ("cuda_version", "cudnn_version", "cuda_compute_capabilities")}
    if v.is_cuda_build:
        cuda, _ = v.build_cuda()
        cudnn, _ = v.build_cudnn()
        name = f"TensorFlow {tf.version}" if tf.version else "TensorFlow"
        built = f": CUDA {cuda}, cuDNN {cudnn}" if cuda and cudnn else " (its CUDA/cuDNN versions are not known)"
        return ok(f"{name} is a CUDA build{built}", details=details)
    if v.is_cuda_build is None:
        return unknown("tf.cuda_build", "TensorFlow's build info is not in the snapshot")
    exp = gpu_expected(v, ctx)
    if exp is False:
        return ok(f"TensorFlow {tf.version} is a CPU-only build (fine: no GPU is used here)", details=details)
    if exp is True:  # one root cause, one failure: the dedicated checks name the versioned fix
        owner = "platform.windows-native-gpu" if v.native_windows else "tf.cpu-build-with-gpu"
        return skip(f"TensorFlow {tf.version} is a CPU-only build on a GPU machine (see {owner})", details=details)
    return ok(f"TensorFlow {tf.version} is a CPU-only build (whether a GPU is here is unknown)",
              details={**details, "unknown": ["nvidia_hw"]})


@check(id="tf.cpu-build-with-gpu", title="CPU-only TensorFlow on a machine with an NVIDIA GPU",
       requires=("tf.version",))
def tf_cpu_build_with_gpu(snap: Snapshot, ctx: Context) -> Result:
    """An NVIDIA GPU is present but the installed TensorFlow (e.g. tensorflow-cpu) cannot use it.

    Typical fix: pip uninstall -y tensorflow-cpu && pip install 'tensorflow[and-cuda]==X.*'
    (tensorflow-gpu==X.* before 2.1).
    """
    v = view(snap)
    gate = gpu_gate(v, ctx)
    if gate is not None:
        return gate
    if v.system == "Darwin":
        return skip("macOS: see platform.macos-no-cuda")
    tf_v = v.tf_version
    assert tf_v is not None
    if v.native_windows and tf_v >= Version("2.11"):
        return skip("native Windows with TensorFlow >= 2.11: see platform.windows-native-gpu")
    os_ = v.tf_os or LINUX
    dist = snap.tensorflow.distribution or "tensorflow"
    details = {"distribution": dist, "tf": str(tf_v), "gpus": len(v.gpus or [])}
    if v.is_cuda_build is None:
        return unknown("tf.cuda_build", f"unknown whether {dist} {tf_v} is a CUDA build")
    if v.is_cuda_build:
        return ok(f"{dist} {tf_v} is a CUDA build", details=details)
    b = newest_for_this_machine(v, ctx)
    same = compat.tf_build_for(tf_v, os_)
    if same is not None and b is not None and same.version <= b.version:
        b = same  # keep the user's series when the driver and Python allow it
    target = f"pip install '{compat.pip_spec(b, os_)}'" if b else "pip install 'tensorflow[and-cuda]'"
    names = ", ".join(g.name or "?" for g in v.gpus or []) or "; ".join(v.hw_evidence)
    return fail(f"{dist} {tf_v} is a CPU-only build on a machine with an NVIDIA GPU ({names})",
                fix=f"pip uninstall -y {dist} && {target}", details=details)


@check(id="tf.gpu-libs-loaded", title="TensorFlow loaded its GPU libraries and sees every GPU")
def tf_gpu_libs_loaded(snap: Snapshot, ctx: Context) -> Result:
    """When TensorFlow sees fewer GPUs than CUDA_VISIBLE_DEVICES selects, say why: the libraries it could not load.

    Typical fix: install the CUDA/cuDNN named in TensorFlow's "Could not load dynamic library" line (or
    tensorflow[and-cuda]); unset CUDA_VISIBLE_DEVICES.
    """
    v = view(snap)
    gate = installed_tf_gate(v, ctx, "it has loaded no library")
    if gate is not None:
        return gate
    tf = snap.tensorflow
    if v.tf_imports is False:
        return skip("TensorFlow does not import (see tf.importable)")
    if v.is_cuda_build is False:
        return skip("CPU-only TensorFlow (see tf.cpu-build-with-gpu)")
    failed = logs.failed_libs(snap)
    dlopen = logs.find(snap, logs.DLOPEN_FAIL)
    seen = len(tf.gpus) if tf.gpus is not None else None
    selected = v.selected_gpus
    expected = len(selected) if selected is not None else None
    details: dict[str, object] = {"tf_gpus": seen, "expected": expected,
                                  "CUDA_VISIBLE_DEVICES": snap.env.get("CUDA_VISIBLE_DEVICES")}
    gpu_failed = [f for f in failed if f.stem not in ("nvinfer", "nvinfer_plugin", "cuda")]
    if dlopen and not gpu_failed and not (seen and expected is not None and seen >= expected):
        # TensorFlow says it skipped the GPU without naming the library: name what its build needs.
        b = v.tf_build()
        details["log_lines"] = dlopen[:1]
        needs = (f"TensorFlow {b.series} needs CUDA {b.cuda} and cuDNN {b.cudnn}: " if b else "")
        return fail(f"TensorFlow skipped the GPU: {logs.short(dlopen[0])}",
                    fix=f"{needs}{install_fix(v, b)}; run with TF_CPP_MIN_LOG_LEVEL=0 to see the library it could not "
                        "load", details=details)
    if gpu_failed or dlopen:
        if seen is not None and expected is not None and seen >= expected and seen > 0:
            return ok(f"TensorFlow sees all {seen} GPU(s)", details=details)
        details["log_lines"] = [f.line for f in gpu_failed] + dlopen
        names = ", ".join(dict.fromkeys(f"{f.soname} ({f.component})" for f in gpu_failed)) or "GPU libraries"
        owner = "cudnn.runtime-match" if gpu_failed and all(f.stem == "cudnn" for f in gpu_failed) \
            else "cuda.runtime-match"
        of = f"{seen} of {expected}" if seen is not None and expected is not None else "no"
        # One root cause, one failure: the cuda/cudnn checks name the library and its pinned fix.
        return skip(f"TensorFlow sees {of} GPU(s): it could not load {names} (see {owner})", details=details)
    if seen is None:
        return unknown("tf.gpus", "TensorFlow's GPU list is not in the snapshot")
    if expected is None:
        return unknown("gpus.selected", v.visibility.note if v.visibility else "GPU list unknown")
    if seen >= expected:
        return ok(f"TensorFlow sees all {seen} GPU(s)" + (f" ({v.visibility.note})" if v.visibility and
                                                        v.visibility.note else ""), details=details)
    for needles, owner in ((("Ignoring visible gpu device",), "gpu.compute-capability"),
                           ((logs.DRIVER_INSUFFICIENT,), "driver.cuda-floor"),
                           ((*logs.COMPAT_NOT_SUPPORTED, "failed call to cuInit"), "driver.cuda-init")):
        lines = logs.find_any(snap, needles)
        if lines:
            details["log_lines"] = lines[:1]
            return skip(f"TensorFlow sees {seen} of {expected} GPU(s): {logs.short(lines[0])} (see {owner})",
                        details=details)
    return warn(f"TensorFlow sees {seen} of {expected} GPU(s) and " +
                ("its captured log says nothing about why" if v.log else "no TensorFlow log says why"),
                fix="Run with TF_CPP_MIN_LOG_LEVEL=0 TF_CPP_MAX_VLOG_LEVEL=3 to see which library fails to load, and "
                    "give that log to oddoctor check --log", details=details)


# --- check --active: what the first real kernels said ----------------------------------------------------------
# TensorFlow's words when a GPU library cannot start at the first kernel, with the reports they come from.
#: cuDNN could not start: a cuDNN that does not fit, or no GPU memory left for its workspace (tensorflow#24828,
#: #36025, #34518: "Failed to get convolution algorithm. This is probably because cuDNN failed to initialize";
#: tensorflow#18656: "could not create cudnn handle: CUDNN_STATUS_NOT_INITIALIZED" beside CUDA_ERROR_OUT_OF_MEMORY;
#: tensorflow#60913: "DNN library initialization failed" after "Loaded runtime CuDNN library: 9.1.0 but source was
#: compiled with: 9.3.0").
CUDNN_START = ("Failed to get convolution algorithm", "CUDNN_STATUS_NOT_INITIALIZED", "CUDNN_STATUS_INTERNAL_ERROR",
               "CUDNN_STATUS_ALLOC_FAILED", "could not create cudnn handle", "DNN library initialization failed")
#: cuBLAS could not start (tensorflow#34069 "InternalError: Blas GEMM launch failed", cured by closing the other
#: notebooks holding the GPU; matterport/Mask_RCNN#2469 "Blas SGEMM launch failed").
CUBLAS_START = ("Blas GEMM launch failed", "Blas SGEMM launch failed", "Blas GEMV launch failed",
                "CUBLAS_STATUS_NOT_INITIALIZED", "CUBLAS_STATUS_ALLOC_FAILED")
#: Out of GPU memory before a small kernel could run (tensorflow#18656: "failed to allocate 7.20G (7730940928
#: bytes) from device: CUDA_ERROR_OUT_OF_MEMORY").
OUT_OF_MEMORY = ("CUDA_ERROR_OUT_OF_MEMORY", "out of memory", "OOM when allocating", "ResourceExhaustedError")
#: The first call of a kernel this much slower than the second, and at least JIT_FIRST_S seconds: compiled from
#: PTX by the driver at run time (tensorflow#42467: "TF 2.3 includes PTX kernels only for compute capability 7.0").
JIT_RATIO, JIT_FIRST_S = 20.0, 5.0
#: A one-line way to run each kernel alone with TensorFlow's log on, for a failure nobody recognises.
_REPRODUCE = {
    "conv2d": "print(tf.nn.conv2d(tf.ones([1, 8, 8, 1]), tf.ones([3, 3, 1, 1]), 1, 'SAME').shape)",
    "matmul": "print(tf.linalg.matmul(tf.ones([64, 64]), tf.ones([64, 64])).shape)",
    "crop_and_resize": "print(tf.image.crop_and_resize(tf.ones([1, 8, 8, 1]), [[0., 0., 1., 1.]], [0], [4, 4]).shape)",
    "non_max_suppression": "print(tf.image.non_max_suppression([[0., 0., 1., 1.]], [0.9], 1).numpy())",
}


def _device_id(device: str) -> str:
    kind, _, index = device.rpartition("/device:")[2].partition(":")
    return f"{kind.lower()}{index}" if kind.upper() == "GPU" else kind.lower() or "device"


def _kernel_text(runs: list[KernelRun]) -> str:
    return ", ".join(f"{r.kernel} {r.first_s * 1000:.0f} ms first, {r.second_s * 1000:.1f} ms then"
                     for r in runs if r.first_s is not None and r.second_s is not None)


@check(id="tf.kernels", title="Real kernels run on each device (check --active)", timeout_s=10.0)
def tf_kernels(snap: Snapshot, ctx: Context) -> Result | list[Result]:
    """With --active: conv2d, matmul, crop_and_resize and non-max suppression run on each visible GPU (or the CPU).

    The conv2d goes through cuDNN and the matmul through cuBLAS on a GPU; each runs twice, and the first call's
    time includes start-up (a PTX JIT compile shows as seconds).

    Typical fix: memory growth when cuDNN or cuBLAS cannot start, a TensorFlow with code for the GPU when there is
    no kernel image, CUDA_CACHE_MAXSIZE when the first call is a JIT compile.
    """
    tf = snap.tensorflow
    if tf.kernels is None:
        if tf.importable is False:
            return skip("TensorFlow does not import (see tf.importable): no kernel could run")
        return skip("kernels not run: `oddoctor check --active` runs a conv2d, a matmul, crop_and_resize and "
                    "non-max suppression on each device")
    if not tf.kernels:
        return fail("--active ran no kernel: TensorFlow listed no device",
                    fix="Run python -c \"import tensorflow as tf; print(tf.config.list_logical_devices())\" to see "
                        "TensorFlow's own log of why")
    v = view(snap)
    by_device: dict[str, list[KernelRun]] = {}
    for run in tf.kernels:
        by_device.setdefault(run.device or "unknown device", []).append(run)
    return [_judge_device(v, device, runs) for device, runs in by_device.items()]


def _judge_device(v: View, device: str, runs: list[KernelRun]) -> Result:
    rid = f"tf.kernels.{_device_id(device)}"
    details: dict[str, object] = {"device": device, "kernels": [
        {"kernel": r.kernel, "ok": r.ok, "first_s": r.first_s, "second_s": r.second_s, "error": r.error}
        for r in runs]}
    failed = [r for r in runs if r.ok is False]
    if failed:
        return _judge_failure(v, device, failed[0], len(failed), details, rid)
    not_run = [r for r in runs if r.ok is None]
    if not_run:
        why = not_run[0].error or "the probe stopped before it"
        return warn(f"{device}: {len(not_run)} kernel(s) not run ({why}); "
                    + (_kernel_text(runs) or "none ran"), fix="Raise --tf-timeout so every kernel gets to run",
                    details=details, id=rid)
    gpu = "GPU" in device.upper()
    slow = [r for r in runs if gpu and r.first_s is not None and r.second_s is not None
            and r.first_s >= JIT_FIRST_S and r.first_s >= JIT_RATIO * max(r.second_s, 1e-6)]
    if slow:
        r = slow[0]
        first, second = r.first_s or 0.0, r.second_s or 0.0
        return warn(f"{device}: the first {r.kernel} took {first:.1f} s, the next {second * 1000:.1f} ms: "
                    "its kernels were compiled from PTX at run time (each new process pays this unless cached)",
                    fix=f"export {JIT_CACHE} so the driver keeps what it compiled; a TensorFlow whose wheel has "
                        "native code for this GPU's compute capability starts at once (see gpu.compute-capability)",
                    details=details, id=rid)
    return ok(f"{device}: {_kernel_text(runs)}", details=details, id=rid)


def _owner(v: View, err: str) -> Optional[tuple[str, str]]:
    """The check that already diagnoses this failure from TensorFlow's log, and what it blames."""
    snap = v.snap
    old_cudnn = logs.find_re(snap, logs.CUDNN_MISMATCH) or any(f.stem == "cudnn" for f in logs.failed_libs(snap))
    if old_cudnn and any(t in err for t in CUDNN_START):
        return "cudnn.runtime-match", "the cuDNN version is the cause"
    if any(t in err for t in logs.KERNEL_IMAGE_PATTERNS) and any(
            logs.find(snap, pat) for pat in logs.KERNEL_IMAGE_PATTERNS):
        return "gpu.compute-capability", "TensorFlow has no code for this GPU"
    if any(v.find_re(pat) for pat in logs.OOM_PATTERNS) and any(t in err for t in OUT_OF_MEMORY):
        return "memory.out-of-memory", "TensorFlow ran out of GPU memory"
    if (snap.env.get("TF_FORCE_GPU_ALLOW_GROWTH") != "true" and any(t in err for t in CUDNN_START + CUBLAS_START)
            and any(logs.find(snap, pat) for pat in logs.MEMORY_PATTERNS)):
        return "memory.allow-growth", "no GPU memory was left for it at start"
    return None


def _judge_failure(v: View, device: str, r: KernelRun, count: int, details: dict[str, object], rid: str) -> Result:
    err = r.error or "no error text"
    quote = logs.short(err)
    more = f" ({count - 1} more kernel(s) failed too)" if count > 1 else ""
    gpus = v.selected_gpus or []
    frees = [g.free_bytes for g in gpus if g.free_bytes is not None]
    free = min(frees) if frees else None
    free_txt = f", {format_bytes(free)} free" if free is not None else ""
    holders = [p for g in gpus for p in g.processes or []]
    stop = (("stop the other processes on the GPU (" + ", ".join(f"pid {p.pid}" for p in holders[:3]) + "), and ")
            if holders else "")
    owner = _owner(v, err)
    if owner is not None:  # TensorFlow logged it too, and the check that owns that line says why: one failure
        return skip(f"{device}: {r.kernel} failed ({quote}): {owner[1]} (see {owner[0]})", details=details, id=rid)
    if any(t in err for t in CUDNN_START):
        return fail(f"{device}: cuDNN could not start at the first {r.kernel}{free_txt}: {quote}{more}",
                    fix=stop + memory_fix(v, free), details=details, id=rid)
    if any(t in err for t in CUBLAS_START):
        return fail(f"{device}: cuBLAS could not start at the first {r.kernel}{free_txt}: {quote}{more}",
                    fix=stop + memory_fix(v, free), details=details, id=rid)
    if any(t in err for t in logs.KERNEL_IMAGE_PATTERNS):
        cc = next((g.compute_capability for g in gpus or v.gpus or [] if g.compute_capability), None)
        fix = cc_fix(v, cc) if cc else ("Install a TensorFlow whose wheel has code for this GPU's compute capability "
                                        "(nvidia-smi --query-gpu=compute_cap --format=csv tells it)")
        return fail(f"{device}: TensorFlow has no kernel for this GPU ({r.kernel}): {quote}{more}", fix=fix,
                    details=details, id=rid)
    if any(t in err for t in OUT_OF_MEMORY):
        return fail(f"{device}: out of memory at a small {r.kernel}{free_txt}: {quote}{more}",
                    fix=stop + memory_fix(v, free), details=details, id=rid)
    snippet = _REPRODUCE.get(r.kernel or "", _REPRODUCE["conv2d"])
    return fail(f"{device}: {r.kernel} failed: {quote}{more}",
                fix=f"Run it alone with TensorFlow's log on to see why: TF_CPP_MIN_LOG_LEVEL=0 python -c "
                    f"\"import tensorflow as tf; {snippet}\"", details=details, id=rid)


CHECKS: list[Check] = [tf_importable, tf_cuda_build, tf_cpu_build_with_gpu, tf_gpu_libs_loaded, tf_kernels]


@hookimpl
def oddoctor_checks() -> list[Check]:
    return list(CHECKS)
