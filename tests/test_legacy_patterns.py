"""The tutorial loop leaks graph ops and sessions; LegacyDetector does not and gives the same outputs."""

from __future__ import annotations

from pathlib import Path

import pytest

np = pytest.importorskip("numpy")  # the legacy models and images are numpy arrays

pytestmark = pytest.mark.tf

KEYS = ("num_detections", "detection_boxes", "detection_scores", "detection_classes", "detection_masks")


@pytest.fixture(scope="module")
def images():
    from oddoctor_legacy_tf1.images import synthetic_images

    # Four sizes plus an odd one: the legacy loop bakes each size into new ops.
    return [*synthetic_images(4, seed=2), synthetic_images(1, seed=3, sizes=((333, 251),))[0]]


def test_fixed_outputs_equal_legacy_outputs(tf, model_pb, images):
    from oddoctor_legacy_tf1.patterns import LegacyDetector, load_detection_graph, run_inference_for_single_image

    graph = load_detection_graph(model_pb)
    legacy = [run_inference_for_single_image(im, graph) for im in images]
    with LegacyDetector(model_pb) as det:
        fixed = [det(im) for im in images]
    for im, a, b in zip(images, legacy, fixed):
        assert set(a) == set(b) == set(KEYS)
        for key in KEYS:
            assert np.array_equal(a[key], b[key]), key
        n = b["num_detections"]
        assert n > 0
        assert b["detection_masks"].shape == (n, im.shape[0], im.shape[1])  # image-sized masks
        assert b["detection_masks"].dtype == np.uint8
        assert b["detection_masks"].any()
        assert b["detection_classes"].dtype == np.uint8


def test_tutorial_loop_grows_the_graph_and_opens_a_session_per_image(tf, model_pb, images):
    from oddoctor_legacy_tf1.patterns import load_detection_graph, run_inference_for_single_image

    graph = load_detection_graph(model_pb)
    counts = [len(graph.get_operations())]
    for im in images[:4]:
        run_inference_for_single_image(im, graph)
        counts.append(len(graph.get_operations()))
    growth = np.diff(counts)
    assert (growth > 0).all()
    assert len(set(growth.tolist())) == 1  # the same reframe block, every image


def test_detector_graph_is_finalized_and_constant(tf, model_pb, images):
    from oddoctor_legacy_tf1.patterns import LegacyDetector

    with LegacyDetector(model_pb, allow_growth=True, memory_fraction=0.3) as det:
        n0 = len(det.graph.get_operations())
        for im in images:
            det(im)
        assert len(det.graph.get_operations()) == n0
        assert det.graph.finalized
        with pytest.raises(RuntimeError, match="finalized"), det.graph.as_default():
            tf.constant(1.0)
        opts = det.session._config.gpu_options
        assert opts.allow_growth
        assert opts.per_process_gpu_memory_fraction == pytest.approx(0.3)
        with pytest.raises(ValueError, match="uint8 HxWx3"):
            det(images[0].astype(np.float32))
    with pytest.raises(RuntimeError, match="closed"):
        det(images[0])


def test_swap_closes_the_session_and_works_with_a_saved_model(tf, model_pb, images, tmp_path):
    from oddoctor_legacy_tf1.model import build_model
    from oddoctor_legacy_tf1.patterns import LegacyDetector, load_detection_graph, run_inference_for_single_image

    sm = build_model(tmp_path / "saved_model", seed=1, saved_model=True)
    with LegacyDetector(model_pb) as det:
        first = det(images[0])
        old = det.session
        tf.compat.v1.constant(1.0)  # user code that dirtied the global default graph
        det.swap(sm)
        assert old._closed
        assert len(tf.compat.v1.get_default_graph().get_operations()) == 0  # reset_default_graph ran
        second = det(images[0])
        assert det.model.kind == "saved_model"
    assert not np.array_equal(first["detection_scores"], second["detection_scores"])  # other seed
    legacy = run_inference_for_single_image(images[0], load_detection_graph(sm))
    for key in KEYS:
        assert np.array_equal(legacy[key], second[key]), key


def _hand_made_export(tf, path: Path) -> Path:
    """A different OD API-shaped export: 100 padded detections, 33x33 masks, none on a dark image."""
    g = tf.Graph()
    with g.as_default():
        image = tf.compat.v1.placeholder(tf.uint8, [None, None, None, 3], name="image_tensor")
        bright = tf.reduce_mean(tf.cast(image, tf.float32)) > 10.0
        boxes = np.zeros((1, 100, 4), np.float32)
        boxes[0, 0] = [0.1, 0.1, 0.5, 0.5]
        boxes[0, 1] = [0.2, 0.3, 0.9, 0.8]
        tf.identity(tf.constant(boxes), name="detection_boxes")
        tf.identity(tf.fill([1, 100], 0.9), name="detection_scores")
        tf.identity(tf.ones([1, 100]), name="detection_classes")
        tf.reshape(tf.where(bright, 2.0, 0.0), [1], name="num_detections")
        tf.identity(tf.fill([1, 100, 33, 33], 0.8), name="detection_masks")
    path.write_bytes(g.as_graph_def().SerializeToString())
    return path


def test_other_exports_work_in_both_patterns_including_zero_detections(tf, tmp_path):
    from oddoctor_legacy_tf1.patterns import LegacyDetector, load_detection_graph, run_inference_for_single_image

    pb = _hand_made_export(tf, tmp_path / "frozen_inference_graph.pb")
    bright = np.full((100, 200, 3), 200, np.uint8)
    dark = np.zeros((60, 80, 3), np.uint8)
    graph = load_detection_graph(pb)
    with LegacyDetector(pb) as det:
        for image, n in ((bright, 2), (dark, 0)):
            a, b = run_inference_for_single_image(image, graph), det(image)
            assert b["num_detections"] == n
            assert b["detection_masks"].shape == (n, *image.shape[:2])
            for key in KEYS:
                assert np.array_equal(a[key], b[key]), key
        # The mask of box 0 (ymin .1, xmin .1, ymax .5, xmax .5) lands in rows 10-50, cols 20-100.
        mask = det(bright)["detection_masks"][0]
        rows, cols = np.nonzero(mask)
        assert abs(rows.min() - 10) <= 1
        assert abs(rows.max() - 49) <= 1
        assert abs(cols.min() - 20) <= 1
        assert abs(cols.max() - 99) <= 1
