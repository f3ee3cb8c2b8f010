"""CUDA and cuDNN checks: the libraries the loader picks (or TensorFlow could not load) fit TensorFlow's build."""

from __future__ import annotations

import re
from typing import Optional

from packaging.version import Version

from oddoctor import compat, hookimpl
from oddoctor.checks import Check, Context, Result, check, fail, ok, skip, unknown, warn
from oddoctor.compat import logs
from oddoctor.snapshot import LibFacts, Snapshot
from oddoctor_plugins._advice import (
    LINUX,
    PIP_CUDNN_FROM,
    TfBuild,
    View,
    dirname,
    gpu_gate,
    install_fix,
    lib_desc,
    parse_version,
    prepend_path,
    view,
)


def _major(lib: LibFacts) -> Optional[int]:
    v = parse_version(lib.version)
    return v.major if v is not None else None


def soname_cuda(soname: str) -> Optional[Version]:
    """The CUDA a runtime soname asks for: before CUDA 11 the soname carries major.minor (libcudart.so.10.0 is
    not 10.1); from 11 on only the major (libcudart.so.11.0 serves every 11.x). Windows: cudart64_100.dll is
    10.0, cudart64_110.dll is 11, cudart64_12.dll is 12."""
    m = re.search(r"\.so\.(\d+)(?:\.(\d+))?", soname)
    if m:
        major = int(m.group(1))
        if major < 11 and m.group(2) is not None:
            return Version(f"{major}.{m.group(2)}")
        return Version(str(major))
    m = re.search(r"64_(\d+)\.dll", soname)
    if not m:
        return None
    d = m.group(1)
    if len(d) == 3:  # cudart64_100.dll = 10.0, cudart64_101.dll = 10.1, cudart64_110.dll = every 11.x
        major, minor = int(d[:2]), int(d[2])
    elif len(d) == 2 and int(d) >= 20:  # cudart64_92.dll = 9.2
        major, minor = int(d[0]), int(d[1])
    else:  # cudart64_12.dll = every 12.x
        return Version(d)
    return Version(f"{major}.{minor}") if major < 11 else Version(str(major))


def _fits(lib: LibFacts, want: Version) -> bool:
    """A found runtime serves ``want``: same major, and before CUDA 11 the same minor too."""
    got = parse_version(lib.version)
    if got is None or got.major != want.major:
        return False
    if want.major < 11 and len(want.release) > 1:
        return (*got.release, 0)[1] == want.release[1]
    return True


@check(id="cuda.runtime-match", title="CUDA runtime that would load matches TensorFlow's build")
def cuda_runtime_match(snap: Snapshot, ctx: Context) -> Result:
    """The CUDA libraries TensorFlow loads (runtime, cuBLAS, cuFFT, ...) exist for TF's CUDA version.

    Typical fix: pip install 'tensorflow[and-cuda]==X.*' (2.14+), or install the tested CUDA and put it
    on LD_LIBRARY_PATH; remove a shadowing LD_LIBRARY_PATH entry.
    """
    v = view(snap)
    gate = gpu_gate(v, ctx, "CUDA library checks")
    if gate is not None:
        return gate
    if v.is_cuda_build is False:
        return skip("TensorFlow is not a CUDA build")
    want, where = v.build_cuda()
    b = v.tf_build()
    libs = snap.cuda_libs.cudart
    failed = [f for f in logs.failed_libs(snap) if f.stem in logs.CUDA_TOOLKIT_LIBS]
    failed.sort(key=lambda f: f.stem != "cudart")  # the runtime itself first: its soname names the version
    details: dict[str, object] = {"tf_cuda": str(want) if want else None, "cuda_from": where,
                                  "cudart": [lib.path for lib in libs or []], "searched": snap.cuda_libs.searched}
    if failed:
        return _failed_lib(v, failed, want, b, details)
    if want is None:
        return unknown("tf.build_cuda", v.unknown("tf.build_cuda") or "")
    if _brings_own_libs(v):
        return _shadowing("CUDA runtime", libs, want, v, b, details)
    conda = _conda_not_on_path(v, want)
    if conda is not None:
        return fail(conda[0], fix=conda[1], details=details)
    if libs is None:
        return unknown("libs.cudart", "the CUDA library search did not run and the report does not say")
    if not libs:
        if snap.cuda_libs.searched or v.tf_imports is False:
            return fail(f"no CUDA runtime library found; TensorFlow {v.tf_version} was built with CUDA {want}",
                        fix=install_fix(v, b), details=details)
        return unknown("libs.cudart", "the CUDA library probe searched nowhere")
    first = libs[0]
    got = parse_version(first.version)
    if got is None:
        return unknown("libs.cudart", f"version of {first.path} unknown")
    if got.major != want.major:
        better = next((lib for lib in libs[1:] if _major(lib) == want.major), None)
        if better is not None and first.source == "ld_library_path":
            fix = (f"Remove {dirname(first.path or '')} from LD_LIBRARY_PATH: it shadows {lib_desc(better)} "
                   "that matches TensorFlow's build")
        else:
            fix = install_fix(v, b)
        return fail(f"the loader picks CUDA runtime {got} at {first.path} ({first.source}); TensorFlow "
                    f"{v.tf_version} was built with CUDA {want}", fix=fix, details=details)
    if (*got.release, 0)[1] < (*want.release, 0)[1]:
        return warn(f"the loader picks CUDA runtime {got} at {first.path} ({first.source}), older than TensorFlow's "
                    f"CUDA {want}: libraries that gained a new soname within {want.major}.x may be missing",
                    fix=install_fix(v, b), details=details)
    return ok(f"CUDA runtime {got} at {first.path} ({first.source}) matches TensorFlow's CUDA {want}",
              details=details)


def _brings_own_libs(v: View) -> bool:
    """A planned TensorFlow >= 2.14 on Linux installs CUDA and cuDNN as pip wheels (tensorflow[and-cuda]), found
    through its RUNPATH before any system library: only LD_LIBRARY_PATH can shadow them."""
    return v.planned is not None and v.tf_os == LINUX and v.planned >= Version("2.14")


def _shadowing(what: str, libs: Optional[list[LibFacts]], want: Version, v: View, b: Optional[TfBuild],
               details: dict[str, object]) -> Result:
    if libs is None:
        return unknown("libs.cudart" if what.startswith("CUDA") else "libs.cudnn",
                       "the CUDA library search did not run and the report does not say")
    bad = [lib for lib in libs if lib.source == "ld_library_path" and _major(lib) not in (None, want.major)]
    wheel = f"TensorFlow {v.planned} brings {what} {want} as pip wheels ({compat.pip_spec(b, LINUX) if b else ''})"
    if bad:
        d = dirname(bad[0].path or "")
        return fail(f"{wheel}, but LD_LIBRARY_PATH puts {lib_desc(bad[0])} first: it would shadow them",
                    fix=f"Remove {d} from LD_LIBRARY_PATH (or unset it) before running TensorFlow {v.planned}",
                    details=details)
    others = ", ".join(sorted({f"{lib.version} ({lib.source})" for lib in libs if lib.version})) or "none"
    return ok(f"{wheel}; nothing on LD_LIBRARY_PATH shadows them (also on this machine: {others})", details=details)


def _conda_not_on_path(v: View, want: Version) -> Optional[tuple[str, str]]:
    """conda's cudatoolkit fits TensorFlow's CUDA, TensorFlow (a pip wheel) sees no GPU, and the environment's lib
    folder is not on LD_LIBRARY_PATH: pip's TensorFlow does not look there."""
    snap = v.snap
    pkgs = (snap.conda.packages or {}) if snap.conda is not None else {}
    tk = parse_version(pkgs.get("cudatoolkit") or pkgs.get("cuda-toolkit"))
    if tk is None or tk.major != want.major or snap.tensorflow.gpus != [] or v.tf_os != LINUX:
        return None
    ld = snap.env.get("LD_LIBRARY_PATH")
    prefix = snap.conda.prefix if snap.conda is not None else None
    if "LD_LIBRARY_PATH" in snap.env and ld and ((prefix and f"{prefix}/lib" in ld) or "CONDA_PREFIX" in ld):
        return None
    return (f"conda's cudatoolkit {tk} fits TensorFlow {v.tf_version}'s CUDA {want}, but TensorFlow sees no GPU: a pip "
            "TensorFlow does not search the conda environment's lib folder",
            f"{prepend_path('LD_LIBRARY_PATH', '$CONDA_PREFIX/lib')} (to keep it: conda env config vars set "
            "LD_LIBRARY_PATH=$CONDA_PREFIX/lib, then conda activate the environment again)")


def _failed_lib(v: View, failed: list[logs.FailedLib], want: Optional[Version], b: Optional[TfBuild],
                details: dict[str, object]) -> Result:
    """TensorFlow said it could not load a CUDA library: where one that fits is on disk, or what to install."""
    snap = v.snap
    f0 = failed[0]
    quote = logs.short(f0.line)
    details["log_line"] = f0.line
    asked = soname_cuda(f0.soname) if f0.stem == "cudart" else None
    need = asked or want
    tf_name = f"TensorFlow {v.tf_version}" if v.tf_version else "TensorFlow"
    if need is None:
        # Only the runtime's and cuBLAS's sonames carry the CUDA major (libcusolver.so.10 ships with CUDA 11.0).
        major = logs.soname_major(f0.soname) if f0.stem in ("cudart", "cublas", "cublaslt") else None
        what = f"CUDA {major}" if major else "the CUDA toolkit"
        return fail(f"{tf_name} could not load {f0.soname} ({f0.component}): {quote}",
                    fix=f"Install {what} TensorFlow was built with (it provides {f0.soname}) and put its lib "
                        "directory on LD_LIBRARY_PATH, or pip install 'tensorflow[and-cuda]' for a TensorFlow that "
                        "brings its own",
                    details=details)
    found = [lib for lib in (snap.cuda_libs.cudart or []) if _fits(lib, need)] if f0.stem == "cudart" else []
    found += [lib for lib in (snap.cuda_libs.path_only or []) if lib.name == f0.stem and _fits(lib, need)]
    if found:
        d = dirname(found[0].path or "")
        var = "PATH" if v.native_windows else "LD_LIBRARY_PATH"
        return fail(f"{tf_name} could not load {f0.soname} although {lib_desc(found[0])} exists: {quote}",
                    fix=f"{prepend_path(var, d)} (so the loader finds CUDA {need}), or {install_fix(v, b)}",
                    details=details)
    others = [f.soname for f in failed[1:]]
    also = f" (also {', '.join(others[:3])})" if others else ""
    if b is None or (asked is not None and b.cuda_version.major != asked.major):
        # The table cannot pin a build: name the CUDA the library asks for.
        fix = (f"Install CUDA {need} (its {f0.soname}) and put its lib directory on LD_LIBRARY_PATH"
               if not v.native_windows else f"Install CUDA {need} and add its bin directory to PATH")
        if b is not None:
            fix += f", or {install_fix(v, b)}"
        elif v.tf_os == LINUX:
            fix += ", or pip install 'tensorflow[and-cuda]' for a TensorFlow that brings its own CUDA"
    else:
        fix = install_fix(v, b)
    return fail(f"{tf_name} needs the CUDA {need} libraries and could not load {f0.soname}{also}: {quote}",
                fix=fix, details=details)


@check(id="cudnn.runtime-match", title="cuDNN that would load matches TensorFlow's build")
def cudnn_runtime_match(snap: Snapshot, ctx: Context) -> Result:
    """The cuDNN the loader picks has TF's cuDNN major and at least its minor (TF's own rule).

    Typical fix: pip install 'nvidia-cudnn-cu11==8.6.*' (or tensorflow[and-cuda]); drop the older cuDNN
    directory from LD_LIBRARY_PATH.
    """
    v = view(snap)
    gate = gpu_gate(v, ctx, "cuDNN checks")
    if gate is not None:
        return gate
    if v.is_cuda_build is False:
        return skip("TensorFlow is not a CUDA build")
    b = v.tf_build()
    cuda, _ = v.build_cuda()
    libs = snap.cuda_libs.cudnn
    details: dict[str, object] = {"cudnn": [lib.path for lib in libs or []]}
    mism = logs.find_re(snap, logs.CUDNN_MISMATCH)
    if mism:
        line, m = mism[0]
        loaded, compiled = Version(logs.cudnn_version(m.group(1))), Version(logs.cudnn_version(m.group(2)))
        details.update(loaded=str(loaded), compiled=str(compiled), log_line=line)
        where = f" from {libs[0].path} ({libs[0].source})" if libs and libs[0].path else ""
        if loaded > compiled:  # older TensorFlow wants the minor it was compiled with, exactly
            return fail(f"TensorFlow loaded cuDNN {loaded}{where} but was compiled with {compiled} and wants that "
                        f"version: {logs.short(line)}",
                        fix=f"Install cuDNN {compiled} (e.g. conda install cudnn={compiled}) and put it first on the "
                            "library path, or a TensorFlow built for cuDNN {loaded.major}.{loaded.minor}",
                        details=details)
        return fail(f"TensorFlow loaded cuDNN {loaded}{where} but was compiled with {compiled}: "
                    "same major and an equal or newer minor are needed",
                    fix=cudnn_fix(v, compiled, cuda, b, libs or []), details=details)
    want, where = v.build_cudnn()
    if want is not None and _brings_own_libs(v):
        return _shadowing("cuDNN", libs, want, v, b, details)
    failed = [f for f in logs.failed_libs(snap) if f.stem == "cudnn"]
    not_found = logs.find_any(snap, logs.DNN_NOT_FOUND)
    if failed or not_found:
        line = failed[0].line if failed else not_found[0]
        details["log_line"] = line
        if want is None:
            major = logs.soname_major(failed[0].soname) if failed else None
            what = f"cuDNN {major}" if major else "the cuDNN of TensorFlow's build"
            return fail(f"TensorFlow could not load cuDNN: {logs.short(line)}",
                        fix=f"Install {what} for {_cuda_name(cuda)} and put it on the library "
                            "path, or pip install 'tensorflow[and-cuda]' for a TensorFlow that brings its own",
                        details=details)
        return fail(f"TensorFlow could not load cuDNN {want}: {logs.short(line)}",
                    fix=cudnn_fix(v, want, cuda, b, libs or []), details=details)
    if want is None:
        return unknown("tf.build_cudnn", v.unknown("tf.build_cudnn") or "")
    details.update(tf_cudnn=str(want), cudnn_from=where)
    if libs is None:
        return unknown("libs.cudnn", "the CUDA library search did not run and the report does not say")
    if not libs:
        if snap.cuda_libs.searched:
            return fail(f"no cuDNN library found; TensorFlow {v.tf_version} was built with cuDNN {want}",
                        fix=cudnn_fix(v, want, cuda, b, libs), details=details)
        return unknown("libs.cudnn", "the CUDA library probe did not look for cuDNN")
    first = libs[0]
    got = parse_version(first.version)
    if got is None:
        return unknown("libs.cudnn", f"version of {first.path} unknown")
    minor_ok = len(want.release) < 2 or (*got.release, 0)[1] >= want.release[1]
    if got.major != want.major or not minor_ok:
        return fail(f"the loader picks cuDNN {got} at {first.path} ({first.source}); TensorFlow "
                    f"{v.tf_version} was built with cuDNN {want}",
                    fix=cudnn_fix(v, want, cuda, b, libs), details=details)
    return ok(f"cuDNN {got} at {first.path} ({first.source}) fits TensorFlow's cuDNN {want}", details=details)


def _cuda_name(cuda: Optional[Version]) -> str:
    return f"CUDA {cuda}" if cuda else "TensorFlow's CUDA"


def cudnn_fix(v: View, want: Version, cuda: Optional[Version], b: Optional[TfBuild], libs: list[LibFacts]) -> str:
    mm = ".".join(str(x) for x in (*want.release, 0)[:2])
    parts = []
    first = libs[0] if libs else None
    better = next((lib for lib in libs[1:] if lib.source == "pip"), None)
    if first is not None and first.source == "ld_library_path" and better is not None:
        parts.append(f"remove {dirname(first.path or '')} from LD_LIBRARY_PATH so that {better.path} loads")
    if v.tf_os == LINUX and b is not None and b.version >= Version("2.14"):
        parts.append(compat.pip_install(b, LINUX))
    elif v.tf_os == LINUX and cuda is not None and Version(mm) >= PIP_CUDNN_FROM.get(cuda.major, Version("99")):
        parts.append(f"pip install 'nvidia-cudnn-cu{cuda.major}=={mm}.*' and put its lib directory "
                     "(site-packages/nvidia/cudnn/lib) on LD_LIBRARY_PATH")
    elif v.tf_os == LINUX and cuda is not None:
        parts.append(f"conda install -c conda-forge cudatoolkit={cuda} 'cudnn>={mm},<{want.major + 1}' and put "
                     "the environment's lib directory first on LD_LIBRARY_PATH")
    elif v.native_windows:
        after = f" ahead of {dirname(first.path or '')}" if first is not None else ""
        parts.append(f"install cuDNN {mm} for {_cuda_name(cuda)} (cudnn64_{want.major}.dll) and "
                     f"put its bin directory on PATH{after}")
    else:
        parts.append(f"install cuDNN {mm} for {_cuda_name(cuda)} and put it first on the library "
                     "path")
    return "; or ".join(parts) + f" (cuDNN {mm}.x or a newer {want.major}.x)"


@check(id="cuda.tensorrt", title="TensorRT, which only TF-TRT needs")
def cuda_tensorrt(snap: Snapshot) -> Result:
    """TensorFlow's "Could not load dynamic library 'libnvinfer.so'" / "Could not find TensorRT" is harmless
    unless models are converted with TF-TRT: said so, so that it is not taken for the cause of a failure.

    Typical fix: none needed; for TF-TRT, install the TensorRT TensorFlow was built with (pip install tensorrt).
    """
    lines = [f.line for f in logs.failed_libs(snap) if f.stem in ("nvinfer", "nvinfer_plugin")]
    lines += logs.find_any(snap, ("Could not find TensorRT", "TF-TRT Warning"))
    if not lines:
        return skip("TensorFlow's log says nothing about TensorRT")
    return ok(f"TensorRT not found ({logs.short(lines[0], 120)}): harmless, only TF-TRT model conversion needs it "
              "(for TF-TRT: pip install the tensorrt release of TensorFlow's build)", details={"log_line": lines[0]})


CHECKS: list[Check] = [cuda_runtime_match, cudnn_runtime_match, cuda_tensorrt]


@hookimpl
def oddoctor_checks() -> list[Check]:
    return list(CHECKS)
