"""GPU facts through NVML (nvidia-ml-py). NVML missing or failing is a fact, never an exception."""

from __future__ import annotations

import contextlib
import os
from functools import partial
from typing import Any, Callable

from oddoctor.snapshot import GpuFacts, GpuProcess, NvmlFacts


def _err(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}"


def _text(v: Any) -> str:
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)


def probe_nvml() -> NvmlFacts:
    try:
        import pynvml
    except Exception as e:  # noqa: BLE001 - a missing binding is a fact
        return NvmlFacts(available=False, error=f"nvidia-ml-py not importable: {_err(e)}")
    try:
        pynvml.nvmlInit()
    except Exception as e:  # noqa: BLE001 - NVMLError_LibraryNotFound, _DriverNotLoaded, ...
        return NvmlFacts(available=False, error=_err(e))
    try:
        return _collect(pynvml)
    finally:
        with contextlib.suppress(Exception):  # nothing to do about a failed shutdown
            pynvml.nvmlShutdown()


def _collect(nv: Any) -> NvmlFacts:
    facts = NvmlFacts(available=True)
    errors: list[str] = []

    def safe(what: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except Exception as e:  # noqa: BLE001 - per-field failure must not kill the report
            errors.append(f"could not collect {what}: {_err(e)}")
            return None

    drv = safe("driver version", nv.nvmlSystemGetDriverVersion)
    facts.driver_version = _text(drv) if drv is not None else None
    cuda = safe("CUDA driver version", nv.nvmlSystemGetCudaDriverVersion)
    if isinstance(cuda, int) and cuda > 0:  # 12020 -> "12.2"
        facts.cuda_driver_version = f"{cuda // 1000}.{(cuda % 1000) // 10}"
    count = safe("device count", nv.nvmlDeviceGetCount) or 0
    for i in range(count):
        errors_gpu: list[str] = []
        handle = safe(f"GPU {i} handle", partial(nv.nvmlDeviceGetHandleByIndex, i))
        if handle is None:
            facts.gpus.append(GpuFacts(index=i, errors=list(errors)))
            continue
        g = GpuFacts(index=i)
        before = len(errors)
        name = safe(f"GPU {i} name", partial(nv.nvmlDeviceGetName, handle))
        g.name = _text(name) if name is not None else ""
        uuid = safe(f"GPU {i} UUID", partial(nv.nvmlDeviceGetUUID, handle))
        g.uuid = _text(uuid) if uuid is not None else ""
        cc = safe(f"GPU {i} compute capability", partial(nv.nvmlDeviceGetCudaComputeCapability, handle))
        if cc:
            g.compute_capability = f"{cc[0]}.{cc[1]}"
        mem = safe(f"GPU {i} memory", partial(nv.nvmlDeviceGetMemoryInfo, handle))
        if mem is not None:
            g.memory_total_bytes, g.memory_used_bytes, g.memory_free_bytes = (
                int(mem.total), int(mem.used), int(mem.free))
        procs = safe(f"GPU {i} processes", partial(nv.nvmlDeviceGetComputeRunningProcesses, handle))
        for p in procs or []:
            used = getattr(p, "usedGpuMemory", None)
            g.processes.append(GpuProcess(pid=int(p.pid), name=_process_name(int(p.pid)),
                                          used_bytes=int(used) if isinstance(used, int) else None))
        errors_gpu = errors[before:]
        del errors[before:]
        g.errors = errors_gpu
        facts.gpus.append(g)
    if errors:
        facts.error = "; ".join(errors)
    return facts


def _process_name(pid: int) -> str:
    try:
        import psutil

        return " ".join(psutil.Process(pid).cmdline()[:3])[:120] or psutil.Process(pid).name()
    except Exception:  # noqa: BLE001 - inside containers NVML pids are host pids
        return "" if pid != os.getpid() else "oddoctor"
