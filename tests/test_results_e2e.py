"""End to end on the built-in legacy Mask R-CNN, migrated: the runner's --label-map, --draw and --format coco
on real detections, and `oddoctor eval` giving the migrated model and the legacy Session the same mAP."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.helpers import run_oddoctor

pytestmark = [pytest.mark.tf, pytest.mark.slow]

SIZES = [(480, 640), (375, 500), (640, 480)]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """(migrated dir, image folder, image files, COCO ground truth path): the ground truth is the legacy
    Session's own detections scoring 0.5 or more (boxes and masks), so both models should score ~1."""
    pytest.importorskip("tensorflow")
    pytest.importorskip("pycocotools")
    np = pytest.importorskip("numpy")
    from PIL import Image

    from oddoctor.migrate import evaluate as ev
    from oddoctor.migrate import run_inference as ri
    from oddoctor_legacy_tf1.detector import LegacyDetector
    from oddoctor_legacy_tf1.images import read_image, synthetic_image
    from oddoctor_legacy_tf1.model import build_model

    root = tmp_path_factory.mktemp("results")
    model = build_model(root / "export" / "frozen_inference_graph.pb", seed=0)
    images = root / "images"
    images.mkdir()
    rng = np.random.default_rng(5)
    files = []
    for i, (h, w) in enumerate(SIZES):
        path = images / f"img{i}.png"
        Image.fromarray(synthetic_image(h, w, rng)).save(path)
        files.append(path)
    jpeg = images / "img3.jpg"  # decoded with the accurate IDCT by the runner, by PIL for the legacy Session
    Image.fromarray(synthetic_image(480, 640, rng)).save(jpeg, quality=92)
    files.append(jpeg)
    (images / "z_broken.png").write_bytes(b"not a png")
    proc = run_oddoctor("migrate", str(model), "--out", str(root / "migrated"), "--json", timeout=240)
    assert proc.returncode == 0, proc.stderr

    gt = {"images": [], "annotations": [], "categories": []}
    with LegacyDetector(model) as detect:
        for i, f in enumerate(files):
            image = read_image(f)
            record = ev.legacy_record(str(f), image.shape[0], image.shape[1], detect(image), 0.5)
            gt["images"].append({"id": 100 + i, "file_name": f.name, "height": image.shape[0],
                                 "width": image.shape[1]})
            for r in ri.coco_results(record, 100 + i):
                area = float(ri.rle_decode(r["segmentation"]).sum())
                gt["annotations"].append({**r, "id": len(gt["annotations"]) + 1, "area": area, "iscrowd": 0})
    gt["categories"] = [{"id": c, "name": f"class-{c}"}
                        for c in sorted({a["category_id"] for a in gt["annotations"]})]
    assert len(gt["annotations"]) >= len(files)  # several objects to find
    gt_path = root / "instances.json"
    gt_path.write_text(json.dumps(gt))
    return root / "migrated", images, files, gt_path


def run_runner(migrated_dir, *args, timeout=240):
    """The runner on ``args``, without its TensorFlow preflight child (an import of its own, 5-7 s a call here):
    these tests are about what it writes; tests/test_runner_faults.py tests the preflight."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    args = (*args, "--no-preflight")
    return subprocess.run([sys.executable, str(migrated_dir / "run_inference.py"), *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, env=env, cwd=migrated_dir)


@pytest.mark.timeout(400)
def test_label_names_and_drawings(setup, tmp_path):
    np = pytest.importorskip("numpy")
    from PIL import Image

    from oddoctor.migrate import run_inference as ri

    migrated, images, files, _ = setup
    label_map = tmp_path / "label_map.pbtxt"
    label_map.write_text("".join(f'item {{\n  name: "/m/{c:04d}"\n  id: {c}\n  display_name: "thing {c}"\n}}\n'
                                 for c in range(1, 60)))
    out, drawings = tmp_path / "det.jsonl", tmp_path / "drawn"
    proc = run_runner(migrated, images, "--out", out, "--label-map", label_map, "--draw", drawings,
                      "--summary-json", tmp_path / "s.json")
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    dets = [d for r in records for d in r["detections"]]
    assert dets and all(d["class_name"] == (f"thing {d['class_id']}" if d["class_id"] < 60 else None) for d in dets)
    assert sorted(p.name for p in drawings.iterdir()) == [f.stem + ".png" for f in files]
    assert json.loads((tmp_path / "s.json").read_text())["drawn"] == len(files)
    for record in records:
        drawn = np.asarray(Image.open(drawings / (os.path.splitext(os.path.basename(record["file"]))[0] + ".png")))
        assert drawn.shape == (record["height"], record["width"], 3)
        if not record["detections"]:
            continue
        last = record["detections"][-1]  # drawn last: nothing covers its outline
        ymin, xmin, ymax, _ = last["box"]
        edge = drawn[int((ymin + ymax) / 2), int(np.floor(xmin))]
        assert (edge == ri.class_color(last["class_id"])).all()
    assert any(r["detections"] for r in records)


@pytest.mark.timeout(400)
def test_coco_results_load_with_pycocotools(setup, tmp_path):
    from pycocotools.coco import COCO

    migrated, images, files, gt_path = setup
    out = tmp_path / "results.json"
    proc = run_runner(migrated, images, "--out", out, "--format", "coco", "--coco-gt", gt_path,
                      "--score-threshold", 0.3)
    assert proc.returncode == 0, proc.stderr
    results = json.loads(out.read_text())
    assert {r["image_id"] for r in results} <= {100, 101, 102, 103} and len(results) >= len(files)
    gt = COCO(str(gt_path))
    loaded = gt.loadRes(str(out))
    assert len(loaded.getAnnIds()) == len(results)
    lines = run_runner(migrated, images, "--score-threshold", 0.3, "--quiet")
    assert sum(len(json.loads(line)["detections"]) for line in lines.stdout.splitlines()) == len(results)
    # An image the annotations do not list is skipped with a warning; none listed is exit 2.
    proc = run_runner(migrated, images, "--format", "coco", "--coco-gt", tmp_path / "none.json")
    assert proc.returncode == 2 and "--coco-gt" in proc.stderr and "Traceback" not in proc.stderr
    (tmp_path / "other.json").write_text(json.dumps({"images": [{"id": 1, "file_name": "elsewhere.jpg"}]}))
    proc = run_runner(migrated, images, "--format", "coco", "--coco-gt", tmp_path / "other.json")
    assert proc.returncode == 2 and "none of the" in proc.stderr


@pytest.mark.timeout(600)
def test_eval_gives_migrated_and_legacy_the_same_map(setup):
    migrated, images, _, gt_path = setup
    proc = run_oddoctor("eval", str(migrated), "--images", str(images), "--coco-gt", str(gt_path), "--json",
                        timeout=500)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["images"] == 4 and report["skipped"] == []  # z_broken.png is not in the annotations
    assert report["iou_types"] == ["bbox", "segm"]
    for iou_type in ("bbox", "segm"):
        legacy, new = report["legacy"][iou_type], report["migrated"][iou_type]
        assert legacy["AP"] > 0.9, legacy  # the ground truth is the legacy model's own detections
        assert new["AP"] == pytest.approx(legacy["AP"], abs=1e-3), (iou_type, new, legacy)
    assert report["passed"] and report["max_abs_diff"] <= 0.01
    proc = run_oddoctor("eval", str(migrated), "--images", str(images), "--coco-gt", str(gt_path), "--no-legacy")
    assert proc.returncode == 0, proc.stderr
    assert "bbox AP" in proc.stdout and "legacy" not in proc.stdout


def test_eval_bad_input_is_exit_2(tmp_path):
    pytest.importorskip("pycocotools")
    proc = run_oddoctor("eval", str(tmp_path), "--images", str(tmp_path), "--coco-gt", str(tmp_path / "gt.json"))
    assert proc.returncode == 2 and "not a folder written by `oddoctor migrate`" in proc.stderr
    proc = run_oddoctor("eval", str(tmp_path), "--images", str(tmp_path), "--coco-gt", "x", "--tolerance", "nan")
    assert proc.returncode == 2 and "--tolerance" in proc.stderr and "Traceback" not in proc.stderr
