"""run_inference.batch_records: a batch's raw model outputs -> the per-image JSON records.

Pure numpy, no TensorFlow: boxes scaled to pixels and clipped, scores filtered, num_detections
honoured, class ids, masks pasted and RLE-encoded (checked against a naive decoder written here).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

np = pytest.importorskip("numpy")

from oddoctor.migrate import run_inference  # noqa: E402 - after the numpy skip
from oddoctor.migrate.run_inference import batch_records  # noqa: E402


def outputs_for(*images: dict) -> dict:
    """{name: [one array per image]}, as split_outputs gives them; masks only if every image has them."""
    names = [name for name in ("boxes", "scores", "classes", "num", "masks") if all(name in im for im in images)]
    return {name: [np.asarray(im[name]) for im in images] for name in names}


def one_image(boxes, scores, classes=None, num=None, masks=None) -> dict:
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    image = {"boxes": boxes, "scores": np.asarray(scores, np.float32),
             "classes": np.asarray(classes if classes is not None else [1] * len(boxes), np.float32),
             "num": np.asarray([len(boxes) if num is None else num], np.int32)}
    if masks is not None:
        image["masks"] = np.asarray(masks, np.float32)
    return image


def naive_rle_decode(rle: dict) -> np.ndarray:
    """COCO compressed RLE -> H x W uint8, written from the format's description, one step at a time.

    Each run length is a signed number in 6-bit groups (character - 48): 5 value bits, least
    significant first, and 0x20 if another group follows; the last group's 0x10 is the sign. From the
    third run on, the stored number is the difference to the run two places back. Runs alternate
    0s and 1s, starting with 0s, down the columns.
    """
    height, width = rle["size"]
    runs: list[int] = []
    chars = list(rle["counts"])
    while chars:
        value = 0
        shift = 0
        while True:
            group = ord(chars.pop(0)) - 48
            value += (group & 0x1F) << shift
            shift += 5
            if not group & 0x20:
                if group & 0x10:
                    value -= 1 << shift
                break
        if len(runs) >= 3:
            value += runs[-2]
        runs.append(value)
    column_major: list[int] = []
    for i, run in enumerate(runs):
        column_major.extend([i % 2] * run)
    assert len(column_major) == height * width
    mask = np.zeros((height, width), np.uint8)
    for p, bit in enumerate(column_major):
        mask[p % height, p // height] = bit
    return mask


def test_boxes_are_scaled_to_pixels_of_each_image_and_clipped():
    boxes = [[0.1, 0.2, 0.5, 0.75], [-0.1, 0.9, 1.2, 1.5]]
    batch = outputs_for(one_image(boxes, [0.9, 0.8]), one_image(boxes[:1], [0.7]))
    [a, b] = batch_records(["a.jpg", "b.png"], np.array([[480, 640], [100, 200]]), batch, 0.5)
    assert (a["file"], a["height"], a["width"]) == ("a.jpg", 480, 640)
    assert a["detections"][0]["box"] == [48.0, 128.0, 240.0, 480.0]
    assert a["detections"][1]["box"] == [0.0, 576.0, 480.0, 640.0]  # clipped to the image
    assert (b["file"], b["height"], b["width"]) == ("b.png", 100, 200)
    assert b["detections"][0]["box"] == [10.0, 40.0, 50.0, 150.0]
    assert "mask" not in a["detections"][0]


def test_boxes_are_float32_products_rounded_to_two_decimals():
    norm = np.float32(0.123456789)
    [rec] = batch_records(["x"], [[333, 777]], outputs_for(one_image([[norm, norm, norm, norm]], [1.0])), 0.5)
    want = [round(float(norm * np.float32(s)), 2) for s in (333, 777, 333, 777)]
    assert rec["detections"][0]["box"] == want == [41.11, 95.93, 41.11, 95.93]


def test_score_threshold_keeps_scores_at_or_above_it_in_model_order():
    image = one_image([[0, 0, 1, 1]] * 5, [0.9, 0.3, 0.5, 0.49999, 0.7], classes=[3, 4, 5, 6, 7])
    [rec] = batch_records(["x"], [[10, 10]], outputs_for(image), 0.5)
    assert [d["class_id"] for d in rec["detections"]] == [3, 5, 7]
    assert [d["score"] for d in rec["detections"]] == [0.9, 0.5, 0.7]
    [rec] = batch_records(["x"], [[10, 10]], outputs_for(image), 0.0)
    assert len(rec["detections"]) == 5
    [rec] = batch_records(["x"], [[10, 10]], outputs_for(image), 1.0)
    assert rec["detections"] == []


def test_rows_past_num_detections_are_ignored():
    image = one_image([[0, 0, 1, 1]] * 4, [0.9, 0.8, 0.99, 0.97], classes=[1, 2, 3, 4], num=2)
    [rec] = batch_records(["x"], [[10, 10]], outputs_for(image), 0.5)
    assert [d["class_id"] for d in rec["detections"]] == [1, 2]
    image["num"] = np.asarray([2.0], np.float32)  # as a TF1 graph gives it: a float
    [same] = batch_records(["x"], [[10, 10]], outputs_for(image), 0.5)
    assert same == rec
    for num in (0, -3):
        image["num"] = np.asarray([num])
        assert batch_records(["x"], [[10, 10]], outputs_for(image), 0.0)[0]["detections"] == []
    image["num"] = np.asarray([99])  # more than the rows there are: all of them
    assert len(batch_records(["x"], [[10, 10]], outputs_for(image), 0.0)[0]["detections"]) == 4


def test_each_image_has_its_own_number_of_rows():
    batch = outputs_for(one_image([[0, 0, 1, 1]] * 3, [0.9, 0.9, 0.9]), one_image(np.zeros((0, 4)), []),
                        one_image([[0, 0, 0.5, 0.5]], [0.6], classes=[9]))
    recs = batch_records(["a", "b", "c"], [[4, 4], [5, 5], [6, 8]], batch, 0.5)
    assert [len(r["detections"]) for r in recs] == [3, 0, 1]
    assert recs[2]["detections"][0] == {"box": [0.0, 0.0, 3.0, 4.0], "score": 0.6, "class_id": 9}


def test_empty_detections_still_give_a_record_per_image():
    nothing = one_image(np.zeros((0, 4)), [], masks=np.zeros((0, 15, 15)))
    low = one_image([[0.1, 0.1, 0.2, 0.2]], [0.1], masks=np.ones((1, 15, 15)))
    recs = batch_records(["none.jpg", "low.jpg"], [[20, 30], [40, 50]], outputs_for(nothing, low), 0.5, 0.5)
    assert recs == [{"file": "none.jpg", "height": 20, "width": 30, "detections": []},
                    {"file": "low.jpg", "height": 40, "width": 50, "detections": []}]
    assert batch_records([], np.zeros((0, 2), np.int32), outputs_for(), 0.5) == []


def test_records_are_plain_json_data():
    image = one_image([[0.1, 0.1, 0.9, 0.9]], [0.87654321], classes=[np.float32(17)],
                      masks=np.ones((1, 15, 15)))
    [rec] = batch_records(["x"], np.array([[9, 11]], np.int32), outputs_for(image), 0.5, 0.5)
    assert json.loads(json.dumps(rec)) == rec
    det = rec["detections"][0]
    assert type(det["class_id"]) is int and det["class_id"] == 17
    assert det["score"] == 0.876543 and type(rec["height"]) is int
    assert all(type(v) is float for v in det["box"])


def inside(height: int, width: int, box) -> np.ndarray:
    """Pixels whose centre lies in the box (normalised as the OD API's reframe samples: y / (height - 1))."""
    ys = np.arange(height)[:, None] / (height - 1)
    xs = np.arange(width)[None, :] / (width - 1)
    return ((ys >= box[0]) & (ys <= box[2]) & (xs >= box[1]) & (xs <= box[3])).astype(np.uint8)


def test_masks_round_trip_through_rle_to_the_pixels_inside_each_box():
    h, w = 37, 53
    # Box edges between pixel centres (no ties); the second box runs past the image's corner.
    boxes = [[0.2 + 0.01, 0.3 + 0.005, 0.6 + 0.01, 0.9 + 0.005], [0.55 + 0.01, -0.2, 1.4, 0.4 + 0.005],
             [0.0, 0.0, 1.0, 1.0]]
    masks = np.ones((3, 15, 15), np.float32)
    masks[2] = 0.0  # an empty mask
    image = one_image(boxes, [0.9, 0.8, 0.7], masks=masks)
    [rec] = batch_records(["x"], [[h, w]], outputs_for(image), 0.5, 0.5)
    got = [naive_rle_decode(d["mask"]) for d in rec["detections"]]
    assert [d["mask"]["size"] for d in rec["detections"]] == [[h, w]] * 3
    assert (got[0] == inside(h, w, boxes[0])).all() and got[0].sum() > 100
    assert (got[1] == inside(h, w, boxes[1])).all() and got[1][-1, 0] == 1
    assert got[2].sum() == 0
    assert rec["detections"][1]["box"] == [round(float(np.float32(0.56) * np.float32(h)), 2), 0.0, 37.0,
                                           round(float(np.float32(0.405) * np.float32(w)), 2)]


def test_mask_threshold_decides_and_none_means_no_masks():
    h, w = 20, 20
    masks = np.full((1, 15, 15), 0.6, np.float32)
    image = one_image([[0, 0, 1, 1]], [0.9], masks=masks)
    [rec] = batch_records(["x"], [[h, w]], outputs_for(image), 0.5, 0.5)
    assert naive_rle_decode(rec["detections"][0]["mask"]).all()
    [rec] = batch_records(["x"], [[h, w]], outputs_for(image), 0.5, 0.7)
    assert not naive_rle_decode(rec["detections"][0]["mask"]).any()
    [rec] = batch_records(["x"], [[h, w]], outputs_for(image), 0.5, None)
    assert "mask" not in rec["detections"][0]


def test_random_masks_round_trip_through_the_rle_encoder():
    rng = np.random.default_rng(3)
    for shape, p in (((37, 53), 0.5), ((300, 400), 0.999), ((1, 1), 1.0), ((5, 1), 0.0), ((64, 64), 0.02)):
        mask = (rng.random(shape) < p).astype(np.uint8)
        rle = run_inference.rle_encode(mask)
        assert rle["size"] == list(shape)
        assert (naive_rle_decode(rle) == mask).all()


def test_pasted_masks_agree_with_the_image_sized_rle():
    """What batch_records writes for a random mask equals the RLE of paste_mask's region placed in the image."""
    rng = np.random.default_rng(4)
    h, w = 41, 29
    boxes = rng.uniform(-0.2, 1.2, (6, 4)).astype(np.float32)
    boxes = np.concatenate([np.minimum(boxes[:, :2], boxes[:, 2:]), np.maximum(boxes[:, :2], boxes[:, 2:])], 1)
    masks = rng.random((6, 15, 15)).astype(np.float32)
    image = one_image(boxes, [0.9] * 6, masks=masks)
    [rec] = batch_records(["x"], [[h, w]], outputs_for(image), 0.5, 0.5)
    for det, box, mask in zip(rec["detections"], boxes, masks):
        local, top, left = run_inference.paste_mask(mask, box, h, w, 0.5)
        full = np.zeros((h, w), np.uint8)
        full[top:top + local.shape[0], left:left + local.shape[1]] = local[:h - top, :w - left]
        assert (naive_rle_decode(det["mask"]) == full).all()


def test_record_building_needs_no_tensorflow():
    code = ("import sys, numpy as np\n"
            "from oddoctor.migrate.run_inference import batch_records\n"
            "out = {'boxes': [np.zeros((1, 4), np.float32)], 'scores': [np.ones(1, np.float32)],\n"
            "       'classes': [np.ones(1)], 'num': [np.ones(1)], 'masks': [np.ones((1, 3, 3), np.float32)]}\n"
            "assert batch_records(['x'], [[4, 4]], out, 0.5, 0.5)[0]['detections']\n"
            "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_tf_log_floor_hides_cuinit_noise_only_without_a_device_node(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from oddoctor.migrate import run_inference

    monkeypatch.setattr(run_inference.sys, "platform", "linux")
    monkeypatch.setattr(os.path, "exists", lambda p: False)
    assert run_inference.tf_log_floor() == "3"
    monkeypatch.setattr(os.path, "exists", lambda p: p == "/dev/dxg")  # WSL with a GPU
    assert run_inference.tf_log_floor() == "2"
    monkeypatch.setattr(run_inference.sys, "platform", "win32")
    monkeypatch.setattr(os.path, "exists", lambda p: False)
    assert run_inference.tf_log_floor() == "2"
