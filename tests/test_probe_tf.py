"""The TensorFlow probe survives the patient: crashes, aborts, hangs and errors become facts."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from oddoctor.probes.packages import TF_DISTRIBUTIONS
from oddoctor.probes.tensorflow import probe_tensorflow
from oddoctor.snapshot import ProbeError
from tests.helpers import SNAPSHOTS, cmdline_of, run_json, run_oddoctor


def _fake_tf(tmp_path: Path, body: str, monkeypatch) -> None:
    pkg = tmp_path / "tensorflow"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(textwrap.dedent(body))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))  # first on the child's path


@pytest.mark.timeout(60)
def test_import_that_aborts_is_a_fact(tmp_path, monkeypatch):
    _fake_tf(tmp_path, """
        import os, sys
        print("F tensorflow/core/platform/cpu_feature_guard.cc:37] The TensorFlow library was compiled to use "
              "AVX instructions, but these aren't available on your machine.", file=sys.stderr, flush=True)
        os.abort()
    """, monkeypatch)
    facts = probe_tensorflow(timeout_s=30)
    assert facts.importable is False
    assert facts.probe.signal == "SIGABRT"
    assert "compiled to use AVX" in "\n".join(facts.probe.stderr_tail)
    assert "killed by SIGABRT during import" in facts.probe.error


@pytest.mark.timeout(60)
def test_import_that_hangs_is_killed_after_the_timeout(tmp_path, monkeypatch):
    _fake_tf(tmp_path, """
        import time
        time.sleep(600)
    """, monkeypatch)
    facts = probe_tensorflow(timeout_s=2)
    assert facts.probe.timed_out and facts.importable is False
    assert 2 <= facts.probe.elapsed_s < 15


@pytest.mark.timeout(60)
def test_import_that_raises_records_the_exception(tmp_path, monkeypatch):
    _fake_tf(tmp_path, """
        raise ImportError("libcudart.so.11.0: cannot open shared object file: No such file or directory")
    """, monkeypatch)
    errors: list[ProbeError] = []
    facts = probe_tensorflow(timeout_s=30, errors=errors)
    assert facts.importable is False and facts.probe.exit_code == 3
    assert facts.probe.error == ("ImportError: libcudart.so.11.0: cannot open shared object file: "
                                 "No such file or directory")
    assert facts.gpus is None and facts.build_info is None and facts.built_with_cuda is None  # never got there
    assert errors == [ProbeError("tensorflow", facts.probe.error)]


#: A fake TensorFlow that imports, has a build, lists GPUS and prints LINES on stderr first.
FULL_TF = """
    import sys, types
    __version__ = "2.99.0"
    for line in LINES:
        print(line, file=sys.stderr)

    class _Dev:
        def __init__(self, name):
            self.name = name

    def _list(kind):
        if isinstance(GPUS, Exception):
            raise GPUS
        return [_Dev(n) for n in GPUS]

    def _build_info():
        if BUILD is None:
            raise AttributeError("module 'tensorflow.sysconfig' has no attribute 'get_build_info'")
        return BUILD

    sysconfig = types.SimpleNamespace(get_build_info=_build_info)
    test = types.SimpleNamespace(is_built_with_cuda=lambda: True)
    config = types.SimpleNamespace(
        list_physical_devices=_list,
        experimental=types.SimpleNamespace(
            get_device_details=lambda d: {"device_name": "NVIDIA Fake 3090", "compute_capability": (8, 6)}))
"""


def _full_tf(tmp_path: Path, monkeypatch, lines=(), gpus=(), build="{'cuda_version': '12.5.1'}") -> None:
    head = f"LINES = {list(lines)!r}\nGPUS = {gpus}\nBUILD = {build}\n"
    tmp_path.mkdir(exist_ok=True)
    _fake_tf(tmp_path, head + textwrap.dedent(FULL_TF), monkeypatch)


def _fake_od_api(tmp_path: Path, body: str) -> None:
    pkg = tmp_path / "object_detection"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(textwrap.dedent(body))


#: TensorFlow's own words for the failures oddoctor diagnoses: each must reach log_lines.
TF_DIAGNOSTICS = [
    "W0000 00:00:1700000000.000001 1 gpu_device.cc:2020] CUDA driver version is insufficient for CUDA runtime version",
    "E0000 00:00:1700000000.000002 1 cuda_blas.cc:190] no kernel image is available for execution on the device",
    "I0000 00:00:1700000000.000003 1 xla.cc:10] Compiling with JIT for sm_120: this may take a while",
    "W0000 00:00:1700000000.000004 1 asm.cc:10] Falling back to PTX compilation; ptxas not found",
    "F0000 00:00:1700000000.000005 1 cuda_dnn.cc:1] DNN library is not found.",
    "E0000 00:00:1700000000.000006 1 cuda_executor.cc:1] failed call to cuInit: CUDA_ERROR_NO_DEVICE: no CUDA-capable "
    "device is detected",
    "W tensorflow/stream_executor/platform/default/dso_loader.cc:64] Could not load dynamic library 'libnvinfer.so.7'",
    "I0000 00:00:1700000000.000007 1 gpu_device.cc:1] Ignoring visible gpu device (device: 0, name: Quadro K2200) "
    "with Cuda compute capability 5.0. The minimum required Cuda capability is 6.0.",
    "W0000 00:00:1700000000.000008 1 bfc_allocator.cc:1] Allocator (GPU_0_bfc) ran out of memory trying to allocate "
    "2.00GiB",
    "tensorflow.python.framework.errors_impl.ResourceExhaustedError: OOM when allocating tensor with shape[64,3,3]",
    "I0000 00:00:1700000000.000009 1 bfc_allocator.cc:2] BFC Allocator: stats",
    "UnknownError: Failed to get convolution algorithm. This is probably because cuDNN failed to initialize",
    "E0000 00:00:1700000000.000010 1 cuda_dnn.cc:2] Could not create cudnn handle: CUDNN_STATUS_INTERNAL_ERROR",
    "E0000 00:00:1700000000.000011 1 driver.cc:1] kernel version 535.104.5 does not match DSO version 550.54.15",
    "I0000 00:00:1700000000.000012 1 compat.cc:1] CUDA forward compatibility mode is enabled",
    "W0000 00:00:1700000000.000013 1 trt.cc:1] TF-TRT Warning: Could not find TensorRT",
    "A module that was compiled using NumPy 1.x cannot be run in NumPy 2.0.0 as it may crash.",
    "AttributeError: _ARRAY_API not found",
    "TypeError: Descriptors cannot be created directly.",
    "ValueError: You have tensorflow 2.16 and this requires tf-keras package. Keras 3 is not supported yet.",
    "ImportError: Keras 3 requires tf_keras; set TF_USE_LEGACY_KERAS=1",
]
NOISE = ["I0000 00:00:1700000000.1 1 cpu_feature_guard.cc:1] This TensorFlow binary is optimized for AVX2",
         "Hello from the fake TensorFlow"]


@pytest.mark.timeout(60)
def test_tensorflow_diagnostics_are_kept_once_each(tmp_path, monkeypatch):
    again = "E0000 00:00:1700000099.999999 7 cuda_dnn.cc:1] DNN library is not found."  # later, same words
    _full_tf(tmp_path, monkeypatch, lines=[*TF_DIAGNOSTICS, *NOISE, again])
    facts = probe_tensorflow(timeout_s=30)
    assert facts.importable is True
    assert facts.log_lines == TF_DIAGNOSTICS


@pytest.mark.timeout(60)
def test_log_lines_stop_at_80(tmp_path, monkeypatch):
    _full_tf(tmp_path, monkeypatch, lines=[f"W] Could not load dynamic library 'libfoo{i}.so'" for i in range(120)])
    assert len(probe_tensorflow(timeout_s=30).log_lines) == 80


@pytest.mark.timeout(60)
def test_the_probe_ends_without_tensorflows_teardown(tmp_path, monkeypatch):
    # TensorFlow's teardown at exit cost about half a second of check's time and tells the checks nothing: the
    # child ends once its facts are written. A teardown that would hang for a minute must not hold it, and
    # what the import printed last is still read (stdio flushed before the exit).
    _full_tf(tmp_path, monkeypatch, lines=["W] Could not load dynamic library 'libcudnn.so.8'"])
    init = tmp_path / "tensorflow" / "__init__.py"
    init.write_text(init.read_text() + textwrap.dedent("""
        import atexit, time
        atexit.register(time.sleep, 60)
        print("E] the last thing the import said", file=sys.stderr, end="")
    """))
    facts = probe_tensorflow(timeout_s=30)
    assert facts.importable is True and facts.probe.exit_code == 0 and not facts.probe.timed_out
    assert facts.probe.elapsed_s < 20
    assert "E] the last thing the import said" in facts.probe.stderr_tail[-1]


@pytest.mark.timeout(60)
def test_gpus_listed_none_is_empty_and_listed_ones_have_details(tmp_path, monkeypatch):
    _full_tf(tmp_path / "none", monkeypatch, gpus=[])
    facts = probe_tensorflow(timeout_s=30)
    assert facts.gpus == [] and facts.build_info == {"cuda_version": "12.5.1"} and facts.built_with_cuda is True
    assert facts.od_api_importable is None and facts.od_api_error is None  # not installed: not tried
    _full_tf(tmp_path / "one", monkeypatch, gpus=["/physical_device:GPU:0"])
    [g] = probe_tensorflow(timeout_s=30).gpus
    assert (g.name, g.device_name, g.compute_capability) == ("/physical_device:GPU:0", "NVIDIA Fake 3090", "8.6")


@pytest.mark.timeout(60)
def test_facts_the_child_could_not_get_are_unknown_with_a_reason(tmp_path, monkeypatch):
    _full_tf(tmp_path, monkeypatch, gpus='RuntimeError("CUDA runtime implicit initialization on GPU:0 failed")',
             build="None")
    errors: list[ProbeError] = []
    facts = probe_tensorflow(timeout_s=30, errors=errors)
    assert facts.importable is True and facts.gpus is None and facts.build_info is None
    why = {e.fact: e.error for e in errors}
    assert why["tensorflow.gpus"] == "RuntimeError: CUDA runtime implicit initialization on GPU:0 failed"
    assert why["tensorflow.build_info"].startswith("AttributeError: ")


@pytest.mark.timeout(60)
def test_object_detection_api_that_fails_to_import(tmp_path, monkeypatch):
    _full_tf(tmp_path, monkeypatch)
    _fake_od_api(tmp_path, """
        import tensorflow as tf
        from tensorflow.contrib import slim
    """)
    facts = probe_tensorflow(timeout_s=30)
    assert facts.importable is True and facts.gpus == []
    assert facts.od_api_importable is False
    assert facts.od_api_error.startswith("ModuleNotFoundError: No module named 'tensorflow.contrib'")
    assert "object_detection" in facts.od_api_error and "__init__.py:3)" in facts.od_api_error


@pytest.mark.timeout(60)
def test_object_detection_api_that_imports(tmp_path, monkeypatch):
    _full_tf(tmp_path, monkeypatch)
    _fake_od_api(tmp_path, "import tensorflow\n")
    facts = probe_tensorflow(timeout_s=30)
    assert facts.od_api_importable is True and facts.od_api_error is None


@pytest.mark.timeout(60)
def test_object_detection_api_that_kills_the_process(tmp_path, monkeypatch):
    _full_tf(tmp_path, monkeypatch)
    _fake_od_api(tmp_path, "import os\nos.abort()\n")
    facts = probe_tensorflow(timeout_s=30)
    assert facts.importable is True and facts.gpus == [] and facts.probe.signal == "SIGABRT"
    assert facts.od_api_importable is False and "SIGABRT during od_api" in facts.od_api_error


@pytest.mark.timeout(60)
def test_every_installed_tf_distribution_as_the_child_sees_it(tmp_path, monkeypatch):
    _full_tf(tmp_path, monkeypatch)
    dist = tmp_path / "tensorflow_gpu-2.4.0.dist-info"  # on the child's path only
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: tensorflow-gpu\nVersion: 2.4.0\n")
    facts = probe_tensorflow(timeout_s=30)
    names = [d.name for d in facts.distributions]
    assert "tensorflow-gpu" in names and facts.installed is True
    assert names == [n for n in TF_DISTRIBUTIONS if n in names]  # in report order
    assert (facts.distribution, facts.version) == (facts.distributions[0].name, facts.distributions[0].version)


@pytest.mark.timeout(120)
def test_check_reports_the_crash_with_exit_1_and_no_traceback(tmp_path, monkeypatch):
    _fake_tf(tmp_path, "import os\nos.abort()\n", monkeypatch)
    code, doc = run_json("check", "--tf-timeout", "30", "--only", "tf")
    r = {r["id"]: r for r in doc["results"]}["tf.importable"]
    assert code == 1 and r["status"] == "fail" and "SIGABRT" in r["message"]


@pytest.mark.timeout(120)
def test_help_and_check_from_never_import_tensorflow(tmp_path, monkeypatch):
    # A TensorFlow that aborts on import: if oddoctor imported it, these commands would die.
    _fake_tf(tmp_path, "import os\nos.abort()\n", monkeypatch)
    assert run_oddoctor("--help").returncode == 0
    for cmd in ("check", "collect", "checks", "compat", "leak-test", "migrate"):
        assert run_oddoctor(cmd, "--help").returncode == 0, cmd
    proc = run_oddoctor("check", "--from", str(SNAPSHOTS / "core_healthy_h100_tf221.json"))
    assert proc.returncode == 0, proc.stderr
    code, _ = run_json("checks")
    assert code == 0


@pytest.mark.tf
@pytest.mark.timeout(180)
def test_collect_and_check_on_this_machine(tmp_path):
    pytest.importorskip("tensorflow")
    out = tmp_path / "snap.json"
    proc = run_oddoctor("collect", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    snap = json.loads(out.read_text())
    tf = snap["tensorflow"]
    assert tf["importable"] is True and tf["version"]
    assert tf["build_info"].get("cuda_version")  # the CPU wheel still reports the CUDA it was built for
    code, doc = run_json("check", "--from", str(out), "--cpu")
    assert code == 0, doc
    assert {r["id"]: r for r in doc["results"]}["tf.importable"]["status"] == "ok"


@pytest.mark.timeout(120)
def test_ctrl_c_during_the_probe_exits_130_and_leaves_no_child(tmp_path, monkeypatch):
    """The probe runs in its own session (the terminal's SIGINT does not reach it): oddoctor kills it."""
    import os
    import signal
    import subprocess
    import sys
    import time

    psutil = pytest.importorskip("psutil")
    _fake_tf(tmp_path, """
        import time
        time.sleep(600)
    """, monkeypatch)
    proc = subprocess.Popen([sys.executable, "-m", "oddoctor", "check"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "NO_COLOR": "1"})
    parent = psutil.Process(proc.pid)
    deadline = time.monotonic() + 60
    probes: list = []
    while not probes and time.monotonic() < deadline:
        probes = [c for c in parent.children(recursive=True) if "probe_tf" in cmdline_of(c)]
        time.sleep(0.1)
    assert probes, "the TensorFlow probe child never started"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "oddoctor: interrupted" in err and "Traceback" not in err
    _, alive = psutil.wait_procs(probes, timeout=10)
    assert not alive, "the probe child outlived oddoctor"
