"""`oddoctor migrate` and the emitted runner on the Object Detection API's own Mask R-CNN Inception v2.

The model is built by ``oddoctor_legacy_tf1.odapi.ensure_model`` (seeded weights, cached in
~/.cache/oddoctor/models); building it needs `python -m oddoctor_legacy_tf1.odapi install` once.
Each test is kept short for CI's 2 cores: one migration for the module (about 40 s: conversion and
the 4-image parity run), two JPEGs through the runner and the legacy Session.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from oddoctor_legacy_tf1 import odapi
from tests.helpers import run_oddoctor
from tests.test_migrate_emit import rle_decode

pytestmark = [pytest.mark.tf, pytest.mark.slow]

SIZES = [(375, 500), (480, 360)]  # two sizes, two aspect ratios (the model resizes to 300-512 itself)
SCORE_THRESHOLD = 0.3
SKIP_REASON = f"OD API site not installed in {odapi.site_dir()}; run: {odapi.INSTALL_HINT}"


@pytest.fixture(scope="module")
def real_model(tmp_path_factory):
    """(frozen graph, migrated dir, migrate --json document), migrated once for the module."""
    pytest.importorskip("tensorflow")
    if not (odapi.is_built(size=300, seed=0) or odapi.is_installed()):
        pytest.skip(SKIP_REASON)
    frozen = odapi.ensure_model(size=300, seed=0) / odapi.FROZEN_GRAPH
    out = tmp_path_factory.mktemp("odapi") / "migrated"
    proc = run_oddoctor("migrate", str(frozen), "--out", str(out), "--json", timeout=600)
    assert proc.returncode == 0, proc.stderr
    return frozen, out, json.loads(proc.stdout)


@pytest.fixture(scope="module")
def jpegs(tmp_path_factory):
    np = pytest.importorskip("numpy")
    from PIL import Image

    from oddoctor_legacy_tf1.images import synthetic_image

    folder = tmp_path_factory.mktemp("odapi-images")
    rng = np.random.default_rng(11)
    for i, (h, w) in enumerate(SIZES):
        Image.fromarray(synthetic_image(h, w, rng)).save(folder / f"img{i}.jpg", quality=90)
    return folder


@pytest.mark.timeout(900)
def test_migrate_parity_on_the_real_model(real_model):
    _, out, doc = real_model
    assert doc["ok"] and doc["parity"]["passed"] and doc["parity"]["images"] == 4
    assert set(doc["parity"]["max_abs_diff"]) == {"detection_boxes", "detection_scores", "detection_classes",
                                                  "num_detections", "detection_masks"}
    assert max(doc["parity"]["max_abs_diff"].values()) <= 1e-4
    assert doc["input"]["tensor"] == "image_tensor:0" and doc["input"]["shape"] == [None, None, None, 3]
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "beam_pipeline.py", "migration.json",
                                                     "run_inference.py", "saved_model"]


@pytest.mark.timeout(900)
def test_detect_fn_is_callable_like_a_tf2_export(real_model):
    """The TF2 OD API tutorial's code on the migrated real model: the signature's outputs, same keys and values."""
    tf = pytest.importorskip("tensorflow")
    np = pytest.importorskip("numpy")
    from oddoctor_legacy_tf1.images import synthetic_image

    _, out, _ = real_model
    detect_fn = tf.saved_model.load(str(out / "saved_model"))
    input_tensor = tf.convert_to_tensor(synthetic_image(300, 400, np.random.default_rng(5)))[tf.newaxis, ...]
    detections = detect_fn(input_tensor)
    reference = detect_fn.signatures["serving_default"](input_tensor=input_tensor)
    assert set(detections) == set(reference) == {"detection_boxes", "detection_scores", "detection_classes",
                                                 "num_detections", "detection_masks"}
    for key, value in reference.items():
        np.testing.assert_array_equal(detections[key].numpy(), value.numpy(), err_msg=key)
    assert detections["detection_masks"].shape[:2] == detections["detection_scores"].shape


@pytest.mark.timeout(900)
def test_runner_equals_the_legacy_session_on_jpegs(real_model, jpegs, tmp_path):
    """The runner (defaults: accurate JPEG IDCT, --batch-size auto) vs the TF1 Session fed PIL's pixels."""
    np = pytest.importorskip("numpy")
    from oddoctor_legacy_tf1.images import read_image
    from oddoctor_legacy_tf1.patterns import LegacyDetector

    frozen, out, _ = real_model
    lines_file, summary = tmp_path / "det.jsonl", tmp_path / "summary.json"
    proc = subprocess.run([sys.executable, str(out / "run_inference.py"), str(jpegs), "--out", str(lines_file),
                           "--score-threshold", str(SCORE_THRESHOLD), "--summary-json", str(summary),
                           "--no-preflight"],
                          capture_output=True, text=True, timeout=600, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert proc.returncode == 0, proc.stderr
    stats = json.loads(summary.read_text())
    # A large model: --batch-size auto keeps one image per call (batch 4 was slower here, and bigger).
    assert (stats["batch_size_requested"], stats["batch_size"], stats["threads"]) == ("auto", 1, 0)
    assert "MiB >= 16 MiB" in stats["batch_size_rule"] and "batch size auto: 1" in proc.stderr
    records = {os.path.basename(r["file"]): r for r in map(json.loads, lines_file.read_text().splitlines())}
    assert sorted(records) == ["img0.jpg", "img1.jpg"]
    compared = 0
    with LegacyDetector(frozen) as detector:
        for name, rec in records.items():
            ref = detector(read_image(jpegs / name))
            h, w = rec["height"], rec["width"]
            keep = [j for j in range(int(ref["num_detections"])) if ref["detection_scores"][j] >= SCORE_THRESHOLD]
            assert len(rec["detections"]) == len(keep), name
            for det, j in zip(rec["detections"], keep):
                assert det["score"] == pytest.approx(float(ref["detection_scores"][j]), abs=1e-5)
                assert det["class_id"] == int(ref["detection_classes"][j])
                box = np.clip(np.asarray(ref["detection_boxes"][j]) * [h, w, h, w], 0, [h, w, h, w])
                assert det["box"] == pytest.approx(box.tolist(), abs=0.02)
                mask = np.asarray(rle_decode(det["mask"]), np.uint8)
                assert mask.shape == ref["detection_masks"][j].shape == (h, w)
                # Same arithmetic on equal numbers: at most a pixel or two on the threshold boundary.
                assert int((mask != ref["detection_masks"][j]).sum()) <= 2
                compared += 1
    assert compared >= 2  # real detections (and masks) were compared, not two empty lists
