"""The child-process spawner: live events, a child that dies, a child that hangs (no TensorFlow)."""

from __future__ import annotations

import signal
import textwrap

import pytest

from oddoctor.leak import spawn
from oddoctor.leak.report import build_report
from oddoctor.leak.spec import LeakSpec

CHILD = """
import json, os, signal, sys, time
spec = json.load(open(sys.argv[1]))
def emit(event, **d):
    print(json.dumps({"event": event, **d}), flush=True)
print("noise that is not an event", flush=True)
emit("start", mode=spec["mode"], pid=os.getpid())
for i in range(3):
    emit("iter", i=i, warmup=False, latency_ms=1.0, graph_nodes=10, rss_bytes=1, sessions=1)
if spec["model"] == "die":
    os.kill(os.getpid(), signal.SIGKILL)
if spec["model"] == "hang":
    time.sleep(60)
emit("done", sessions=1)
"""


@pytest.fixture
def fake_child(tmp_path, monkeypatch):
    (tmp_path / "fake_leak_child.py").write_text(textwrap.dedent(CHILD))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    monkeypatch.setattr(spawn, "CHILD_MODULE", "fake_leak_child")


@pytest.mark.timeout(60)
def test_events_stream_live_and_a_clean_run_has_no_error(fake_child):
    seen = []
    run = spawn.run_mode(LeakSpec(mode="fixed", model="ok"), timeout_s=30, on_event=seen.append)
    assert [e["event"] for e in seen] == ["start", "iter", "iter", "iter", "done"]
    assert len(run.samples) == 3
    assert run.error is None
    assert run.returncode == 0


@pytest.mark.timeout(60)
def test_a_killed_child_is_reported_as_died_and_fails_the_run(fake_child):
    run = spawn.run_mode(LeakSpec(mode="legacy", model="die"), timeout_s=30)
    assert run.error["kind"] == "died"
    assert f"signal {int(signal.SIGKILL)}" in run.error["message"]
    assert "out-of-memory" in run.error["message"]
    assert build_report({"legacy": run}, model="m.pb", options={}).exit_code == 1


@pytest.mark.timeout(60)
def test_a_hung_child_is_killed_at_the_timeout(fake_child):
    run = spawn.run_mode(LeakSpec(mode="legacy", model="hang"), timeout_s=2)
    assert run.error["kind"] == "timeout"
    assert "killed after 3 iterations" in run.error["message"]
    assert run.wall_s < 30
