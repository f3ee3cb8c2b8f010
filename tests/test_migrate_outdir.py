"""The migration's output directory: atomic, never overwritten without --force, never half-written."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from oddoctor.cli.main import app
from oddoctor.migrate.outdir import OutputDirError, StagedDir


def siblings(path):
    return sorted(p.name for p in path.parent.iterdir())


def fail_half_way(out, force=False):
    with StagedDir(out, force=force) as staged:
        (staged.path / "half.txt").write_text("half")
        raise RuntimeError("boom")


def test_commit_moves_the_finished_directory_into_place(tmp_path):
    out = tmp_path / "migrated"
    with StagedDir(out) as staged:
        (staged.path / "a.txt").write_text("new")
        assert not out.exists()  # nothing visible until commit
        staged.commit()
    assert (out / "a.txt").read_text() == "new"
    assert siblings(out) == ["migrated"]


def test_failure_leaves_nothing_behind(tmp_path):
    out = tmp_path / "migrated"
    with pytest.raises(RuntimeError, match="boom"):
        fail_half_way(out)
    assert siblings(out) == []


def test_existing_directory_is_refused_without_force_and_kept(tmp_path):
    out = tmp_path / "migrated"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    with pytest.raises(OutputDirError, match="--force"), StagedDir(out):
        pass
    assert (out / "mine.txt").read_text() == "keep me"


def test_force_replaces_only_after_success(tmp_path):
    out = tmp_path / "migrated"
    out.mkdir()
    (out / "old.txt").write_text("old")
    with pytest.raises(RuntimeError, match="boom"):
        fail_half_way(out, force=True)
    assert sorted(p.name for p in out.iterdir()) == ["old.txt"]
    with StagedDir(out, force=True) as staged:
        (staged.path / "new.txt").write_text("new")
        staged.commit()
    assert sorted(p.name for p in out.iterdir()) == ["new.txt"]
    assert siblings(out) == ["migrated"]


def test_force_never_destroys_the_input_model_or_a_file(tmp_path):
    model_dir = tmp_path / "export"
    model_dir.mkdir()
    (model_dir / "frozen_inference_graph.pb").write_bytes(b"x")
    for out in (model_dir, tmp_path):
        with pytest.raises(OutputDirError, match="input"), StagedDir(out, force=True, protect=(model_dir,)):
            pass
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    with pytest.raises(OutputDirError, match="not a directory"), StagedDir(a_file, force=True):
        pass
    assert (model_dir / "frozen_inference_graph.pb").exists() and a_file.exists()


def test_cli_refuses_existing_out_with_exit_2_before_loading_anything(tmp_path, capsys):
    model = tmp_path / "frozen_inference_graph.pb"
    model.write_bytes(b"not even a graph")
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(SystemExit) as exc:
        app(["migrate", str(model), "--out", str(out)], prog_name="oddoctor")
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "already exists" in err and "--force" in err and "Traceback" not in err


def test_cli_missing_model_is_exit_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        app(["migrate", str(tmp_path / "nope.pb"), "--out", str(tmp_path / "o")], prog_name="oddoctor")
    assert exc.value.code == 2
    assert "no such file" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_source_digest_of_a_file_and_of_a_savedmodel_directory(tmp_path: Path) -> None:
    import hashlib

    from oddoctor.migrate.pipeline import source_digest

    pb = tmp_path / "frozen_inference_graph.pb"
    pb.write_bytes(b"graph bytes")
    assert source_digest(pb) == hashlib.sha256(b"graph bytes").hexdigest()
    a, b = tmp_path / "a" / "saved_model", tmp_path / "b" / "saved_model"
    for root, order in ((a, ("saved_model.pb", "variables/variables.index")),
                        (b, ("variables/variables.index", "saved_model.pb"))):  # written in another order
        for rel in order:
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(rel.encode())
    assert source_digest(a) == source_digest(b) and len(source_digest(a) or "") == 64
    (b / "variables" / "variables.index").write_bytes(b"changed")
    assert source_digest(a) != source_digest(b)
    # a file renamed inside the export changes the digest too (paths are part of it)
    (a / "saved_model.pb").rename(a / "saved_model2.pb")
    assert source_digest(a) != source_digest(b)
    assert source_digest(tmp_path / "missing") is None


def test_tensorflow_log_floor_respects_the_user(monkeypatch) -> None:
    import os

    from oddoctor.migrate import pipeline

    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "0")
    pipeline._quiet_cpu_only_logs()
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0"
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL")
    monkeypatch.setattr(os.path, "exists", lambda p: False)
    pipeline._quiet_cpu_only_logs()
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == ("3" if sys.platform.startswith("linux") else "2")
