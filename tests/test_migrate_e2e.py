"""End to end: migrate the built-in legacy Mask R-CNN, run the emitted runner on a folder in a child
process, and check its JSON lines against the legacy TF1 Session (LegacyDetector) on the same files."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

import pytest

from tests.helpers import run_oddoctor
from tests.test_migrate_emit import rle_decode

pytestmark = [pytest.mark.tf, pytest.mark.slow]

SIZES = [(480, 640), (375, 500), (480, 640), (375, 500), (640, 480), (480, 640)]  # mixed in every batch


@pytest.fixture(scope="module")
def migrated(tmp_path_factory):
    """(legacy model path, migrated dir, image folder, image files) built once for the module."""
    pytest.importorskip("tensorflow")
    from PIL import Image

    from oddoctor_legacy_tf1.images import synthetic_image
    from oddoctor_legacy_tf1.model import build_model

    np = pytest.importorskip("numpy")
    root = tmp_path_factory.mktemp("e2e")
    model = build_model(root / "export" / "frozen_inference_graph.pb", seed=0)
    images = root / "images"
    images.mkdir()
    rng = np.random.default_rng(7)
    files = []
    for i, (h, w) in enumerate(SIZES):
        path = images / f"img{i}.png"  # lossless: TF's decoder and Pillow see the same pixels
        Image.fromarray(synthetic_image(h, w, rng)).save(path)
        files.append(path)
    (images / "z_truncated.png").write_bytes(files[0].read_bytes()[:200])
    (images / "z_not_an_image.jpg").write_bytes(b"hello")
    proc = run_oddoctor("migrate", str(model), "--out", str(root / "migrated"), "--json", timeout=180)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["parity"]["passed"] and doc["input"]["tensor"] == "image_tensor:0"
    assert max(doc["parity"]["max_abs_diff"].values()) <= 1e-4
    return model, root / "migrated", images, files


def run_runner(migrated_dir, *args, timeout=180, preflight=False):
    """The runner on ``args``; without its TensorFlow preflight child (an import of its own, 5-7 s a call here)
    unless ``preflight``: these tests are about its outputs; tests/test_runner_faults.py tests the preflight."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    args = (*args, *(() if preflight else ("--no-preflight",)))
    return subprocess.run([sys.executable, str(migrated_dir / "run_inference.py"), *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, env=env, cwd=migrated_dir)


@pytest.fixture(scope="module")
def reference(migrated):
    """The legacy TF1 Session's outputs (the leak-free LegacyDetector) on the same files."""
    from oddoctor_legacy_tf1.images import read_image
    from oddoctor_legacy_tf1.patterns import LegacyDetector

    model, _, _, files = migrated
    with LegacyDetector(model) as det:
        return {f.name: det(read_image(f)) for f in files}


def check_against_reference(lines, reference, threshold):
    np = pytest.importorskip("numpy")
    by_name = {os.path.basename(rec["file"]): rec for rec in lines}
    assert set(by_name) == set(reference)
    total = nonempty = 0
    for name, ref in reference.items():
        rec = by_name[name]
        h, w = rec["height"], rec["width"]
        n = int(ref["num_detections"])
        keep = [j for j in range(n) if ref["detection_scores"][j] >= threshold]
        dets = rec["detections"]
        assert len(dets) == len(keep), name
        total += len(dets)
        for det, j in zip(dets, keep):
            assert det["score"] == pytest.approx(float(ref["detection_scores"][j]), abs=1e-5)
            assert det["class_id"] == int(ref["detection_classes"][j])
            box = np.asarray(ref["detection_boxes"][j]) * [h, w, h, w]
            box = np.clip(box, 0, [h, w, h, w])
            assert det["box"] == pytest.approx(box.tolist(), abs=0.02)
            mask = np.asarray(rle_decode(det["mask"]), np.uint8)
            ref_mask = ref["detection_masks"][j]
            assert mask.shape == ref_mask.shape == (h, w)
            nonempty += int(ref_mask.sum() > 0)
            # Same op on numbers equal to ~1e-7: at most a pixel or two on the 0.5 boundary.
            assert int((mask != ref_mask).sum()) <= 2
    assert nonempty >= len(reference)  # real masks were compared, not only empty ones
    return total


@pytest.mark.timeout(400)
def test_runner_output_equals_the_legacy_session(migrated, reference, tmp_path):
    _, out_dir, images, _ = migrated
    out = tmp_path / "detections.jsonl"
    summary = tmp_path / "summary.json"
    proc = run_runner(out_dir, images, "--out", out, "--score-threshold", 0.3, "--summary-json", summary,
                      preflight=True)  # the user's path, preflight included
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert check_against_reference(lines, reference, 0.3) >= len(reference)  # several detections each
    stats = json.loads(summary.read_text())
    assert stats["images"] == 6
    assert sorted(os.path.basename(p) for p in stats["skipped"]) == ["z_not_an_image.jpg", "z_truncated.png"]
    assert "2 skipped (unreadable)" in proc.stderr and "z_truncated.png" in proc.stderr
    assert "images/s" in proc.stderr.splitlines()[-3]

    # --batch-size auto chose 4 for this small model (1 on a single core), said so on stderr and in the
    # summary. A batch held both image sizes, zero-padded to one shape; the model still saw each
    # image alone at its own size, so one image per call gives the very same lines.
    assert stats["batch_size_requested"] == "auto" and stats["batch_size_rule"]
    assert stats["batch_size"] == (4 if len(os.sched_getaffinity(0)) > 1 else 1)
    assert f"batch size auto: {stats['batch_size']}" in proc.stderr
    proc = run_runner(out_dir, images, "--score-threshold", 0.3, "--batch-size", 1, "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert "progress:" not in proc.stderr and "done: 6 images" in proc.stderr
    assert proc.stdout.splitlines() == out.read_text().splitlines()
    proc = run_runner(out_dir, images, "--score-threshold", 0.3, "--batch-size", 8, "--no-masks", "--quiet")
    assert proc.returncode == 0, proc.stderr
    batched = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["file"] for r in batched] == [r["file"] for r in lines]
    for a, b in zip(lines, batched):
        assert [{k: v for k, v in d.items() if k != "mask"} for d in a["detections"]] == b["detections"]


@pytest.mark.timeout(400)
def test_max_side_keeps_boxes_in_original_pixels(migrated, tmp_path):
    _, out_dir, _, files = migrated
    out = tmp_path / "small.jsonl"
    proc = run_runner(out_dir, files[0], "--out", out, "--max-side", 320, "--score-threshold", 0.3)
    assert proc.returncode == 0, proc.stderr
    [rec] = [json.loads(line) for line in out.read_text().splitlines()]
    assert (rec["height"], rec["width"]) == (480, 640)
    assert rec["detections"], "a downscaled image still yields detections"
    for det in rec["detections"]:
        ymin, xmin, ymax, xmax = det["box"]
        assert 0 <= ymin <= ymax <= 480 and 0 <= xmin <= xmax <= 640
        assert det["mask"]["size"] == [480, 640]


@pytest.mark.timeout(300)
def test_runner_bad_gpu_or_model_is_exit_2(migrated, tmp_path):
    _, out_dir, _, files = migrated
    proc = run_runner(out_dir, files[0], "--gpu", 7)  # this machine has fewer GPUs than that
    assert proc.returncode == 2 and "--gpu 7: TensorFlow sees" in proc.stderr
    proc = run_runner(out_dir, files[0], "--model", tmp_path / "nowhere")
    assert proc.returncode == 2 and "cannot load the SavedModel" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.timeout(300)
def test_tf1_saved_model_and_image_folder_parity(migrated, tmp_path):
    """A TF1 SavedModel export (variables frozen on load) migrates too; --images drives the parity check."""
    from oddoctor.migrate import migrate
    from oddoctor_legacy_tf1.model import build_model

    _, _, images, files = migrated
    export = build_model(tmp_path / "saved_model", seed=0, saved_model=True)
    report = migrate(export, tmp_path / "out", images_dir=images)
    assert report["source"]["kind"] == "saved_model"
    parity = report["parity"]
    assert parity["passed"] and parity["images"] == len(files)
    assert parity["image_names"] == [f.name for f in files]
    assert sorted(s.split(":")[0] for s in parity["skipped_images"]) == ["z_not_an_image.jpg", "z_truncated.png"]
    assert (tmp_path / "out" / "saved_model" / "saved_model.pb").is_file()


def wait_for_progress(proc: subprocess.Popen, limit_s: float = 240) -> None:
    """Read the runner's stderr until its first progress line (they come every 2 s once images flow)."""
    seen = []
    deadline = time.monotonic() + limit_s
    for line in proc.stderr:
        seen.append(line)
        if line.startswith("progress:") or time.monotonic() > deadline:
            break
    assert seen and seen[-1].startswith("progress:"), "".join(seen)


@pytest.mark.timeout(300)
def test_runner_interrupted_mid_run_leaves_no_output_and_exits_130(migrated, tmp_path):
    import signal

    _, out_dir, _, files = migrated
    many = tmp_path / "many"
    many.mkdir()
    for i in range(400):  # long enough that the interrupt lands inside the image loop
        (many / f"{i:04d}.png").symlink_to(files[i % len(files)])
    out = tmp_path / "det.jsonl"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.Popen([sys.executable, str(out_dir / "run_inference.py"), str(many), "--out", str(out)],
                            stderr=subprocess.PIPE, text=True, env=env, cwd=out_dir)
    wait_for_progress(proc)
    proc.send_signal(signal.SIGINT)
    rest = proc.stderr.read()
    assert proc.wait(timeout=60) == 130, rest
    assert "Traceback" not in rest
    assert re.search(r"error: interrupted after \d+ images; .*det\.jsonl not written", rest), rest
    assert not out.exists() and not list(tmp_path.glob("det.jsonl*"))
