"""`--format markdown`: a report to paste into a bug, with nothing personal in it."""

from __future__ import annotations

import json

import pytest

from oddoctor.manager import make_plugin_manager
from oddoctor.report_md import Redactor, render_markdown
from oddoctor.runner import run_checks
from oddoctor.snapshot import Snapshot
from tests.helpers import SNAPSHOTS


def _personal_snapshot() -> Snapshot:
    """A healthy-looking H100 snapshot carrying a host name, a home folder and a user name everywhere."""
    data = json.loads((SNAPSHOTS / "core_gpu_held_by_other_process.json").read_text())
    data["hostname"] = "gpu-node-17.corp.example"
    data["python"]["executable"] = "/home/alice/.venvs/od/bin/python"
    data["env"]["PATH"] = "/home/alice/.venvs/od/bin:/home/alice/bin:/opt/acme-secret/bin:/usr/local/cuda/bin:/usr/bin"
    data["env"]["LD_LIBRARY_PATH"] = "/home/alice/cudnn/lib64:/usr/local/cuda/lib64"
    data["env"]["USER"] = "alice"
    data["tensorflow"]["probe"]["stderr_tail"] = ["alice@gpu-node-17:~$ python train.py",
                                                  "W gpu-node-17 /Users/alice/x.py:3] note"]
    return Snapshot.from_dict(data)


@pytest.fixture(scope="module")
def ps():
    return make_plugin_manager()


def test_the_markdown_report_has_no_host_name_home_path_or_user_name(ps):
    snap = _personal_snapshot()
    text = render_markdown(run_checks(ps, snap), origin="this machine")
    for secret in ("alice", "gpu-node-17", "corp.example", "/home/", "/Users/", "acme-secret"):
        assert secret not in text, secret
    assert "~/.venvs/od/bin/python" in text  # the path survives, without whose home it is
    assert "| `PATH` | ~/.venvs/od/bin:/usr/local/cuda/bin (+3 other entries not shown) |" in text
    assert "| `LD_LIBRARY_PATH` | ~/cudnn/lib64:/usr/local/cuda/lib64 |" in text


def test_the_markdown_report_states_versions_and_puts_each_problem_with_its_fix(ps):
    snap = _personal_snapshot()
    report = run_checks(ps, snap)
    text = render_markdown(report)
    assert text.startswith("### Environment (oddoctor ")
    assert "| TensorFlow | 2.21.0 (tensorflow)" in text and "| TensorFlow built for | CUDA 12.5.1, cuDNN 9" in text
    assert "| NVIDIA driver | 560.35.03" in text and "NVIDIA H100 80GB HBM3 (cc 9.0" in text
    diagnosis = text.split("### Diagnosis", 1)[1]
    problems = [r for r in report.results if r.status.value in ("fail", "error", "warn")]
    assert problems
    for r in problems:
        assert f"**{r.id}**" in diagnosis
        if r.fix:
            assert "  - fix: " + Redactor(snap)(r.fix) in diagnosis
    assert report.exit_code() == 0 and report.exit_code(strict=True) == 1  # warnings only
    assert "verdict: **ok**" in text and "verdict: **problems**" in render_markdown(report, strict=True)


@pytest.mark.parametrize("name", ["real_h200_idle_no_tf.json", "real_h200_busy_other_process.json"])
def test_real_snapshots_render_unknowns_as_unknown(ps, name):
    path = SNAPSHOTS / "corpus" / name
    text = render_markdown(run_checks(ps, Snapshot.from_dict(json.loads(path.read_text()))))
    assert "| TensorFlow | not installed |" in text
    assert "| Related packages | unknown |" in text  # the snapshot did not list packages: unknown, not "none"
    assert "NVIDIA H200 (cc 9.0" in text


def test_redactor_leaves_text_without_personal_data_alone():
    snap = Snapshot.from_dict({"schema_version": 2, "hostname": "box"})
    text = "TensorFlow 2.21.0 on /usr/local/cuda/lib64; the sandbox boxes"
    assert Redactor(snap)(text) == text
    assert Redactor(snap)("ssh box; box.local") == "ssh <hostname>; <hostname>.local"
