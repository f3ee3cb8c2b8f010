"""The Apache Beam pipeline that `oddoctor migrate` emits: on the DirectRunner it writes the very records
run_inference.py writes for the same images, and each worker process loads the model once."""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import run_oddoctor

SIZES = [(480, 640), (375, 500), (640, 480), (300, 420)]


def test_options_and_coco_array_without_a_model():
    pytest.importorskip("apache_beam")
    from oddoctor.migrate import beam_pipeline as bp

    args, beam_args = bp.parse_args(["a/*.jpg", "--output", "out/det", "--max-batch-size", "8",
                                     "--runner", "DirectRunner", "--direct_num_workers", "2"])
    assert args.patterns == ["a/*.jpg"] and args.max_batch_size == 8
    assert beam_args == ["--runner", "DirectRunner", "--direct_num_workers", "2"]  # left to Beam
    assert bp.DetectionModelHandler("m", min_batch_size=2, max_batch_size=8).batch_elements_kwargs() == {
        "min_batch_size": 2, "max_batch_size": 8}
    with pytest.raises(SystemExit):
        bp.parse_args(["a/*", "--output", "o", "--min-batch-size", "5", "--max-batch-size", "2"])
    results = [{"image_id": 2, "score": 0.5}, {"image_id": 1, "score": 0.4}, {"image_id": 1, "score": 0.9}]
    assert [(r["image_id"], r["score"]) for r in json.loads(bp.coco_array(results))] == [(1, 0.9), (1, 0.4), (2, 0.5)]
    assert bp.coco_array([]) == "[]"
    assert bp.is_image("x/A.JPG") and not bp.is_image("x/notes.txt")


@pytest.fixture(scope="module")
def migrated(tmp_path_factory):
    """(migrated dir, image folder): the built-in model migrated, PNGs and a JPEG of mixed sizes, a broken file."""
    pytest.importorskip("apache_beam")
    pytest.importorskip("tensorflow")
    np = pytest.importorskip("numpy")
    from PIL import Image

    from oddoctor_legacy_tf1.images import synthetic_image
    from oddoctor_legacy_tf1.model import build_model

    root = tmp_path_factory.mktemp("beam")
    model = build_model(root / "export" / "frozen_inference_graph.pb", seed=0)
    images = root / "images"
    images.mkdir()
    rng = np.random.default_rng(3)
    for i, (h, w) in enumerate(SIZES):
        Image.fromarray(synthetic_image(h, w, rng)).save(images / f"{i + 1:012d}.png")
    Image.fromarray(synthetic_image(480, 640, rng)).save(images / f"{9:012d}.jpg", quality=90)
    (images / "broken.png").write_bytes(b"not a png")
    (images / "notes.txt").write_text("not an image")
    proc = run_oddoctor("migrate", str(model), "--out", str(root / "migrated"), timeout=240)
    assert proc.returncode == 0, proc.stderr
    return root / "migrated", images


def run_script(migrated_dir, script, *args, timeout=400):
    """``script`` on ``args``; the runner without its TensorFlow preflight child (an import of its own, 5-7 s a
    call): it is the reference here, and tests/test_runner_faults.py tests the preflight."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    if script == "run_inference.py":
        args = (*args, "--no-preflight")
    return subprocess.run([sys.executable, str(migrated_dir / script), *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, env=env, cwd=migrated_dir.parent)


def shard_records(prefix) -> dict[str, dict]:
    records = {}
    for shard in sorted(glob.glob(f"{prefix}-*-of-*.jsonl")):
        for line in Path(shard).read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            assert record["file"] not in records, "an image written twice"
            records[record["file"]] = record
    return records


@pytest.mark.slow
@pytest.mark.tf
@pytest.mark.timeout(600)
def test_direct_runner_writes_the_runners_records_and_loads_the_model_once(migrated, tmp_path):
    from oddoctor.migrate import beam_pipeline

    out_dir, images = migrated
    assert (out_dir / "beam_pipeline.py").read_text() == Path(beam_pipeline.__file__).read_text()
    runner_out = tmp_path / "runner.jsonl"
    proc = run_script(out_dir, "run_inference.py", images, "--out", runner_out, "--score-threshold", 0.3)
    assert proc.returncode == 0, proc.stderr
    expected = [json.loads(line) for line in runner_out.read_text().splitlines()]
    assert len(expected) == 5 and sum(len(r["detections"]) for r in expected) >= 5

    summary = tmp_path / "summary.json"
    proc = run_script(out_dir, "beam_pipeline.py", f"{images}/*", "--output", tmp_path / "det",
                      "--score-threshold", 0.3, "--max-batch-size", 3, "--summary-json", summary)
    assert proc.returncode == 0, proc.stderr
    got = shard_records(tmp_path / "det")
    assert sorted(got) == sorted(r["file"] for r in expected)  # broken.png skipped, notes.txt not an image
    for record in expected:  # record by record: boxes, scores, classes and RLE masks alike
        assert got[record["file"]] == record
    counts = json.loads(summary.read_text())
    assert counts["images"] == 5 and counts["skipped"] == 1
    assert counts["model_loads"] == 1  # one worker (the DirectRunner's default), one load
    assert "skipped" in proc.stderr and "broken.png" in proc.stderr and "1 model load(s)" in proc.stderr


@pytest.mark.slow
@pytest.mark.tf
@pytest.mark.timeout(600)
def test_two_worker_processes_load_once_each_and_coco_results_match(migrated, tmp_path):
    out_dir, images = migrated
    runner_out = tmp_path / "runner.json"
    proc = run_script(out_dir, "run_inference.py", images, "--out", runner_out, "--format", "coco",
                      "--score-threshold", 0.3, "--label-map", tmp_path / "none.pbtxt")
    assert proc.returncode == 2 and "--label-map" in proc.stderr  # the runner checks its label map first
    proc = run_script(out_dir, "run_inference.py", images, "--out", runner_out, "--format", "coco",
                      "--score-threshold", 0.3)
    assert proc.returncode == 0, proc.stderr
    expected = json.loads(runner_out.read_text())

    summary = tmp_path / "summary.json"
    proc = run_script(out_dir, "beam_pipeline.py", f"{images}/*.png", f"{images}/*.jpg", "--output",
                      tmp_path / "det", "--format", "coco", "--score-threshold", 0.3, "--summary-json", summary,
                      "--direct_num_workers", 2, "--direct_running_mode", "multi_processing")
    assert proc.returncode == 0, proc.stderr
    got = json.loads((tmp_path / "det.coco.json").read_text())
    key = lambda r: json.dumps(r, sort_keys=True)  # noqa: E731
    assert sorted(got, key=key) == sorted(expected, key=key) and len(got) >= 5
    counts = json.loads(summary.read_text())
    assert counts["images"] == 5 and 1 <= counts["model_loads"] <= 2  # at most once per worker process
    assert len(shard_records(tmp_path / "det")) == 5

    proc = run_script(out_dir, "beam_pipeline.py", f"{images}/*", "--output", tmp_path / "x",
                      "--label-map", tmp_path / "none.pbtxt")
    assert proc.returncode == 2 and "--label-map" in proc.stderr and "Traceback" not in proc.stderr


def test_emitted_pipeline_is_lint_clean_with_ruff_defaults_too():
    import shutil

    from tests.helpers import REPO

    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    source = REPO / "oddoctor" / "migrate" / "beam_pipeline.py"
    for extra in (["--config", str(REPO / "pyproject.toml")], ["--isolated"]):
        proc = subprocess.run([ruff, "check", *extra, str(source)], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr
