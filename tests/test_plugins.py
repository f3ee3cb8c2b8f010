"""Plugins: built-ins and third-party ones go through the same entry points; failures are isolated."""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

import pytest

from oddoctor import hookimpl
from oddoctor.checks import Status, check, fail, ok
from oddoctor.manager import make_plugin_manager
from oddoctor.runner import run_checks
from oddoctor.snapshot import load_snapshot
from tests.helpers import SNAPSHOTS, run_json

HEALTHY = SNAPSHOTS / "core_healthy_h100_tf221.json"


@pytest.fixture
def ps():
    return make_plugin_manager()


def test_builtin_checks_come_from_entry_points(ps):
    report = run_checks(ps, load_snapshot(HEALTHY))
    plugins = {r.plugin for r in report.results}
    assert {"platform", "driver", "tensorflow", "cuda", "gpu", "memory", "packages"} <= plugins
    assert not ps.errors


def test_plugin_whose_hook_raises_is_reported_and_others_still_run(ps):
    class Boom:
        @hookimpl
        def oddoctor_checks(self):
            raise RuntimeError("boom")

    ps.pm.register(Boom(), name="boom")
    report = run_checks(ps, load_snapshot(HEALTHY))
    [r] = [r for r in report.results if r.plugin == "boom"]
    assert r.status is Status.ERROR and "boom" in r.message and "RuntimeError" in r.message
    assert any(r.id == "driver.present" and r.status is Status.OK for r in report.results)
    assert report.exit_code() == 1


def test_check_that_raises_becomes_an_error_naming_plugin_and_exception(ps):
    @check(id="demo.raises", title="Raises")
    def raises(snap):
        return {}["missing"]

    class P:
        @hookimpl
        def oddoctor_checks(self):
            return [raises]

    ps.pm.register(P(), name="third-party-demo")
    report = run_checks(ps, load_snapshot(HEALTHY))
    [r] = [r for r in report.results if r.id == "demo.raises"]
    assert r.status is Status.ERROR
    assert "third-party-demo" in r.message and "KeyError" in r.message
    assert "traceback" in r.details


def test_check_that_hangs_is_abandoned_after_its_budget(ps):
    @check(id="demo.hangs", title="Hangs", timeout_s=0.5)
    def hangs(snap):
        time.sleep(60)
        return ok("never")

    @check(id="demo.after", title="After")
    def after(snap):
        return fail("still ran", fix="nothing")

    class P:
        @hookimpl
        def oddoctor_checks(self):
            return [hangs, after]

    ps.pm.register(P(), name="slowpoke")
    t0 = time.monotonic()
    report = run_checks(ps, load_snapshot(HEALTHY))
    assert time.monotonic() - t0 < 10
    res = {r.id: r for r in report.results}
    assert res["demo.hangs"].status is Status.ERROR and "0.5 s budget" in res["demo.hangs"].message
    assert "slowpoke" in res["demo.hangs"].message
    assert res["demo.after"].status is Status.FAIL
    assert report.hung


def test_check_returning_garbage_and_duplicate_ids_are_errors(ps):
    @check(id="driver.present", title="Impostor")
    def impostor(snap):
        return ok("x")

    @check(id="demo.garbage", title="Garbage")
    def garbage(snap):
        return "fine"

    class P:
        @hookimpl
        def oddoctor_checks(self):
            return [impostor, garbage]

    ps.pm.register(P(), name="sloppy")
    report = run_checks(ps, load_snapshot(HEALTHY))
    errs = [r for r in report.results if r.status is Status.ERROR]
    assert any("already registered by driver" in r.message for r in errs)
    assert any(r.id == "demo.garbage" and "not a Result" in r.message for r in errs)


def test_check_ids_must_be_namespaced():
    with pytest.raises(ValueError, match=r"<area>\.<kebab-slug>"):
        check(id="NoArea", title="x")


PLUGIN_SRC = textwrap.dedent('''
    from oddoctor import hookimpl
    from oddoctor.checks import check, warn

    @check(id="acme.gpu-rental", title="ACME rental quota")
    def rental(snap):
        """The GPU name is on ACME's rental list."""
        return warn(f"{len(snap.nvml.gpus)} GPU(s) rented", fix="Ask ACME for more GPUs")

    @hookimpl
    def oddoctor_checks():
        return [rental]

    @hookimpl
    def oddoctor_facts():
        return {"acme_quota": lambda: {"gpus": 2}, "acme_broken": lambda: 1 / 0}
''')


def _make_distribution(root: Path) -> None:
    """A third-party package installed the way pip would: module + dist-info with entry points."""
    (root / "acme_oddoctor.py").write_text(PLUGIN_SRC)
    info = root / "acme_oddoctor-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-oddoctor\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[oddoctor]\nacme = acme_oddoctor\n")


@pytest.mark.timeout(120)
def test_third_party_plugin_registered_by_entry_point(tmp_path: Path):
    _make_distribution(tmp_path)
    env = {"PYTHONPATH": str(tmp_path)}
    code, doc = run_json("checks", env=env)
    rows = {c["id"]: c for c in doc["checks"]}
    assert rows["acme.gpu-rental"]["plugin"] == "acme"
    assert rows["acme.gpu-rental"]["description"] == "The GPU name is on ACME's rental list."
    code, doc = run_json("check", "--from", str(HEALTHY), "--strict", env=env)
    r = {r["id"]: r for r in doc["results"]}["acme.gpu-rental"]
    assert r["status"] == "warn" and r["fix"] == "Ask ACME for more GPUs" and code == 1


@pytest.mark.timeout(120)
def test_plugin_module_loaded_with_p_and_its_facts_collected(tmp_path: Path):
    (tmp_path / "acme_extra.py").write_text(PLUGIN_SRC)
    env = {"PYTHONPATH": str(tmp_path)}
    code, doc = run_json("check", "--from", str(HEALTHY), "-p", "acme_extra", "--only", "acme", env=env)
    assert [r["id"] for r in doc["results"]] == ["acme.gpu-rental"]
    code, doc = run_json("check", "--from", str(HEALTHY), "-p", "no_such_plugin_module", "--only", "plugin")
    assert code == 1
    assert doc["results"][0]["status"] == "error" and "ModuleNotFoundError" in doc["results"][0]["message"]


def test_fact_probes_fill_extra_and_a_failing_probe_is_recorded(tmp_path: Path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "acme_facts.py").write_text(PLUGIN_SRC)
    from oddoctor.collect import collect_snapshot
    from oddoctor.probes import tensorflow as tf_probe

    monkeypatch.setattr(tf_probe, "probe_tensorflow", lambda **kw: tf_probe.TensorFlowFacts())
    ps = make_plugin_manager(entry_points=False, modules=["acme_facts"])
    snap = collect_snapshot(ps)
    assert snap.extra["acme_quota"] == {"gpus": 2}
    assert any("acme_broken" in e.error and "ZeroDivisionError" in e.error for e in snap.probe_errors)


def test_a_misspelled_hook_is_an_error_naming_the_plugin_and_the_rest_still_run(tmp_path: Path, monkeypatch):
    (tmp_path / "acme_typo.py").write_text(textwrap.dedent('''
        from oddoctor import hookimpl
        from oddoctor.checks import check, ok

        @check(id="acme.never-seen", title="never seen")
        def never(snap):
            return ok("fine")

        @hookimpl
        def oddoctor_check():  # the hook is oddoctor_checks
            return [never]
    '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    ps = make_plugin_manager(modules=["acme_typo"])
    [err] = [e for e in ps.errors if e.plugin == "acme_typo"]
    assert "oddoctor_check" in err.message and "oddoctor_checks" in err.message and err.stage == "load"
    report = run_checks(ps, load_snapshot(HEALTHY))
    by_id = {r.id: r for r in report.results}
    assert "acme.never-seen" not in by_id
    assert any(r.status is Status.ERROR and r.plugin == "acme_typo" for r in report.results)
    assert by_id["driver.present"].status is Status.OK  # the built-ins still ran
