"""The OD API's own Mask R-CNN Inception v2, built on demand from the private OD API site.

The slow tests need `python -m oddoctor_legacy_tf1.odapi install` (once, about 20 s and 280 MB) and
build the model on first use (about a minute on 2 cores, cached in ~/.cache/oddoctor/models).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from oddoctor_legacy_tf1 import odapi
from oddoctor_legacy_tf1.odapi import build
from oddoctor_legacy_tf1.odapi.shims import PROTOBUF_ENV

OUTPUTS = {  # tensor: (dtype, rank)
    "detection_boxes:0": ("float32", 3),
    "detection_scores:0": ("float32", 2),
    "detection_classes:0": ("float32", 2),
    "num_detections:0": ("float32", 1),
    "detection_masks:0": ("float32", 4),
}
SKIP_REASON = f"OD API site not installed in {odapi.site_dir()}; run: {odapi.INSTALL_HINT}"

@pytest.fixture(scope="module")
def odapi_site() -> Path:
    pytest.importorskip("tensorflow")
    if not odapi.is_installed():
        pytest.skip(SKIP_REASON)
    return odapi.site_dir()


@pytest.fixture(scope="module")
def odapi_model(odapi_site) -> Path:
    """The seed-0, size-300 export (built now if the cache does not have it)."""
    return odapi.ensure_model(size=300, seed=0)


# --- no TensorFlow, no OD API needed ---------------------------------------------------------------

def test_missing_site_raises_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv(odapi.ENV_SITE, str(tmp_path / "no-site"))
    with pytest.raises(odapi.OdapiUnavailable, match=r"run `python -m oddoctor_legacy_tf1\.odapi install`"):
        odapi.ensure_model(size=300, seed=0, cache_dir=tmp_path / "models")
    assert not any((tmp_path / "models").glob("*"))  # nothing half-made left behind


def test_install_marker_must_match_the_pins(tmp_path):
    site = tmp_path / "site"
    (site / "object_detection").mkdir(parents=True)
    (site / "object_detection" / "exporter.py").write_text("")
    assert not odapi.is_installed(site)
    (site / odapi.INSTALL_MARKER).write_text(json.dumps({"requirements": ["tf-slim==0.1"]}))
    assert not odapi.is_installed(site)
    (site / odapi.INSTALL_MARKER).write_text(json.dumps({"requirements": odapi.requirement_specs()}))
    assert odapi.is_installed(site)


def test_every_pin_is_exact_and_says_why():
    for req, why in odapi.REQUIREMENTS:
        assert "==" in req and why.strip(), req
    assert "tf-models-research-object-detection==2.8.0.post1" in odapi.requirement_specs()


def test_paths_follow_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(odapi.ENV_SITE, str(tmp_path / "s"))
    monkeypatch.setenv(odapi.ENV_MODEL_CACHE, str(tmp_path / "m"))
    assert odapi.site_dir() == tmp_path / "s"
    assert odapi.model_dir(size=256, seed=3) == tmp_path / "m" / "odapi-mask_rcnn_inception_v2-256-s3"
    env = odapi.child_env(tmp_path / "s", base={"PYTHONPATH": "/x"})
    assert env["PYTHONPATH"].split(os.pathsep)[0] == str(tmp_path / "s")
    assert env["PYTHONPATH"].split(os.pathsep)[-1] == "/x"
    assert env[PROTOBUF_ENV] == "python"


def test_a_half_built_model_is_not_built(tmp_path):
    d = odapi.model_dir(size=300, seed=0, cache_dir=tmp_path)
    d.mkdir(parents=True)
    (d / odapi.FROZEN_GRAPH).write_bytes(b"x" * 10)
    assert not odapi.is_built(cache_dir=tmp_path)  # no model.json
    (d / odapi.MODEL_JSON).write_text(json.dumps({"bytes": 11}))
    assert not odapi.is_built(cache_dir=tmp_path)  # truncated
    (d / odapi.MODEL_JSON).write_text(json.dumps({"bytes": 10}))
    assert odapi.is_built(cache_dir=tmp_path)


def test_prepare_refuses_a_process_with_the_c_protobuf():
    pytest.importorskip("google.protobuf")
    script = ("from google.protobuf import descriptor_pb2  # picks the C (upb) implementation\n"
              "from oddoctor_legacy_tf1.odapi import shims\n"
              "try:\n    shims.prepare()\nexcept shims.ShimError as e:\n    print(e)\n")
    env = {k: v for k, v in os.environ.items() if k != PROTOBUF_ENV}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert f"start the process with {PROTOBUF_ENV}=python" in proc.stdout


def test_config_template_is_the_sample_with_a_smaller_resizer():
    text = build.config_text(300)
    assert "$" not in text
    assert "min_dimension: 300" in text and "max_dimension: 512" in text
    for fact in ("num_classes: 90", "type: 'faster_rcnn_inception_v2'", "first_stage_max_proposals: 300",
                 "predict_instance_masks: true", "mask_height: 15", "mask_width: 15", "score_converter: SOFTMAX"):
        assert fact in text
    assert "tensorflow/models" in text and "1d32951a8c2d3503108291debae47d7131dcd4e7" in text
    assert build.max_dimension(800) == 1365
    with pytest.raises(ValueError, match="too small"):
        build.config_text(16)


def test_cli_path_says_where_and_what(tmp_path):
    env = {**os.environ, odapi.ENV_SITE: str(tmp_path / "s"), odapi.ENV_MODEL_CACHE: str(tmp_path / "m")}
    proc = subprocess.run([sys.executable, "-m", "oddoctor_legacy_tf1.odapi", "path", "--size", "256"],
                          capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out == {"site": str(tmp_path / "s"), "installed": False,
                   "model": str(tmp_path / "m" / "odapi-mask_rcnn_inception_v2-256-s0"), "built": False}
    proc = subprocess.run([sys.executable, "-m", "oddoctor_legacy_tf1.odapi", "build"],
                          capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 1 and odapi.INSTALL_HINT in proc.stderr


@pytest.mark.tf
@pytest.mark.timeout(300)
def test_a_failed_build_leaves_nothing(tmp_path):
    # A site that passes is_installed() but holds no OD API: the child fails on its first import.
    pytest.importorskip("tensorflow")
    site = tmp_path / "site"
    (site / "object_detection").mkdir(parents=True)
    (site / "object_detection" / "exporter.py").write_text("raise ImportError('not really the OD API')\n")
    (site / odapi.INSTALL_MARKER).write_text(json.dumps({"requirements": odapi.requirement_specs()}))
    with pytest.raises(odapi.OdapiBuildError, match="not really the OD API"):
        odapi.ensure_model(size=64, seed=0, cache_dir=tmp_path / "models", site=site)
    assert list((tmp_path / "models").iterdir()) == []


# --- the real thing ------------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.tf
@pytest.mark.timeout(900)
def test_frozen_graph_is_an_od_api_mask_rcnn(odapi_model):
    import tensorflow as tf

    from oddoctor_legacy_tf1.graph_io import load_model

    info = odapi.read_model_info(odapi_model)
    data = (odapi_model / odapi.FROZEN_GRAPH).read_bytes()
    assert info["bytes"] == len(data) and (info["size"], info["seed"]) == (300, 0)
    assert info["odapi_version"] == "2.8.0.post1" and info["tf_version"] == tf.__version__
    assert (odapi_model / "saved_model" / "saved_model.pb").is_file()
    assert (odapi_model / "pipeline.config").is_file()
    assert not list(odapi_model.glob("model.ckpt*"))

    graph_def = tf.compat.v1.GraphDef.FromString(data)
    nodes = {n.name: n for n in graph_def.node}
    assert 3_000 < len(nodes) == info["nodes"] < 30_000
    assert nodes["image_tensor"].op == "Placeholder"
    assert tf.dtypes.as_dtype(nodes["image_tensor"].attr["dtype"].type) == tf.uint8
    for tensor, (dtype, _rank) in OUTPUTS.items():
        node = nodes[tensor.split(":")[0]]
        assert node.op == "Identity" and tf.dtypes.as_dtype(node.attr["T"].type).name == dtype
    for scope in ("FirstStageFeatureExtractor/InceptionV2/", "FirstStageBoxPredictor/",
                  "SecondStageFeatureExtractor/InceptionV2/", "SecondStageBoxPredictor/",
                  "GridAnchorGenerator/", "BatchMultiClassNonMaxSuppression/", "CropAndResize/"):
        assert any(name.startswith(scope) for name in nodes), scope
    assert not {n.op for n in graph_def.node} & {"VariableV2", "VarHandleOp"}
    assert set(load_model(odapi_model).outputs) == set(OUTPUTS)  # oddoctor's own loader accepts it


@pytest.mark.slow
@pytest.mark.tf
@pytest.mark.timeout(900)
def test_one_inference_gives_od_api_shapes(odapi_model):
    import tensorflow as tf

    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(
            tf.compat.v1.GraphDef.FromString((odapi_model / odapi.FROZEN_GRAPH).read_bytes()), name="")
    image = np.random.default_rng(0).integers(0, 256, size=(1, 300, 400, 3), dtype=np.uint8)
    with tf.compat.v1.Session(graph=graph) as sess:
        out = sess.run(dict(zip(OUTPUTS, OUTPUTS)), {"image_tensor:0": image})
    for tensor, (dtype, rank) in OUTPUTS.items():
        assert out[tensor].dtype == np.dtype(dtype) and out[tensor].ndim == rank, tensor
    n = out["detection_boxes:0"].shape[1]
    assert out["detection_boxes:0"].shape == (1, n, 4)
    assert out["detection_scores:0"].shape == out["detection_classes:0"].shape == (1, n)
    assert out["detection_masks:0"].shape == (1, n, 15, 15)  # mask_height/mask_width of the config
    assert out["num_detections:0"].shape == (1,) and 0 < out["num_detections:0"][0] <= n == 300
    classes = out["detection_classes:0"][0, : int(out["num_detections:0"][0])]
    assert classes.min() >= 1 and classes.max() <= 90
    assert out["detection_masks:0"].min() >= 0.0 and out["detection_masks:0"].max() <= 1.0


@pytest.mark.slow
@pytest.mark.tf
@pytest.mark.timeout(900)
def test_cached_call_is_instant_and_does_not_rebuild(odapi_model):
    before = {p.name: p.stat().st_mtime_ns for p in odapi_model.iterdir()}
    start = time.perf_counter()
    again = odapi.ensure_model(size=300, seed=0)
    assert time.perf_counter() - start < 0.5
    assert again == odapi_model
    assert {p.name: p.stat().st_mtime_ns for p in odapi_model.iterdir()} == before


@pytest.mark.slow
@pytest.mark.tf
@pytest.mark.timeout(900)
def test_same_seed_same_bytes(odapi_model, odapi_site, tmp_path):
    # A second full build (about a minute): the frozen graph is byte-identical, the checksum says so.
    rebuilt = odapi.ensure_model(size=300, seed=0, cache_dir=tmp_path)
    assert rebuilt != odapi_model
    assert odapi.read_model_info(rebuilt)["sha256"] == odapi.read_model_info(odapi_model)["sha256"]
    assert (rebuilt / odapi.FROZEN_GRAPH).read_bytes() == (odapi_model / odapi.FROZEN_GRAPH).read_bytes()


@pytest.mark.slow
@pytest.mark.tf
@pytest.mark.timeout(300)
def test_prepare_then_utils_ops_in_a_child(odapi_site):
    # What a leak-test child does: prepare(), then the OD API's own mask reframing, in TF1 mode.
    script = textwrap.dedent("""
        import sys
        from oddoctor_legacy_tf1.odapi import shims
        shims.prepare()
        shims.prepare()  # idempotent
        import numpy as np
        import tensorflow as tf
        from object_detection.utils import ops as utils_ops
        assert not tf.executing_eagerly()
        masks = tf.constant(np.ones((2, 15, 15), np.float32))
        boxes = tf.constant([[0.0, 0.0, 0.5, 0.5], [0.25, 0.25, 1.0, 1.0]])
        image_masks = utils_ops.reframe_box_masks_to_image_masks(masks, boxes, 30, 40)
        with tf.compat.v1.Session() as sess:
            out = sess.run(image_masks)
        assert out.shape == (2, 30, 40), out.shape
        print("ok", int(out[0].sum() > 0), "tf_keras" in sys.modules)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=240,
                          env=odapi.child_env(odapi_site))
    assert proc.returncode == 0, proc.stderr[-3000:]
    # utils.ops needs no tf_keras: the legacy-layers alias stays unused until a slim layer is built.
    assert proc.stdout.split() == ["ok", "1", "False"]


def test_tf_keras_pin_follows_the_installed_tensorflow(monkeypatch):
    import importlib.metadata

    monkeypatch.setattr(importlib.metadata, "version", lambda name: "2.23.1")
    assert "tf-keras==2.23.*" in odapi.requirement_specs()
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "2.21.0")
    assert "tf-keras==2.21.0" in odapi.requirement_specs()

    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", missing)
    assert "tf-keras==2.21.0" in odapi.requirement_specs()
