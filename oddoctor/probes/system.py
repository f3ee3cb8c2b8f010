"""Platform, Python and environment facts. What cannot be told stays None, with a ProbeError saying why."""

from __future__ import annotations

import os
import platform
import struct
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Optional

from oddoctor.snapshot import RELEVANT_ENV_VARS, PlatformFacts, ProbeError, PythonFacts

#: /proc/1/cgroup or /proc/self/mountinfo words that only a container runtime writes.
_CONTAINER_MARKERS = ("docker", "kubepods", "containerd", "libpod", "lxc", "/garden/", "buildkit")


def _read(path: str) -> tuple[Optional[str], Optional[str]]:
    """``(text, None)``, or ``(None, why)`` when the file cannot be read."""
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace"), None
    except OSError as e:
        return None, f"cannot read {path}: {e.strerror or e}"


def _note(errors: Optional[list[ProbeError]], fact: str, error: str) -> None:
    if errors is not None:
        errors.append(ProbeError(fact=fact, error=error))


def os_release_name(text: str) -> Optional[str]:
    """PRETTY_NAME from an os-release file, else NAME and VERSION_ID; None when it says neither."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            fields[key.strip()] = value.strip().strip("'\"")
    if fields.get("PRETTY_NAME"):
        return fields["PRETTY_NAME"]
    name = " ".join(v for v in (fields.get("NAME"), fields.get("VERSION_ID")) if v)
    return name or None


def is_wsl(proc_version: Optional[str], environ: Mapping[str, str]) -> Optional[bool]:
    """WSL 1 and 2 both say 'microsoft' in the kernel version; WSL sets WSL_DISTRO_NAME.

    None when the kernel version could not be read and the environment does not say.
    """
    if environ.get("WSL_DISTRO_NAME") or environ.get("WSL_INTEROP"):
        return True
    if proc_version is None:
        return None
    return "microsoft" in proc_version.lower()


def in_container(root: str = "/", environ: Optional[Mapping[str, str]] = None) -> tuple[Optional[bool], Optional[str]]:
    """``(answer, why unknown)`` from the files container runtimes leave behind.

    False when the cgroup and mount tables were readable and named no runtime (a cgroup v2 container
    that hides them reads as False: the best evidence there is).
    """
    env = os.environ if environ is None else environ
    r = Path(root)
    if (r / ".dockerenv").exists() or (r / "run" / ".containerenv").exists():
        return True, None
    if env.get("container") or env.get("KUBERNETES_SERVICE_HOST"):  # podman, systemd-nspawn, lxc; k8s
        return True, None
    read_any = False
    whys = []
    for rel in ("proc/1/cgroup", "proc/self/mountinfo"):
        text, why = _read(str(r / rel))
        if text is None:
            whys.append(str(why))
            continue
        read_any = True
        if any(m in text for m in _CONTAINER_MARKERS):
            return True, None
    if not read_any:
        return None, "; ".join(whys)
    return False, None


def probe_platform(errors: Optional[list[ProbeError]] = None, root: str = "/") -> PlatformFacts:
    """``root``: where the Linux files (``etc/os-release``, ``proc/version``) are read, for tests."""
    r = Path(root)
    system = platform.system() or None
    facts = PlatformFacts(system=system, release=platform.release() or None, machine=platform.machine() or None)
    if system is None:
        _note(errors, "platform.system", "platform.system() returned nothing")
    if system == "Linux":
        text, why = _read(str(r / "etc" / "os-release"))
        if text is None:
            text, why2 = _read(str(r / "usr" / "lib" / "os-release"))  # os-release(5): the fallback
            if text is None:
                why = f"{why}; {why2}"
        facts.distro = os_release_name(text) if text is not None else None
        if facts.distro is None:
            _note(errors, "platform.distro", str(why) if text is None else "os-release names no distribution")
        proc_version, why = _read(str(r / "proc" / "version"))
        facts.is_wsl = is_wsl(proc_version, os.environ)
        if facts.is_wsl is None:
            _note(errors, "platform.is_wsl", str(why))
        facts.in_container, why = in_container(root)
        if facts.in_container is None:
            _note(errors, "platform.in_container", str(why))
        lib, ver = platform.libc_ver()
        facts.libc = f"{lib} {ver}".strip() or None
        if facts.libc is None:
            _note(errors, "platform.libc", "platform.libc_ver() did not recognise the C library (not glibc?)")
    elif system == "Windows":
        facts.distro = f"Windows {platform.version()}".strip()
        facts.is_wsl = False
        _note(errors, "platform.in_container", "container detection is implemented for Linux only")
    elif system == "Darwin":
        mac = platform.mac_ver()[0]
        facts.distro = f"macOS {mac}" if mac else None
        if facts.distro is None:
            _note(errors, "platform.distro", "platform.mac_ver() returned no version")
        facts.is_wsl = False
        _note(errors, "platform.in_container", "container detection is implemented for Linux only")
    return facts


def probe_python() -> PythonFacts:
    return PythonFacts(
        version=platform.python_version() or None,
        implementation=platform.python_implementation() or None,
        executable=sys.executable or None,
        bits=struct.calcsize("P") * 8,
    )


def probe_env(environ: Optional[Mapping[str, str]] = None) -> dict[str, Optional[str]]:
    """Every name in :data:`RELEVANT_ENV_VARS`; None when unset."""
    env = os.environ if environ is None else environ
    return {name: env.get(name) for name in RELEVANT_ENV_VARS}
