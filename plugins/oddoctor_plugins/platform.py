"""Platform checks: OS, CPU architecture, 64-bit Python, native Windows, macOS, WSL2 and containers."""

from __future__ import annotations

from packaging.version import Version

from oddoctor import compat, hookimpl
from oddoctor.checks import Check, Context, Result, check, fail, ok, skip, unknown, warn
from oddoctor.compat import logs
from oddoctor.compat.data import WINDOWS
from oddoctor.snapshot import Snapshot
from oddoctor_plugins._advice import gpu_expected, prepend_path, view

SUPPORTED_MACHINES = {"x86_64", "amd64", "aarch64", "arm64"}
WSL_LIB = "/usr/lib/wsl/lib"


@check(id="platform.supported", title="Platform supported by TensorFlow", requires=("platform.system",))
def platform_supported(snap: Snapshot) -> Result:
    """64-bit Python on an OS and CPU architecture that TensorFlow ships wheels for.

    Typical fix: install a 64-bit Python; use Linux x86_64 (or WSL2) for GPU TensorFlow.
    """
    p = snap.platform
    machine = p.machine or ""
    where = f"{p.system} {machine}".strip() + (" (WSL)" if p.is_wsl else "")
    details = {"system": p.system, "machine": p.machine, "distro": p.distro, "wsl": p.is_wsl}
    if snap.python.bits is not None and snap.python.bits != 64:
        return skip(f"{snap.python.bits}-bit Python (see python.tf-range)", details=details)
    if p.system not in ("Linux", "Windows", "Darwin"):
        return warn(f"{where}: TensorFlow publishes no wheels for this OS",
                    fix="Use Linux x86_64 (or WSL2 on Windows) for GPU TensorFlow", details=details)
    if not machine:
        return ok(f"{where}: TensorFlow ships wheels for it (CPU architecture not known)",
                  details={**details, "unknown": ["platform.machine"]})
    if machine.lower() not in SUPPORTED_MACHINES:
        return warn(f"{where}: no official TensorFlow wheels for CPU architecture {machine}",
                    fix="Use an x86_64 or aarch64 machine, or build TensorFlow from source", details=details)
    return ok(f"{where}" + (f", {p.distro}" if p.distro else "") + ": TensorFlow ships wheels for it",
              details=details)


@check(id="platform.windows-native-gpu", title="TensorFlow GPU on native Windows",
       requires=("platform.system",))
def windows_native_gpu(snap: Snapshot, ctx: Context) -> Result:
    """TensorFlow newer than 2.10 has no GPU support on native Windows (WSL2 or tensorflow<2.11).

    Typical fix: use WSL2 with pip install 'tensorflow[and-cuda]', or pip install 'tensorflow<2.11'
    (CUDA 11.2, cuDNN 8.1, Python 3.7-3.10).
    """
    v = view(snap)
    if v.system != "Windows":
        return skip("not Windows")
    if v.wsl:
        return skip("WSL2 runs the Linux wheels")
    if v.tf_version is None:
        return unknown("tf.version", v.unknown("tf.version") or "") if v.tf_installed is not False \
            else skip("TensorFlow not installed (tf.importable names the install line)")
    exp = gpu_expected(v, ctx)
    if exp is False:
        return skip("no NVIDIA GPU (or --cpu): the CPU build is fine")
    details = {"tf": str(v.tf_version)}
    if v.tf_version < Version("2.11"):
        return ok(f"TensorFlow {v.tf_version} still has native Windows GPU support (it ended with 2.10)",
                  details=details)
    if exp is None:
        return unknown("nvidia_hw", v.unknown("nvidia_hw") or "")
    last = compat.tf_build_for("2.10", WINDOWS)
    assert last is not None
    py_note = ""
    if v.python is not None and not last.supports_python(v.python):
        py_note = f" on Python {last.python_max} (2.10 supports {last.python_listed}, not {v.python})"
    return fail(f"TensorFlow {v.tf_version} on native Windows is CPU-only: GPU support ended with 2.10",
                fix=f"Use WSL2 and pip install 'tensorflow[and-cuda]', or on native Windows pip install "
                    f"'tensorflow<2.11' (CUDA {last.cuda}, cuDNN {last.cudnn}){py_note}",
                details=details)


@check(id="platform.macos-no-cuda", title="No CUDA on macOS", requires=("platform.system",))
def macos_no_cuda(snap: Snapshot, ctx: Context) -> Result:
    """macOS has no CUDA TensorFlow; Apple GPUs need tensorflow-metal.

    Typical fix: pip install tensorflow tensorflow-metal, or use Linux with an NVIDIA GPU for CUDA.
    """
    v = view(snap)
    if v.system != "Darwin":
        return skip("not macOS")
    tf = snap.tensorflow
    dist = (tf.distribution or "").lower().replace("_", "-")
    wants_cuda = dist == "tensorflow-gpu" or bool(snap.env.get("CUDA_VISIBLE_DEVICES")) or bool(v.gpus) \
        or bool(gpu_expected(v, ctx))
    if tf.gpus:
        return ok(f"TensorFlow sees {len(tf.gpus)} GPU(s) through a PluggableDevice (tensorflow-metal)")
    if wants_cuda:
        return fail("macOS has no CUDA build of TensorFlow (the last macOS GPU build was 1.1)"
                    + (f"; {tf.distribution} is not installable here" if dist == "tensorflow-gpu" else ""),
                    fix="pip install tensorflow tensorflow-metal (Apple GPU), or use a Linux machine with an "
                        "NVIDIA GPU for CUDA")
    if snap.packages is not None and "tensorflow-metal" in snap.packages:
        return ok("macOS: tensorflow-metal is installed for the Apple GPU")
    return ok("macOS: TensorFlow runs on the CPU here (no CUDA on macOS; tensorflow-metal adds the Apple GPU)")


@check(id="platform.wsl-driver", title="WSL2 uses the Windows NVIDIA driver")
def wsl_driver(snap: Snapshot, ctx: Context) -> Result:
    """In WSL2 the GPU driver is the Windows one, in /usr/lib/wsl/lib; a Linux driver must not be installed there.

    Typical fix: export LD_LIBRARY_PATH=/usr/lib/wsl/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}; remove a Linux
    NVIDIA driver installed inside WSL2 (keep the Windows one).
    """
    v = view(snap)
    if v.wsl is None:
        return unknown("platform.wsl", v.unknown("platform.wsl") or "")
    if not v.wsl:
        return skip("not WSL")
    if ctx.cpu_only:
        return skip("--cpu given")
    libcuda = snap.cuda_libs.libcuda
    details: dict[str, object] = {"libcuda": libcuda.path if libcuda else None}
    found = libcuda is not None and bool(libcuda.path)
    if libcuda is not None and libcuda.path and not libcuda.path.startswith(WSL_LIB) and libcuda.source != "wsl":
        return fail(f"libcuda.so.1 resolves to {libcuda.path}, a Linux NVIDIA driver inside WSL2: it cannot reach "
                    "the GPU and shadows the Windows driver's /usr/lib/wsl/lib/libcuda.so.1",
                    fix="Remove the Linux driver inside WSL2 (sudo apt-get remove --purge '^nvidia-.*' "
                        "'^libnvidia-.*'), keep only the Windows NVIDIA driver, and install the CUDA toolkit's "
                        "WSL-Ubuntu package (no driver) if you need nvcc", details=details)
    nvml_missing = bool(snap.nvml.error and "LibraryNotFound" in snap.nvml.error)
    lines = logs.find_any(snap, logs.LIBCUDA_MISSING)
    smi = [ln for ln, _ in logs.find_re(snap, logs.NVIDIA_SMI_MISSING)]
    if smi and not (nvml_missing or lines):
        details["evidence"] = smi[0]
        return warn(f"nvidia-smi is not on PATH in this WSL2 shell: {logs.short(smi[0])} (WSL2 keeps it, and the "
                    f"driver's libraries, in {WSL_LIB}; a non-login or SSH shell may not get that folder)",
                    fix=f"export PATH={WSL_LIB}:$PATH and {prepend_path('LD_LIBRARY_PATH', WSL_LIB)} (add both to "
                        "~/.bashrc or ~/.zshrc)", details=details)
    if nvml_missing or lines:
        why = logs.short(lines[0]) if lines else snap.nvml.error
        details["evidence"] = why
        return fail(f"WSL2 cannot reach the Windows NVIDIA driver: {why}",
                    fix=f"{prepend_path('LD_LIBRARY_PATH', WSL_LIB)} (the Windows driver's libraries live there; "
                        "add it to ~/.bashrc), and update the NVIDIA driver on Windows; never install a Linux "
                        "driver inside WSL2", details=details)
    if snap.nvml.available or found:
        return ok("WSL2 reaches the Windows NVIDIA driver" + (f" ({libcuda.path})" if found and libcuda else ""),
                  details=details)
    if gpu_expected(v, ctx) is False:
        return skip("no NVIDIA GPU in this WSL2 instance")
    return unknown("driver.version", v.unknown("driver.version") or "")


CHECKS: list[Check] = [platform_supported, windows_native_gpu, macos_no_cuda, wsl_driver]


@hookimpl
def oddoctor_checks() -> list[Check]:
    return list(CHECKS)
