"""Built-in compatibility checks: which versions of Python, TensorFlow, CUDA, cuDNN, the NVIDIA driver
and the GPU fit together, and what to install instead when they do not.

Every check is a pure function of the snapshot; the facts it compares against come from the tables
in :mod:`oddoctor.compat` (each with its upstream source). A check whose facts are absent skips.
"""

from __future__ import annotations

import ntpath
import posixpath
from typing import Optional

from packaging.version import InvalidVersion, Version

from oddoctor import compat, hookimpl
from oddoctor.checks import Check, Context, Result, check, fail, ok, skip, warn
from oddoctor.compat import logs
from oddoctor.compat.data import LINUX, WINDOWS, TfBuild
from oddoctor.compat.rules import format_driver
from oddoctor.snapshot import LibFacts, Snapshot

#: Values TensorFlow accepts for TF_FORCE_GPU_ALLOW_GROWTH (exact, case-sensitive strcmp in
#: tensorflow/core/common_runtime/gpu/gpu_bfc_allocator.cc).
ALLOW_GROWTH_VALUES = ("true", "false")
#: First cuDNN release published as a pip wheel, per CUDA major (PyPI nvidia-cudnn-cu11 starts at 8.5.0.96,
#: nvidia-cudnn-cu12 at 8.8.0.121; read 2026-11-22): older ones come from conda or NVIDIA's installers.
PIP_CUDNN_FROM = {11: Version("8.5"), 12: Version("8.8")}
#: JIT cache large enough for TensorFlow's kernels (docs suggest 2 GiB; 4 GiB is CUDA's maximum).
JIT_CACHE = "CUDA_CACHE_MAXSIZE=4294967296"


# --- facts, read once ----------------------------------------------------------------------------

def _native_windows(snap: Snapshot) -> bool:
    return snap.platform.system == "Windows" and not snap.platform.is_wsl


def _tf_os(snap: Snapshot) -> str:
    """Which TF build table applies: native Windows has its own; WSL2 runs the Linux wheels."""
    return WINDOWS if _native_windows(snap) else LINUX


def _driver_os(snap: Snapshot) -> str:
    """Which driver column applies: WSL2 uses the Windows host driver (NVML reports its version)."""
    return WINDOWS if snap.platform.system == "Windows" or snap.platform.is_wsl else LINUX


def _ver(text: Optional[str]) -> Optional[Version]:
    if not text:
        return None
    try:
        return Version(str(text).strip())
    except InvalidVersion:
        return None


def _tf_version(snap: Snapshot) -> Optional[Version]:
    return _ver(snap.tensorflow.version) if snap.tensorflow.installed or snap.tensorflow.version else None


def _py(snap: Snapshot) -> Optional[Version]:
    v = _ver(snap.python.version)
    return compat.major_minor(v) if v else None


def _build(snap: Snapshot) -> Optional[TfBuild]:
    v = _tf_version(snap)
    return compat.tf_build_for(v, _tf_os(snap)) if v else None


def _build_cuda(snap: Snapshot) -> tuple[Optional[Version], str]:
    """CUDA version the installed TF was built with: its own build info first, else the tested table."""
    bi = snap.tensorflow.build_info or {}
    v = compat.normalize_cuda(bi.get("cuda_version"))
    if v:
        return v, "tf.sysconfig.get_build_info()"
    b = _build(snap)
    if b:
        return b.cuda_version, f"tested build of TensorFlow {b.version}"
    return None, ""


def _build_cudnn(snap: Snapshot) -> tuple[Optional[Version], str]:
    """cuDNN version TF was built with; the tested table adds the minor when build info has the major only."""
    bi = snap.tensorflow.build_info or {}
    v = compat.normalize_cudnn(bi.get("cudnn_version"))
    b = _build(snap)
    if v is not None and b is not None and len(v.release) == 1 and b.cudnn_version.major == v.major:
        return b.cudnn_version, "tf.sysconfig.get_build_info() and the tested build table"
    if v is not None:
        return v, "tf.sysconfig.get_build_info()"
    if b:
        return b.cudnn_version, f"tested build of TensorFlow {b.version}"
    return None, ""


def _is_cuda_build(snap: Snapshot) -> Optional[bool]:
    """Whether the installed TF can use CUDA at all: its own answer first, then what is known of it."""
    tf = snap.tensorflow
    bi = tf.build_info or {}
    if isinstance(bi.get("is_cuda_build"), bool):
        return bool(bi["is_cuda_build"])
    if tf.built_with_cuda is not None:
        return tf.built_with_cuda
    dist = (tf.distribution or "").lower().replace("_", "-")
    if dist in ("tensorflow-cpu", "tensorflow-intel", "tensorflow-macos", "intel-tensorflow"):
        return False
    v = _tf_version(snap)
    if v is None:
        return None
    if _native_windows(snap) and v >= Version("2.11"):
        return False
    if snap.platform.system == "Darwin":
        return False
    if dist == "tensorflow" and (v < Version("1.15") or Version("2.0") <= v < Version("2.1")):
        return False  # before 1.15 (and in 2.0) the GPU build was the separate tensorflow-gpu
    if dist in ("tensorflow", "tensorflow-gpu"):
        return True
    return None


def _gpu_machine(snap: Snapshot, ctx: Context) -> bool:
    return bool(snap.nvml.gpus) and not getattr(ctx, "cpu_only", False)


def _dirname(path: str) -> str:
    """Directory of a library path from either OS (a snapshot may come from Windows)."""
    return ntpath.dirname(path) if "\\" in path else posixpath.dirname(path)


def _major(lib: LibFacts) -> Optional[int]:
    v = _ver(lib.version)
    return v.major if v is not None else None


def _lib_desc(lib: LibFacts) -> str:
    return f"{lib.path} ({lib.source}{', ' + lib.version if lib.version else ''})"


def _install_fix(snap: Snapshot, b: Optional[TfBuild]) -> str:
    """How to get the CUDA/cuDNN libraries a TF build needs, for this platform."""
    if b is None:
        return "Install the CUDA and cuDNN versions of TensorFlow's tested build"
    if _tf_os(snap) == LINUX and b.version >= Version("2.14"):
        return f"{compat.pip_install(b, LINUX)} (installs CUDA {b.cuda} / cuDNN {b.cudnn} as pip wheels)"
    if _tf_os(snap) == LINUX:
        nxt = b.cudnn_version.major + 1
        return (f"Install CUDA {b.cuda} and cuDNN {b.cudnn} (e.g. conda install -c conda-forge "
                f"cudatoolkit={b.cuda} 'cudnn>={b.cudnn},<{nxt}') and put their lib directory on LD_LIBRARY_PATH")
    return f"Install CUDA {b.cuda} and cuDNN {b.cudnn} and add their bin directories to PATH"


def _newest_for_this_machine(snap: Snapshot) -> Optional[TfBuild]:
    py = _py(snap)
    drv = _ver(snap.nvml.driver_version)
    if drv is not None:
        return compat.newest_tf_for_driver(drv, py, _tf_os(snap), driver_os=_driver_os(snap))
    return compat.newest_tf_for_python(py, _tf_os(snap)) if py else None


# --- checks -------------------------------------------------------------------------------------

@check(id="python.tf-range", title="Python version inside TensorFlow's supported range")
def python_tf_range(snap: Snapshot) -> Result:
    """The Python version is one the installed TensorFlow (or any TensorFlow, if none) was built for.

    Typical fix: pip install the newest TensorFlow for this Python, or use a Python in the release's range.
    """
    py = _py(snap)
    if py is None:
        return skip("Python version unknown")
    os_ = _tf_os(snap)
    if snap.python.bits and snap.python.bits != 64:
        b = compat.newest_tf_for_python(py, os_)
        return fail(f"{snap.python.bits}-bit Python {snap.python.version}: TensorFlow publishes 64-bit wheels only "
                    "(pip says 'No matching distribution found for tensorflow')",
                    fix="Install a 64-bit Python" + (f" {py} and pip install '{compat.pip_spec(b, os_)}'"
                                                       if b else ""),
                    details={"bits": snap.python.bits})
    tf_v = _tf_version(snap)
    newest = compat.newest_tf_for_python(py, os_)
    if tf_v is None:
        if newest is None:
            top = compat.builds(os_)[0]
            return fail(f"no TensorFlow release supports Python {py} on {os_} "
                        f"(newest: TensorFlow {top.series} for Python {top.python_listed})",
                        fix=f"Use Python {top.python_max} (e.g. python{top.python_max} -m venv .venv) "
                            f"and {compat.pip_install(top, os_)}",
                        details={"python": str(py)})
        return ok(f"TensorFlow not installed; Python {py} fits TensorFlow up to {newest.series}",
                  details={"python": str(py), "newest_tf": str(newest.version)})
    b = compat.tf_build_for(tf_v, os_)
    if b is None:
        if _native_windows(snap) and tf_v >= Version("2.11"):
            b = compat.tf_build_for(tf_v, LINUX)  # CPU-only on Windows, but the Python range is the same
        if b is None:
            return skip(f"TensorFlow {tf_v} is not in the tested build table ({os_})")
    details = {"python": str(py), "tf": str(tf_v), "tested_python": b.python_listed}
    if b.supports_python(py):
        return ok(f"Python {py} is in TensorFlow {b.series}'s range {b.python_listed}", details=details)
    if newest is not None:
        spec = compat.pip_spec(newest, os_) if snap.nvml.gpus else f"tensorflow=={newest.series}.*"
        fix = (f"pip install '{spec}' (newest TensorFlow for Python {py}), or use "
               f"Python {b.python_max} with TensorFlow {b.series}")
    else:
        fix = f"Use Python {b.python_max} (TensorFlow {b.series} supports {b.python_listed})"
    return fail(f"Python {py} is outside TensorFlow {tf_v}'s tested range {b.python_listed}",
                fix=fix, details=details)


@check(id="cuda.runtime-match", title="CUDA runtime that would load matches TensorFlow's build")
def cuda_runtime_match(snap: Snapshot, ctx: Context) -> Result:
    """The CUDA runtime the loader picks (pip wheel, LD_LIBRARY_PATH, system) has TF's CUDA major.

    Typical fix: pip install 'tensorflow[and-cuda]==X.*' (2.14+), or install the tested CUDA and put it
    on LD_LIBRARY_PATH; remove a shadowing LD_LIBRARY_PATH entry.
    """
    if not _gpu_machine(snap, ctx):
        return skip("no NVIDIA GPU: the CUDA runtime is not needed")
    if _is_cuda_build(snap) is not True:
        return skip("TensorFlow is not installed or not a CUDA build")
    want, where = _build_cuda(snap)
    if want is None:
        return skip("the CUDA version of TensorFlow's build is unknown")
    b = _build(snap)
    libs = snap.cuda_libs.cudart
    failed = [f for f in logs.failed_libs(snap) if f.stem in logs.CUDA_TOOLKIT_LIBS]
    failed.sort(key=lambda f: f.stem != "cudart")  # the runtime itself first: its soname names the major
    details = {"tf_cuda": str(want), "cuda_from": where, "cudart": [lib.path for lib in libs],
               "searched": snap.cuda_libs.searched}
    if failed:
        quote = logs.short(failed[0].line)
        details["log_line"] = failed[0].line
        major = (logs.soname_major(failed[0].soname) if failed[0].stem == "cudart" else None) or want.major
        found = [lib for lib in libs if _major(lib) == major]
        if failed[0].stem != "cudart":
            return fail(f"TensorFlow {snap.tensorflow.version} needs the CUDA {want} libraries and could not load "
                        f"{failed[0].soname}: {quote}", fix=_install_fix(snap, b), details=details)
        if found:
            d = _dirname(found[0].path)
            return fail(f"TensorFlow could not load {failed[0].soname} although {_lib_desc(found[0])} exists: "
                        f"{quote}",
                        fix=f"export LD_LIBRARY_PATH={d}:$LD_LIBRARY_PATH (so the loader finds CUDA {major}), "
                            f"or {_install_fix(snap, b)}", details=details)
        return fail(f"TensorFlow {snap.tensorflow.version} needs the CUDA {major} runtime and could not load it: "
                    f"{quote}", fix=_install_fix(snap, b), details=details)
    if not libs:
        if snap.cuda_libs.searched or snap.tensorflow.importable is False:
            return fail(f"no CUDA runtime library found; TensorFlow {snap.tensorflow.version} was built with "
                        f"CUDA {want}", fix=_install_fix(snap, b), details=details)
        return skip("the CUDA library probe found nothing and searched nowhere")
    first = libs[0]
    got = _ver(first.version)
    if got is None:
        return skip(f"version of {first.path} unknown")
    if got.major != want.major:
        better = next((lib for lib in libs[1:] if _major(lib) == want.major), None)
        if better is not None and first.source == "ld_library_path":
            fix = (f"Remove {_dirname(first.path)} from LD_LIBRARY_PATH: it shadows {_lib_desc(better)} "
                   "that matches TensorFlow's build")
        else:
            fix = _install_fix(snap, b)
        return fail(f"the loader picks CUDA runtime {got} at {first.path} ({first.source}); TensorFlow "
                    f"{snap.tensorflow.version} was built with CUDA {want}", fix=fix, details=details)
    if (*got.release, 0)[1] < (*want.release, 0)[1]:
        return warn(f"the loader picks CUDA runtime {got} at {first.path} ({first.source}), older than TensorFlow's "
                    f"CUDA {want}: libraries that gained a new soname within {want.major}.x may be missing",
                    fix=_install_fix(snap, b), details=details)
    return ok(f"CUDA runtime {got} at {first.path} ({first.source}) matches TensorFlow's CUDA {want}",
              details=details)


@check(id="cudnn.runtime-match", title="cuDNN that would load matches TensorFlow's build")
def cudnn_runtime_match(snap: Snapshot, ctx: Context) -> Result:
    """The cuDNN the loader picks has TF's cuDNN major and at least its minor (TF's own rule).

    Typical fix: pip install 'nvidia-cudnn-cu11==8.6.*' (or tensorflow[and-cuda]); drop the older cuDNN
    directory from LD_LIBRARY_PATH.
    """
    if not _gpu_machine(snap, ctx):
        return skip("no NVIDIA GPU: cuDNN is not needed")
    if _is_cuda_build(snap) is not True:
        return skip("TensorFlow is not installed or not a CUDA build")
    b = _build(snap)
    cuda, _ = _build_cuda(snap)
    libs = snap.cuda_libs.cudnn
    details: dict[str, object] = {"cudnn": [lib.path for lib in libs]}
    mism = logs.find_re(snap, logs.CUDNN_MISMATCH)
    if mism:
        line, m = mism[0]
        loaded, compiled = Version(m.group(1)), Version(m.group(2))
        details.update(loaded=str(loaded), compiled=str(compiled), log_line=line)
        where = f" from {libs[0].path} ({libs[0].source})" if libs else ""
        return fail(f"TensorFlow loaded cuDNN {loaded}{where} but was compiled with {compiled}: "
                    "same major and an equal or newer minor are needed",
                    fix=_cudnn_fix(snap, compiled, cuda, b, libs), details=details)
    want, where = _build_cudnn(snap)
    if want is None:
        return skip("the cuDNN version of TensorFlow's build is unknown")
    details.update(tf_cudnn=str(want), cudnn_from=where)
    failed = [f for f in logs.failed_libs(snap) if f.stem == "cudnn"]
    if failed:
        details["log_line"] = failed[0].line
        return fail(f"TensorFlow could not load cuDNN {want.major}: {logs.short(failed[0].line)}",
                    fix=_cudnn_fix(snap, want, cuda, b, libs), details=details)
    if not libs:
        if snap.cuda_libs.searched:
            return fail(f"no cuDNN library found; TensorFlow {snap.tensorflow.version} was built with cuDNN {want}",
                        fix=_cudnn_fix(snap, want, cuda, b, libs), details=details)
        return skip("the CUDA library probe did not look for cuDNN")
    first = libs[0]
    got = _ver(first.version)
    if got is None:
        return skip(f"version of {first.path} unknown")
    minor_ok = len(want.release) < 2 or (*got.release, 0)[1] >= want.release[1]
    if got.major != want.major or not minor_ok:
        return fail(f"the loader picks cuDNN {got} at {first.path} ({first.source}); TensorFlow "
                    f"{snap.tensorflow.version} was built with cuDNN {want}",
                    fix=_cudnn_fix(snap, want, cuda, b, libs), details=details)
    return ok(f"cuDNN {got} at {first.path} ({first.source}) fits TensorFlow's cuDNN {want}", details=details)


def _cudnn_fix(snap: Snapshot, want: Version, cuda: Optional[Version], b: Optional[TfBuild],
               libs: list[LibFacts]) -> str:
    mm = ".".join(str(x) for x in (*want.release, 0)[:2])
    parts = []
    first = libs[0] if libs else None
    better = next((lib for lib in libs[1:] if lib.source == "pip"), None)
    if first is not None and first.source == "ld_library_path" and better is not None:
        parts.append(f"remove {_dirname(first.path)} from LD_LIBRARY_PATH so that {better.path} loads")
    if _tf_os(snap) == LINUX and b is not None and b.version >= Version("2.14"):
        parts.append(compat.pip_install(b, LINUX))
    elif _tf_os(snap) == LINUX and cuda is not None and Version(mm) >= PIP_CUDNN_FROM.get(cuda.major, Version("99")):
        parts.append(f"pip install 'nvidia-cudnn-cu{cuda.major}=={mm}.*' and put its lib directory "
                     "(site-packages/nvidia/cudnn/lib) on LD_LIBRARY_PATH")
    elif _tf_os(snap) == LINUX and cuda is not None:
        parts.append(f"conda install -c conda-forge cudatoolkit={cuda} 'cudnn>={mm},<{want.major + 1}' and put "
                     "the environment's lib directory first on LD_LIBRARY_PATH")
    elif first is not None and _native_windows(snap):
        parts.append(f"install cuDNN {mm} for CUDA {cuda or '?'} (cudnn64_{want.major}.dll) and put its bin "
                     f"directory on PATH ahead of {_dirname(first.path)}")
    else:
        parts.append(f"install cuDNN {mm} for CUDA {cuda or '?'} and put it first on the library path")
    return "; or ".join(parts) + f" (cuDNN {mm}.x or a newer {want.major}.x)"


@check(id="driver.cuda-floor", title="NVIDIA driver new enough for TensorFlow's CUDA")
def driver_cuda_floor(snap: Snapshot, ctx: Context) -> Result:
    """The driver meets the floor of the CUDA TF was built with (minor-version compatibility applied).

    Typical fix: upgrade the NVIDIA driver to the named floor, or install the newest TensorFlow this driver runs.
    """
    if not _gpu_machine(snap, ctx):
        return skip("no NVIDIA GPU")
    drv = _ver(snap.nvml.driver_version)
    if _is_cuda_build(snap) is not True:
        return skip("TensorFlow is not installed or not a CUDA build")
    cuda, where = _build_cuda(snap)
    if cuda is None:
        return skip("the CUDA version of TensorFlow's build is unknown")
    if drv is None:
        # Only the driver's own "CUDA Version" (nvidia-smi's header) may be known: compare majors.
        max_cuda = compat.normalize_cuda(snap.nvml.cuda_driver_version)
        if max_cuda is not None and max_cuda.major < cuda.major:
            floor = compat.min_driver_for_cuda(cuda, _driver_os(snap))
            return fail(f"the driver supports CUDA up to {max_cuda}; TensorFlow {snap.tensorflow.version} was built "
                        f"with CUDA {cuda}", fix=f"Upgrade the NVIDIA driver to >= {format_driver(floor)}",
                        details={"driver_max_cuda": str(max_cuda), "cuda": str(cuda)})
        return skip("driver version unknown (see driver.present)")
    os_ = _driver_os(snap)
    # A pip runtime newer than TF's build raises the floor (e.g. cudart 12.8 under a 12.5 build).
    loaded = [_ver(lib.version) for lib in snap.cuda_libs.cudart[:1]]
    cudas = [cuda] + [v for v in loaded if v is not None and v.major == cuda.major and v > cuda]
    needs = [n for n in (compat.driver_need(c, os_) for c in cudas) if n is not None]
    if not needs:
        return skip(f"no driver floor known for CUDA {cuda} on {os_}")
    need = max(needs, key=lambda n: n.minimum)
    details = {"driver": snap.nvml.driver_version, "cuda": str(need.cuda), "cuda_from": where,
               "minimum": format_driver(need.minimum), "minimum_kind": need.minimum_kind,
               "toolkit_driver": format_driver(need.toolkit_driver), "os": os_,
               "driver_max_cuda": snap.nvml.cuda_driver_version}
    insufficient = logs.find(snap, logs.DRIVER_INSUFFICIENT) + logs.find(snap, logs.UNSUPPORTED_PTX)
    if drv < need.minimum or insufficient:
        newest = compat.newest_tf_for_driver(drv, _py(snap), _tf_os(snap), driver_os=os_)
        alt = (f", or {compat.pip_install(newest, _tf_os(snap))} (newest TensorFlow this driver runs: "
               f"CUDA {newest.cuda}, cuDNN {newest.cudnn})") if newest else ""
        floor = need.minimum if drv < need.minimum else max(need.minimum, need.toolkit_driver or need.minimum)
        quote = f": {logs.short(insufficient[0])}" if insufficient else ""
        if insufficient:
            details["log_line"] = insufficient[0]
        return fail(f"driver {snap.nvml.driver_version} is too old for CUDA {need.cuda} "
                    f"(needs >= {format_driver(floor)} on {os_}){quote}",
                    fix=f"Upgrade the NVIDIA driver to >= {format_driver(floor)}{alt}", details=details)
    if need.toolkit_driver is not None and drv < need.toolkit_driver:
        return warn(f"driver {snap.nvml.driver_version} runs CUDA {need.cuda} through minor-version "
                    f"compatibility only; PTX JIT (new GPUs, XLA) needs >= {format_driver(need.toolkit_driver)}",
                    fix=f"Upgrade the NVIDIA driver to >= {format_driver(need.toolkit_driver)} if kernels fail "
                        "with CUDA_ERROR_UNSUPPORTED_PTX_VERSION", details=details)
    return ok(f"driver {snap.nvml.driver_version} >= {format_driver(need.minimum)} needed by CUDA {need.cuda}",
              details=details)


def _tf_for_cc(snap: Snapshot, cc: str, *, native: bool = False) -> tuple[Optional[TfBuild], str]:
    """Newest TF whose wheel runs on ``cc`` for this Python, preferring one this driver can run too."""
    py, os_ = _py(snap), _tf_os(snap)
    drv = _ver(snap.nvml.driver_version)
    candidates = [b for b in compat.fitting_builds(drv, py, os_, driver_os=_driver_os(snap))
                  if _cc_ok(b, cc, native)] if drv is not None else []
    if candidates:
        return candidates[0], ""
    b = compat.newest_tf_for_cc(cc, py, os_, native=native)
    if b is not None and drv is not None:
        floor = compat.min_driver_for_cuda(b.cuda_version, _driver_os(snap))
        if floor is not None and drv < floor:
            return b, f"; it needs driver >= {format_driver(floor)} for CUDA {b.cuda}"
    return b, ""


def _cc_ok(b: TfBuild, cc: str, native: bool) -> bool:
    row = compat.wheel_caps(b.version)
    if row is None:
        return False
    cov = compat.cc_coverage(cc, compat.parse_archs(row.archs_listed))
    return cov == "sass" or (cov == "ptx" and not native)


def _cc_fix(snap: Snapshot, cc: str) -> str:
    """The newest official TF that runs on compute capability ``cc`` here, or what to do when none does."""
    b, note = _tf_for_cc(snap, cc)
    if b is None:
        return _no_wheel_fix(cc)
    return (f"{compat.pip_install(b, _tf_os(snap))} (TensorFlow {b.series} is the newest official wheel with code "
            f"for compute capability {cc}{note})")


def _no_wheel_fix(cc: str) -> str:
    oldest = min((a.major, a.minor) for row in compat.caps_rows() for a in compat.parse_archs(row.archs_listed))
    sm = f"sm_{cc.replace('.', '')}"
    if compat.parse_cc(cc) < oldest:
        return (f"No official TensorFlow wheel runs on compute capability {cc} (they start at "
                f"{oldest[0]}.{oldest[1]}): build TensorFlow from source with TF_CUDA_COMPUTE_CAPABILITIES={cc}, "
                "use the CPU, or use a newer GPU")
    return (f"No official TensorFlow wheel has code for compute capability {cc} yet: use NVIDIA's NGC TensorFlow "
            f"container, or build from source with HERMETIC_CUDA_COMPUTE_CAPABILITIES={sm}")


@check(id="gpu.compute-capability", title="GPU compute capability compiled into the TensorFlow wheel")
def gpu_compute_capability(snap: Snapshot, ctx: Context) -> Result:
    """Each GPU's compute capability has SASS in the wheel (PTX only: slow first start; none: unusable).

    Typical fix: install the newest TensorFlow whose wheel has code for the GPU; for PTX-only, export
    CUDA_CACHE_MAXSIZE=4294967296.
    """
    if not _gpu_machine(snap, ctx):
        return skip("no NVIDIA GPU")
    ignored = logs.find_re(snap, logs.IGNORING_GPU)
    os_ = _tf_os(snap)
    if ignored:
        line, m = ignored[0]
        cc, minimum = m.group(2), m.group(3)
        alt = _cc_fix(snap, cc)
        return fail(f"TensorFlow ignores a GPU of compute capability {cc} (its minimum is {minimum}): "
                    f"{logs.short(line)}", fix=alt,
                    details={"compute_capability": cc, "minimum": minimum, "log_line": line})
    kernel_lines = [ln for pat in logs.KERNEL_IMAGE_PATTERNS for ln in logs.find(snap, pat)]
    if _is_cuda_build(snap) is not True:
        return skip("TensorFlow is not installed or not a CUDA build")
    bi = snap.tensorflow.build_info or {}
    listed = bi.get("cuda_compute_capabilities")
    tf_v = _tf_version(snap)
    if listed:
        archs = compat.parse_archs(listed if isinstance(listed, (list, str)) else [str(x) for x in listed])
        source, confidence = "tf.sysconfig.get_build_info()", "reported by the wheel"
    else:
        row = compat.wheel_caps(tf_v) if tf_v else None
        if row is None:
            jit = logs.find_re(snap, logs.NOT_BUILT_FOR_CC)
            if jit:  # TF itself says it will JIT: enough to warn without knowing the compiled list
                return warn(f"TensorFlow {tf_v} JIT-compiles its kernels for this GPU: {logs.short(jit[0][0])}",
                            fix=f"export {JIT_CACHE} so the JIT runs once",
                            details={"log_line": jit[0][0]})
            return skip(f"compiled compute capabilities of TensorFlow {tf_v} unknown")
        archs = compat.parse_archs(row.archs_listed)
        source, confidence = "official wheel table", row.confidence
    archs_text = ",".join(str(a) for a in archs)
    gpus = [g for g in snap.nvml.gpus if g.compute_capability]
    if not gpus:
        return skip("GPU compute capability unknown")
    details: dict[str, object] = {"archs": archs_text, "archs_from": source, "confidence": confidence,
                                  "gpus": {}}
    worst: Optional[Result] = None
    lines = []
    for g in gpus:
        cc = g.compute_capability or ""
        cov = compat.cc_coverage(cc, archs)
        details["gpus"][str(g.index)] = {"name": g.name, "cc": cc, "coverage": cov}  # type: ignore[index]
        lines.append(f"GPU {g.index} {g.name} ({cc}): " + {"sass": "native code", "ptx": "PTX only",
                                                             "none": "no code"}[cov])
        hedge = "" if confidence != "probable" else " (wheel list for this release not verified upstream)"
        if cov == "none":
            fix = _cc_fix(snap, cc)
            worst = fail(f"GPU {g.index} {g.name} has compute capability {cc}; TensorFlow {tf_v} is compiled "
                         f"for {archs_text} only{hedge}", fix=fix, details=details)
        elif cov == "ptx" and (worst is None or worst.status.value != "fail"):
            b, note = _tf_for_cc(snap, cc, native=True)
            newer = b is not None and tf_v is not None and b.version > tf_v
            if kernel_lines:
                details["log_lines"] = kernel_lines[:3]
                fix = (f"{compat.pip_install(b, os_)} (its wheel has code for {cc}{note})" if newer and b
                       else _no_wheel_fix(cc))
                worst = fail(f"GPU {g.index} {g.name} ({cc}) has only PTX in TensorFlow {tf_v} ({archs_text}) and "
                             f"the JIT failed: {logs.short(kernel_lines[0])}", fix=fix, details=details)
                continue
            upgrade = f", or {compat.pip_install(b, os_)} (its wheel has code for {cc}{note})" if newer and b else ""
            worst = warn(f"GPU {g.index} {g.name} ({cc}) runs TensorFlow {tf_v} only through PTX JIT "
                         f"({archs_text}): the first start compiles kernels and can take many minutes{hedge}",
                         fix=f"export {JIT_CACHE} so the JIT runs once{upgrade}", details=details)
    if worst is not None:
        return worst
    return ok("; ".join(lines) + f" (compiled: {archs_text})", details=details)


@check(id="platform.windows-native-gpu", title="TensorFlow GPU on native Windows")
def windows_native_gpu(snap: Snapshot, ctx: Context) -> Result:
    """TensorFlow newer than 2.10 has no GPU support on native Windows (WSL2 or tensorflow<2.11).

    Typical fix: use WSL2 with pip install 'tensorflow[and-cuda]', or pip install 'tensorflow<2.11'
    (CUDA 11.2, cuDNN 8.1, Python 3.7-3.10).
    """
    if snap.platform.system != "Windows":
        return skip("not Windows")
    if snap.platform.is_wsl:
        return skip("WSL2 runs the Linux wheels")
    tf_v = _tf_version(snap)
    if tf_v is None:
        return skip("TensorFlow not installed")
    if getattr(ctx, "cpu_only", False) or not snap.nvml.gpus:
        return skip("no NVIDIA GPU (or --cpu): the CPU build is fine")
    details = {"tf": str(tf_v)}
    if tf_v < Version("2.11"):
        return ok(f"TensorFlow {tf_v} still has native Windows GPU support (it ended with 2.10)", details=details)
    py = _py(snap)
    last = compat.tf_build_for("2.10", WINDOWS)
    assert last is not None
    py_note = ""
    if py is not None and not last.supports_python(py):
        py_note = f" on Python {last.python_max} (2.10 supports {last.python_listed}, not {py})"
    return fail(f"TensorFlow {tf_v} on native Windows is CPU-only: GPU support ended with 2.10",
                fix=f"Use WSL2 and pip install 'tensorflow[and-cuda]', or on native Windows pip install "
                    f"'tensorflow<2.11' (CUDA {last.cuda}, cuDNN {last.cudnn}){py_note}",
                details=details)


@check(id="platform.macos-no-cuda", title="No CUDA on macOS")
def macos_no_cuda(snap: Snapshot) -> Result:
    """macOS has no CUDA TensorFlow; Apple GPUs need tensorflow-metal.

    Typical fix: pip install tensorflow tensorflow-metal, or use Linux with an NVIDIA GPU for CUDA.
    """
    if snap.platform.system != "Darwin":
        return skip("not macOS")
    tf = snap.tensorflow
    dist = (tf.distribution or "").lower().replace("_", "-")
    wants_cuda = dist == "tensorflow-gpu" or bool(snap.env.get("CUDA_VISIBLE_DEVICES")) or bool(snap.nvml.gpus)
    if tf.gpus:
        return ok(f"TensorFlow sees {len(tf.gpus)} GPU(s) through a PluggableDevice (tensorflow-metal)")
    if wants_cuda:
        return fail("macOS has no CUDA build of TensorFlow (the last macOS GPU build was 1.1)"
                    + (f"; {tf.distribution} is not installable here" if dist == "tensorflow-gpu" else ""),
                    fix="pip install tensorflow tensorflow-metal (Apple GPU), or use a Linux machine with an "
                        "NVIDIA GPU for CUDA")
    return warn("macOS: TensorFlow runs on the CPU here (no CUDA on macOS)",
                fix="pip install tensorflow-metal to use the Apple GPU")


@check(id="tf.cpu-build-with-gpu", title="CPU-only TensorFlow on a machine with an NVIDIA GPU")
def tf_cpu_build_with_gpu(snap: Snapshot, ctx: Context) -> Result:
    """An NVIDIA GPU is present but the installed TensorFlow (e.g. tensorflow-cpu) cannot use it.

    Typical fix: pip uninstall -y tensorflow-cpu && pip install 'tensorflow[and-cuda]==X.*'
    (tensorflow-gpu==X.* before 2.1).
    """
    if not _gpu_machine(snap, ctx):
        return skip("no NVIDIA GPU (or --cpu)")
    if snap.platform.system == "Darwin":
        return skip("macOS: see platform.macos-no-cuda")
    tf_v = _tf_version(snap)
    if tf_v is None:
        return skip("TensorFlow not installed")
    if _native_windows(snap) and tf_v >= Version("2.11"):
        return skip("native Windows with TensorFlow >= 2.11: see platform.windows-native-gpu")
    os_ = _tf_os(snap)
    cuda_build = _is_cuda_build(snap)
    dist = snap.tensorflow.distribution or "tensorflow"
    details = {"distribution": dist, "tf": str(tf_v), "gpus": len(snap.nvml.gpus)}
    if cuda_build is None:
        return skip(f"unknown whether {dist} {tf_v} is a CUDA build")
    if cuda_build:
        return ok(f"{dist} {tf_v} is a CUDA build", details=details)
    b = _newest_for_this_machine(snap)
    same = compat.tf_build_for(tf_v, os_)
    if same is not None and b is not None and same.version <= b.version:
        b = same  # keep the user's series when the driver and Python allow it
    target = f"pip install '{compat.pip_spec(b, os_)}'" if b else "pip install 'tensorflow[and-cuda]'"
    names = ", ".join(g.name for g in snap.nvml.gpus)
    return fail(f"{dist} {tf_v} is a CPU-only build on a machine with {len(snap.nvml.gpus)} NVIDIA GPU(s) "
                f"({names})", fix=f"pip uninstall -y {dist} && {target}", details=details)


@check(id="tf.gpu-libs-loaded", title="TensorFlow loaded its GPU libraries and sees every GPU")
def tf_gpu_libs_loaded(snap: Snapshot, ctx: Context) -> Result:
    """When TensorFlow sees fewer GPUs than NVML, say why: CUDA_VISIBLE_DEVICES or the libraries it could not load.

    Typical fix: install the CUDA/cuDNN named in TensorFlow's "Could not load dynamic library" line (or
    tensorflow[and-cuda]); unset CUDA_VISIBLE_DEVICES.
    """
    if not _gpu_machine(snap, ctx):
        return skip("no NVIDIA GPU (or --cpu)")
    tf = snap.tensorflow
    if not tf.importable:
        return skip("TensorFlow does not import (see tf.importable)")
    if _is_cuda_build(snap) is False:
        return skip("CPU-only TensorFlow (see tf.cpu-build-with-gpu)")
    nv, seen = len(snap.nvml.gpus), len(tf.gpus)
    cvd = snap.env.get("CUDA_VISIBLE_DEVICES")
    expected = nv
    details: dict[str, object] = {"nvml_gpus": nv, "tf_gpus": seen, "CUDA_VISIBLE_DEVICES": cvd}
    if cvd is not None:
        ids = [x.strip() for x in cvd.split(",") if x.strip()]
        ids = ids[: ids.index("-1")] if "-1" in ids else ids  # CUDA stops at the first invalid id
        expected = min(nv, len(ids))
    failed = logs.failed_libs(snap)
    dlopen = logs.find(snap, logs.DLOPEN_FAIL)
    if seen >= expected and not (seen == 0 and (failed or dlopen)):
        if expected < nv:
            return warn(f"TensorFlow sees {seen} of {nv} GPU(s): CUDA_VISIBLE_DEVICES={cvd!r} hides "
                        f"{nv - expected} of them",
                        fix="unset CUDA_VISIBLE_DEVICES if every GPU should be used", details=details)
        return ok(f"TensorFlow sees all {seen} GPU(s)", details=details)
    if failed or dlopen:
        quoted = [f.line for f in failed] + dlopen
        details["log_lines"] = quoted
        names = ", ".join(dict.fromkeys(f"{f.soname} ({f.component})" for f in failed)) or "GPU libraries"
        b = _build(snap)
        needs = f" (TensorFlow {b.series} needs CUDA {b.cuda} and cuDNN {b.cudnn})" if b else ""
        first = logs.short(failed[0].line if failed else dlopen[0])
        return fail(f"TensorFlow sees {seen} of {expected} GPU(s): it could not load {names}: {first}",
                    fix=_install_fix(snap, b) + needs, details=details)
    ignored = logs.find_re(snap, logs.IGNORING_GPU)
    if ignored:
        details["log_lines"] = [ignored[0][0]]
        return fail(f"TensorFlow sees {seen} of {expected} GPU(s): {logs.short(ignored[0][0])}",
                    fix=_cc_fix(snap, ignored[0][1].group(2)), details=details)
    driver_lines = logs.find(snap, logs.DRIVER_INSUFFICIENT)
    if driver_lines:
        details["log_lines"] = driver_lines[:1]
        cuda, _ = _build_cuda(snap)
        floor = compat.min_driver_for_cuda(cuda, _driver_os(snap)) if cuda else None
        to = f" to >= {format_driver(floor)} (CUDA {cuda})" if floor else ""
        return fail(f"TensorFlow sees {seen} of {expected} GPU(s): {logs.short(driver_lines[0])}",
                    fix=f"Upgrade the NVIDIA driver{to}; see driver.cuda-floor", details=details)
    return warn(f"TensorFlow sees {seen} of {expected} GPU(s) and its captured log says nothing about why",
                fix="Run with TF_CPP_MIN_LOG_LEVEL=0 TF_CPP_MAX_VLOG_LEVEL=3 to see which library fails to load",
                details=details)


def _memory_fix(snap: Snapshot, free: Optional[int]) -> str:
    """Memory growth or a cap, spelled in the API of the installed TensorFlow major version."""
    tf_v = _tf_version(snap)
    if tf_v is not None and tf_v.major == 1:
        total = min((g.memory_total_bytes for g in snap.nvml.gpus if g.memory_total_bytes), default=None)
        frac = max(0.1, round(0.9 * free / total, 2)) if free and total else 0.5
        return ("Create the session with config = tf.ConfigProto(); config.gpu_options.allow_growth = True, or cap "
                f"it with tf.GPUOptions(per_process_gpu_memory_fraction={frac})")
    limit = f"{int(free * 0.9) // 2**20}" if free else "<MiB>"
    return ("export TF_FORCE_GPU_ALLOW_GROWTH=true (or tf.config.experimental.set_memory_growth(gpu, True)), or cap "
            f"TensorFlow with tf.config.set_logical_device_configuration(gpu, "
            f"[tf.config.LogicalDeviceConfiguration(memory_limit={limit})])")


@check(id="memory.allow-growth", title="GPU memory settings for a shared or small GPU")
def memory_allow_growth(snap: Snapshot, ctx: Context) -> Result:
    """With other processes on the GPU (or cuDNN/OOM errors in the log), TensorFlow should not grab all memory.

    Typical fix: export TF_FORCE_GPU_ALLOW_GROWTH=true, or a memory_limit (TF1: gpu_options.allow_growth).
    """
    if not _gpu_machine(snap, ctx):
        return skip("no NVIDIA GPU (or --cpu)")
    value = snap.env.get("TF_FORCE_GPU_ALLOW_GROWTH")
    growth = value == "true"
    others = [(g, p) for g in snap.nvml.gpus for p in g.processes]
    mem_lines = [ln for pat in logs.MEMORY_PATTERNS for ln in logs.find(snap, pat)]
    free = min((g.memory_free_bytes for g in snap.nvml.gpus if g.memory_free_bytes is not None), default=None)
    fix = _memory_fix(snap, free)
    details: dict[str, object] = {"TF_FORCE_GPU_ALLOW_GROWTH": value, "other_processes": len(others),
                                  "free_bytes": free}
    if growth:
        return ok("TF_FORCE_GPU_ALLOW_GROWTH=true: TensorFlow allocates GPU memory as needed", details=details)
    if mem_lines:
        details["log_lines"] = mem_lines[:5]
        free_txt = f" ({free / 2**30:.2f} GiB free now)" if free is not None else ""
        return fail(f"TensorFlow could not get GPU memory{free_txt}: {logs.short(mem_lines[0])}",
                    fix=fix, details=details)
    if others:
        who = ", ".join(f"pid {p.pid}" + (f" {p.name}" if p.name else "") for _, p in others[:4])
        return warn(f"the GPU is shared with {len(others)} other process(es) ({who}) and TensorFlow would "
                    "reserve nearly all free memory at start", fix=fix, details=details)
    return ok("GPU not shared and no out-of-memory lines in TensorFlow's log", details=details)


@check(id="memory.allow-growth-value", title="TF_FORCE_GPU_ALLOW_GROWTH is a value TensorFlow accepts")
def memory_allow_growth_value(snap: Snapshot) -> Result:
    """TF_FORCE_GPU_ALLOW_GROWTH is unset, "true" or "false": TensorFlow ignores anything else (even "True").

    Typical fix: export TF_FORCE_GPU_ALLOW_GROWTH=true
    """
    value = snap.env.get("TF_FORCE_GPU_ALLOW_GROWTH")
    if value is None:
        return skip("TF_FORCE_GPU_ALLOW_GROWTH not set")
    if value in ALLOW_GROWTH_VALUES:
        return ok(f"TF_FORCE_GPU_ALLOW_GROWTH={value}")
    quoted = logs.find(snap, logs.ALLOW_GROWTH_UNPARSED)
    tail = f": {logs.short(quoted[0])}" if quoted else ""
    return fail(f"TF_FORCE_GPU_ALLOW_GROWTH={value!r} is ignored: TensorFlow accepts exactly 'true' or 'false' "
                f"(lower case){tail}", fix="export TF_FORCE_GPU_ALLOW_GROWTH=true",
                details={"value": value})


CHECKS: list[Check] = [
    python_tf_range, cuda_runtime_match, cudnn_runtime_match, driver_cuda_floor, gpu_compute_capability,
    windows_native_gpu, macos_no_cuda, tf_cpu_build_with_gpu, tf_gpu_libs_loaded, memory_allow_growth,
    memory_allow_growth_value,
]


@hookimpl
def oddoctor_checks() -> list[Check]:
    return list(CHECKS)
