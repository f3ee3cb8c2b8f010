"""oddoctor.migrate.evaluate without a model: COCO mAP through pycocotools, and the legacy Session's
outputs turned into the runner's records."""

from __future__ import annotations

import pytest

np = pytest.importorskip("numpy")
pytest.importorskip("pycocotools")

from oddoctor.migrate import evaluate as ev  # noqa: E402 - after the skips
from oddoctor.migrate import run_inference as ri  # noqa: E402


def ground_truth() -> dict:
    """Three images, five objects of two classes, each with a bbox and an RLE mask."""
    rng = np.random.default_rng(11)
    images = [{"id": i + 1, "file_name": f"img{i}.png", "height": 60, "width": 80} for i in range(3)]
    anns = []
    for k in range(5):
        image = images[k % 3]
        y, x = int(rng.integers(0, 30)), int(rng.integers(0, 40))
        h, w = int(rng.integers(10, 30)), int(rng.integers(10, 40))
        mask = np.zeros((60, 80), np.uint8)
        mask[y:y + h, x + 2:x + w] = 1  # not the whole box: segm is not bbox
        anns.append({"id": k + 1, "image_id": image["id"], "category_id": 1 + k % 2, "bbox": [x, y, w, h],
                     "area": float(mask.sum()), "iscrowd": 0, "segmentation": ri.rle_encode(mask)})
    return {"images": images, "annotations": anns,
            "categories": [{"id": 1, "name": "person"}, {"id": 2, "name": "car"}]}


def as_results(gt: dict, score: float = 0.9) -> list[dict]:
    return [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": list(a["bbox"]),
             "score": score, "segmentation": a["segmentation"]} for a in gt["annotations"]]


def test_map_is_one_when_the_results_are_the_ground_truth():
    gt = ground_truth()
    for iou_type in ("bbox", "segm"):
        stats = ev.coco_map(gt, as_results(gt), iou_type)
        assert stats["AP"] == 1.0 and stats["AP50"] == 1.0 and stats["AR100"] == 1.0, (iou_type, stats)
    assert gt == ground_truth()  # loadRes did not change the caller's data


def test_map_drops_for_wrong_results_and_is_zero_without_any():
    gt = ground_truth()
    results = as_results(gt)
    results[0]["category_id"] = 2 if results[0]["category_id"] == 1 else 1  # one wrong class
    results[1]["bbox"] = [b + 15 for b in results[1]["bbox"][:2]] + results[1]["bbox"][2:]  # one moved away
    bbox = ev.coco_map(gt, results, "bbox")
    assert 0.2 < bbox["AP"] < 0.9
    assert ev.coco_map(gt, [], "bbox") == dict.fromkeys(ev.STAT_NAMES, 0.0)
    # Only the images asked for count: image 3's objects, found, give 1.0 alone.
    assert ev.coco_map(gt, results, "bbox", image_ids=[3])["AP"] == 1.0


def test_segm_needs_masks_in_the_ground_truth():
    gt = ground_truth()
    assert ev.segm_ready(gt)
    del gt["annotations"][0]["segmentation"]
    assert not ev.segm_ready(gt)
    assert not ev.segm_ready({"annotations": []})


def test_legacy_record_matches_the_runner_record_shape():
    h, w = 40, 50
    masks = np.zeros((3, h, w), np.uint8)
    masks[0, 5:20, 10:30] = 1
    masks[2, 0:5, 0:5] = 1
    output = {"num_detections": 3, "detection_boxes": np.array([[0.1, 0.2, 0.5, 0.6], [0, 0, 1, 1], [0, 0, .1, .1]],
                                                               np.float32),
              "detection_scores": np.array([0.9, 0.2, 0.6], np.float32),
              "detection_classes": np.array([3, 4, 5], np.uint8), "detection_masks": masks}
    record = ev.legacy_record("x.png", h, w, output, 0.5)
    assert [d["class_id"] for d in record["detections"]] == [3, 5]  # 0.2 filtered, as the runner filters
    assert record["detections"][0]["box"] == [4.0, 10.0, 20.0, 30.0]
    assert (ri.rle_decode(record["detections"][0]["mask"]) == masks[0]).all()
    assert (ri.rle_decode(record["detections"][1]["mask"]) == masks[2]).all()
