"""The diagnosis corpus: real machines, rebuilt from public reports holding only what each report states, or
collected on real hardware (tests/snapshots/corpus/README.md). Each broken case must name its root cause with
the fix that worked; each healthy one must come out clean; the user's log alone (``--log``) must name the same
root cause as the snapshot that carries it.

A case whose report does not state enough to diagnose it is "undiagnosable": the checks that would own its cause
must say "could not tell", and nothing may fail that the stated facts do not show (a doctor that names the wrong
cause is worse than none). A broken case that is not diagnosed yet carries ``_expect.known_gap``: a strict xfail,
so the day it is diagnosed the test fails until the note is removed.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
from typer.testing import CliRunner

from oddoctor.cli.main import app
from oddoctor.snapshot import Snapshot
from tests.corpus_eval import corpus_files, evaluate, raw, table
from tests.helpers import REPO, SNAPSHOTS, run_json, run_oddoctor

CASES = corpus_files()
BROKEN = [p for p in CASES if raw(p)["_expect"].get("kind", "broken") == "broken"]
HEALTHY = [p for p in CASES if raw(p)["_expect"].get("kind") == "healthy"]
UNDIAGNOSABLE = [p for p in CASES if raw(p)["_expect"].get("kind") == "undiagnosable"]
WITH_LOG = [p for p in BROKEN if raw(p).get("user_log")]
SNAPSHOT_SCHEMA = json.loads((REPO / "oddoctor" / "schemas" / "snapshot.schema.json").read_text())
REPORT_SCHEMA = json.loads((REPO / "oddoctor" / "schemas" / "check-report.schema.json").read_text())
runner = CliRunner()


def _param(paths: list[Path]) -> list:
    out = []
    for p in paths:
        gap = raw(p)["_expect"].get("known_gap")
        marks = [pytest.mark.xfail(reason=gap, strict=True)] if gap else []
        out.append(pytest.param(p, id=p.stem, marks=marks))
    return out


def test_corpus_size_and_provenance():
    assert len(BROKEN) + len(UNDIAGNOSABLE) >= 66 and len(HEALTHY) >= 10  # 26 rewritten + 40 new; 10 healthy
    real = [p for p in CASES if p.stem.startswith("real_")]
    assert len(real) >= 3
    for path in CASES:
        data = raw(path)
        rep = data["_report"]
        if path.stem.startswith("real_"):
            assert "collected" in data["source"], path.name
            continue
        assert re.match(r"https://", rep["url"]), path.name
        assert rep["url"] in data["source"], path.name
        assert rep["quote"].strip(), f"{path.name}: the report's exact text is missing"
        assert isinstance(rep.get("unknowns"), list), f"{path.name}: list what the report does not state"
        exp = data["_expect"]
        assert exp.get("kind", "broken") in ("broken", "healthy", "undiagnosable"), path.name
        if exp.get("kind", "broken") == "broken":
            assert exp["root_cause"] and exp["status"] in ("fail", "warn"), path.name
        if exp.get("kind") == "undiagnosable":
            assert exp["why"] and exp["could_not_tell"], path.name


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_fixture_is_a_valid_schema_2_snapshot(path: Path):
    data = raw(path)
    jsonschema.validate(data, SNAPSHOT_SCHEMA)
    snap = Snapshot.from_dict(data)
    assert snap.schema_version == 2


@pytest.mark.parametrize("path", _param(BROKEN))
def test_broken_case_names_its_root_cause_and_fix(path: Path):
    case = evaluate(path)
    assert case.got == case.want, f"{case.root_cause}: {case.got}: {case.message}"
    assert not case.missing_in_fix, f"fix lacks {case.missing_in_fix}: {case.fix}"
    assert not [e for e in case.extras if e.endswith(":error")], case.extras


@pytest.mark.parametrize("path", _param(HEALTHY))
def test_healthy_case_is_clean(path: Path):
    case = evaluate(path)
    assert case.extras == []


@pytest.mark.parametrize("path", _param(UNDIAGNOSABLE))
def test_undiagnosable_case_says_could_not_tell_and_invents_nothing(path: Path):
    case = evaluate(path)
    assert case.missing_in_fix == [], f"these checks should say 'could not tell': {case.missing_in_fix}"
    assert case.extras == []


@pytest.mark.parametrize("path", _param(WITH_LOG))
def test_log_given_with_check_log_names_the_same_root_cause(path: Path, tmp_path: Path):
    """The snapshot without its log, plus the log through `oddoctor check --log`, as a user runs it."""
    data = raw(path)
    lines = data.pop("user_log")
    snap = tmp_path / "snap.json"
    snap.write_text(json.dumps(data), encoding="utf-8")
    log = tmp_path / "train.log"
    log.write_text("\n".join(lines) + "\n", encoding="utf-8")
    res = runner.invoke(app, ["check", "--from", str(snap), "--log", str(log), "--json"])
    doc = json.loads(res.stdout)
    exp = data["_expect"]
    got = {r["id"]: r for r in doc["results"]}[exp["root_cause"]]
    assert got["status"] == exp["status"], got["message"]
    for needle in exp.get("fix_contains", []):
        assert needle.lower() in (got["fix"] or "").lower()
    assert doc["snapshot"]["facts"]["user_log_lines"] == len([ln for ln in lines if ln.strip()])
    jsonschema.validate(doc, REPORT_SCHEMA)


def test_log_from_stdin_through_the_real_cli(tmp_path: Path):
    path = SNAPSHOTS / "corpus" / "tf_60913_cudnn_85_vs_86.json"
    data = raw(path)
    lines = data.pop("user_log")
    snap = tmp_path / "snap.json"
    snap.write_text(json.dumps(data), encoding="utf-8")
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "oddoctor", "check", "--from", str(snap), "--log", "-", "--json"],
                          input="\n".join(lines), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    r = {r["id"]: r for r in json.loads(proc.stdout)["results"]}["cudnn.runtime-match"]
    assert r["status"] == "fail" and "8.5.0" in r["message"]


@pytest.mark.parametrize(("args", "expect"), [
    (["--log", "{missing}"], "no such file"),
    (["--log", "{dir}"], "is a directory"),
    (["--log", "{empty}"], "the log is empty"),
    (["--from", "-", "--log", "-"], "both want stdin"),
])
def test_bad_log_is_a_usage_error(tmp_path: Path, args: list[str], expect: str):
    empty = tmp_path / "empty.log"
    empty.write_text("\n\n")
    subs = {"missing": str(tmp_path / "nope.log"), "dir": str(tmp_path), "empty": str(empty)}
    argv = [a.format(**subs) for a in args]
    if "--from" not in argv:
        argv = ["--from", str(SNAPSHOTS / "core_healthy_h100_tf221.json"), *argv]
    proc = run_oddoctor("check", *argv)
    assert proc.returncode == 2
    assert expect in proc.stderr and "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_accuracy_table_reports_every_case():
    cases = [evaluate(p) for p in CASES]
    text = table(cases)
    assert f"/{len(BROKEN)}**" in text and f"/{len(HEALTHY)}**" in text and f"/{len(UNDIAGNOSABLE)}**" in text
    assert len([ln for ln in text.splitlines() if ln.startswith("| ✓") or ln.startswith("| ✗")]) == len(CASES)


@pytest.mark.timeout(120)
def test_real_h200_with_a_selection_that_names_no_gpu():
    """Collected on a real H200: CUDA_VISIBLE_DEVICES=1 on a one-GPU box is a failure naming GPU 0; the busy
    GPU 0 the job cannot see is not judged."""
    code, doc = run_json("check", "--from", str(SNAPSHOTS / "corpus" / "real_h200_cvd_1_on_one_gpu.json"))
    res = {r["id"]: r for r in doc["results"]}
    r = res["gpu.cuda-visible-devices"]
    assert code == 1 and r["status"] == "fail" and "there is no GPU 1" in r["message"]
    assert "CUDA_VISIBLE_DEVICES=0" in r["fix"]
    assert res["gpu.other-processes"]["status"] == "skip" and res["gpu.min-vram"]["status"] == "skip"


def test_no_message_or_fix_holds_a_placeholder_or_an_unknown_value():
    """A fix never contains an unknown value ("None", an empty PATH entry) or an unfilled template field."""
    from oddoctor.checks import Context
    from tests.corpus_eval import diagnose_with

    bad = re.compile(r"\bNone\b|\{[a-z_]+\}|=:\$|''|\[\]")
    for path in CASES:
        for ctx in (Context(), Context(expect_gpu=True), Context(target_tf="2.15")):
            for r in diagnose_with(Snapshot.from_dict(raw(path)), ctx):
                for text in (r.message, r.fix or ""):
                    assert not bad.search(text), f"{path.stem} {r.id}: {text}"
