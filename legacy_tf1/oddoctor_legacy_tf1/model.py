"""A small, seeded TF1 frozen graph shaped like an OD API Mask R-CNN Inception v2 export.

Public API:

- ``build_model(path, *, seed=0, ...) -> Path`` writes ``frozen_inference_graph.pb`` (or, with
  ``saved_model=True``, a TF1 SavedModel directory) with exactly the tensor names and dtypes of
  ``mask_rcnn_inception_v2_coco_2018_01_28``:

  ==========================  =========  ==================================================
  tensor                      dtype      shape
  ==========================  =========  ==================================================
  ``image_tensor:0``          uint8      ``[None, None, None, 3]`` (the tutorial feeds batch 1)
  ``detection_boxes:0``       float32    ``[1, N, 4]`` normalized ymin, xmin, ymax, xmax
  ``detection_scores:0``      float32    ``[1, N]``
  ``detection_classes:0``     float32    ``[1, N]`` (1-based COCO ids, float like the real one)
  ``num_detections:0``        float32    ``[1]``
  ``detection_masks:0``       float32    ``[1, N, mask_size, mask_size]`` box-relative, in [0, 1]
  ==========================  =========  ==================================================

The network is real, only small: Inception-style mixed blocks, an RPN with anchors, box decoding
and non-max suppression, ``crop_and_resize`` ROI features, box/class heads, a second NMS and a mask
head. Weights come from ``numpy.random.default_rng(seed)``, live in ``tf.compat.v1`` variables and
are frozen into constants, so the same seed gives the same bytes. The score head is calibrated
(scores standardized over the proposals of an image) so every image yields a handful of
detections above 0.5, as a trained model would on a real photo.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from oddoctor_legacy_tf1._tfutil import quiet_deprecations
from oddoctor_legacy_tf1.names import BOXES, CLASSES, INPUT_NAME, MASKS, NUM_DETECTIONS, OUTPUT_NAMES, SCORES

MODEL_NAME = "mask_rcnn_inception_v2_oddoctor_synthetic"


class _Weights:
    """Seeded weight factory: every variable is created from one numpy Generator, in build order."""

    def __init__(self, tf: Any, seed: int) -> None:
        self.tf = tf
        self.rng = np.random.default_rng(seed)

    def var(self, name: str, shape: tuple[int, ...], *, scale: float | None = None,
            value: np.ndarray | None = None) -> Any:
        if value is None:
            fan_in = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
            std = scale if scale is not None else float(np.sqrt(2.0 / max(fan_in, 1)))
            value = self.rng.normal(0.0, std, size=shape).astype(np.float32)
        return self.tf.compat.v1.Variable(value.astype(np.float32), name=name)


def _conv(w: _Weights, x: Any, name: str, k: int, cout: int, stride: int = 1, relu: bool = True,
          scale: float | None = None, bias: float = 0.0) -> Any:
    tf = w.tf
    with tf.compat.v1.variable_scope(name):
        cin = int(x.shape[-1])
        kernel = w.var("weights", (k, k, cin, cout), scale=scale)
        b = w.var("biases", (cout,), value=np.full((cout,), bias, np.float32))
        y = tf.nn.conv2d(x, kernel, strides=[1, stride, stride, 1], padding="SAME") + b
        return tf.nn.relu6(y) if relu else y


def _dense(w: _Weights, x: Any, name: str, cout: int, scale: float | None = None) -> Any:
    tf = w.tf
    with tf.compat.v1.variable_scope(name):
        cin = int(x.shape[-1])
        kernel = w.var("weights", (cin, cout), scale=scale)
        b = w.var("biases", (cout,), value=np.zeros((cout,), np.float32))
        return tf.matmul(x, kernel) + b


def _mixed(w: _Weights, x: Any, name: str, c1: int, c3r: int, c3: int, cd3r: int, cd3: int,
           cp: int) -> Any:
    """Inception v2 mixed block: 1x1, 1x1->3x3, 1x1->3x3->3x3 (factorized 5x5), avgpool->1x1."""
    tf = w.tf
    with tf.compat.v1.variable_scope(name):
        b0 = _conv(w, x, "Branch_0/Conv2d_0a_1x1", 1, c1)
        b1 = _conv(w, _conv(w, x, "Branch_1/Conv2d_0a_1x1", 1, c3r), "Branch_1/Conv2d_0b_3x3", 3, c3)
        b2 = _conv(w, x, "Branch_2/Conv2d_0a_1x1", 1, cd3r)
        b2 = _conv(w, b2, "Branch_2/Conv2d_0b_3x3", 3, cd3)
        b2 = _conv(w, b2, "Branch_2/Conv2d_0c_3x3", 3, cd3)
        b3 = tf.nn.avg_pool2d(x, 3, 1, "SAME", name="Branch_3/AvgPool_0a_3x3")
        b3 = _conv(w, b3, "Branch_3/Conv2d_0b_1x1", 1, cp)
        return tf.concat([b0, b1, b2, b3], axis=3)


def _mixed_reduce(w: _Weights, x: Any, name: str, c3r: int, c3: int, cd3r: int, cd3: int) -> Any:
    """Inception v2 grid-reduction block (stride 2): 1x1->3x3/2, 1x1->3x3->3x3/2, maxpool/2."""
    tf = w.tf
    with tf.compat.v1.variable_scope(name):
        b0 = _conv(w, _conv(w, x, "Branch_0/Conv2d_0a_1x1", 1, c3r), "Branch_0/Conv2d_1a_3x3", 3, c3, 2)
        b1 = _conv(w, x, "Branch_1/Conv2d_0a_1x1", 1, cd3r)
        b1 = _conv(w, b1, "Branch_1/Conv2d_0b_3x3", 3, cd3)
        b1 = _conv(w, b1, "Branch_1/Conv2d_1a_3x3", 3, cd3, 2)
        b2 = tf.nn.max_pool2d(x, 3, 2, "SAME", name="Branch_2/MaxPool_1a_3x3")
        return tf.concat([b0, b1, b2], axis=3)


def _decode(tf: Any, anchors: Any, deltas: Any) -> Any:
    """Faster R-CNN box coder (scale factors 10, 10, 5, 5), clipped to the unit window."""
    ya = (anchors[:, 0] + anchors[:, 2]) / 2.0
    xa = (anchors[:, 1] + anchors[:, 3]) / 2.0
    ha = anchors[:, 2] - anchors[:, 0]
    wa = anchors[:, 3] - anchors[:, 1]
    ty, tx, th, tw = (deltas[:, i] for i in range(4))
    yc = ty / 10.0 * ha + ya
    xc = tx / 10.0 * wa + xa
    h = tf.exp(tf.minimum(th / 5.0, 4.0)) * ha
    wdt = tf.exp(tf.minimum(tw / 5.0, 4.0)) * wa
    boxes = tf.stack([yc - h / 2.0, xc - wdt / 2.0, yc + h / 2.0, xc + wdt / 2.0], axis=1)
    return tf.clip_by_value(boxes, 0.0, 1.0)


def _calibrated_scores(tf: Any, margin: Any, gain: float, bias: float) -> Any:
    """Standardize a per-proposal score margin over the image, then squash: a fixed score spread."""
    mean, var = tf.nn.moments(margin, axes=[0])
    z = (margin - mean) / tf.sqrt(var + 1e-6)
    return tf.sigmoid(gain * z + bias)


def _build_graph(tf: Any, seed: int, num_classes: int, max_detections: int, mask_size: int,
                 resize: int, max_proposals: int) -> tuple[Any, list[str]]:
    """Build the inference graph with variables; return (graph, output node names)."""
    v1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default():
        w = _Weights(tf, seed)
        image = v1.placeholder(tf.uint8, [None, None, None, 3], name=INPUT_NAME)
        with tf.name_scope("Preprocessor"):
            x = tf.cast(image[0:1], tf.float32)
            x = v1.image.resize(x, [resize, resize], method=v1.image.ResizeMethod.BILINEAR)
            x = x * (2.0 / 255.0) - 1.0
        with v1.variable_scope("FirstStageFeatureExtractor/InceptionV2/InceptionV2"):
            net = _conv(w, x, "Conv2d_1a_7x7", 7, 16, 2)
            net = tf.nn.max_pool2d(net, 3, 2, "SAME", name="MaxPool_2a_3x3")
            net = _conv(w, net, "Conv2d_2b_1x1", 1, 16)
            net = _conv(w, net, "Conv2d_2c_3x3", 3, 32)
            net = tf.nn.max_pool2d(net, 3, 2, "SAME", name="MaxPool_3a_3x3")
            net = _mixed(w, net, "Mixed_3b", 16, 16, 24, 8, 12, 8)
            net = _mixed(w, net, "Mixed_3c", 16, 16, 24, 8, 12, 8)
            net = _mixed_reduce(w, net, "Mixed_4a", 16, 32, 8, 16)
            features = _mixed(w, net, "Mixed_4b", 32, 16, 32, 16, 24, 16)
        fh, fw = tf.shape(features)[1], tf.shape(features)[2]

        with v1.variable_scope("FirstStageBoxPredictor"):
            sizes = np.array([0.12, 0.25, 0.45], np.float32)
            ratios = np.array([0.5, 1.0, 2.0], np.float32)
            num_anchors = len(sizes) * len(ratios)
            rpn = _conv(w, features, "Conv2d_3x3", 3, 64)
            objectness = _conv(w, rpn, "ClassPredictor", 1, num_anchors, relu=False)
            rpn_deltas = _conv(w, rpn, "BoxEncodingPredictor", 1, 4 * num_anchors, relu=False, scale=0.02)
        with tf.name_scope("GridAnchorGenerator"):
            cy = (tf.cast(tf.range(fh), tf.float32) + 0.5) / tf.cast(fh, tf.float32)
            cx = (tf.cast(tf.range(fw), tf.float32) + 0.5) / tf.cast(fw, tf.float32)
            gy, gx = tf.meshgrid(cy, cx, indexing="ij")
            hs = np.array([s / np.sqrt(r) for s in sizes for r in ratios], np.float32)
            ws = np.array([s * np.sqrt(r) for s in sizes for r in ratios], np.float32)
            centers = tf.stack([gy, gx], axis=-1)[:, :, None, :]
            half = tf.constant(np.stack([hs, ws], axis=-1) / 2.0)[None, None, :, :]
            anchors = tf.reshape(tf.concat([centers - half, centers + half], axis=-1), [-1, 4])
        with tf.name_scope("FirstStagePostprocessor"):
            obj = tf.reshape(tf.sigmoid(objectness), [-1])
            prop_all = _decode(tf, anchors, tf.reshape(rpn_deltas, [-1, 4]))
            keep = tf.image.non_max_suppression(prop_all, obj, max_proposals, iou_threshold=0.7)
            proposals = tf.gather(prop_all, keep)
            num_props = tf.shape(proposals)[0]

        with tf.name_scope("CropAndResize"):
            rois = tf.image.crop_and_resize(features, proposals, tf.zeros([num_props], tf.int32), [14, 14])
            rois = tf.nn.max_pool2d(rois, 2, 2, "VALID", name="MaxPool2D")
        with v1.variable_scope("SecondStageFeatureExtractor/InceptionV2/Mixed_5a"):
            box_feat = _mixed(w, rois, "Mixed_5b", 32, 16, 32, 16, 24, 16)
            box_feat = tf.reduce_mean(box_feat, axis=[1, 2])
        with v1.variable_scope("SecondStageBoxPredictor"):
            logits = _dense(w, box_feat, "ClassPredictor", num_classes + 1)
            box_deltas = _dense(w, box_feat, "BoxEncodingPredictor", 4 * num_classes, scale=0.01)
        with tf.name_scope("SecondStagePostprocessor"):
            fg = logits[:, 1:]
            cls = tf.argmax(fg, axis=1, output_type=tf.int32)
            margin = tf.reduce_max(fg, axis=1) - logits[:, 0]
            scores = _calibrated_scores(tf, margin, gain=1.5, bias=-1.5)
            per_class = tf.reshape(box_deltas, [-1, num_classes, 4])
            deltas = tf.gather(per_class, cls, axis=1, batch_dims=1)
            refined = _decode(tf, proposals, deltas)
        with tf.name_scope("BatchMultiClassNonMaxSuppression"):
            sel = tf.image.non_max_suppression(refined, scores, max_detections, iou_threshold=0.6,
                                               score_threshold=0.3)
            n = tf.shape(sel)[0]
            pad = max_detections - n
            det_boxes = tf.pad(tf.gather(refined, sel), [[0, pad], [0, 0]])
            det_scores = tf.pad(tf.gather(scores, sel), [[0, pad]])
            det_cls = tf.pad(tf.gather(cls, sel), [[0, pad]])
            det_boxes = tf.reshape(det_boxes, [max_detections, 4])

        with v1.variable_scope("MaskPredictor"):
            mrois = tf.image.crop_and_resize(features, det_boxes, tf.zeros([max_detections], tf.int32),
                                             [mask_size, mask_size])
            m = _conv(w, mrois, "Conv2d_0_3x3", 3, 32)
            m = _conv(w, m, "Conv2d_1_3x3", 3, 32)
            mlogits = _conv(w, m, "MaskPredictor_1x1", 1, num_classes, relu=False, scale=0.3)
            mlogits = tf.transpose(mlogits, [0, 3, 1, 2])  # [N, classes, mh, mw]
            mlogits = tf.gather(mlogits, det_cls, axis=1, batch_dims=1)
            # Box-relative masks of a trained model are object-shaped blobs around the box centre.
            r = (np.arange(mask_size, dtype=np.float32) + 0.5) / mask_size - 0.5
            prior = 1.0 - 12.0 * (r[:, None] ** 2 + r[None, :] ** 2)
            masks = tf.sigmoid(mlogits + tf.constant(prior.astype(np.float32)))

        tf.identity(det_boxes[None], name=BOXES)
        tf.identity(det_scores[None], name=SCORES)
        tf.identity(tf.cast(det_cls + 1, tf.float32)[None], name=CLASSES)
        tf.identity(tf.reshape(tf.cast(n, tf.float32), [1]), name=NUM_DETECTIONS)
        tf.identity(masks[None], name=MASKS)
    return graph, list(OUTPUT_NAMES)


def build_graph_def(*, seed: int = 0, num_classes: int = 90, max_detections: int = 20,
                    mask_size: int = 15, resize: int = 256, max_proposals: int = 64) -> Any:
    """Return the frozen ``GraphDef`` (variables folded into constants) without writing it."""
    import tensorflow as tf

    graph, outputs = _build_graph(tf, seed, num_classes, max_detections, mask_size, resize,
                                  max_proposals)
    with quiet_deprecations(tf), graph.as_default(), tf.compat.v1.Session(graph=graph) as sess:
        sess.run(tf.compat.v1.global_variables_initializer())
        frozen = tf.compat.v1.graph_util.convert_variables_to_constants(
            sess, graph.as_graph_def(), outputs)
    return frozen


def build_model(path: str | os.PathLike[str], *, seed: int = 0, num_classes: int = 90,
                max_detections: int = 20, mask_size: int = 15, resize: int = 256,
                max_proposals: int = 64, saved_model: bool = False) -> Path:
    """Write the seeded synthetic Mask R-CNN export to ``path`` and return it.

    ``path`` is the ``.pb`` file to write (parents created; written atomically), or with
    ``saved_model=True`` a directory that must not exist yet, written as a TF1 SavedModel (tag
    ``serve``, signature ``serving_default`` with input ``inputs`` and the five outputs) the way
    the OD API exporter writes ``saved_model/``. Deterministic: same arguments, same bytes
    (for the frozen graph). Needs TensorFlow; builds in its own ``tf.Graph``, so it is safe to
    call from an eager program.
    """
    import tensorflow as tf

    path = Path(path)
    frozen = build_graph_def(seed=seed, num_classes=num_classes, max_detections=max_detections,
                             mask_size=mask_size, resize=resize, max_proposals=max_proposals)
    if saved_model:
        return _write_saved_model(tf, frozen, path)
    _atomic_write_bytes(path, frozen.SerializeToString(deterministic=True))
    return path


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file next to ``path``, then rename it onto ``path`` (through a
    symlink, onto its target): a reader sees the old file or the new one, never half of one."""
    if path.is_symlink():
        path = path.resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_saved_model(tf: Any, frozen: Any, path: Path) -> Path:
    """TF1 SavedModel holding the frozen graph, like the OD API's ``saved_model/`` export."""
    v1 = tf.compat.v1
    if path.exists():
        raise FileExistsError(f"{path} already exists")
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    graph = tf.Graph()
    with quiet_deprecations(tf), graph.as_default():
        tf.graph_util.import_graph_def(frozen, name="")
        with v1.Session(graph=graph) as sess:
            builder = v1.saved_model.Builder(str(tmp))
            sig = v1.saved_model.signature_def_utils.predict_signature_def(
                inputs={"inputs": graph.get_tensor_by_name(f"{INPUT_NAME}:0")},
                outputs={name: graph.get_tensor_by_name(f"{name}:0") for name in OUTPUT_NAMES})
            builder.add_meta_graph_and_variables(
                sess, [v1.saved_model.tag_constants.SERVING],
                signature_def_map={"serving_default": sig})
            builder.save()
    os.replace(tmp, path)
    return path
