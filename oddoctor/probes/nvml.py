"""GPU facts through NVML (nvidia-ml-py). NVML missing or failing is a fact, never an exception.

``gpus`` is None when NVML could not be used or could not count the GPUs, ``[]`` when it counted none.
A GPU's ``processes`` is None when its compute processes could not be listed.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from typing import Any, Callable, Optional

from oddoctor.snapshot import GpuFacts, GpuProcess, NvmlFacts, ProbeError

#: NVML_VALUE_NOT_AVAILABLE: what usedGpuMemory holds where the driver cannot tell (WDDM, no permission).
_NOT_AVAILABLE = 2**64 - 1
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
NAME_MAX = 120


def _err(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}"


def _text(v: Any) -> str:
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)


def one_line(text: str) -> str:
    """``text`` on one line: control characters (newlines included) become spaces, runs of spaces one."""
    return " ".join(_CONTROL.sub(" ", text).split())


def probe_nvml(errors: Optional[list[ProbeError]] = None) -> NvmlFacts:
    """Never raises. Field failures go to ``error``/``GpuFacts.errors``, and to ``errors`` by fact name."""
    try:
        import pynvml
    except Exception as e:  # noqa: BLE001 - a missing binding is a fact
        return _unavailable(f"nvidia-ml-py not importable: {_err(e)}", errors)
    try:
        pynvml.nvmlInit()
    except Exception as e:  # noqa: BLE001 - NVMLError_LibraryNotFound, _DriverNotLoaded, ...
        return _unavailable(_err(e), errors)
    try:
        return _collect(pynvml, errors)
    except Exception as e:  # noqa: BLE001 - a binding that misbehaves (wrong types) is still not a crash
        return _unavailable(f"NVML answered unexpectedly: {_err(e)}", errors)
    finally:
        with contextlib.suppress(Exception):  # nothing to do about a failed shutdown
            pynvml.nvmlShutdown()


def _unavailable(error: str, errors: Optional[list[ProbeError]]) -> NvmlFacts:
    if errors is not None:
        errors.append(ProbeError(fact="nvml", error=error))
    return NvmlFacts(available=False, error=error)


def _collect(nv: Any, sink: Optional[list[ProbeError]]) -> NvmlFacts:
    facts = NvmlFacts(available=True, library=_loaded_library())
    errors: list[str] = []

    def safe(what: str, fn: str, *args: Any, fact: Optional[str] = None) -> Any:
        """``nv.<fn>(*args)``, or None with the failure recorded (a missing function included)."""
        try:
            return getattr(nv, fn)(*args)
        except Exception as e:  # noqa: BLE001 - per-field failure must not kill the report
            errors.append(f"could not collect {what}: {_err(e)}")
            if fact and sink is not None:
                sink.append(ProbeError(fact=fact, error=_err(e)))
            return None

    drv = safe("driver version", "nvmlSystemGetDriverVersion", fact="nvml.driver_version")
    facts.driver_version = _text(drv) if drv is not None else None
    cuda = safe("CUDA driver version", "nvmlSystemGetCudaDriverVersion", fact="nvml.cuda_driver_version")
    if isinstance(cuda, int) and cuda > 0:  # 12020 -> "12.2"
        facts.cuda_driver_version = f"{cuda // 1000}.{(cuda % 1000) // 10}"
    count = safe("device count", "nvmlDeviceGetCount", fact="nvml.gpus")
    if isinstance(count, int):
        facts.gpus = [_gpu(nv, i, safe, errors) for i in range(count)]
    if errors:
        facts.error = "; ".join(errors)
    return facts


def _gpu(nv: Any, i: int, safe: Callable[..., Any], errors: list[str]) -> GpuFacts:
    """One GPU; its field failures move from ``errors`` to the GPU's own ``errors``."""
    before = len(errors)
    g = GpuFacts(index=i)
    handle = safe(f"GPU {i} handle", "nvmlDeviceGetHandleByIndex", i)
    if handle is not None:
        name = safe(f"GPU {i} name", "nvmlDeviceGetName", handle)
        g.name = _text(name) if name is not None else None
        uuid = safe(f"GPU {i} UUID", "nvmlDeviceGetUUID", handle)
        g.uuid = _text(uuid) if uuid is not None else None
        pci = safe(f"GPU {i} PCI info", "nvmlDeviceGetPciInfo", handle)
        bus_id = getattr(pci, "busId", None)
        g.pci_bus_id = _text(bus_id) if bus_id else None
        cc = safe(f"GPU {i} compute capability", "nvmlDeviceGetCudaComputeCapability", handle)
        if cc:
            g.compute_capability = f"{cc[0]}.{cc[1]}"
        mem = safe(f"GPU {i} memory", "nvmlDeviceGetMemoryInfo", handle)
        if mem is not None:
            g.memory_total_bytes, g.memory_used_bytes, g.memory_free_bytes = (
                int(mem.total), int(mem.used), int(mem.free))
        g.processes = _processes(nv, handle, i, safe)
    g.errors = errors[before:]
    del errors[before:]
    return g


def _processes(nv: Any, handle: Any, i: int, safe: Callable[..., Any]) -> Optional[list[GpuProcess]]:
    """Compute then graphics processes, each pid once; None when the compute processes cannot be listed.

    A graphics listing that fails is recorded and leaves the compute processes standing.
    """
    compute = safe(f"GPU {i} compute processes", "nvmlDeviceGetComputeRunningProcesses", handle)
    graphics = safe(f"GPU {i} graphics processes", "nvmlDeviceGetGraphicsRunningProcesses", handle)
    if compute is None:
        return None
    out: dict[int, GpuProcess] = {}
    for kind, procs in (("compute", compute), ("graphics", graphics or [])):
        for p in procs:
            pid = int(p.pid)
            if pid in out:
                continue
            used = getattr(p, "usedGpuMemory", None)
            out[pid] = GpuProcess(pid=pid, name=_process_name(nv, pid), kind=kind,
                                  used_bytes=used if isinstance(used, int) and 0 <= used < _NOT_AVAILABLE else None)
    return list(out.values())


def _process_name(nv: Any, pid: int) -> Optional[str]:
    """The first words of its command line, one line; None when nobody can tell (another pid namespace)."""
    if pid == os.getpid():
        return "oddoctor"
    name: Optional[str] = None
    try:
        import psutil

        proc = psutil.Process(pid)
        try:
            name = " ".join(proc.cmdline()[:3])
        except Exception:  # noqa: BLE001 - AccessDenied for another user's command line: its name still shows
            name = None
        name = name or proc.name()
    except Exception:  # noqa: BLE001 - inside containers NVML pids are host pids; psutil may be absent
        with contextlib.suppress(Exception):
            name = _text(nv.nvmlSystemGetProcessName(pid))
    name = one_line(name or "")[:NAME_MAX]
    return name or None


def _loaded_library() -> Optional[str]:
    """Path of the libnvidia-ml this process mapped (Linux), where it can be told."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as f:
            for line in f:
                if "libnvidia-ml.so" in line:
                    return line.split(None, 5)[-1].strip()
    except OSError:
        pass
    return None
