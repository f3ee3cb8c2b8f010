"""What the kernel sees, read from fake /sys, /dev and /proc trees."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from oddoctor.probes.hardware import module_version, probe_hardware
from oddoctor.snapshot import PciDevice, ProbeError

posix_only = pytest.mark.skipif(os.name != "posix", reason="symbolic links")

NVRM = ("NVRM version: NVIDIA UNIX x86_64 Kernel Module  580.95.05  Tue Sep 23 09:59:25 UTC 2025\n"
        "GCC version:  gcc version 12.2.0 (Debian 12.2.0-14)\n")


def _pci(sys_root: Path, slot: str, vendor: str, klass: str, device: str, driver: str | None = None) -> None:
    d = sys_root / "bus" / "pci" / "devices" / slot
    d.mkdir(parents=True)
    (d / "vendor").write_text(vendor + "\n")
    (d / "class").write_text(klass + "\n")
    (d / "device").write_text(device + "\n")
    if driver:
        target = sys_root / "bus" / "pci" / "drivers" / driver
        target.mkdir(parents=True, exist_ok=True)
        (d / "driver").symlink_to(os.path.relpath(target, d))


@pytest.fixture
def machine(tmp_path: Path) -> dict[str, str]:
    sys_root, dev, proc = tmp_path / "sys", tmp_path / "dev", tmp_path / "proc"
    _pci(sys_root, "0000:01:00.0", "0x10de", "0x030200", "0x2330", driver="nvidia")  # H100, 3D controller
    _pci(sys_root, "0000:02:00.0", "0x10de", "0x030000", "0x2204")  # RTX 3090 (VGA), no driver bound
    _pci(sys_root, "0000:02:00.1", "0x10de", "0x040300", "0x1aef", driver="snd_hda_intel")  # its HDMI audio
    _pci(sys_root, "0000:00:02.0", "0x8086", "0x030000", "0x3e92", driver="i915")  # Intel graphics
    dev.mkdir()
    for n in ("nvidia0", "nvidiactl", "nvidia-uvm", "null", "dxg"):
        (dev / n).write_text("")
    (proc / "self").mkdir(parents=True)
    (proc / "driver" / "nvidia").mkdir(parents=True)
    (proc / "driver" / "nvidia" / "version").write_text(NVRM)
    return {"sys_root": str(sys_root), "dev_root": str(dev), "proc_root": str(proc)}


@posix_only
def test_nvidia_gpus_on_the_pci_bus_nodes_and_module(machine):
    errors: list[ProbeError] = []
    hw = probe_hardware(**machine, errors=errors, linux=True)
    assert hw.pci_nvidia == [
        PciDevice(slot="0000:01:00.0", device_id="0x2330", klass="0x030200", driver="nvidia"),
        PciDevice(slot="0000:02:00.0", device_id="0x2204", klass="0x030000", driver=None),
    ]
    dev = machine["dev_root"]
    assert hw.dev_nvidia == [f"{dev}/nvidia-uvm", f"{dev}/nvidia0", f"{dev}/nvidiactl", f"{dev}/dxg"]
    assert hw.nvidia_module == "580.95.05"
    assert errors == []


def test_no_sys_is_unknown_with_a_reason(tmp_path: Path):
    errors: list[ProbeError] = []
    hw = probe_hardware(sys_root=str(tmp_path / "nosys"), dev_root=str(tmp_path), proc_root=str(tmp_path),
                        errors=errors, linux=True)
    assert hw.pci_nvidia is None
    [e] = [e for e in errors if e.fact == "hardware.pci_nvidia"]
    assert "nosys" in e.error


def test_nothing_nvidia_is_empty_and_no_module_is_none_without_error(tmp_path: Path):
    (tmp_path / "sys" / "bus" / "pci" / "devices").mkdir(parents=True)
    (tmp_path / "dev").mkdir()
    (tmp_path / "proc" / "self").mkdir(parents=True)
    errors: list[ProbeError] = []
    hw = probe_hardware(str(tmp_path / "sys"), str(tmp_path / "dev"), str(tmp_path / "proc"), errors=errors,
                        linux=True)
    assert hw.pci_nvidia == [] and hw.dev_nvidia == [] and hw.nvidia_module is None
    assert errors == []  # nvidia_module None without a ProbeError: no module loaded


def test_unmounted_proc_and_missing_dev_are_unknown(tmp_path: Path):
    (tmp_path / "proc").mkdir()
    errors: list[ProbeError] = []
    hw = probe_hardware(str(tmp_path / "sys"), str(tmp_path / "nodev"), str(tmp_path / "proc"), errors=errors,
                        linux=True)
    assert hw.dev_nvidia is None and hw.nvidia_module is None
    assert {e.fact for e in errors} == {"hardware.pci_nvidia", "hardware.dev_nvidia", "hardware.nvidia_module"}


def test_off_linux_only_sysfs_is_tried(machine):
    errors: list[ProbeError] = []
    hw = probe_hardware(**machine, errors=errors, linux=False)
    assert hw.pci_nvidia is not None  # a readable sysfs is read wherever it is
    assert hw.dev_nvidia is None and hw.nvidia_module is None
    assert {e.fact for e in errors} == {"hardware.dev_nvidia", "hardware.nvidia_module"}


def test_module_version_lines():
    assert module_version(NVRM) == "580.95.05"
    assert module_version("NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  535.104.05  Release Build  "
                          "(dvs-builder@U16-I3-B03-4-3)  Thu Aug 10 22:23:23 UTC 2023\n") == "535.104.05"
    assert module_version("NVRM version: NVIDIA UNIX Kernel Module for aarch64  540.4.0  Release Build\n") == "540.4.0"
    assert module_version("garbage") is None


def test_unparseable_version_file_is_unknown(tmp_path: Path):
    (tmp_path / "driver" / "nvidia").mkdir(parents=True)
    (tmp_path / "driver" / "nvidia" / "version").write_text("something else\n")
    errors: list[ProbeError] = []
    hw = probe_hardware(str(tmp_path), str(tmp_path), str(tmp_path), errors=errors, linux=True)
    assert hw.nvidia_module is None
    [e] = [e for e in errors if e.fact == "hardware.nvidia_module"]
    assert "something else" in e.error
