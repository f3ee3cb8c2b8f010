"""The compat corpus: snapshots reconstructed from real public reports, diagnosed by `oddoctor check --from`.

Each ``report_*.json`` names its source (``source`` and ``_report.url``), quotes the report's exact text
(``_report.quote``) and says what must happen (``_expect``): which checks fail or warn, and which
versions the first one's fix must name. ``healthy_*.json`` snapshots must produce no failure at all.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from oddoctor.cli.main import app
from oddoctor_plugins import compat as compat_plugin
from tests.conftest import SNAPSHOTS, run_json

REPORTS = sorted(SNAPSHOTS.glob("report_*.json"))
HEALTHY = sorted(SNAPSHOTS.glob("healthy_*.json"))
COMPAT_IDS = {c.id for c in compat_plugin.CHECKS}

runner = CliRunner()


def _check_from(path: Path) -> tuple[int, dict[str, Any]]:
    """`oddoctor check --from PATH --json`, in process (the CLI code path, without a child process)."""
    res = runner.invoke(app, ["check", "--from", str(path), "--json"])
    assert res.exception is None or isinstance(res.exception, SystemExit), res.output
    return res.exit_code, json.loads(res.stdout)


def _by_id(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in doc["results"]}


def _raw(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def test_corpus_size_and_provenance():
    assert len(REPORTS) >= 15
    for path in REPORTS:
        data = _raw(path)
        rep = data["_report"]
        assert re.match(r"https://github\.com/[\w.-]+/[\w.-]+/(issues|pull)/\d+$", rep["url"]), path.name
        assert rep["url"] in data["source"], path.name
        assert rep["quote"].strip(), f"{path.name}: the report's exact text is missing"
        assert data["_expect"]["fails"] or data["_expect"].get("warns"), path.name


def test_corpus_covers_every_compat_check():
    expected: set[str] = set()
    for path in REPORTS:
        exp = _raw(path)["_expect"]
        expected |= set(exp["fails"]) | set(exp.get("warns", []))
    assert expected >= COMPAT_IDS, f"no report fixture exercises {sorted(COMPAT_IDS - expected)}"


@pytest.mark.parametrize("path", REPORTS, ids=lambda p: p.stem)
def test_report_fixture_is_diagnosed(path: Path):
    exp = _raw(path)["_expect"]
    code, doc = _check_from(path)
    results = _by_id(doc)
    for cid in exp["fails"]:
        assert results[cid]["status"] == "fail", f"{cid}: {results[cid]['status']}: {results[cid]['message']}"
    for cid in exp.get("warns", []):
        assert results[cid]["status"] == "warn", f"{cid}: {results[cid]['status']}: {results[cid]['message']}"
    # No noise from this plugin: every compat failure is one the report explains; nothing errors.
    compat_fails = {r["id"] for r in doc["results"] if r["plugin"] == "compat" and r["status"] == "fail"}
    assert compat_fails <= set(exp["fails"]), f"unexpected compat failures: {compat_fails - set(exp['fails'])}"
    assert not [r for r in doc["results"] if r["status"] == "error"]
    primary = results[(exp["fails"] or exp["warns"])[0]]
    for needle in exp["fix_contains"]:
        assert needle in (primary["fix"] or ""), f"{needle!r} not in fix: {primary['fix']}"
    assert code == (1 if exp["fails"] or doc["summary"]["fail"] else 0)


@pytest.mark.parametrize("path", HEALTHY, ids=lambda p: p.stem)
def test_healthy_snapshot_has_no_false_failure(path: Path):
    code, doc = _check_from(path)
    bad = [(r["id"], r["status"], r["message"]) for r in doc["results"] if r["status"] in ("fail", "error", "warn")]
    assert bad == []
    assert code == 0
    ran = {r["id"] for r in doc["results"] if r["plugin"] == "compat" and r["status"] == "ok"}
    # The compatibility checks really ran (not skipped) on a GPU box with TensorFlow installed.
    assert {"driver.cuda-floor", "python.tf-range", "cuda.runtime-match", "cudnn.runtime-match"} <= ran


def test_healthy_corpus_spans_generations():
    versions = {_raw(p)["tensorflow"]["version"].rsplit(".", 1)[0] for p in HEALTHY}
    assert len(HEALTHY) >= 5 and {"1.15", "2.10", "2.12", "2.15", "2.21"} <= versions


@pytest.mark.timeout(120)
def test_real_cli_diagnoses_a_report(snapshots_dir: Path):
    """The installed console entry point, in a child process, as a user runs it."""
    code, doc = run_json("check", "--from", str(snapshots_dir / "report_tf60913_cudnn_85_vs_86.json"))
    assert code == 1
    r = _by_id(doc)["cudnn.runtime-match"]
    assert r["status"] == "fail" and "8.6" in r["fix"] and "8.5.0" in r["message"]
