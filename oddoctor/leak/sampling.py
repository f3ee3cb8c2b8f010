"""Per-iteration memory samples that need no TensorFlow: host RSS (psutil), NVML per-process VRAM, glibc's
``malloc_trim`` to read the RSS without the pages the allocator keeps after a free, and glibc's ``mallinfo2``
for the bytes malloc has handed out.

Every probe may be unavailable (no GPU, no driver, a container whose NVML reports host PIDs): it
then returns ``None`` and says why once, in ``reason``, instead of raising.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from typing import Any, Optional


def rss_bytes(pid: Optional[int] = None) -> Optional[int]:
    """Resident set size of ``pid`` (default: this process), or None if psutil cannot tell."""
    try:
        import psutil

        return int(psutil.Process(pid or os.getpid()).memory_info().rss)
    except Exception:  # noqa: BLE001 - a missing psutil or a vanished pid is "unknown", not a crash
        return None


#: Environment variables that change how the C library's allocator holds memory, and so the RSS a loop shows.
_ALLOCATOR_ENV_PREFIXES = ("MALLOC_",)  # glibc's MALLOC_ARENA_MAX, MALLOC_TRIM_THRESHOLD_, MALLOC_MMAP_THRESHOLD_, ...


def allocator_env(environ: Optional[Mapping[str, str]] = None) -> dict[str, str]:
    """The allocator settings in ``environ`` (default: this process's): glibc's ``MALLOC_*`` variables,
    ``GLIBC_TUNABLES`` and an ``LD_PRELOAD`` that names an allocator (tcmalloc, jemalloc, mimalloc). Each
    changes the steps and creep of the RSS (docs/benchmarks.md, "glibc's allocator settings"), so a report
    names them; empty when none is set."""
    env = os.environ if environ is None else environ
    out = {k: v for k, v in env.items() if k.startswith(_ALLOCATOR_ENV_PREFIXES) or k == "GLIBC_TUNABLES"}
    preload = env.get("LD_PRELOAD", "")
    if "malloc" in preload:
        out["LD_PRELOAD"] = preload
    return dict(sorted(out.items()))


def _libc() -> Any:
    """The C library, through ctypes (OSError where it cannot be loaded)."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    return ctypes.CDLL(name) if name else ctypes.CDLL(None)


def _libc_function(name: str, argtypes: list[Any], restype: Any) -> tuple[Any, Optional[str]]:
    """``(function, None)``, or ``(None, "ErrorType: message")`` where the C library cannot be loaded or has no
    ``name`` (musl, macOS, Windows, an older glibc)."""
    try:
        fn = getattr(_libc(), name)
    except (OSError, AttributeError) as e:
        return None, f"{type(e).__name__}: {e}"
    fn.argtypes = argtypes
    fn.restype = restype
    return fn, None


class HeapTrimmer:
    """glibc's ``malloc_trim(0)``: hand the free pages of every malloc arena back to the OS before the RSS
    is read, so that the RSS counts what the process still holds, not what its allocator keeps for later.

    Without it the RSS of a loop that frees as much as it allocates moves in chunks of tens to hundreds of
    MiB (an arena that keeps what a closed Session freed, then gives it back), and a 6-image trend cannot
    tell a 0.25 MiB/image leak from that (docs/leak-test.md). Elsewhere than on glibc (musl, macOS,
    Windows) there is no ``malloc_trim``: ``available`` is False and ``reason`` says why; the RSS is then
    read as it is.
    """

    def __init__(self) -> None:
        import ctypes

        self._trim, error = _libc_function("malloc_trim", [ctypes.c_size_t], ctypes.c_int)
        self.reason: Optional[str] = None if error is None else f"no malloc_trim in this C library ({error})"

    @property
    def available(self) -> bool:
        return self._trim is not None

    def trim(self) -> bool:
        """Release the free pages now; True when it ran."""
        if self._trim is None:
            return False
        self._trim(0)
        return True


class HeapInUse:
    """glibc's ``mallinfo2()``: the bytes malloc has handed out and not had back, in every arena and in its
    mmapped blocks (``uordblks + hblkhd``), read next to the RSS.

    The RSS also counts what the allocator keeps after a free, and a new arena or a grown heap shows in it as
    a step; this count does not move for either (on the OD API model the fixed loop's RSS stepped +35 to
    +76 MiB while it moved +0.1 MiB: docs/benchmarks.md). It misses what is mapped outside malloc (oneDNN's
    JIT code, for one), so it is a second view, not the verdict. Where the C library has no ``mallinfo2``
    (glibc before 2.33, musl, macOS, Windows) ``available`` is False, ``reason`` says why, and ``bytes()``
    is None: unknown, never 0.
    """

    def __init__(self) -> None:
        import ctypes

        class _MallInfo2(ctypes.Structure):
            _fields_ = [(name, ctypes.c_size_t) for name in (
                "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                "keepcost")]

        self._read, error = _libc_function("mallinfo2", [], _MallInfo2)
        self.reason: Optional[str] = (None if error is None
                                      else f"no mallinfo2 in this C library (glibc 2.33 or later has it; {error})")

    @property
    def available(self) -> bool:
        return self._read is not None

    def bytes(self) -> Optional[int]:
        """Bytes in use now, or None where unavailable."""
        if self._read is None:
            return None
        info = self._read()
        return int(info.uordblks + info.hblkhd)


def host_available_bytes() -> Optional[int]:
    """RAM the OS could still hand out (psutil ``available``), or None."""
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except Exception:  # noqa: BLE001 - see rss_bytes
        return None


class NvmlSampler:
    """This process's VRAM as NVML sees it (sum over GPUs); ``reason`` says why it is unavailable."""

    def __init__(self, pid: Optional[int] = None) -> None:
        self.pid = pid or os.getpid()
        self.reason: Optional[str] = None
        self._nv: Any = None
        self._handles: list[Any] = []
        try:
            import pynvml

            pynvml.nvmlInit()
            count = pynvml.nvmlDeviceGetCount()
            self._handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
            self._nv = pynvml
            if not self._handles:
                self.reason = "NVML sees no GPU"
        except Exception as e:  # noqa: BLE001 - no driver / no library: record why and carry on
            self.reason = f"NVML unavailable ({type(e).__name__}: {e})"

    @property
    def available(self) -> bool:
        return self._nv is not None and bool(self._handles)

    def used_bytes(self) -> Optional[int]:
        """VRAM used by ``pid`` on all GPUs, or None (and ``reason``) when NVML cannot attribute it."""
        if not self.available:
            return None
        nv = self._nv
        total = 0
        seen = False
        try:
            for h in self._handles:
                for proc in nv.nvmlDeviceGetComputeRunningProcesses(h):
                    if proc.pid == self.pid:
                        seen = True
                        total += int(proc.usedGpuMemory or 0)
        except Exception as e:  # noqa: BLE001 - a per-field NVML failure must not stop the run
            self.reason = f"NVML process query failed ({type(e).__name__}: {e})"
            return None
        if not seen:
            # Inside containers NVML reports host PIDs (NVIDIA/nvidia-docker#1483).
            self.reason = "this process is not in NVML's process list (not using a GPU, or a container PID namespace)"
            return None
        self.reason = None
        return total

    def free_bytes(self) -> Optional[int]:
        """Free VRAM on the GPU with the least free memory (what would run out first), or None."""
        if not self.available:
            return None
        try:
            return min(int(self._nv.nvmlDeviceGetMemoryInfo(h).free) for h in self._handles)
        except Exception:  # noqa: BLE001 - see used_bytes
            return None

    def close(self) -> None:
        if self._nv is not None:
            # Shutting down a half-initialised NVML is best effort.
            with contextlib.suppress(Exception):
                self._nv.nvmlShutdown()
            self._nv = None
