"""Which CUDA runtime and cuDNN libraries would be loaded, and their versions.

The search follows the dynamic loader's order for a TensorFlow pip wheel on Linux: LD_LIBRARY_PATH
first, then the pip ``nvidia-*`` wheels that ``tensorflow[and-cuda]`` installs (TensorFlow's
RUNPATH points there), then CUDA_HOME, then the system (ldconfig cache and default directories).
Versions are read from the libraries themselves (``cudaRuntimeGetVersion``, ``cudnnGetVersion``) in a
child process, because loading a broken library can take the loading process down with it.
"""

from __future__ import annotations

import json
import os
import re
import site
import subprocess
import sys
import sysconfig
from pathlib import Path

from oddoctor.snapshot import CudaLibsFacts, LibFacts

CHILD = Path(__file__).resolve().parent.parent / "_child" / "libversion.py"

_PATTERNS = {
    "linux": {"cudart": re.compile(r"^libcudart\.so(\.\d+)*$"), "cudnn": re.compile(r"^libcudnn\.so(\.\d+)*$")},
    "win32": {"cudart": re.compile(r"^cudart64_\d+\.dll$", re.I), "cudnn": re.compile(r"^cudnn64_\d+\.dll$", re.I)},
}
_SYSTEM_DIRS = ["/usr/local/cuda/lib64", "/usr/local/cuda/targets/x86_64-linux/lib",
                "/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib"]


def _site_dirs() -> list[str]:
    dirs: list[str] = []
    for d in [*getattr(site, "getsitepackages", lambda: [])(), site.getusersitepackages(),
              sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]:
        if d and d not in dirs:
            dirs.append(d)
    return dirs


def search_dirs(environ: dict[str, str] | None = None) -> list[tuple[str, str]]:
    """``(directory, source)`` in the order the loader would look."""
    env = dict(os.environ) if environ is None else environ
    out: list[tuple[str, str]] = []
    var = "PATH" if sys.platform == "win32" else "LD_LIBRARY_PATH"
    for d in env.get(var, "").split(os.pathsep):
        if d:
            out.append((d, "ld_library_path" if var == "LD_LIBRARY_PATH" else "path"))
    for sp in _site_dirs():
        for sub in ("cuda_runtime", "cudnn"):
            out.append((str(Path(sp) / "nvidia" / sub / ("bin" if sys.platform == "win32" else "lib")), "pip"))
    for var_home in ("CUDA_HOME", "CUDA_PATH"):
        if env.get(var_home):
            out.append((str(Path(env[var_home]) / ("bin" if sys.platform == "win32" else "lib64")), "cuda_home"))
    if sys.platform != "win32":
        out.extend((d, "system") for d in _ldconfig_dirs() + _SYSTEM_DIRS)
    seen: set[str] = set()
    uniq = []
    for d, src in out:
        if d not in seen:
            seen.add(d)
            uniq.append((d, src))
    return uniq


def _ldconfig_dirs() -> list[str]:
    try:
        out = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    dirs: list[str] = []
    for line in out.splitlines():
        if ("libcudart" in line or "libcudnn" in line) and "=>" in line:
            d = str(Path(line.split("=>", 1)[1].strip()).parent)
            if d not in dirs:
                dirs.append(d)
    return dirs


def find_libs(dirs: list[tuple[str, str]]) -> dict[str, list[LibFacts]]:
    pats = _PATTERNS["win32" if sys.platform == "win32" else "linux"]
    found: dict[str, list[LibFacts]] = {"cudart": [], "cudnn": []}
    seen: set[str] = set()
    for d, source in dirs:
        try:
            names = sorted(os.listdir(d), key=lambda n: (len(n), n))
        except OSError:
            continue
        for kind, pat in pats.items():
            for n in names:
                if not pat.match(n):
                    continue
                path = str(Path(d) / n)
                real = os.path.realpath(path)
                if real in seen:
                    continue
                seen.add(real)
                found[kind].append(LibFacts(name=kind, path=path, source=source, version=_version_from_name(n)))
    return found


def _version_from_name(name: str) -> str | None:
    m = re.search(r"\.so\.(\d+(?:\.\d+)*)$", name) or re.search(r"_(\d+)\.dll$", name)
    return m.group(1) if m else None


def read_versions(libs: list[LibFacts], timeout_s: float = 30.0) -> None:
    """Fill ``version``/``loadable``/``error`` from the libraries themselves, in a child process."""
    if not libs:
        return
    args = [f"{lib.name}:{lib.path}" for lib in libs]
    try:
        proc = subprocess.run([sys.executable, str(CHILD), *args], capture_output=True, text=True,
                              timeout=timeout_s)
        lines = proc.stdout.splitlines()
        crashed = proc.returncode != 0
    except subprocess.TimeoutExpired as e:
        raw = e.stdout or b""
        lines = (raw.decode() if isinstance(raw, bytes) else raw).splitlines()
        crashed = True
    except OSError as e:
        for lib in libs:
            lib.error = f"could not run the library probe: {e}"
        return
    for lib, line in zip(libs, lines):
        try:
            data = json.loads(line)
        except json.JSONDecodeError:
            continue
        lib.loadable = bool(data.get("loadable"))
        lib.error = data.get("error")
        if data.get("version"):
            lib.version = data["version"]
    if crashed:
        for lib in libs[len(lines):]:
            lib.error = lib.error or "the library probe crashed or hung while loading this library"


def probe_cuda_libs(timeout_s: float = 30.0) -> CudaLibsFacts:
    dirs = search_dirs()
    found = find_libs(dirs)
    read_versions(found["cudart"] + found["cudnn"], timeout_s=timeout_s)
    return CudaLibsFacts(searched=[d for d, _ in dirs], cudart=found["cudart"], cudnn=found["cudnn"])
