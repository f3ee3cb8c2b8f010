"""The TensorFlow probe survives the patient: crashes, aborts, hangs and errors become facts."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from oddoctor.probes.tensorflow import probe_tensorflow
from tests.conftest import SNAPSHOTS, run_json, run_oddoctor


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
    facts = probe_tensorflow(timeout_s=30)
    assert facts.importable is False and facts.probe.exit_code == 3
    assert facts.probe.error == ("ImportError: libcudart.so.11.0: cannot open shared object file: "
                                 "No such file or directory")


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
        probes = [c for c in parent.children(recursive=True) if "probe_tf" in " ".join(c.cmdline())]
        time.sleep(0.1)
    assert probes, "the TensorFlow probe child never started"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "oddoctor: interrupted" in err and "Traceback" not in err
    _, alive = psutil.wait_procs(probes, timeout=10)
    assert not alive, "the probe child outlived oddoctor"
