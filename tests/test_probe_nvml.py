"""NVML through a fake ``pynvml`` module: missing NVML, broken fields and odd processes are facts."""

from __future__ import annotations

import sys
import types

import pytest

from oddoctor.probes import nvml
from oddoctor.snapshot import ProbeError

GiB = 1024**3
NOT_AVAILABLE = 2**64 - 1  # NVML_VALUE_NOT_AVAILABLE


class NVMLError_NotSupported(Exception):  # pynvml's own spelling
    pass


def _fail(msg: str):
    def fn(*_a):
        raise NVMLError_NotSupported(msg)

    return fn


@pytest.fixture
def fake(monkeypatch) -> types.ModuleType:
    """A healthy one-GPU pynvml; tests break the parts they are about."""
    m = types.ModuleType("pynvml")
    m.nvmlInit = lambda: None
    m.nvmlShutdown = lambda: None
    m.nvmlSystemGetDriverVersion = lambda: b"470.82.01"
    m.nvmlSystemGetCudaDriverVersion = lambda: 11040
    m.nvmlDeviceGetCount = lambda: 1
    m.nvmlDeviceGetHandleByIndex = lambda i: object()
    m.nvmlDeviceGetName = lambda h: "Tesla T4"
    m.nvmlDeviceGetUUID = lambda h: "GPU-1234"
    m.nvmlDeviceGetPciInfo = lambda h: types.SimpleNamespace(busId=b"00000000:3B:00.0")
    m.nvmlDeviceGetCudaComputeCapability = lambda h: (7, 5)
    m.nvmlDeviceGetMemoryInfo = lambda h: types.SimpleNamespace(total=16 * GiB, used=2 * GiB, free=14 * GiB)
    m.nvmlDeviceGetComputeRunningProcesses = lambda h: [types.SimpleNamespace(pid=4242, usedGpuMemory=GiB)]
    m.nvmlDeviceGetGraphicsRunningProcesses = lambda h: []
    m.nvmlSystemGetProcessName = lambda pid: b"/usr/bin/python3"
    monkeypatch.setitem(sys.modules, "pynvml", m)
    monkeypatch.setitem(sys.modules, "psutil", None)  # names come from NVML unless a test fakes psutil
    return m


def test_nvml_missing_is_a_fact_and_gpus_are_unknown(fake):
    def init():
        raise type("NVMLError_LibraryNotFound", (Exception,), {})("NVML Shared Library Not Found")

    fake.nvmlInit = init
    errors: list[ProbeError] = []
    facts = nvml.probe_nvml(errors=errors)
    assert facts.available is False and facts.gpus is None
    assert facts.error == "NVMLError_LibraryNotFound: NVML Shared Library Not Found"
    assert errors == [ProbeError("nvml", facts.error)]


def test_binding_not_installed_is_a_fact(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml raises ImportError
    facts = nvml.probe_nvml()
    assert facts.available is False and facts.gpus is None
    assert facts.error.startswith("nvidia-ml-py not importable: ")


def test_field_failure_keeps_the_rest(fake):
    fake.nvmlDeviceGetCudaComputeCapability = _fail("Function Not Found")
    facts = nvml.probe_nvml()
    assert facts.available and facts.driver_version == "470.82.01" and facts.cuda_driver_version == "11.4"
    [g] = facts.gpus
    assert g.name == "Tesla T4" and g.compute_capability is None and g.pci_bus_id == "00000000:3B:00.0"
    assert g.memory_free_bytes == 14 * GiB
    assert g.processes[0].pid == 4242 and g.processes[0].used_bytes == GiB and g.processes[0].kind == "compute"
    assert g.errors == ["could not collect GPU 0 compute capability: NVMLError_NotSupported: Function Not Found"]


def test_a_function_the_binding_lacks_is_a_field_failure(fake):
    del fake.nvmlDeviceGetPciInfo  # an old nvidia-ml-py
    [g] = nvml.probe_nvml().gpus
    assert g.pci_bus_id is None and g.name == "Tesla T4"
    assert g.errors[0].startswith("could not collect GPU 0 PCI info: AttributeError")


def test_no_gpus_is_an_empty_list_and_a_failed_count_is_unknown(fake):
    fake.nvmlDeviceGetCount = lambda: 0
    assert nvml.probe_nvml().gpus == []
    fake.nvmlDeviceGetCount = _fail("Unknown Error")
    errors: list[ProbeError] = []
    facts = nvml.probe_nvml(errors=errors)
    assert facts.available is True and facts.gpus is None
    assert errors == [ProbeError("nvml.gpus", "NVMLError_NotSupported: Unknown Error")]


def test_compute_and_graphics_processes_once_each(fake):
    fake.nvmlDeviceGetComputeRunningProcesses = lambda h: [types.SimpleNamespace(pid=10, usedGpuMemory=GiB),
                                                           types.SimpleNamespace(pid=11, usedGpuMemory=None)]
    fake.nvmlDeviceGetGraphicsRunningProcesses = lambda h: [
        types.SimpleNamespace(pid=11, usedGpuMemory=NOT_AVAILABLE),  # also a compute process: listed once
        types.SimpleNamespace(pid=12, usedGpuMemory=NOT_AVAILABLE),  # Xorg under WDDM: no figure
    ]
    [g] = nvml.probe_nvml().gpus
    assert [(p.pid, p.kind, p.used_bytes) for p in g.processes] == [
        (10, "compute", GiB), (11, "compute", None), (12, "graphics", None)]
    assert g.processes[0].name == "/usr/bin/python3"


def test_processes_unknown_when_listing_fails(fake):
    fake.nvmlDeviceGetComputeRunningProcesses = _fail("Insufficient Permissions")
    [g] = nvml.probe_nvml().gpus
    assert g.processes is None
    assert g.errors == ["could not collect GPU 0 compute processes: NVMLError_NotSupported: Insufficient Permissions"]


def test_graphics_listing_failure_keeps_the_compute_processes(fake):
    fake.nvmlDeviceGetGraphicsRunningProcesses = _fail("Not Supported")
    [g] = nvml.probe_nvml().gpus
    assert [p.pid for p in g.processes] == [4242]
    assert g.errors == ["could not collect GPU 0 graphics processes: NVMLError_NotSupported: Not Supported"]


def test_process_names_are_one_line(fake, monkeypatch):
    psutil = types.ModuleType("psutil")

    class Process:
        def __init__(self, pid):
            self.pid = pid

        def cmdline(self):
            return ["python", "train.py\n  --fake-line\r\x1b[31mred", "--epochs"]

        def name(self):
            return "python"

    psutil.Process = Process
    monkeypatch.setitem(sys.modules, "psutil", psutil)
    [g] = nvml.probe_nvml().gpus
    name = g.processes[0].name
    assert name == "python train.py --fake-line [31mred --epochs"
    assert "\n" not in name and "\r" not in name and "\x1b" not in name


def test_process_name_from_nvml_is_one_line_too(fake):
    fake.nvmlSystemGetProcessName = lambda pid: b"evil\nname"
    [g] = nvml.probe_nvml().gpus
    assert g.processes[0].name == "evil name"


def test_process_name_unknown_is_none(fake):
    fake.nvmlSystemGetProcessName = _fail("Not Found")
    [g] = nvml.probe_nvml().gpus
    assert g.processes[0].name is None


def test_one_line():
    assert nvml.one_line("a\nb\u2028c\x00d\t e ") == "a b c d e"
