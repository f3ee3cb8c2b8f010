"""Conversion on a tiny hand-built TF1 graph: custom names, bad input, parity failure leaves nothing."""

from __future__ import annotations

import json
import re

import pytest

from oddoctor.cli.main import app

pytestmark = pytest.mark.tf


@pytest.fixture(scope="module")
def tiny_graph(tmp_path_factory):
    """A frozen TF1 graph with non-OD-API names: conv features -> boxes, scores, classes, count."""
    tf = pytest.importorskip("tensorflow")
    np = pytest.importorskip("numpy")
    rng = np.random.default_rng(0)
    g = tf.Graph()
    with g.as_default():
        x = tf.compat.v1.placeholder(tf.uint8, [1, None, None, 3], name="images/in")
        f = tf.cast(x, tf.float32) / 255.0
        y = tf.nn.relu(tf.nn.conv2d(f, tf.constant(rng.normal(size=(3, 3, 3, 8)).astype("float32")), 2, "SAME"))
        pooled = tf.reduce_mean(y, axis=[1, 2])  # [1, 8]
        boxes = tf.sigmoid(tf.matmul(pooled, tf.constant(rng.normal(size=(8, 12)).astype("float32"))))
        tf.identity(tf.sort(tf.reshape(boxes, [1, 3, 4]), axis=-1), name="out/boxes")
        scores = tf.sigmoid(tf.matmul(pooled, tf.constant(rng.normal(size=(8, 3)).astype("float32"))))
        tf.identity(scores, name="out/scores")
        tf.identity(tf.ones([1, 3]) * 2.0, name="out/classes")
        tf.constant([3.0], name="out/num")
    path = tmp_path_factory.mktemp("tiny") / "tiny.pb"
    path.write_bytes(g.as_graph_def().SerializeToString())
    return path


OUTPUTS = ("detection_boxes=out/boxes,detection_scores=out/scores,"
           "detection_classes=out/classes:0,num_detections=out/num")


def run_cli(args, capsys):
    with pytest.raises(SystemExit) as exc:
        app(args, prog_name="oddoctor")
    cap = capsys.readouterr()
    return exc.value.code, cap.out, cap.err


def test_custom_names_migrate_and_match(tiny_graph, tmp_path, capsys, monkeypatch):
    tf = pytest.importorskip("tensorflow")
    out = tmp_path / "m"
    monkeypatch.chdir(tiny_graph.parent)  # a relative model path: migration.json still finds it from anywhere
    code, stdout, err = run_cli(["migrate", tiny_graph.name, "--out", str(out), "--inputs", "images/in",
                                 "--outputs", OUTPUTS, "--json"], capsys)
    assert code == 0, err
    doc = json.loads(stdout)
    assert doc["schema_version"] == 1 and doc["ok"] is True
    assert doc["parity"]["passed"] and doc["parity"]["images"] == 4
    assert set(doc["parity"]["max_abs_diff"]) == {"detection_boxes", "detection_scores", "detection_classes",
                                                  "num_detections"}
    assert {o["key"]: o["tensor"] for o in doc["outputs"]}["detection_classes"] == "out/classes:0"
    written = json.loads((out / "migration.json").read_text())
    assert written["parity"] == doc["parity"]
    assert written["source"]["path"] == tiny_graph.name and written["source"]["resolved"] == str(tiny_graph.resolve())
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "beam_pipeline.py", "migration.json",
                                                     "run_inference.py", "saved_model"]
    sig = tf.saved_model.load(str(out / "saved_model")).signatures["serving_default"]
    spec = sig.structured_input_signature[1]["input_tensor"]
    assert spec.dtype == tf.uint8 and spec.shape.as_list() == [1, None, None, 3]
    assert set(sig.structured_outputs) == {"detection_boxes", "detection_scores", "detection_classes",
                                           "num_detections"}
    runner = (out / "run_inference.py").read_text()
    assert "MASKS_KEY = None" in runner and "SOURCE_INPUT = 'images/in:0'" in runner
    assert "--tolerance" not in err  # progress lines, no complaints


@pytest.mark.parametrize(("args", "message"), [
    (["--inputs", "images/in", "--outputs", "detection_boxes=nope"], "tensors not in the graph"),
    (["--inputs", "nope"], "no input tensor 'nope:0'; placeholders in the graph: images/in:0"),
    (["--inputs", "images/in", "--outputs", "detection_boxes=out/boxes"], "the runner needs outputs"),
    (["--inputs", "images/in", "--outputs", "bad key=out/boxes"], "must be a Python identifier"),
    ([], "not an Object Detection API export"),
])
def test_bad_names_exit_2_with_the_reason(tiny_graph, tmp_path, capsys, args, message):
    out = tmp_path / "m"
    code, _, err = run_cli(["migrate", str(tiny_graph), "--out", str(out), *args], capsys)
    assert code == 2
    assert message in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_not_a_graph_is_exit_2(tmp_path, capsys):
    pytest.importorskip("tensorflow")
    bogus = tmp_path / "frozen_inference_graph.pb"
    bogus.write_bytes(b"\x00garbage" * 10)
    code, _, err = run_cli(["migrate", str(bogus), "--out", str(tmp_path / "m")], capsys)
    assert code == 2 and "not a TensorFlow GraphDef" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frozen_inference_graph.pb"]


def test_parity_failure_exits_1_and_leaves_everything_as_it_was(tiny_graph, tmp_path, capsys, monkeypatch):
    from oddoctor.migrate import convert

    real = convert.run_migrated

    def drifted(export_dir, images):
        outs = real(export_dir, images)
        for o in outs:
            o["detection_scores"] = o["detection_scores"] + 0.01  # a conversion that changed the numbers
        return outs

    monkeypatch.setattr(convert, "run_migrated", drifted)
    out = tmp_path / "m"
    out.mkdir()
    (out / "previous.txt").write_text("an earlier migration")
    code, stdout, err = run_cli(["migrate", str(tiny_graph), "--out", str(out), "--force", "--inputs",
                                 "images/in", "--outputs", OUTPUTS, "--json"], capsys)
    assert code == 1
    doc = json.loads(stdout)
    assert doc["ok"] is False and doc["parity"]["passed"] is False
    assert doc["parity"]["max_abs_diff"]["detection_scores"] == pytest.approx(0.01, abs=1e-6)
    assert "detection_scores differs by 0.01" in err
    assert [p.name for p in tmp_path.iterdir()] == ["m"]  # no temporary directory left
    assert [p.name for p in out.iterdir()] == ["previous.txt"]
    # A looser tolerance accepts the same drift.
    code, _, err = run_cli(["migrate", str(tiny_graph), "--out", str(out), "--force", "--inputs",
                            "images/in", "--outputs", OUTPUTS, "--tolerance", "0.02"], capsys)
    assert code == 0, err
    assert (out / "saved_model").is_dir() and not (out / "previous.txt").exists()


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_runner_batches_a_model_whose_detection_count_varies_per_image(tmp_path, capsys):
    """Free batch dimension, OD API names, 1 to 3 detections depending on the image height: batches
    of mixed images give the lines one image per call gives (the loop does not assume equal shapes)."""
    import os
    import subprocess
    import sys

    tf = pytest.importorskip("tensorflow")
    np = pytest.importorskip("numpy")
    from PIL import Image

    rng = np.random.default_rng(0)
    g = tf.Graph()
    with g.as_default():
        x = tf.compat.v1.placeholder(tf.uint8, [None, None, None, 3], name="image_tensor")
        pooled = tf.reduce_mean(tf.cast(x, tf.float32) / 255.0, axis=[1, 2])
        n = 1 + tf.math.floormod(tf.shape(x)[1], 3)
        base = tf.sigmoid(tf.matmul(pooled, tf.constant(rng.normal(size=(3, 4)).astype("float32"))))
        boxes = tf.sort(tf.tile(base[:, None, :], [1, n, 1]), axis=-1)
        tf.identity(boxes, name="detection_boxes")
        tf.identity(tf.tile(tf.reduce_max(base, axis=1, keepdims=True), [1, n]), name="detection_scores")
        tf.identity(tf.ones_like(boxes[:, :, 0]) * 3.0, name="detection_classes")
        tf.identity(tf.cast(tf.fill([tf.shape(x)[0]], n), tf.float32), name="num_detections")
    model = tmp_path / "frozen_inference_graph.pb"
    model.write_bytes(g.as_graph_def().SerializeToString())
    code, _, err = run_cli(["migrate", str(model), "--out", str(tmp_path / "m")], capsys)
    assert code == 0, err
    images = tmp_path / "images"
    images.mkdir()
    sizes = [(300, 400), (301, 400), (302, 500), (300, 300), (299, 200)]
    for i, (h, w) in enumerate(sizes):
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(images / f"{i}.png")
    lines = {}
    for batch in (1, 4):
        proc = subprocess.run([sys.executable, str(tmp_path / "m" / "run_inference.py"), str(images), "--quiet",
                               "--score-threshold", "0", "--batch-size", str(batch), "--no-preflight"],
                              capture_output=True,
                              text=True, timeout=180, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
        assert proc.returncode == 0, proc.stderr
        lines[batch] = proc.stdout.splitlines()
    assert lines[4] == lines[1]
    counts = [len(json.loads(line)["detections"]) for line in lines[4]]
    assert counts == [1 + h % 3 for h, _ in sizes] == [1, 2, 3, 1, 3]


def test_saved_model_is_callable_like_a_tf2_export(tmp_path, capsys):
    """The TF2 OD API tutorial's own code: ``detect_fn = tf.saved_model.load(path); detect_fn(input_tensor)``
    returns the ``serving_default`` outputs, by the same keys, with the same values."""
    tf = pytest.importorskip("tensorflow")
    np = pytest.importorskip("numpy")
    from oddoctor_legacy_tf1.images import synthetic_image
    from oddoctor_legacy_tf1.model import build_model

    model = build_model(tmp_path / "export" / "frozen_inference_graph.pb", seed=0)
    code, _, err = run_cli(["migrate", str(model), "--out", str(tmp_path / "m")], capsys)
    assert code == 0, err
    detect_fn = tf.saved_model.load(str(tmp_path / "m" / "saved_model"))
    signature = detect_fn.signatures["serving_default"]
    assert set(signature.structured_input_signature[1]) == {"input_tensor"}  # the signature as before
    image = synthetic_image(375, 500, np.random.default_rng(3))
    input_tensor = tf.convert_to_tensor(image)[tf.newaxis, ...]
    detections = detect_fn(input_tensor)
    by_keyword = detect_fn(input_tensor=input_tensor)
    reference = signature(input_tensor=input_tensor)
    assert set(detections) == set(reference) == {"detection_boxes", "detection_scores", "detection_classes",
                                                 "num_detections", "detection_masks"}
    for key, value in reference.items():
        np.testing.assert_array_equal(detections[key].numpy(), value.numpy(), err_msg=key)
        np.testing.assert_array_equal(by_keyword[key].numpy(), value.numpy(), err_msg=key)
    assert int(detections["num_detections"][0]) > 0


@pytest.mark.parametrize("verbose", [False, True], ids=["quiet", "verbose"])
def test_tensorflow_log_lines_reach_the_terminal_only_with_verbose(tiny_graph, tmp_path, verbose):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}  # the user set no floor of their own
    proc = subprocess.run([sys.executable, "-m", "oddoctor", "migrate", str(tiny_graph), "--out", str(tmp_path / "m"),
                           "--inputs", "images/in", "--outputs", OUTPUTS, *(["-v"] if verbose else [])],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    tf_lines = [ln for ln in proc.stderr.splitlines() if re.match(r"^[IWEF]\d{4} ", ln)]
    assert bool(tf_lines) is verbose, proc.stderr
