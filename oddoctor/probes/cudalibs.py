"""Which CUDA libraries the loader would pick for TensorFlow, and their versions.

The search follows the dynamic loader's order for a TensorFlow pip wheel on Linux: LD_LIBRARY_PATH
first, then the active conda environment's ``lib``, then the pip ``nvidia-*`` wheels that
``tensorflow[and-cuda]`` installs (TensorFlow's RUNPATH points there), then CUDA_HOME, then (on WSL)
``/usr/lib/wsl/lib``, then the system (ldconfig cache and default directories). On Windows PATH
takes LD_LIBRARY_PATH's place.

The CUDA runtime's and cuDNN's versions are read from the libraries themselves
(``cudaRuntimeGetVersion``, ``cudnnGetVersion``) in a child process, because loading a broken library
can take the loading process down with it. The other libraries (cuBLAS, cuFFT, TensorRT...) are
never loaded: their versions come from their file names.

Every directory list is a parameter of :func:`probe_cuda_libs` so tests point it at a fake tree.
"""

from __future__ import annotations

import json
import os
import re
import site
import struct
import subprocess
import sys
import sysconfig
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Optional

from oddoctor.childproc import run_child, signal_name
from oddoctor.snapshot import CudaLibsFacts, LibFacts, ProbeError

CHILD = Path(__file__).resolve().parent.parent / "_child" / "libversion.py"

#: Libraries whose versions are read by loading them (in a child): the ones TensorFlow checks first.
MAIN_KINDS = ("cudart", "cudnn")
#: Other CUDA toolkit libraries TensorFlow loads, by stem: found by file name, never loaded.
OTHER_STEMS = ("cublas", "cublasLt", "cufft", "curand", "cusolver", "cusparse", "nvinfer")
#: Libraries looked for in PATH folders the Linux loader does not search.
PATH_ONLY_KINDS = ("cudart", "cudnn", "cublas")
#: ``site-packages/nvidia/<package>/lib`` folders of the CUDA pip wheels (``cu13``: CUDA 13's single tree).
PIP_PACKAGES = ("cuda_runtime", "cudnn", "cublas", "cufft", "curand", "cusolver", "cusparse", "cuda_nvrtc",
                "cuda_cupti", "nvjitlink", "nccl", "cu13")
#: Folders the Linux loader searches when the ldconfig cache does not name a library.
SYSTEM_DIRS = ("/usr/local/cuda/lib64", "/usr/local/cuda/targets/x86_64-linux/lib",
               "/usr/local/cuda/targets/sbsa-linux/lib", "/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu",
               "/lib/x86_64-linux-gnu", "/lib/aarch64-linux-gnu", "/usr/lib64", "/lib64", "/usr/lib", "/lib")
WSL_LIB_DIR = "/usr/lib/wsl/lib"
LIBCUDA = "libcuda.so.1"
#: ldconfig cache names that make their folder worth searching.
_LDCONFIG_PREFIXES = tuple(f"lib{s}." for s in (*MAIN_KINDS, *OTHER_STEMS, "cuda"))

#: One ldconfig cache entry: ``(soname, flags, path)``, e.g. ``("libcuda.so.1", "libc6,x86-64", "/usr/lib/...")``.
LdEntry = tuple[str, str, str]


def _family(system: str) -> str:
    return "win32" if system == "win32" else "linux"


def lib_pattern(stem: str, system: str = sys.platform) -> re.Pattern[str]:
    """File names of library ``stem``: ``libcudart.so.12`` (Linux), ``cudart64_110.dll`` (Windows)."""
    if _family(system) == "win32":
        if stem == "nvinfer":  # TensorRT: nvinfer.dll (<= 8), nvinfer_10.dll
            return re.compile(r"^nvinfer(_\d+)?\.dll$", re.I)
        return re.compile(rf"^{re.escape(stem)}64_\d+\.dll$", re.I)
    return re.compile(rf"^lib{re.escape(stem)}\.so(\.\d+)*$")


def _site_dirs() -> list[str]:
    dirs: list[str] = []
    try:
        candidates = [*getattr(site, "getsitepackages", lambda: [])(), site.getusersitepackages(),
                      sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
    except Exception:  # noqa: BLE001 - an odd site module (virtualenv < 20) must not stop the search
        candidates = [p for p in sys.path if p.endswith("-packages")]
    for d in candidates:
        if d and d not in dirs:
            dirs.append(d)
    return dirs


def ldconfig_cache(timeout_s: float = 10.0) -> Optional[list[LdEntry]]:
    """The loader's cache (``ldconfig -p``); None when ldconfig cannot be run (not always on a user's PATH)."""
    for exe in ("ldconfig", "/sbin/ldconfig", "/usr/sbin/ldconfig"):
        try:
            proc = subprocess.run([exe, "-p"], capture_output=True, text=True, timeout=timeout_s)
        except (OSError, subprocess.SubprocessError):
            continue
        if proc.returncode == 0:
            return parse_ldconfig(proc.stdout)
    return None


def parse_ldconfig(text: str) -> list[LdEntry]:
    out: list[LdEntry] = []
    for line in text.splitlines():
        m = re.match(r"^\s*(\S+)\s+\(([^)]*)\)\s+=>\s+(.+?)\s*$", line)
        if m:
            out.append((m.group(1), m.group(2), m.group(3)))
    return out


def _native(entries: Iterable[LdEntry]) -> list[LdEntry]:
    """Entries for this interpreter's word size: "libc6,x86-64" / "libc6,AArch64" on 64-bit, plain "libc6" not."""
    want64 = struct.calcsize("P") == 8
    return [e for e in entries if ("64" in e[1]) == want64]


def _split(value: Optional[str]) -> list[str]:
    return [d for d in (value or "").split(os.pathsep) if d]


def _dedup(pairs: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    seen: set[str] = set()
    out = []
    for d, src in pairs:
        if d not in seen:
            seen.add(d)
            out.append((d, src))
    return out


def search_dirs(environ: Optional[Mapping[str, str]] = None, *, site_dirs: Optional[Sequence[str]] = None,
                system_dirs: Optional[Sequence[str]] = None, ldconfig: Optional[Sequence[LdEntry]] = None,
                wsl: bool = False, system: str = sys.platform) -> list[tuple[str, str]]:
    """``(directory, source)`` in the order the loader would look.

    Defaults: this interpreter's site-packages, :data:`SYSTEM_DIRS`, ``ldconfig -p`` (run here).
    """
    env = os.environ if environ is None else environ
    win = _family(system) == "win32"
    out: list[tuple[str, str]] = []
    if win:
        out += [(d, "path") for d in _split(env.get("PATH"))]
    else:
        out += [(d, "ld_library_path") for d in _split(env.get("LD_LIBRARY_PATH"))]
    if env.get("CONDA_PREFIX"):
        out.append((str(Path(env["CONDA_PREFIX"], *(("Library", "bin") if win else ("lib",)))), "conda"))
    for sp in _site_dirs() if site_dirs is None else site_dirs:
        out += [(str(Path(sp) / "nvidia" / pkg / ("bin" if win else "lib")), "pip") for pkg in PIP_PACKAGES]
        out.append((str(Path(sp) / "tensorrt_libs"), "pip"))
    for var in ("CUDA_HOME", "CUDA_PATH"):
        if env.get(var):
            out.append((str(Path(env[var]) / ("bin" if win else "lib64")), "cuda_home"))
    if not win:
        if wsl:
            out.append((WSL_LIB_DIR, "wsl"))
        cache = (ldconfig_cache() or []) if ldconfig is None else ldconfig
        out += [(str(Path(p).parent), "system") for name, _, p in _native(cache) if name.startswith(_LDCONFIG_PREFIXES)]
        out += [(d, "system") for d in (SYSTEM_DIRS if system_dirs is None else system_dirs)]
    return _dedup(out)


def _version_from_name(name: str) -> Optional[str]:
    m = re.search(r"\.so\.(\d+(?:\.\d+)*)$", name) or re.search(r"_(\d+)\.dll$", name, re.I)
    return m.group(1) if m else None


def _most_specific(versions: Iterable[Optional[str]]) -> Optional[str]:
    vs = [v for v in versions if v]
    return max(vs, key=lambda v: len(v.split("."))) if vs else None


def find_libs(dirs: Sequence[tuple[str, str]], kinds: Optional[Sequence[str]] = None,
              system: str = sys.platform) -> dict[str, list[LibFacts]]:
    """Libraries of each kind in ``dirs``, in that order, each file once (symlinks to it count once).

    Of a folder's names for one file, the versioned soname is reported (the loader asks for
    ``libcudart.so.12``, not the development link ``libcudart.so``), with the most precise version any
    of its names gives (``libcublas.so.12`` -> ``libcublas.so.12.3.4.1``: "12.3.4.1").
    """
    kinds = (*MAIN_KINDS, *OTHER_STEMS) if kinds is None else tuple(kinds)
    pats = {k: lib_pattern(k, system) for k in kinds}
    found: dict[str, list[LibFacts]] = {k: [] for k in kinds}
    seen: set[str] = set()
    for d, source in dirs:
        try:
            names = os.listdir(d)
        except OSError:
            continue
        for kind, pat in pats.items():
            groups: dict[str, list[str]] = {}
            for n in names:
                if pat.match(n):
                    groups.setdefault(os.path.realpath(os.path.join(d, n)), []).append(n)
            ordered = sorted(groups.items(), key=lambda kv: min(_name_key(n) for n in kv[1]))
            for real, group in ordered:
                if real in seen:
                    continue
                seen.add(real)
                path = str(Path(d) / min(group, key=_name_key))
                lib = LibFacts(name=kind, path=path, source=source,
                               version=_most_specific(_version_from_name(n) for n in (*group, Path(real).name)
                                                      if pat.match(n)))
                if not os.path.exists(path):
                    lib.loadable, lib.error = False, f"broken symbolic link to {real}"
                found[kind].append(lib)
    return found


def _name_key(name: str) -> tuple[bool, int, str]:
    """Versioned names first (the soname the loader asks for), then shortest."""
    return (_version_from_name(name) is None, len(name), name)


def _is_compat(folder: str) -> bool:
    """A cuda-compat folder (``/usr/local/cuda/compat``, ``.../cuda-12.4/compat/lib``): a newer user-mode driver."""
    return any(part == "compat" or part.startswith(("compat.", "cuda-compat")) for part in Path(folder).parts)


def resolve_libcuda(environ: Optional[Mapping[str, str]] = None, *, wsl: bool = False,
                    ldconfig: Sequence[LdEntry] = (), system_dirs: Sequence[str] = SYSTEM_DIRS,
                    system: str = sys.platform) -> LibFacts:
    """Where the driver API library resolves: LD_LIBRARY_PATH, the WSL folder, the ldconfig cache, system folders.

    ``path`` None (with ``error``) when it is found nowhere; its version is that of the driver it comes
    with (``libcuda.so.1 -> libcuda.so.535.104.05``), where the file name says it.
    """
    env = os.environ if environ is None else environ
    if _family(system) == "win32":
        sysdir = Path(env.get("SystemRoot", r"C:\Windows")) / "System32"
        dll = sysdir / "nvcuda.dll"
        if dll.exists():
            return LibFacts(name="cuda", path=str(dll), source="system")
        return LibFacts(name="cuda", error=f"nvcuda.dll not found in {sysdir}")
    candidates: list[tuple[str, str]] = [(str(Path(d) / LIBCUDA), "ld_library_path")
                                         for d in _split(env.get("LD_LIBRARY_PATH"))]
    if wsl:
        candidates.append((str(Path(WSL_LIB_DIR) / LIBCUDA), "wsl"))
    candidates += [(p, "system") for name, _, p in _native(ldconfig) if name == LIBCUDA]
    candidates += [(str(Path(d) / LIBCUDA), "system") for d in system_dirs]
    for path, source in _dedup(candidates):
        if not os.path.exists(path):
            continue
        real = Path(os.path.realpath(path)).name
        version = _version_from_name(real)
        return LibFacts(name="cuda", path=path, version=version if version and "." in version else None,
                        source="compat" if _is_compat(str(Path(path).parent)) else source)
    where = "LD_LIBRARY_PATH, " + ("the WSL folder, " if wsl else "") + "the ldconfig cache or the system folders"
    return LibFacts(name="cuda", error=f"{LIBCUDA} not found in {where}")


def path_only_libs(environ: Mapping[str, str], loader_dirs: Iterable[str], ldconfig: Sequence[LdEntry] = (),
                   system: str = sys.platform) -> list[LibFacts]:
    """CUDA libraries in PATH folders (or their ``../lib64``, ``../lib``) that the Linux loader does not search.

    The classic trap: ``/usr/local/cuda-11.8/bin`` on PATH makes nvcc work, while TensorFlow cannot load
    ``/usr/local/cuda-11.8/lib64/libcudart.so.11.0`` because LD_LIBRARY_PATH does not name it.
    """
    searched = {os.path.realpath(d) for d in loader_dirs}
    searched |= {os.path.realpath(str(Path(p).parent)) for _, _, p in ldconfig}
    dirs: list[tuple[str, str]] = []
    for entry in _split(environ.get("PATH")):
        for d in (entry, os.path.join(entry, os.pardir, "lib64"), os.path.join(entry, os.pardir, "lib")):
            d = os.path.normpath(d)
            if os.path.realpath(d) not in searched:
                dirs.append((d, "path"))
    found = find_libs(_dedup(dirs), kinds=PATH_ONLY_KINDS, system=system)
    return [lib for k in PATH_ONLY_KINDS for lib in found[k]]


def read_versions(libs: list[LibFacts], timeout_s: float = 30.0) -> None:
    """Fill ``version``/``loadable``/``error`` from the libraries themselves, in a child process.

    A library whose loading kills the child (an aborting libcudart on LD_LIBRARY_PATH) is named as the one
    that crashed, and the libraries after it are read in a fresh child; a hang ends the reading.
    """
    libs = [lib for lib in libs if lib.loadable is not False]  # a broken link is already a fact
    while libs:
        args = [f"{lib.name}:{lib.path}" for lib in libs]
        child = run_child([sys.executable, str(CHILD), *args], timeout_s=timeout_s)
        if child.start_error is not None:
            for lib in libs:
                lib.error = f"could not run the library probe: {child.start_error}"
            return
        lines, code, hung = child.stdout_lines, child.returncode, child.timed_out
        for lib, line in zip(libs, lines):
            try:
                data = json.loads(line)
            except json.JSONDecodeError:
                continue
            lib.loadable = bool(data.get("loadable"))
            lib.error = data.get("error")
            if data.get("version"):
                lib.version = data["version"]
        if code == 0 or len(lines) >= len(libs):
            return
        culprit, rest = libs[len(lines)], libs[len(lines) + 1:]
        culprit.loadable = False
        if hung:
            culprit.error = f"loading this library hung for more than {timeout_s:g} s"
            for lib in rest:
                lib.error = lib.error or f"not read: loading {culprit.path} hung before it"
            return
        how = signal_name(code) or f"exit status {code}"
        culprit.error = f"loading this library crashed the process ({how})"
        libs = rest


def _on_wsl() -> bool:
    from oddoctor.probes.system import is_wsl

    try:
        text: Optional[str] = Path("/proc/version").read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = None
    return bool(is_wsl(text, os.environ))


def probe_cuda_libs(timeout_s: float = 30.0, *, environ: Optional[Mapping[str, str]] = None,
                    wsl: Optional[bool] = None, site_dirs: Optional[Sequence[str]] = None,
                    system_dirs: Optional[Sequence[str]] = None, ldconfig: Optional[Sequence[LdEntry]] = None,
                    system: str = sys.platform, read_library_versions: bool = True,
                    errors: Optional[list[ProbeError]] = None) -> CudaLibsFacts:
    """Never raises; a failure leaves the facts unknown (None) with a :class:`ProbeError` in ``errors``."""
    try:
        return _probe(timeout_s, environ, wsl, site_dirs, system_dirs, ldconfig, system, read_library_versions,
                      errors)
    except Exception as e:  # noqa: BLE001 - a probe never raises
        if errors is not None:
            errors.append(ProbeError("cuda_libs", f"the library search failed: {type(e).__name__}: {e}"))
        return CudaLibsFacts()


def _probe(timeout_s: float, environ: Optional[Mapping[str, str]], wsl: Optional[bool],
           site_dirs: Optional[Sequence[str]], system_dirs: Optional[Sequence[str]],
           ldconfig: Optional[Sequence[LdEntry]], system: str, read_library_versions: bool,
           errors: Optional[list[ProbeError]]) -> CudaLibsFacts:
    env = os.environ if environ is None else environ
    linux = system.startswith("linux")
    win = _family(system) == "win32"
    if wsl is None:
        wsl = linux and _on_wsl()
    if ldconfig is None:
        ldconfig = (ldconfig_cache() or []) if linux else []
    sysdirs = SYSTEM_DIRS if system_dirs is None else system_dirs
    dirs = search_dirs(env, site_dirs=site_dirs, system_dirs=sysdirs, ldconfig=ldconfig, wsl=wsl, system=system)
    found = find_libs(dirs, system=system)
    if read_library_versions:
        read_versions(found["cudart"] + found["cudnn"], timeout_s=timeout_s)
    searched = [d for d, _ in dirs]
    facts = CudaLibsFacts(searched=searched, cudart=found["cudart"], cudnn=found["cudnn"],
                          other={stem: found[stem] for stem in OTHER_STEMS})
    if linux or win:
        facts.libcuda = resolve_libcuda(env, wsl=wsl, ldconfig=ldconfig, system_dirs=sysdirs, system=system)
    elif errors is not None:
        errors.append(ProbeError("cuda_libs.libcuda", f"the CUDA driver library is not looked for on {system}"))
    if linux:
        facts.path_only = path_only_libs(env, searched, ldconfig, system=system)
    elif win:
        facts.path_only = []  # Windows loads DLLs from PATH: no PATH folder is off the loader's path
    elif errors is not None:
        errors.append(ProbeError("cuda_libs.path_only",
                                 f"PATH-only libraries are looked for on Linux only, not {system}"))
    return facts
