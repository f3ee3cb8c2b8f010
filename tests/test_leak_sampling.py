"""Memory probes: NVML per-process attribution with a fake pynvml, and graceful absence (no GPU here)."""

from __future__ import annotations

import os
import sys
import types

import pytest

from oddoctor.leak.sampling import NvmlSampler, allocator_env, rss_bytes


def fake_pynvml(processes, free=6 * 2**30, fail_init=False):
    mod = types.ModuleType("pynvml")

    class NVMLError(Exception):
        pass

    def init():
        if fail_init:
            raise NVMLError("NVML Shared Library Not Found")

    mod.NVMLError = NVMLError
    mod.nvmlInit = init
    mod.nvmlShutdown = lambda: None
    mod.nvmlDeviceGetCount = lambda: 2
    mod.nvmlDeviceGetHandleByIndex = lambda i: i
    mod.nvmlDeviceGetComputeRunningProcesses = lambda h: [
        types.SimpleNamespace(pid=pid, usedGpuMemory=used) for (dev, pid, used) in processes if dev == h]
    mod.nvmlDeviceGetMemoryInfo = lambda h: types.SimpleNamespace(free=free + h * 2**30)
    return mod


def test_vram_of_this_process_is_summed_over_gpus(monkeypatch):
    me = os.getpid()
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml([(0, me, 300), (1, me, 200), (0, 1, 999)]))
    s = NvmlSampler()
    assert s.available
    assert s.used_bytes() == 500
    assert s.reason is None
    assert s.free_bytes() == 6 * 2**30  # the GPU that runs out first
    s.close()


def test_pid_not_listed_is_unavailable_with_the_container_reason(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml([(0, 4242, 300)]))
    s = NvmlSampler()
    assert s.used_bytes() is None
    assert "container PID namespace" in s.reason


def test_missing_nvml_library_is_a_reason_not_a_crash(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml([], fail_init=True))
    s = NvmlSampler()
    assert not s.available
    assert s.used_bytes() is None
    assert s.free_bytes() is None
    assert "Shared Library Not Found" in s.reason


def test_rss_is_this_process_size():
    assert rss_bytes() > 10 * 2**20
    assert rss_bytes(pid=2**22 + 12345) is None  # above pid_max: no such process


@pytest.mark.parametrize("name", ["stats", "report", "spawn", "sampling", "plot", "spec", "api", "inprocess", "child"])
def test_leak_core_imports_without_tensorflow(name):
    import subprocess

    code = (f"import sys, oddoctor.leak.{name}; "
            "sys.exit(1 if any(m.split('.')[0] in ('tensorflow', 'matplotlib') for m in sys.modules) else 0)")
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_the_heap_is_trimmed_where_the_c_library_can_and_said_why_where_not(monkeypatch):
    import ctypes

    from oddoctor.leak.sampling import HeapTrimmer

    trimmer = HeapTrimmer()
    if sys.platform.startswith("linux") and os.confstr("CS_GNU_LIBC_VERSION"):
        assert trimmer.available and trimmer.reason is None
        # 64 MiB of 64 KiB blocks (below mmap's threshold: they live in the heap), freed while a block after
        # them pins the heap's top: free() keeps those pages, malloc_trim hands them back.
        blocks = [ctypes.create_string_buffer(64 * 1024) for _ in range(1024)]
        pin = ctypes.create_string_buffer(64 * 1024)
        del blocks
        before = rss_bytes()
        assert trimmer.trim() is True
        assert before - rss_bytes() > 32 * 2**20
        del pin

    class NoTrim:  # a C library without malloc_trim (musl, macOS)
        def __getattr__(self, name):
            raise AttributeError(f"undefined symbol: {name}")

    monkeypatch.setattr(ctypes, "CDLL", lambda *a, **k: NoTrim())
    missing = HeapTrimmer()
    assert not missing.available and "no malloc_trim" in missing.reason
    assert missing.trim() is False


def test_allocator_settings_are_picked_out_of_the_environment():
    env = {"MALLOC_ARENA_MAX": "2", "MALLOC_TRIM_THRESHOLD_": "0", "GLIBC_TUNABLES": "glibc.malloc.tcache_count=0",
           "LD_PRELOAD": "/usr/lib/x86_64-linux-gnu/libtcmalloc.so.4", "PATH": "/usr/bin", "TF_CPP_MIN_LOG_LEVEL": "2"}
    assert allocator_env(env) == {"GLIBC_TUNABLES": "glibc.malloc.tcache_count=0",
                                  "LD_PRELOAD": "/usr/lib/x86_64-linux-gnu/libtcmalloc.so.4",
                                  "MALLOC_ARENA_MAX": "2", "MALLOC_TRIM_THRESHOLD_": "0"}
    # A preload that is not an allocator is not one of them; no setting at all is an empty dict, not None.
    assert allocator_env({"LD_PRELOAD": "/opt/libfaketime.so", "HOME": "/root"}) == {}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallinfo2")
def test_heap_in_use_counts_what_malloc_handed_out():
    from oddoctor.leak.sampling import HeapInUse

    heap = HeapInUse()
    if not heap.available:  # a Linux without glibc 2.33 (musl, an old distribution): said, not guessed
        assert "mallinfo2" in heap.reason and heap.bytes() is None
        return
    before = heap.bytes()
    block = bytearray(64 * 2**20)  # malloc'd (mmapped at this size): in use until freed
    during = heap.bytes()
    del block
    after = heap.bytes()
    assert before > 0 and during - before >= 64 * 2**20  # the block, and a header
    assert during - after >= 64 * 2**20  # given back: the count is what is in use, not what was ever asked


def test_heap_in_use_without_mallinfo2_is_unknown_not_zero(monkeypatch):
    from oddoctor.leak import sampling

    monkeypatch.setattr(sampling, "_libc", lambda: types.SimpleNamespace())  # a C library without mallinfo2
    heap = sampling.HeapInUse()
    assert not heap.available and heap.bytes() is None
    assert heap.reason.startswith("no mallinfo2 in this C library (glibc 2.33 or later has it")
