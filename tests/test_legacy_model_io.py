"""The synthetic TF1 Mask R-CNN export, model loading/validation and image loading."""

from __future__ import annotations

import pytest

np = pytest.importorskip("numpy")  # the legacy models and images are numpy arrays

pytestmark = pytest.mark.tf

OUTPUTS = ["detection_boxes:0", "detection_scores:0", "detection_classes:0", "num_detections:0",
           "detection_masks:0"]


def test_build_is_deterministic_and_seeded(model_pb, tmp_path):
    from oddoctor_legacy_tf1.model import build_model

    assert build_model(tmp_path / "a.pb", seed=0).read_bytes() == model_pb.read_bytes()
    assert build_model(tmp_path / "b.pb", seed=1).read_bytes() != model_pb.read_bytes()


def test_export_has_od_api_tensors_and_real_outputs(tf, model_pb):
    from oddoctor_legacy_tf1.graph_io import import_model, load_model
    from oddoctor_legacy_tf1.images import synthetic_images

    model = load_model(model_pb)
    assert model.kind == "frozen_graph"
    assert model.has_masks
    graph = import_model(model)
    ops = {op.type for op in graph.get_operations()}
    # A real network, frozen: convolutions, NMS, ROI crops, no variables left.
    assert {"Conv2D", "NonMaxSuppressionV3", "CropAndResize", "ConcatV2"} <= ops
    assert not ops & {"VariableV2", "VarHandleOp"}
    inp = graph.get_tensor_by_name("image_tensor:0")
    assert inp.dtype == tf.uint8
    assert inp.shape.as_list() == [None, None, None, 3]
    with tf.compat.v1.Session(graph=graph) as sess:
        results = []
        for image in synthetic_images(3, seed=5):
            boxes, scores, classes, num, masks = sess.run(OUTPUTS, {"image_tensor:0": image[None]})
            n = int(num[0])
            assert classes.dtype == np.float32
            assert num.shape == (1,)
            assert boxes.shape == (1, 20, 4)
            assert masks.shape == (1, 20, 15, 15)
            assert 3 <= n <= 20
            assert (scores[0, :n] > 0.5).sum() >= 2
            b = boxes[0, :n]
            assert (b >= 0).all()
            assert (b <= 1).all()
            assert (b[:, 2] >= b[:, 0]).all()
            assert np.median((masks[0, :n] > 0.5).mean(axis=(1, 2))) > 0.1  # masks are object blobs
            assert (classes[0, :n] >= 1).all()
            assert (classes[0, :n] <= 90).all()
            results.append(scores)
        assert not np.array_equal(results[0], results[1])  # outputs depend on the image


def test_saved_model_loads_like_the_frozen_graph(tf, model_pb, tmp_path):
    from oddoctor_legacy_tf1.graph_io import load_model
    from oddoctor_legacy_tf1.model import build_model

    sm = build_model(tmp_path / "saved_model", saved_model=True)
    for target in (sm, sm / "saved_model.pb"):
        model = load_model(target)
        assert model.kind == "saved_model"
        assert model.has_masks
    # An OD API export directory: frozen graph preferred over saved_model/.
    (tmp_path / "frozen_inference_graph.pb").write_bytes(model_pb.read_bytes())
    assert load_model(tmp_path).kind == "frozen_graph"


def test_bad_models_raise_model_error_naming_the_problem(tf, tmp_path):
    from oddoctor_legacy_tf1.graph_io import ModelError, load_model

    junk = tmp_path / "junk.pb"
    junk.write_bytes(b"definitely not protobuf" * 20)
    (tmp_path / "empty.pb").write_bytes(b"")
    g = tf.Graph()
    with g.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None, 3], name="input_1")
        tf.identity(x * 2.0, name="logits")
        tf.compat.v1.placeholder(tf.uint8, [None, None, None, 3], name="image_tensor")
    (tmp_path / "other.pb").write_bytes(g.as_graph_def().SerializeToString())
    bad_sm = tmp_path / "bad_saved_model"
    bad_sm.mkdir()
    (bad_sm / "saved_model.pb").write_bytes(b"junk")
    cases = {
        bad_sm: "cannot load as a TF1 SavedModel",
        tmp_path / "missing.pb": "no such file",
        junk: "not a TensorFlow GraphDef",
        tmp_path / "empty.pb": "empty file",
        tmp_path / "other.pb": "missing detection_boxes:0",
    }
    for path, text in cases.items():
        with pytest.raises(ModelError, match=text) as info:
            load_model(path)
        assert "\n" not in str(info.value)
    with pytest.raises(ModelError) as info:
        load_model(tmp_path / "other.pb")
    msg = str(info.value)
    assert "image_tensor:0" not in msg.split("inputs it has")[0]  # present, so not listed as missing
    assert "input_1:0 (float32)" in msg
    assert "logits:0" in msg


def test_image_folder_converts_odd_images_and_skips_broken_ones(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    from oddoctor_legacy_tf1.images import ImageError, load_image_dir, synthetic_images

    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (50, 60), dtype=np.uint8)).save(tmp_path / "gray.png")
    Image.fromarray(rng.integers(0, 255, (50, 60, 4), dtype=np.uint8)).save(tmp_path / "rgba.png")
    g16 = np.full((40, 30), 65535, dtype=np.uint16)
    Image.fromarray(g16).save(tmp_path / "sixteen.png")
    Image.fromarray(rng.integers(0, 255, (70, 80, 3), dtype=np.uint8)).save(tmp_path / "photo.JPG")
    data = (tmp_path / "photo.JPG").read_bytes()
    (tmp_path / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (tmp_path / "bad.png").write_bytes(b"not a png")
    (tmp_path / "notes.txt").write_text("ignored")
    folder = load_image_dir(tmp_path)
    assert [f.name for f in folder.files] == ["gray.png", "photo.JPG", "rgba.png", "sixteen.png"]
    assert all(a.dtype == np.uint8 and a.ndim == 3 and a.shape[2] == 3 for a in folder.images)
    assert folder.images[3].shape == (40, 30, 3)
    assert int(folder.images[3].max()) == 255
    assert sorted(f.name for f, _ in folder.skipped) == ["bad.png", "truncated.jpg"]
    with pytest.raises(ImageError):
        load_image_dir(tmp_path / "nope")
    shapes = {a.shape for a in synthetic_images(4, seed=1)}
    assert len(shapes) == 4
    assert np.array_equal(synthetic_images(2, seed=3)[1], synthetic_images(2, seed=3)[1])
