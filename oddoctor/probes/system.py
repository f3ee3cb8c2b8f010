"""Platform, Python and environment facts."""

from __future__ import annotations

import os
import platform
import struct
import sys
from pathlib import Path

from oddoctor.snapshot import RELEVANT_ENV_VARS, PlatformFacts, PythonFacts


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _os_release() -> str:
    for line in _read("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip().strip('"')
    return ""


def is_wsl(proc_version: str, environ: dict[str, str]) -> bool:
    """WSL 1 and 2 both say 'microsoft' in the kernel version; WSL sets WSL_DISTRO_NAME."""
    return "microsoft" in proc_version.lower() or bool(environ.get("WSL_DISTRO_NAME"))


def _in_container() -> bool:
    if Path("/.dockerenv").exists() or Path("/run/.containerenv").exists():
        return True
    cgroup = _read("/proc/1/cgroup")
    return any(k in cgroup for k in ("docker", "kubepods", "containerd", "lxc"))


def probe_platform() -> PlatformFacts:
    system = platform.system()
    facts = PlatformFacts(system=system, release=platform.release(), machine=platform.machine())
    if system == "Linux":
        facts.distro = _os_release()
        facts.is_wsl = is_wsl(_read("/proc/version"), dict(os.environ))
        facts.in_container = _in_container()
        lib, ver = platform.libc_ver()
        facts.libc = f"{lib} {ver}".strip()
    elif system == "Windows":
        facts.distro = f"Windows {platform.version()}"
    elif system == "Darwin":
        facts.distro = f"macOS {platform.mac_ver()[0]}"
    return facts


def probe_python() -> PythonFacts:
    return PythonFacts(
        version=platform.python_version(),
        implementation=platform.python_implementation(),
        executable=sys.executable,
        bits=struct.calcsize("P") * 8,
    )


def probe_env() -> dict[str, str | None]:
    return {name: os.environ.get(name) for name in RELEVANT_ENV_VARS}
