"""What the Linux kernel sees of NVIDIA hardware, whatever the driver says.

PCI devices from sysfs, device nodes under /dev, the loaded kernel module's version from /proc. These
are the evidence that a GPU exists when NVML cannot say (driver not loaded, library missing, container
without the GPU passed through). Root paths are parameters so tests read a fake tree.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Optional

from oddoctor.snapshot import HardwareFacts, PciDevice, ProbeError

NVIDIA_VENDOR = "0x10de"
#: PCI class prefixes of display controllers NVIDIA GPUs show up as: VGA (0x0300) and 3D (0x0302).
GPU_CLASSES = ("0x0300", "0x0302")

_MODULE_VERSION = re.compile(r"NVRM version:.*?\s(\d+\.\d+(?:\.\d+)*)(?:\s|$)")


def _note(errors: Optional[list[ProbeError]], fact: str, error: str) -> None:
    if errors is not None:
        errors.append(ProbeError(fact=fact, error=error))


def _read_attr(path: Path) -> Optional[str]:
    try:
        return path.read_text(encoding="ascii", errors="replace").strip().lower()
    except OSError:
        return None


def pci_nvidia(sys_root: str = "/sys") -> tuple[Optional[list[PciDevice]], Optional[str]]:
    """``(devices, why unknown)``: NVIDIA VGA/3D controllers on the PCI bus, in slot order."""
    base = Path(sys_root) / "bus" / "pci" / "devices"
    try:
        slots = sorted(os.listdir(base))
    except OSError as e:
        hint = "" if sys.platform.startswith("linux") else f" (sysfs is Linux only; this is {sys.platform})"
        return None, f"cannot list {base}: {e.strerror or e}{hint}"
    devices: list[PciDevice] = []
    for slot in slots:
        d = base / slot
        klass = _read_attr(d / "class")
        if _read_attr(d / "vendor") != NVIDIA_VENDOR or not klass or not klass.startswith(GPU_CLASSES):
            continue  # an unreadable vendor/class cannot be told to be an NVIDIA GPU
        link = d / "driver"
        driver = os.path.basename(os.path.realpath(link)) if os.path.lexists(link) else None
        devices.append(PciDevice(slot=slot, device_id=_read_attr(d / "device"), klass=klass, driver=driver))
    return devices, None


def dev_nvidia(dev_root: str = "/dev") -> tuple[Optional[list[str]], Optional[str]]:
    """``(nodes, why unknown)``: /dev/nvidia* (nvidia0, nvidiactl, nvidia-uvm, ...) and /dev/dxg (WSL2)."""
    base = Path(dev_root)
    try:
        names = os.listdir(base)
    except OSError as e:
        return None, f"cannot list {base}: {e.strerror or e}"
    nodes = sorted(str(base / n) for n in names if n.startswith("nvidia"))
    return nodes + ([str(base / "dxg")] if "dxg" in names else []), None


def module_version(text: str) -> Optional[str]:
    """The driver version in /proc/driver/nvidia/version's ``NVRM version:`` line."""
    m = _MODULE_VERSION.search(text)
    return m.group(1) if m else None


def nvidia_module(proc_root: str = "/proc") -> tuple[Optional[str], Optional[str]]:
    """``(version, why unknown)``; ``(None, None)`` when no nvidia module is loaded (no version file)."""
    path = Path(proc_root) / "driver" / "nvidia" / "version"
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        if Path(proc_root, "self").exists() or Path(proc_root, "driver").exists():
            return None, None  # /proc is there and the module has not registered itself: not loaded
        return None, f"cannot read {path}: /proc is not mounted"
    except OSError as e:
        return None, f"cannot read {path}: {e.strerror or e}"
    version = module_version(text)
    if version is None:
        first = text.strip().splitlines()[0] if text.strip() else "(empty)"
        return None, f"no driver version in {path}: {first[:200]}"
    return version, None


def probe_hardware(sys_root: str = "/sys", dev_root: str = "/dev", proc_root: str = "/proc",
                   errors: Optional[list[ProbeError]] = None, linux: Optional[bool] = None) -> HardwareFacts:
    """Never raises. ``linux``: whether to read the device nodes and /proc (default: this platform is Linux).

    ``nvidia_module`` None without a ProbeError means no nvidia kernel module is loaded.
    """
    if linux is None:
        linux = sys.platform.startswith("linux")
    facts = HardwareFacts()
    facts.pci_nvidia, why = pci_nvidia(sys_root)
    if why:
        _note(errors, "hardware.pci_nvidia", why)
    if not linux:
        why = f"looked for on Linux only; this is {sys.platform}"
        _note(errors, "hardware.dev_nvidia", f"device nodes are {why}")
        _note(errors, "hardware.nvidia_module", f"the kernel module is {why}")
        return facts
    facts.dev_nvidia, why = dev_nvidia(dev_root)
    if why:
        _note(errors, "hardware.dev_nvidia", why)
    facts.nvidia_module, why = nvidia_module(proc_root)
    if why:
        _note(errors, "hardware.nvidia_module", why)
    return facts
