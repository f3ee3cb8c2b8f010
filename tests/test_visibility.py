"""CUDA_VISIBLE_DEVICES as CUDA reads it: indices and UUIDs, the first entry naming no GPU stops the list, and only
the GPUs it selects are judged for memory and other processes."""

from __future__ import annotations

import pytest

from oddoctor.checks import Context, Status
from oddoctor.manager import make_plugin_manager
from oddoctor.runner import run_checks
from oddoctor.snapshot import GpuFacts, GpuProcess, Snapshot
from oddoctor.view import view

PS = make_plugin_manager()
GIB = 2**30


def _two_gpus(names: tuple[str, str] = ("NVIDIA A100-SXM4-40GB", "NVIDIA A100-SXM4-40GB")) -> Snapshot:
    """GPU 0 held by another job, GPU 1 free (nvidia-smi's PCI order)."""
    snap = Snapshot()
    snap.platform.system, snap.python.version = "Linux", "3.11.9"
    snap.nvml.available, snap.nvml.driver_version, snap.nvml.cuda_driver_version = True, "550.54.15", "12.4"
    snap.nvml.gpus = [
        GpuFacts(index=0, name=names[0], uuid="GPU-aaaa1111-0000-0000-0000-000000000000", compute_capability="8.0",
                 memory_total_bytes=40 * GIB, memory_used_bytes=38 * GIB, memory_free_bytes=2 * GIB,
                 processes=[GpuProcess(pid=777, name="python other_job.py", used_bytes=38 * GIB, kind="compute")]),
        GpuFacts(index=1, name=names[1], uuid="GPU-bbbb2222-0000-0000-0000-000000000000", compute_capability="8.0",
                 memory_total_bytes=40 * GIB, memory_used_bytes=1 * GIB, memory_free_bytes=39 * GIB, processes=[]),
    ]
    snap.env = {"CUDA_VISIBLE_DEVICES": None, "CUDA_DEVICE_ORDER": None, "TF_FORCE_GPU_ALLOW_GROWTH": None}
    return snap


def _results(snap: Snapshot, ctx: Context | None = None) -> dict[str, object]:
    return {r.id: r for r in run_checks(PS, snap, ctx).results}


@pytest.mark.parametrize(("value", "selected"), [
    ("1", [1]), ("0,1", [0, 1]), ("1,0", [1, 0]), ("GPU-bbbb2222", [1]),
    ("GPU-aaaa1111-0000-0000-0000-000000000000", [0]),
    ("0,7,1", [0]), ("-1", []), ("", []), ("7", []), ("GPU-ffff", []),
])
def test_selection_follows_indices_and_uuids_and_stops_at_the_first_bad_entry(value, selected):
    snap = _two_gpus()
    snap.env["CUDA_VISIBLE_DEVICES"] = value
    vis = view(snap).visibility
    assert [g.index for g in vis.selected] == selected


def test_the_free_selected_gpu_is_not_failed_for_the_busy_one():
    snap = _two_gpus()
    snap.env["CUDA_VISIBLE_DEVICES"] = "1"
    res = _results(snap, Context(min_vram_bytes=8 * GIB))
    assert res["gpu.min-vram.gpu1"].status is Status.OK and "gpu.min-vram.gpu0" not in res
    assert res["gpu.other-processes.gpu1"].status is Status.OK and "gpu.other-processes.gpu0" not in res
    assert res["memory.allow-growth"].status is Status.OK
    assert res["gpu.cuda-visible-devices"].status is Status.OK


def test_the_busy_gpu_fails_and_the_fix_names_the_free_one():
    snap = _two_gpus()
    res = _results(snap, Context(min_vram_bytes=8 * GIB))
    r = res["gpu.min-vram.gpu0"]
    assert r.status is Status.FAIL and "export CUDA_VISIBLE_DEVICES=1" in r.fix


def test_an_index_past_the_last_gpu_fails_naming_the_gpus_there_are():
    snap = _two_gpus()
    snap.env["CUDA_VISIBLE_DEVICES"] = "2"
    r = _results(snap)["gpu.cuda-visible-devices"]
    assert r.status is Status.FAIL and "there is no GPU 2" in r.message and "numbered 0, 1" in r.message
    assert r.fix.startswith("export CUDA_VISIBLE_DEVICES=1")  # the one with most free memory


def test_a_bad_entry_after_good_ones_warns_that_cuda_stops_there():
    snap = _two_gpus()
    snap.env["CUDA_VISIBLE_DEVICES"] = "0,5,1"
    r = _results(snap)["gpu.cuda-visible-devices"]
    assert r.status is Status.WARN and "CUDA stops there" in r.message and r.fix == "export CUDA_VISIBLE_DEVICES=0"


def test_mixed_gpus_without_pci_bus_order_make_an_index_ambiguous():
    snap = _two_gpus(("NVIDIA GeForce RTX 4090", "NVIDIA GeForce GTX 1080"))
    snap.env["CUDA_VISIBLE_DEVICES"] = "1"
    v = view(snap)
    assert v.selected_gpus is None and "fastest first" in v.visibility.note
    r = _results(snap)["gpu.cuda-visible-devices"]
    assert r.status is Status.WARN and "CUDA_DEVICE_ORDER=PCI_BUS_ID" in r.fix
    snap.env["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"
    assert [g.index for g in view(snap).selected_gpus] == [1]
    snap.env["CUDA_DEVICE_ORDER"] = None
    snap.env["CUDA_VISIBLE_DEVICES"] = "GPU-bbbb2222"  # a UUID names one GPU whatever the order
    assert [g.index for g in view(snap).selected_gpus] == [1]


def test_hiding_every_gpu_on_purpose_is_fine_on_a_cpu_run():
    snap = _two_gpus()
    snap.env["CUDA_VISIBLE_DEVICES"] = "-1"
    assert _results(snap)["gpu.cuda-visible-devices"].status is Status.FAIL  # a GPU machine: a GPU is meant
    assert _results(snap, Context(cpu_only=True))["gpu.cuda-visible-devices"].status is Status.SKIP
