"""Unknown is not "no": a fact nobody could collect never turns into a failure, a warning or a "no" verdict.

Every built-in check is run on healthy machines with each fact blanked in turn; a check that declares a fact in
``requires`` must skip with "could not tell", naming the fact and why, when that fact is unknown.
"""

from __future__ import annotations

import copy
from typing import Callable

import pytest

from oddoctor.checks import Context, Status
from oddoctor.manager import collect_checks, make_plugin_manager
from oddoctor.runner import run_checks
from oddoctor.snapshot import ProbeError, Snapshot, load_snapshot
from oddoctor.view import FACT_NAMES, view
from tests.helpers import SNAPSHOTS

PS = make_plugin_manager()
BUILTIN = [c for c in collect_checks(PS) if c.plugin in
           {"platform", "python", "packages", "driver", "tensorflow", "cuda", "gpu", "memory"}]
HEALTHY = ["core_healthy_h100_tf221", "healthy_tf221_cuda125_rtx4090", "healthy_tf215_cuda122_a100",
           "healthy_tf219_wsl2_rtx3070", "healthy_tf210_windows_rtx3060", "healthy_tf115_cuda100_v100"]


def _gpus(s: Snapshot) -> list:
    return s.nvml.gpus or []


def _blank_tf(s: Snapshot) -> None:
    tf = s.tensorflow
    tf.installed = tf.version = tf.distribution = tf.distributions = tf.importable = None
    tf.built_with_cuda = tf.build_info = tf.gpus = None
    tf.probe.ran = None


#: One snapshot fact made unknown, as a probe that failed (or a report that did not say) leaves it.
BLANKERS: dict[str, Callable[[Snapshot], None]] = {
    "platform.system": lambda s: setattr(s.platform, "system", None),
    "platform.machine": lambda s: setattr(s.platform, "machine", None),
    "platform.distro": lambda s: setattr(s.platform, "distro", None),
    "platform.is_wsl": lambda s: setattr(s.platform, "is_wsl", None),
    "platform.in_container": lambda s: setattr(s.platform, "in_container", None),
    "python.version": lambda s: setattr(s.python, "version", None),
    "python.bits": lambda s: setattr(s.python, "bits", None),
    "nvml": lambda s: setattr(s, "nvml", type(s.nvml)()),
    "nvml.driver_version": lambda s: setattr(s.nvml, "driver_version", None),
    "nvml.cuda_driver_version": lambda s: setattr(s.nvml, "cuda_driver_version", None),
    "nvml.gpus": lambda s: setattr(s.nvml, "gpus", None),
    "nvml.gpus[].name": lambda s: [setattr(g, "name", None) for g in _gpus(s)],
    "nvml.gpus[].compute_capability": lambda s: [setattr(g, "compute_capability", None) for g in _gpus(s)],
    "nvml.gpus[].memory": lambda s: [setattr(g, k, None) for g in _gpus(s)
                                     for k in ("memory_total_bytes", "memory_used_bytes", "memory_free_bytes")],
    "nvml.gpus[].processes": lambda s: [setattr(g, "processes", None) for g in _gpus(s)],
    "nvml.gpus[].uuid": lambda s: [setattr(g, "uuid", None) for g in _gpus(s)],
    "hardware": lambda s: setattr(s, "hardware", type(s.hardware)()),
    "cuda_libs": lambda s: setattr(s, "cuda_libs", type(s.cuda_libs)()),
    "cuda_libs.cudart": lambda s: setattr(s.cuda_libs, "cudart", None),
    "cuda_libs.cudnn": lambda s: setattr(s.cuda_libs, "cudnn", None),
    "tensorflow": _blank_tf,
    "tensorflow.version": lambda s: setattr(s.tensorflow, "version", None),
    "tensorflow.distribution": lambda s: setattr(s.tensorflow, "distribution", None),
    "tensorflow.build_info": lambda s: setattr(s.tensorflow, "build_info", None),
    "tensorflow.built_with_cuda": lambda s: setattr(s.tensorflow, "built_with_cuda", None),
    "tensorflow.build": lambda s: (setattr(s.tensorflow, "build_info", None),
                                   setattr(s.tensorflow, "built_with_cuda", None)),
    "tensorflow.gpus": lambda s: setattr(s.tensorflow, "gpus", None),
    "tensorflow.importable": lambda s: (setattr(s.tensorflow, "importable", None),
                                        setattr(s.tensorflow.probe, "ran", None)),
    "tensorflow.log_lines": lambda s: setattr(s.tensorflow, "log_lines", []),
    "env": lambda s: setattr(s, "env", {}),
    "env.CUDA_VISIBLE_DEVICES": lambda s: s.env.pop("CUDA_VISIBLE_DEVICES", None),
    "env.LD_LIBRARY_PATH": lambda s: s.env.pop("LD_LIBRARY_PATH", None),
    "env.TF_FORCE_GPU_ALLOW_GROWTH": lambda s: s.env.pop("TF_FORCE_GPU_ALLOW_GROWTH", None),
    "packages": lambda s: setattr(s, "packages", None),
}


def _problems(snap: Snapshot) -> dict[str, str]:
    return {r.id: f"{r.status.value}: {r.message}" for r in run_checks(PS, snap).results
            if r.status in (Status.FAIL, Status.WARN, Status.ERROR)}


@pytest.mark.parametrize("name", HEALTHY)
@pytest.mark.parametrize("fact", sorted(BLANKERS))
def test_an_unknown_fact_never_makes_a_healthy_machine_fail(name: str, fact: str):
    snap = load_snapshot(SNAPSHOTS / f"{name}.json")
    assert _problems(snap) == {}
    blanked = copy.deepcopy(snap)
    BLANKERS[fact](blanked)
    assert _problems(blanked) == {}, f"{fact} unknown turned into a problem"


def test_the_empty_snapshot_fails_nothing():
    """Nothing known at all: every check skips or says what little it can; none fails, warns or errors."""
    results = run_checks(PS, Snapshot()).results
    assert {r.status for r in results} <= {Status.SKIP, Status.OK}
    assert sum(r.message.startswith("could not tell") for r in results) >= 10


#: A snapshot on which each check with ``requires`` would otherwise run, and how to make each fact unknown.
REQUIRED_BLANKERS: dict[str, Callable[[Snapshot], None]] = {
    "platform.system": BLANKERS["platform.system"],
    "python.version": BLANKERS["python.version"],
    "tf.version": lambda s: (setattr(s.tensorflow, "version", None), setattr(s.tensorflow, "distributions", None)),
    "tf.installed": _blank_tf,
    "tf.importable": lambda s: (_blank_tf(s), setattr(s.tensorflow, "log_lines", [])),
    "env.CUDA_VISIBLE_DEVICES": BLANKERS["env.CUDA_VISIBLE_DEVICES"],
}


@pytest.mark.parametrize("chk", [c for c in BUILTIN if c.requires], ids=lambda c: c.id)
def test_a_check_skips_naming_the_required_fact_it_lacks(chk):
    base = load_snapshot(SNAPSHOTS / "core_healthy_h100_tf221.json")
    base.env["CUDA_VISIBLE_DEVICES"] = "0"
    for fact in chk.requires:
        first = fact.split("|")[0]
        snap = copy.deepcopy(base)
        REQUIRED_BLANKERS[first](snap)
        snap.probe_errors.append(ProbeError(fact="nvml", error="NVMLError_Unknown: probe test"))
        [r] = [r for r in run_checks(PS, snap, only=[chk.id]).results if r.id == chk.id]
        assert r.status is Status.SKIP, (fact, r.message)
        assert r.message.startswith(f"could not tell: {fact.replace('|', ' or ')} unknown ("), r.message
        assert r.details["unknown"] == [fact.replace("|", " or ")]


def test_requires_names_only_facts_the_view_knows():
    for chk in BUILTIN:
        for fact in chk.requires:
            for part in fact.split("|"):
                assert part in FACT_NAMES, (chk.id, part)


# --- the classes of the diagnosis issue, each with the fact unknown ---------------------------------------

def _h100() -> Snapshot:
    return load_snapshot(SNAPSHOTS / "core_healthy_h100_tf221.json")


def _run(snap: Snapshot, cid: str, ctx: Context | None = None):
    """The result of check ``cid`` (its first per-GPU result, ``cid.gpu0``, for a per-GPU check)."""
    return next(r for r in run_checks(PS, snap, ctx).results if r.id == cid or r.id.startswith(cid + "."))


def test_nvml_failing_is_not_no_driver_and_gpu_checks_run_on_their_own_inputs():
    snap = _h100()
    snap.nvml = type(snap.nvml)(available=False, error="NVMLError_Uninitialized: Uninitialized")
    r = _run(snap, "driver.present")
    assert r.status is not Status.FAIL or "no NVIDIA driver found" not in r.message
    # TensorFlow's own GPU list and build still judge the CUDA stack: the checks run, they do not skip.
    assert _run(snap, "gpu.compute-capability").status is Status.OK
    assert _run(snap, "cudnn.runtime-match").status is Status.OK
    assert _run(snap, "cuda.runtime-match").status is Status.OK


def test_driver_library_mismatch_is_named_with_reboot():
    snap = _h100()
    snap.nvml = type(snap.nvml)(available=False, error="NVMLError_LibRmVersionMismatch: RM has detected an NVML/RM "
                                "version mismatch; Failed to initialize NVML: Driver/library version mismatch")
    r = _run(snap, "driver.present")
    assert r.status is Status.FAIL and "Reboot" in r.fix and "updated without a reboot" in r.message


def test_missing_build_info_is_not_cpu_only():
    snap = _h100()
    snap.tensorflow.build_info = None
    snap.tensorflow.built_with_cuda = None
    assert view(snap).is_cuda_build is True  # plain `tensorflow` 2.21 on Linux is a CUDA build
    assert _run(snap, "tf.cpu-build-with-gpu").status is Status.OK
    snap.platform.system = None
    snap.tensorflow.distribution = None
    snap.tensorflow.gpus = None
    assert view(snap).is_cuda_build is None
    r = _run(snap, "tf.cpu-build-with-gpu")
    assert r.status is Status.SKIP and r.message.startswith("could not tell")


def test_unknown_process_list_is_not_zero_percent():
    snap = _h100()
    for g in snap.nvml.gpus or []:
        g.processes = None
    r = _run(snap, "gpu.other-processes")
    assert r.status is Status.SKIP and r.message.startswith("could not tell: gpu.processes unknown")
    assert "0%" not in r.message


def test_unknown_architecture_is_not_unsupported():
    snap = _h100()
    snap.platform.machine = None
    r = _run(snap, "platform.supported")
    assert r.status is Status.OK and "architecture not known" in r.message and r.details["unknown"] == [
        "platform.machine"]


def test_unknown_cuda_visible_devices_judges_every_gpu_and_says_so():
    snap = _h100()
    snap.env.pop("CUDA_VISIBLE_DEVICES", None)
    assert view(snap).visibility.note.startswith("CUDA_VISIBLE_DEVICES not stated")
    assert _run(snap, "gpu.cuda-visible-devices").message.startswith("could not tell: env.CUDA_VISIBLE_DEVICES")


def test_display_server_is_not_a_shared_gpu():
    from oddoctor.snapshot import GpuProcess

    snap = _h100()
    snap.nvml.gpus[0].processes = [GpuProcess(pid=1200, name="/usr/lib/xorg/Xorg vt2", used_bytes=350 * 2**20),
                                   GpuProcess(pid=1500, name="/usr/bin/gnome-shell", used_bytes=120 * 2**20)]
    assert _run(snap, "gpu.other-processes").status is Status.OK
    assert _run(snap, "memory.allow-growth").status is Status.OK
    snap.nvml.gpus[0].processes.append(GpuProcess(pid=4242, name="python train.py", used_bytes=60 * 2**30,
                                                  kind="compute"))
    assert _run(snap, "gpu.other-processes").status is Status.WARN
    assert _run(snap, "memory.allow-growth").status is Status.WARN


@pytest.mark.parametrize(("driver", "python", "pci", "expect", "never"), [
    ("470.82.01", "3.10.12", None, "pip install 'tensorflow[and-cuda]==2.14.*'", None),
    ("580.95.05", "3.12.3", None, "pip install 'tensorflow[and-cuda]==2.21.*'", None),
    (None, "3.11.9", [], "pip install 'tensorflow==2.21.*'", "and-cuda"),  # no NVIDIA hardware: the CPU wheel
    (None, "3.8.10", [], "pip install 'tensorflow==2.13.*'", "and-cuda"),
])
def test_install_fix_is_pinned_for_this_driver_python_and_os(driver, python, pci, expect, never):
    snap = Snapshot()
    snap.platform.system, snap.platform.machine, snap.python.version = "Linux", "x86_64", python
    snap.tensorflow.installed = False
    if driver:
        snap.nvml.available, snap.nvml.driver_version = True, driver
    snap.hardware.pci_nvidia = pci
    if pci == []:
        snap.hardware.dev_nvidia = []
    r = _run(snap, "tf.importable")
    assert r.status is Status.FAIL and r.fix == expect
    assert never is None or never not in r.fix
