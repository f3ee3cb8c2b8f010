"""The CUDA library search on fake folder trees: loader order, sources, libcuda, PATH-only libraries."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from oddoctor.probes import cudalibs
from oddoctor.snapshot import ProbeError

posix_only = pytest.mark.skipif(os.name != "posix", reason="symbolic links and sonames")


def _lib(folder: Path, name: str, link_to: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    p = folder / name
    if link_to:
        p.symlink_to(link_to)
    else:
        p.write_text("not a library")
    return p


def _probe(env: dict[str, str], **kw):
    kw = {"site_dirs": [], "system_dirs": [], "ldconfig": [], "wsl": False, "system": "linux",
          "read_library_versions": False, **kw}
    return cudalibs.probe_cuda_libs(environ=env, **kw)


def test_library_search_follows_loader_order_and_reports_unloadable_files(tmp_path: Path):
    ld = tmp_path / "ld"
    _lib(ld, "libcudart.so.11.0")
    home = tmp_path / "cuda"
    _lib(home / "lib64", "libcudnn.so.8")
    _lib(home / "lib64", "libcudnn_ops_infer.so.8")  # a sub-library, not the one we read
    dirs = cudalibs.search_dirs({"LD_LIBRARY_PATH": str(ld), "CUDA_HOME": str(home)}, site_dirs=[],
                                system_dirs=[], ldconfig=[], system="linux")
    assert dirs == [(str(ld), "ld_library_path"), (str(home / "lib64"), "cuda_home")]
    found = cudalibs.find_libs(dirs, system="linux")
    [rt] = found["cudart"]
    assert rt.source == "ld_library_path" and rt.version == "11.0"
    [dnn] = found["cudnn"]
    assert dnn.path.endswith("libcudnn.so.8") and dnn.source == "cuda_home"
    cudalibs.read_versions([rt, dnn], timeout_s=30)
    assert rt.loadable is False and rt.error.startswith("cannot load")
    assert dnn.loadable is False


def test_search_order_ld_conda_pip_cuda_home_wsl_system(tmp_path: Path):
    env = {"LD_LIBRARY_PATH": f"/ld1{os.pathsep}{os.pathsep}/ld2", "CONDA_PREFIX": "/opt/conda/envs/tf",
           "CUDA_HOME": "/usr/local/cuda-11.8"}
    ldc = [("libcudnn.so.8", "libc6,x86-64", "/opt/cudnn/lib/libcudnn.so.8"),
           ("libcudnn.so.8", "libc6", "/opt/cudnn/lib32/libcudnn.so.8"),  # 32-bit: not ours
           ("libz.so.1", "libc6,x86-64", "/lib/x86_64-linux-gnu/libz.so.1")]  # not a CUDA library
    dirs = cudalibs.search_dirs(env, site_dirs=["/site"], system_dirs=["/usr/lib64"], ldconfig=ldc, wsl=True,
                                system="linux")
    sources = [s for _, s in dirs]
    assert dirs[:3] == [("/ld1", "ld_library_path"), ("/ld2", "ld_library_path"),
                        (str(Path("/opt/conda/envs/tf/lib")), "conda")]
    assert sources == sorted(sources, key=["ld_library_path", "conda", "pip", "cuda_home", "wsl", "system"].index)
    assert (str(Path("/site/nvidia/cublas/lib")), "pip") in dirs
    assert (str(Path("/site/nvidia/cuda_nvrtc/lib")), "pip") in dirs
    assert ("/usr/lib/wsl/lib", "wsl") in dirs
    assert dirs[-2:] == [(str(Path("/opt/cudnn/lib")), "system"), ("/usr/lib64", "system")]


@posix_only
def test_other_libraries_by_stem_from_file_names_only(tmp_path: Path):
    site = tmp_path / "site"
    pip_cublas = site / "nvidia" / "cublas" / "lib"
    _lib(pip_cublas, "libcublas.so.12.3.4.1")
    _lib(pip_cublas, "libcublas.so.12", "libcublas.so.12.3.4.1")
    _lib(pip_cublas, "libcublas.so", "libcublas.so.12")  # the development link: same file
    _lib(pip_cublas, "libcublasLt.so.12")
    _lib(site / "nvidia" / "cufft" / "lib", "libcufft.so.11")
    _lib(site / "tensorrt_libs", "libnvinfer.so.10")
    sysdir = tmp_path / "usr-lib"
    _lib(sysdir, "libcublas.so.11")  # an older toolkit, later in loader order
    _lib(sysdir, "libcusolver.so", "libcusolver.so.missing")  # a broken link
    facts = _probe({}, site_dirs=[str(site)], system_dirs=[str(sysdir)])
    cublas = facts.other["cublas"]
    assert [(Path(x.path).name, x.version, x.source) for x in cublas] == [
        ("libcublas.so.12", "12.3.4.1", "pip"), ("libcublas.so.11", "11", "system")]
    assert all(x.loadable is None for x in cublas)  # never loaded
    assert [x.version for x in facts.other["cublasLt"]] == ["12"]
    assert [x.version for x in facts.other["cufft"]] == ["11"]
    assert [x.version for x in facts.other["nvinfer"]] == ["10"]
    assert facts.other["curand"] == [] and facts.other["cusparse"] == []
    [broken] = facts.other["cusolver"]
    assert broken.loadable is False and "broken symbolic link" in broken.error
    assert set(facts.other) == set(cudalibs.OTHER_STEMS)


def test_windows_file_names(tmp_path: Path):
    for n in ("cudart64_110.dll", "cudnn64_8.dll", "cublas64_11.dll", "cublasLt64_11.dll", "nvinfer_10.dll",
              "cudnn_ops_infer64_8.dll", "cufft64_10.dll"):
        _lib(tmp_path, n)
    found = cudalibs.find_libs([(str(tmp_path), "path")], system="win32")
    names = {k: [Path(x.path).name for x in v] for k, v in found.items() if v}
    assert names == {"cudart": ["cudart64_110.dll"], "cudnn": ["cudnn64_8.dll"], "cublas": ["cublas64_11.dll"],
                     "cublasLt": ["cublasLt64_11.dll"], "nvinfer": ["nvinfer_10.dll"], "cufft": ["cufft64_10.dll"]}
    assert found["cudart"][0].version == "110"


@posix_only
def test_libcuda_resolution_order_and_sources(tmp_path: Path, monkeypatch):
    compat = tmp_path / "usr" / "local" / "cuda-12.4" / "compat"
    _lib(compat, "libcuda.so.550.54.15")
    _lib(compat, "libcuda.so.1", "libcuda.so.550.54.15")
    wsl_dir = tmp_path / "wsl"
    _lib(wsl_dir, "libcuda.so.1")
    system = tmp_path / "x86_64-linux-gnu"
    _lib(system, "libcuda.so.535.104.05")
    _lib(system, "libcuda.so.1", "libcuda.so.535.104.05")
    ldc = [("libcuda.so.1", "libc6,x86-64", str(system / "libcuda.so.1"))]

    lc = cudalibs.resolve_libcuda({"LD_LIBRARY_PATH": str(compat)}, ldconfig=ldc, system_dirs=[], system="linux")
    assert (lc.source, lc.version, lc.path) == ("compat", "550.54.15", str(compat / "libcuda.so.1"))

    lc = cudalibs.resolve_libcuda({}, ldconfig=ldc, system_dirs=[], system="linux")
    assert (lc.source, lc.version) == ("system", "535.104.05")

    monkeypatch.setattr(cudalibs, "WSL_LIB_DIR", str(wsl_dir))
    lc = cudalibs.resolve_libcuda({}, wsl=True, ldconfig=ldc, system_dirs=[], system="linux")
    assert (lc.source, lc.path, lc.version) == ("wsl", str(wsl_dir / "libcuda.so.1"), None)  # a file, no version

    lc = cudalibs.resolve_libcuda({}, ldconfig=[], system_dirs=[str(tmp_path / "none")], system="linux")
    assert lc.path is None and "libcuda.so.1 not found" in lc.error


def test_libcuda_on_windows(tmp_path: Path):
    _lib(tmp_path / "System32", "nvcuda.dll")
    lc = cudalibs.resolve_libcuda({"SystemRoot": str(tmp_path)}, system="win32")
    assert lc.path == str(tmp_path / "System32" / "nvcuda.dll") and lc.source == "system"


def test_libraries_only_on_path_are_reported(tmp_path: Path):
    cuda = tmp_path / "cuda-11.8"
    (cuda / "bin").mkdir(parents=True)
    _lib(cuda / "lib64", "libcudart.so.11.0")
    _lib(cuda / "lib64", "libcublas.so.11")
    _lib(cuda / "lib64", "libcufft.so.10")  # not one of the PATH-only kinds
    (tmp_path / "tools" / "bin").mkdir(parents=True)  # a PATH entry with no CUDA library near it
    env = {"PATH": os.pathsep.join([str(cuda / "bin"), str(tmp_path / "tools" / "bin")])}
    facts = _probe(env)
    assert [(Path(x.path).name, x.source, x.name) for x in facts.path_only] == [
        ("libcudart.so.11.0", "path", "cudart"), ("libcublas.so.11", "path", "cublas")]
    assert facts.cudart == []  # the loader would not find it
    on_loader = _probe({**env, "LD_LIBRARY_PATH": str(cuda / "lib64")})
    assert on_loader.path_only == [] and on_loader.cudart[0].source == "ld_library_path"


def test_nothing_found_is_empty_not_unknown(tmp_path: Path):
    errors: list[ProbeError] = []
    facts = _probe({"PATH": str(tmp_path)}, errors=errors)
    assert facts.searched == [] and facts.cudart == [] and facts.cudnn == [] and facts.path_only == []
    assert facts.libcuda.path is None and errors == []


def test_windows_and_macos_path_only(tmp_path: Path):
    assert _probe({}, system="win32").path_only == []
    errors: list[ProbeError] = []
    mac = _probe({}, system="darwin", errors=errors)
    assert mac.path_only is None and mac.libcuda is None
    assert {e.fact for e in errors} == {"cuda_libs.path_only", "cuda_libs.libcuda"}


def test_the_search_never_raises(monkeypatch):
    def boom(*a, **kw):
        raise RuntimeError("odd")

    monkeypatch.setattr(cudalibs, "find_libs", boom)
    errors: list[ProbeError] = []
    facts = _probe({}, errors=errors)
    assert facts.searched is None and facts.cudart is None
    assert errors == [ProbeError("cuda_libs", "the library search failed: RuntimeError: odd")]


def test_parse_ldconfig():
    text = ("1234 libs found in cache `/etc/ld.so.cache'\n"
            "\tlibcuda.so.1 (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libcuda.so.1\n"
            "\tlibcudart.so.12 (libc6,x86-64, OS ABI: Linux 3.2.0) => /usr/local/cuda/lib64/libcudart.so.12\n")
    assert cudalibs.parse_ldconfig(text) == [
        ("libcuda.so.1", "libc6,x86-64", "/usr/lib/x86_64-linux-gnu/libcuda.so.1"),
        ("libcudart.so.12", "libc6,x86-64, OS ABI: Linux 3.2.0", "/usr/local/cuda/lib64/libcudart.so.12")]
