"""The leak test as a library: LeakSpec (typed, validated, JSON to the child and back) and run_leak_test."""

from __future__ import annotations

import json
import math
import textwrap

import pytest

from oddoctor.leak import LeakInputError, LeakReport, LeakSpec, LeakSpecError, run_leak_test, spawn


def test_spec_round_trips_through_json():
    spec = LeakSpec(model="m.pb", mode="fixed", iterations=12, warmup=0, images="photos", seed=7,
                    allow_growth=False, memory_fraction=0.5, timeout_s=60.0, until_decided=False,
                    entry="loop.py:infer", reframe="oddoctor", malloc_trim=False)
    assert LeakSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    assert LeakSpec.from_dict({"model": "m.pb"}) == LeakSpec(model="m.pb")  # missing keys: the defaults
    assert spec.modes == ["fixed"] and LeakSpec(demo=True).modes == ["legacy", "fixed"]
    assert list(spec.options()) == ["iterations", "warmup", "mode", "images", "memory_fraction", "allow_growth",
                                    "seed", "until_decided", "entry", "reframe", "malloc_trim"]


@pytest.mark.parametrize(("data", "needle"), [
    ({"mode": "sideways"}, "mode: one of legacy, fixed, both"),
    ({"iterations": 9}, "iterations: must be from 10 to 10,000, not 9"),
    ({"iterations": 10**8}, "iterations: must be from 10 to 10,000"),
    ({"iterations": "30"}, "iterations: expected an integer, got '30'"),
    ({"iterations": True}, "iterations: expected an integer, got True"),
    ({"iterations": 30.0}, "iterations: expected an integer"),
    ({"warmup": -1}, "warmup: must be from 0"),
    ({"seed": 2**32}, "seed: must be from 0 to 4,294,967,295"),
    ({"memory_fraction": 1.5}, "memory_fraction: must be in (0, 1]"),
    ({"memory_fraction": math.nan}, "memory_fraction: must be in (0, 1]"),
    ({"memory_fraction": "half"}, "memory_fraction: expected a number or null"),
    ({"timeout_s": math.inf}, "timeout_s: must be from 1 to 86400"),
    ({"timeout_s": 0}, "timeout_s: must be from 1"),
    ({"demo": 1}, "demo: expected true or false, got 1"),
    ({"model": 3}, "model: expected a string or null, got 3"),
    ({"build_demo": True}, "unknown field(s) build_demo"),
    ({"reframe": "tf2"}, "reframe: one of auto, od_api, oddoctor"),
    ({"entry": "no_colon"}, "entry: module:function or path/to/file.py:function"),
    ({"until_decided": "yes"}, "until_decided: expected true or false"),
])
def test_from_dict_names_the_bad_field(data, needle):
    with pytest.raises(LeakSpecError, match=r"^leak spec: ") as info:
        LeakSpec.from_dict(data)
    assert needle in str(info.value)


def test_from_dict_refuses_what_is_not_an_object():
    with pytest.raises(LeakSpecError, match="a JSON object, not list"):
        LeakSpec.from_dict([])  # type: ignore[arg-type]


def test_a_spec_without_model_or_demo_is_refused_before_any_process_starts():
    with pytest.raises(LeakSpecError, match="give a model path, or demo=True"):
        run_leak_test(LeakSpec())


def test_the_spawner_runs_one_mode_only():
    with pytest.raises(ValueError, match="one mode"):
        spawn.run_mode(LeakSpec(model="m.pb"), timeout_s=10)


FAKE_CHILD = """
import json, sys
from oddoctor.leak.spec import LeakSpec
spec = LeakSpec.from_dict(json.load(open(sys.argv[1])))  # the child reads the typed spec back
def emit(event, **d):
    print(json.dumps({"event": event, **d}), flush=True)
if spec.images == "refuse":
    emit("error", kind="input", message="photos: no readable jpg/png images (2 skipped)")
    sys.exit(2)
emit("start", mode=spec.mode, pid=1, model=spec.model, model_kind="frozen_graph", model_nodes=10, has_masks=False,
     images=4, image_sizes=[[4, 4]], skipped=[], tf_version="fake")
leaks = spec.mode == "legacy"
for i in range(spec.warmup + spec.iterations):
    emit("iter", i=i, warmup=i < spec.warmup, latency_ms=5.0, graph_nodes=10 + (3 * i if leaks else 0),
         rss_bytes=2**30, gpu_nvml_bytes=None, gpu_tf_bytes=None, sessions=i + 1 if leaks else 1)
emit("done", sessions=spec.warmup + spec.iterations if leaks else 1)
"""


@pytest.fixture
def fake_child(tmp_path, monkeypatch):
    (tmp_path / "fake_typed_child.py").write_text(textwrap.dedent(FAKE_CHILD))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    monkeypatch.setattr(spawn, "CHILD_MODULE", "fake_typed_child")


@pytest.mark.timeout(60)
def test_run_leak_test_reports_each_mode_with_events_in_order(fake_child):
    events = []
    report = run_leak_test(LeakSpec(model="m.pb", iterations=10, warmup=2), on_event=events.append)
    assert isinstance(report, LeakReport)
    assert report.exit_code == 1 and report.model == "m.pb"
    assert report.modes["legacy"].verdict == "leak" and report.modes["fixed"].verdict == "ok"
    assert report.modes["legacy"].metrics["graph_nodes"].slope_per_image == pytest.approx(3.0)
    assert list(report.runs) == ["legacy", "fixed"] and len(report.runs["fixed"].samples) == 12
    kinds = [e["event"] for e in events]
    per_mode = ["launch", "start", *["iter"] * 12, "done", "finish"]
    assert kinds == per_mode + per_mode
    assert events[0] == {"event": "launch", "mode": "legacy", "demo_build": False}
    assert events[-1] == {"event": "finish", "mode": "fixed", "error": None, "stderr_tail": [], "stderr": []}
    assert report.to_dict()["options"] == LeakSpec(model="m.pb", iterations=10, warmup=2).options()


@pytest.mark.timeout(60)
def test_an_input_the_child_refuses_raises(fake_child):
    with pytest.raises(LeakInputError, match="no readable jpg/png images"):
        run_leak_test(LeakSpec(model="m.pb", mode="fixed", images="refuse"))


def test_the_package_exports_resolve_and_stay_cheap():
    import subprocess
    import sys

    import oddoctor.leak as leak

    assert sorted(leak.__all__) == sorted(leak._WHERE)
    assert all(getattr(leak, name) is not None for name in leak.__all__)
    code = ("import sys, oddoctor.leak.spec; "
            "sys.exit(1 if 'oddoctor.leak.report' in sys.modules or 'oddoctor.childproc' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
