"""Probes never raise: missing NVML, broken NVML fields and unloadable libraries are facts."""

from __future__ import annotations

import sys
import types
from pathlib import Path

from oddoctor.probes import cudalibs, nvml
from oddoctor.probes.system import is_wsl


def test_nvml_missing_is_a_fact_not_an_exception(monkeypatch):
    fake = types.ModuleType("pynvml")

    class NVMLError_LibraryNotFound(Exception):
        pass

    def init():
        raise NVMLError_LibraryNotFound("NVML Shared Library Not Found")

    fake.nvmlInit = init
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    facts = nvml.probe_nvml()
    assert facts.available is False
    assert facts.error == "NVMLError_LibraryNotFound: NVML Shared Library Not Found"


def test_nvml_field_failure_keeps_the_rest(monkeypatch):
    fake = types.ModuleType("pynvml")
    mem = types.SimpleNamespace(total=16 * 1024**3, used=2 * 1024**3, free=14 * 1024**3)
    proc = types.SimpleNamespace(pid=4242, usedGpuMemory=1024**3)
    fake.nvmlInit = lambda: None
    fake.nvmlShutdown = lambda: None
    fake.nvmlSystemGetDriverVersion = lambda: b"470.82.01"
    fake.nvmlSystemGetCudaDriverVersion = lambda: 11040
    fake.nvmlDeviceGetCount = lambda: 1
    fake.nvmlDeviceGetHandleByIndex = lambda i: object()
    fake.nvmlDeviceGetName = lambda h: "Tesla T4"
    fake.nvmlDeviceGetUUID = lambda h: "GPU-1234"

    def no_cc(h):
        raise RuntimeError("Function Not Found")

    fake.nvmlDeviceGetCudaComputeCapability = no_cc
    fake.nvmlDeviceGetMemoryInfo = lambda h: mem
    fake.nvmlDeviceGetComputeRunningProcesses = lambda h: [proc]
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    facts = nvml.probe_nvml()
    assert facts.available and facts.driver_version == "470.82.01" and facts.cuda_driver_version == "11.4"
    [g] = facts.gpus
    assert g.name == "Tesla T4" and g.compute_capability is None
    assert g.memory_free_bytes == 14 * 1024**3
    assert g.processes[0].pid == 4242 and g.processes[0].used_bytes == 1024**3
    assert g.errors == ["could not collect GPU 0 compute capability: RuntimeError: Function Not Found"]


def test_library_search_follows_loader_order_and_reports_unloadable_files(tmp_path: Path):
    ld = tmp_path / "ld"
    ld.mkdir()
    (ld / "libcudart.so.11.0").write_text("not a library")
    home = tmp_path / "cuda"
    (home / "lib64").mkdir(parents=True)
    (home / "lib64" / "libcudnn.so.8").write_text("not a library")
    (home / "lib64" / "libcudnn_ops_infer.so.8").write_text("a sub-library, not the one we read")
    dirs = cudalibs.search_dirs({"LD_LIBRARY_PATH": str(ld), "CUDA_HOME": str(home)})
    assert dirs[0] == (str(ld), "ld_library_path")
    assert (str(home / "lib64"), "cuda_home") in dirs
    found = cudalibs.find_libs([d for d in dirs if d[1] in ("ld_library_path", "cuda_home")])
    [rt] = found["cudart"]
    assert rt.source == "ld_library_path" and rt.version == "11.0"
    [dnn] = found["cudnn"]
    assert dnn.path.endswith("libcudnn.so.8") and dnn.source == "cuda_home"
    cudalibs.read_versions([rt, dnn], timeout_s=30)
    assert rt.loadable is False and rt.error.startswith("cannot load")
    assert dnn.loadable is False


def test_wsl_detection():
    assert is_wsl("Linux version 5.15.153.1-microsoft-standard-WSL2", {})
    assert is_wsl("Linux version 6.1.0", {"WSL_DISTRO_NAME": "Ubuntu"})
    assert not is_wsl("Linux version 6.1.0-18-amd64 (debian-kernel@lists.debian.org)", {})
