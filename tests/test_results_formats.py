"""The runner's results people use, without TensorFlow: label maps (--label-map), COCO results
(--format coco, checked with pycocotools' loadRes), RLE decoding and drawings (--draw)."""

from __future__ import annotations

import json

import pytest

np = pytest.importorskip("numpy")

from oddoctor.migrate import run_inference as ri  # noqa: E402 - after the numpy skip

# The layout of the Object Detection API's data/mscoco_label_map.pbtxt (its first items: Open Images
# MIDs as names, the COCO category ids and names), written here from those facts, with the
# comment, blank-line and indentation habits such files have.
MSCOCO_LABEL_MAP = """\
# COCO 2017 classes (a few)
item {
  name: "/m/01g317"
  id: 1
  display_name: "person"
}
item {
  name: "/m/0199g"
  id: 2
  display_name: "bicycle"
}

item {
  name: "/m/0k4j"
  id: 3
  display_name: "car"
}
item {
  name: "/m/04_sv"
  id: 4
  display_name: "motorcycle"
}
item {
  name: "/m/05czz6l"
  id: 5
  display_name: "airplane"
}
"""


def test_the_mscoco_label_map_format_parses_to_display_names():
    assert ri.parse_label_map(MSCOCO_LABEL_MAP) == {1: "person", 2: "bicycle", 3: "car", 4: "motorcycle",
                                                    5: "airplane"}


def test_label_map_variants_one_line_colon_quotes_and_unknown_fields():
    text = ("item { id: 7 name: 'dog' }  item: { name: \"cat\" id: 8 frequency: FREQUENT "
            "keypoints { id: 0 label: \"nose\" } }\n"
            "item <\n id: 9\n name: \"a \\\"quoted\\\" name\" # comment\n>")
    assert ri.parse_label_map(text) == {7: "dog", 8: "cat", 9: 'a "quoted" name'}


@pytest.mark.parametrize(("text", "message"), [
    ("item { name: 'x' }", "line 1: item without an id"),
    ("item { id: 1 }", "item 1 has neither a name nor a display_name"),
    ("item { id: one name: 'x' }", "id 'one' is not an integer"),
    ("item { id: -1 name: 'x' }", "id -1 is negative"),
    ("item { id: 1 name: 'x' }\nitem { id: 1 name: 'y' }", "line 2: id 1 is 'y' here and 'x' on line 1"),
    ("item { id: 1 name: 'x' ", "item not closed"),
    ("item { id: 1 name: 'x }", "string not closed"),
    ("# nothing", "no items"),
])
def test_bad_label_maps_are_one_clear_error(text, message):
    with pytest.raises(ri.LabelMapError, match=message.replace("(", r"\(")):
        ri.parse_label_map(text)


def test_read_label_map_names_the_file(tmp_path):
    path = tmp_path / "label_map.pbtxt"
    path.write_text(MSCOCO_LABEL_MAP)
    assert ri.read_label_map(str(path))[1] == "person"
    path.write_bytes(b"\xff\xfe item")
    with pytest.raises(ri.LabelMapError, match=r"--label-map .*label_map\.pbtxt: cannot read: not UTF-8"):
        ri.read_label_map(str(path))
    with pytest.raises(ri.LabelMapError, match="cannot read: No such file"):
        ri.read_label_map(str(tmp_path / "missing.pbtxt"))


def one_image(boxes, scores, classes, masks=None):
    image = {"boxes": [np.asarray(boxes, np.float32)], "scores": [np.asarray(scores, np.float32)],
             "classes": [np.asarray(classes, np.float32)], "num": [np.asarray([len(scores)])]}
    if masks is not None:
        image["masks"] = [np.asarray(masks, np.float32)]
    return image


def test_records_carry_class_names_only_with_a_label_map():
    outputs = one_image([[0, 0, 0.5, 0.5], [0.5, 0.5, 1, 1]], [0.9, 0.8], [1, 77])
    [plain] = ri.batch_records(["a.png"], [[10, 10]], outputs, 0.5)
    assert "class_name" not in plain["detections"][0]
    [named] = ri.batch_records(["a.png"], [[10, 10]], outputs, 0.5, labels={1: "person"})
    assert [d["class_name"] for d in named["detections"]] == ["person", None]  # 77: not in the label map
    assert [d["class_id"] for d in named["detections"]] == [1, 77]


def test_rle_decode_inverts_the_encoder_and_reads_plain_counts():
    rng = np.random.default_rng(5)
    for shape, p in (((37, 53), 0.5), ((120, 90), 0.97), ((1, 1), 1.0), ((6, 2), 0.0)):
        mask = (rng.random(shape) < p).astype(np.uint8)
        assert (ri.rle_decode(ri.rle_encode(mask)) == mask).all()
    assert ri.rle_decode({"size": [2, 3], "counts": [1, 2, 3]}).tolist() == [[0, 1, 0], [1, 0, 0]]


def coco_gt(masks: bool = True) -> dict:
    """A small COCO ground truth: two images, three objects."""
    anns = [{"id": 1, "image_id": 42, "category_id": 1, "bbox": [10, 20, 30, 40]},
            {"id": 2, "image_id": 42, "category_id": 3, "bbox": [50, 5, 20, 20]},
            {"id": 3, "image_id": 7, "category_id": 1, "bbox": [0, 0, 64, 48]}]
    for ann in anns:
        x, y, w, h = ann["bbox"]
        ann.update(area=w * h, iscrowd=0)
        if masks:
            ann["segmentation"] = [[x, y, x + w, y, x + w, y + h, x, y + h]]
    return {"images": [{"id": 42, "file_name": "photos/a.jpg", "height": 100, "width": 80},
                       {"id": 7, "file_name": "b.png", "height": 48, "width": 64}],
            "annotations": anns,
            "categories": [{"id": 1, "name": "person"}, {"id": 3, "name": "car"}]}


def test_coco_image_ids_by_file_name_or_by_number():
    ids = ri.coco_image_ids(coco_gt())
    assert ids == {"a.jpg": 42, "b.png": 7}
    assert ri.coco_image_id("/data/x/a.jpg", ids) == 42
    assert ri.coco_image_id("/data/x/c.jpg", ids) is None
    assert ri.coco_image_id("val2017/000000397133.jpg", None) == 397133
    assert ri.coco_image_id("holiday.jpg", None) is None
    with pytest.raises(ValueError, match=r"two images named 'a\.jpg'"):
        ri.coco_image_ids({"images": [{"id": 1, "file_name": "x/a.jpg"}, {"id": 2, "file_name": "y/a.jpg"}]})
    with pytest.raises(TypeError, match="no \"images\" list"):
        ri.coco_image_ids([])


def test_coco_results_load_in_pycocotools():
    coco = pytest.importorskip("pycocotools.coco")
    h, w = 100, 80
    masks = np.zeros((1, 15, 15), np.float32)
    masks[0, 3:12, 3:12] = 1.0
    outputs = one_image([[0.2, 0.125, 0.6, 0.5]], [0.75], [1], masks)
    [rec] = ri.batch_records(["photos/a.jpg"], [[h, w]], outputs, 0.5, 0.5)
    results = ri.coco_results(rec, 42)
    assert results[0]["bbox"] == [10.0, 20.0, 30.0, 40.0]  # x, y, width, height in pixels
    assert results[0]["category_id"] == 1 and results[0]["score"] == 0.75
    assert results[0]["segmentation"]["size"] == [h, w]
    gt = coco.COCO()
    gt.dataset = coco_gt()
    gt.createIndex()
    loaded = gt.loadRes(json.loads(json.dumps(results)))
    [ann] = loaded.loadAnns(loaded.getAnnIds(imgIds=[42]))
    mask = ri.rle_decode(rec["detections"][0]["mask"])
    assert ann["area"] == 30 * 40  # loadRes takes the area from the bbox when there is one
    assert 0 < mask.sum() < 30 * 40
    from pycocotools import mask as mask_utils

    assert (mask_utils.decode(ann["segmentation"]) == mask).all()


def test_drawn_pixels_show_the_box_mask_and_label():
    h, w = 120, 160
    image = np.full((h, w, 3), 100, np.uint8)
    mask = np.zeros((h, w), np.uint8)
    mask[50:90, 60:120] = 1
    record = {"file": "x.png", "height": h, "width": w, "detections": [
        {"box": [40.0, 50.0, 100.0, 130.0], "score": 0.875, "class_id": 3, "class_name": "car",
         "mask": ri.rle_encode(mask)}]}
    drawn = ri.draw_record(image, record)
    color = ri.class_color(3)
    assert drawn.shape == image.shape and (image == 100).all()  # a new array; the input is untouched
    assert (drawn[70, 50] == color).all() and (drawn[70, 129] == color).all()  # left and right edges
    assert (drawn[99, 90] == color).all()  # bottom edge
    blended = np.round(100 * (1 - ri.MASK_ALPHA) + color.astype(np.float32) * ri.MASK_ALPHA)
    assert (drawn[70, 90] == blended).all()  # inside the mask: translucent, the image still shows
    assert (drawn[45, 90] == 100).all()  # inside the box, outside the mask: untouched
    assert (drawn[110, 10] == 100).all() and (drawn[5, 150] == 100).all()  # far from it all
    label = drawn[40 - 9:40, 50:50 + 6 * len("CAR 0.88") + 1]  # the label sits above the box
    inks = {tuple(px) for px in label.reshape(-1, 3)}
    assert tuple(color) in inks and len(inks) == 2  # background in the class colour, text in one ink


def test_text_bitmap_and_drawing_names():
    bits = ri.text_bitmap("Ab1?", scale=2)
    assert bits.shape == (14, 48) and bits.any()
    assert (ri.text_bitmap("a") == ri.text_bitmap("A")).all()
    assert (ri.text_bitmap("~") == ri.text_bitmap("?")).all()
    assert ri.drawing_names(["a/x.jpg", "b/x.jpg", "b/y.png", "c/x.jpg"], "png") == [
        "x.png", "x-2.png", "y.png", "x-3.png"]


def run_runner_source(*args, cwd):
    """The package's run_inference.py (the emitted runner's code) as a script: these refusals come before
    TensorFlow is imported, so no model is needed."""
    import subprocess
    import sys

    return subprocess.run([sys.executable, ri.__file__, *map(str, args)], capture_output=True, text=True,
                          timeout=60, cwd=cwd)


@pytest.mark.parametrize(("extra", "message"), [
    (["--draw", "a_file.txt"], "--draw a_file.txt: is a file; give a folder"),
    (["--draw", "missing/drawn"], "--draw missing/drawn: folder"),
    (["--coco-gt", "gt.json"], "--coco-gt gt.json: only used with --format coco"),
    (["--format", "coco"], "--format coco: none of the 1 image(s) is named by a number"),
    (["--format", "coco", "--coco-gt", "gt.json"], "--coco-gt gt.json: not COCO annotations"),
    (["--format", "coco", "--coco-gt", "nowhere.json"], "--coco-gt nowhere.json: cannot read"),
    (["--label-map", "bad.pbtxt"], "--label-map bad.pbtxt: line 1: item without an id"),
])
def test_bad_result_options_are_exit_2_before_tensorflow(tmp_path, extra, message):
    (tmp_path / "photo.png").write_bytes(b"\x89PNG not really")
    (tmp_path / "a_file.txt").write_text("x")
    (tmp_path / "gt.json").write_text("[]")
    (tmp_path / "bad.pbtxt").write_text("item { name: 'x' }")
    proc = run_runner_source("photo.png", *extra, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "missing").exists()
