"""What the built-in checks share: whether GPU checks apply here, and the fix lines (install, memory, cc).

Each fix is pinned from the compatibility tables for this machine's driver, Python and OS, and never
contains a value nobody knows (an unknown becomes a plain instruction, not an empty string).
"""

from __future__ import annotations

import ntpath
import posixpath
from typing import Optional

from packaging.version import Version

from oddoctor import compat
from oddoctor.checks import Context, Result, skip, unknown
from oddoctor.compat.data import LINUX, WINDOWS, TfBuild
from oddoctor.compat.rules import format_driver
from oddoctor.snapshot import LibFacts
from oddoctor.versions import parse_version
from oddoctor.view import GpuView, View, view

#: JIT cache large enough for TensorFlow's kernels (docs suggest 2 GiB; 4 GiB is CUDA's maximum).
JIT_CACHE = "CUDA_CACHE_MAXSIZE=4294967296"
#: First cuDNN release published as a pip wheel, per CUDA major (PyPI nvidia-cudnn-cu11 starts at 8.5.0.96,
#: nvidia-cudnn-cu12 at 8.8.0.121; read 2026-11-22): older ones come from conda or NVIDIA's installers.
PIP_CUDNN_FROM = {11: Version("8.5"), 12: Version("8.8")}

__all__ = ["JIT_CACHE", "LINUX", "PIP_CUDNN_FROM", "WINDOWS", "TfBuild", "View", "format_driver", "parse_version",
           "view"]


# --- does a GPU check apply here? -----------------------------------------------------------------

def gpu_expected(v: View, ctx: Context) -> Optional[bool]:
    """True: judge GPU facts; False: a CPU machine (or --cpu); None: nobody can tell whether a GPU is here."""
    if ctx.cpu_only or v.snap.expects_gpu is False:
        return False
    if ctx.expect_gpu or v.nvidia_hw:
        return True
    if v.nvidia_hw is False:
        return False
    if v.gpu_intent:  # the user brought a log of TensorFlow, CUDA or the driver failing: a GPU is meant
        return True
    return None


def gpu_gate(v: View, ctx: Context, what: str = "GPU checks") -> Optional[Result]:
    """The skip a GPU-side check returns where it does not apply, or None to go on."""
    exp = gpu_expected(v, ctx)
    if exp is True:
        return None
    if ctx.cpu_only:
        return skip("--cpu given")
    if exp is False:
        return skip(f"no NVIDIA GPU on this machine: {what} do not apply (pass --gpu if one is expected)")
    return unknown("nvidia_hw", v.unknown("nvidia_hw") or "no evidence either way")


def selected_gpus(v: View, ctx: Context, what: str = "GPU checks") -> list[GpuView] | Result:
    """The GPUs CUDA_VISIBLE_DEVICES selects, or the skip a per-GPU check returns when there are none to judge."""
    gate = gpu_gate(v, ctx, what)
    if gate is not None:
        return gate
    selected = v.selected_gpus
    if selected is None:
        return unknown("gpus.selected", v.visibility.note if v.visibility else "GPU list unknown")
    if not selected:
        return skip("CUDA_VISIBLE_DEVICES selects no GPU (see gpu.cuda-visible-devices)")
    return selected


def installed_tf_gate(v: View, ctx: Context, cannot: str) -> Optional[Result]:
    """``gpu_gate``, then the skip of a check that needs the installed TensorFlow's own facts, which a release
    judged with ``--tf`` does not have yet (``cannot``: what it cannot have done)."""
    gate = gpu_gate(v, ctx)
    if gate is None and v.planned is not None:
        return skip(f"TensorFlow {v.planned} is not installed yet (--tf): {cannot}")
    return gate


# --- install lines ------------------------------------------------------------------------------

def dirname(path: str) -> str:
    """Directory of a library path from either OS (a snapshot may come from Windows)."""
    return ntpath.dirname(path) if "\\" in path else posixpath.dirname(path)


def lib_desc(lib: LibFacts) -> str:
    return f"{lib.path} ({lib.source}{', ' + lib.version if lib.version else ''})"


def newest_for_this_machine(v: View, ctx: Context) -> Optional[TfBuild]:
    """The newest tested TensorFlow this driver, Python and OS can run (the driver only when it is known)."""
    os_ = v.tf_os
    if os_ is None:
        return None
    if v.driver is not None and gpu_expected(v, ctx):
        return compat.newest_tf_for_driver(v.driver, v.python, os_, driver_os=v.driver_os)
    if v.python is not None:
        return compat.newest_tf_for_python(v.python, os_)
    return compat.builds(os_)[0]


def pip_tf(v: View, ctx: Context) -> str:
    """The pinned install line for the TensorFlow that fits this platform, driver and Python."""
    if v.system == "Darwin":
        b = compat.newest_tf_for_python(v.python, LINUX) if v.python is not None else None
        pin = f"=={b.series}.*" if b else ""
        return f"pip install 'tensorflow{pin}' tensorflow-metal (macOS has no CUDA: CPU, or the Apple GPU via Metal)"
    gpu = gpu_expected(v, ctx)
    if v.native_windows:
        if gpu:
            last = compat.tf_build_for("2.10", WINDOWS)
            assert last is not None
            if v.python is not None and not last.supports_python(v.python):
                return (f"Use WSL2 and pip install 'tensorflow[and-cuda]' there, or Python {last.python_max} with "
                        f"pip install 'tensorflow=={last.series}.*' (native Windows GPU ends at 2.10)")
            return ("pip install 'tensorflow==2.10.*' (native Windows GPU ends at 2.10; CUDA 11.2, cuDNN 8.1), "
                    "or use WSL2")
        b = compat.newest_tf_for_python(v.python, WINDOWS) if v.python is not None else None
        return f"pip install 'tensorflow=={b.series}.*'" if b else "pip install tensorflow"
    b = newest_for_this_machine(v, ctx)
    if b is None:
        if v.driver is not None and gpu:
            return (f"no tested TensorFlow GPU build runs on driver {format_driver(v.driver)}: upgrade the NVIDIA "
                    "driver, then pip install 'tensorflow[and-cuda]'")
        return "pip install 'tensorflow[and-cuda]'" if gpu else "pip install tensorflow"
    if gpu:
        return compat.pip_install(b, LINUX)
    return f"pip install 'tensorflow=={b.series}.*'"


def install_fix(v: View, b: Optional[TfBuild]) -> str:
    """How to get the CUDA/cuDNN libraries a TF build needs, for this platform."""
    if b is None:
        return "Install the CUDA and cuDNN versions of TensorFlow's tested build"
    if v.tf_os == LINUX and b.version >= Version("2.14"):
        return f"{compat.pip_install(b, LINUX)} (installs CUDA {b.cuda} / cuDNN {b.cudnn} as pip wheels)"
    if v.tf_os == LINUX:
        nxt = b.cudnn_version.major + 1
        return (f"Install CUDA {b.cuda} and cuDNN {b.cudnn} (e.g. conda install -c conda-forge "
                f"cudatoolkit={b.cuda} 'cudnn>={b.cudnn},<{nxt}') and put their lib directory on LD_LIBRARY_PATH")
    return f"Install CUDA {b.cuda} and cuDNN {b.cudnn} and add their bin directories to PATH"


def prepend_path(var: str, folder: str) -> str:
    """``export VAR=folder`` keeping what was there, without an empty entry when it was unset."""
    return f"export {var}={folder}${{{var}:+:${var}}}"


# --- compute capability -----------------------------------------------------------------------

def tf_for_cc(v: View, cc: str, *, native: bool = False) -> tuple[Optional[TfBuild], str]:
    """Newest TF whose wheel runs on ``cc`` for this Python, preferring one this driver can run too."""
    os_ = v.tf_os or LINUX
    candidates = [b for b in compat.fitting_builds(v.driver, v.python, os_, driver_os=v.driver_os)
                  if cc_ok(b, cc, native)] if v.driver is not None else []
    if candidates:
        return candidates[0], ""
    b = compat.newest_tf_for_cc(cc, v.python, os_, native=native)
    if b is not None and v.driver is not None:
        floor = compat.min_driver_for_cuda(b.cuda_version, v.driver_os or LINUX)
        if floor is not None and v.driver < floor:
            return b, f"; it needs driver >= {format_driver(floor)} for CUDA {b.cuda}"
    return b, ""


def cc_ok(b: TfBuild, cc: str, native: bool) -> bool:
    row = compat.wheel_caps(b.version)
    if row is None:
        return False
    cov = compat.cc_coverage(cc, compat.parse_archs(row.archs_listed))
    return cov == "sass" or (cov == "ptx" and not native)


def cc_fix(v: View, cc: str) -> str:
    """The newest official TF that runs on compute capability ``cc`` here, or what to do when none does."""
    b, note = tf_for_cc(v, cc)
    if b is None:
        return no_wheel_fix(cc)
    return (f"{compat.pip_install(b, v.tf_os or LINUX)} (TensorFlow {b.series} is the newest official wheel with "
            f"code for compute capability {cc}{note})")


def no_wheel_fix(cc: str) -> str:
    oldest = min((a.major, a.minor) for row in compat.caps_rows() for a in compat.parse_archs(row.archs_listed))
    sm = f"sm_{cc.replace('.', '')}"
    if compat.parse_cc(cc) < oldest:
        return (f"No official TensorFlow wheel runs on compute capability {cc} (they start at "
                f"{oldest[0]}.{oldest[1]}): build TensorFlow from source with TF_CUDA_COMPUTE_CAPABILITIES={cc}, "
                "use the CPU, or use a newer GPU")
    return (f"No official TensorFlow wheel has code for compute capability {cc} yet: use NVIDIA's NGC TensorFlow "
            f"container, or build from source with HERMETIC_CUDA_COMPUTE_CAPABILITIES={sm}")


# --- memory --------------------------------------------------------------------------------------

def memory_fix(v: View, free: Optional[int]) -> str:
    """Memory growth or a cap, spelled in the API of the installed TensorFlow major version."""
    if v.tf_version is not None and v.tf_version.major == 1:
        totals = [g.total_bytes for g in (v.selected_gpus or []) if g.total_bytes]
        total = min(totals) if totals else None
        frac = max(0.1, round(0.9 * free / total, 2)) if free and total else 0.5
        return ("Create the session with config = tf.ConfigProto(); config.gpu_options.allow_growth = True, or cap "
                f"it with tf.GPUOptions(per_process_gpu_memory_fraction={frac})")
    cap = (f", or cap TensorFlow with tf.config.set_logical_device_configuration(gpu, "
           f"[tf.config.LogicalDeviceConfiguration(memory_limit={int(free * 0.9) // 2**20})])") if free else ""
    tf1 = "" if v.tf_version is not None else "; TensorFlow 1.x: config.gpu_options.allow_growth = True"
    return ("export TF_FORCE_GPU_ALLOW_GROWTH=true (or tf.config.experimental.set_memory_growth(gpu, True) for each "
            f"GPU before using it){cap}{tf1}")
