"""The TF1 inference loop as the OD API tutorial taught it (leaks), and the fixed one (does not).

Public API:

- ``load_detection_graph(model) -> tf.Graph``: the tutorial's ``detection_graph``.
- ``run_inference_for_single_image(image, graph, *, config=None) -> dict``: the tutorial's function
  (tensorflow/models r1.13 ``object_detection_tutorial.ipynb``, cell ``92BHxzcNWKMf``), same
  structure and outputs. Every call opens a new ``Session`` and adds the mask-reframing ops to
  ``graph``, with the image size baked in as constants: the graph grows by a fixed number of ops
  per image and every image pays for a new session.
- ``reframe_box_masks_to_image_masks(box_masks, boxes, image_height, image_width)``: the OD API
  ``utils/ops.py`` operation (TF ops, ``tf.cond`` on an empty detection set), needed by both.
- ``LegacyDetector(model, *, allow_growth=True, memory_fraction=None)``: the fix as a drop-in.
  ``with LegacyDetector("frozen_inference_graph.pb") as det: output_dict = det(image)`` gives the
  same dict as ``run_inference_for_single_image``: one graph, mask reframing built once (the image
  size is read from the fed tensor, so any size reuses it), ``graph.finalize()``, one ``Session``
  with ``ConfigProto(gpu_options=GPUOptions(allow_growth=..., per_process_gpu_memory_fraction=...))``,
  closed on exit; ``swap(model)`` closes it and calls ``tf.compat.v1.reset_default_graph()``.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

from oddoctor_legacy_tf1.graph_io import LoadedModel, import_model, load_model

_KEYS = ("num_detections", "detection_boxes", "detection_scores", "detection_classes", "detection_masks")

ModelLike = Union[str, "os.PathLike[str]", LoadedModel]


def _tf() -> Any:
    import tensorflow as tf

    return tf


def session_config(*, allow_growth: bool = True, memory_fraction: Optional[float] = None) -> Any:
    """``ConfigProto`` with the GPU memory options users need on a shared GPU."""
    v1 = _tf().compat.v1
    gpu_options = v1.GPUOptions(allow_growth=allow_growth)
    if memory_fraction is not None:
        # A hard upper bound for this process on each GPU (tensorflow#18656, SO 34199233).
        gpu_options.per_process_gpu_memory_fraction = float(memory_fraction)
    return v1.ConfigProto(gpu_options=gpu_options)


def _as_model(model: ModelLike) -> LoadedModel:
    return model if isinstance(model, LoadedModel) else load_model(Path(model))


def load_detection_graph(model: ModelLike) -> Any:
    """Import a frozen OD API export into a new ``tf.Graph`` (the tutorial's ``detection_graph``)."""
    return import_model(_as_model(model))


def reframe_box_masks_to_image_masks(box_masks: Any, boxes: Any, image_height: Any, image_width: Any) -> Any:
    """Paste box-relative masks [N, mh, mw] into image-sized masks [N, H, W] (OD API semantics).

    Each mask is resampled with ``crop_and_resize`` through the box that maps the unit square onto
    the image window as seen from the detection box; pixels outside the box get 0.
    """
    tf = _tf()

    def _reframe() -> Any:
        expanded = tf.expand_dims(box_masks, axis=3)
        count = tf.shape(expanded)[0]
        unit = tf.concat([tf.zeros([count, 2]), tf.ones([count, 2])], axis=1)
        # Express the image corners (unit box) in each detection box's own coordinates.
        corners = tf.reshape(unit, [-1, 2, 2])
        low = tf.expand_dims(boxes[:, 0:2], 1)
        high = tf.expand_dims(boxes[:, 2:4], 1)
        window = tf.reshape((corners - low) / (high - low), [-1, 4])
        return tf.image.crop_and_resize(
            image=expanded, boxes=window, box_indices=tf.range(count),
            crop_size=[image_height, image_width], extrapolation_value=0.0)

    image_masks = tf.cond(
        tf.shape(box_masks)[0] > 0, _reframe,
        lambda: tf.zeros([0, image_height, image_width, 1], dtype=tf.float32))
    return tf.squeeze(image_masks, axis=3)


def _postprocess(output_dict: dict[str, Any]) -> dict[str, Any]:
    """The tutorial's conversions: batch dimension dropped, classes to uint8, count to int."""
    output_dict["num_detections"] = int(output_dict["num_detections"][0])
    output_dict["detection_classes"] = output_dict["detection_classes"][0].astype(np.uint8)
    output_dict["detection_boxes"] = output_dict["detection_boxes"][0]
    output_dict["detection_scores"] = output_dict["detection_scores"][0]
    if "detection_masks" in output_dict:
        output_dict["detection_masks"] = output_dict["detection_masks"][0]
    return output_dict


def run_inference_for_single_image(image: np.ndarray, graph: Any, *, config: Any = None) -> dict[str, Any]:
    """The OD API tutorial's per-image function, leak included (do not use this; see LegacyDetector)."""
    tf = _tf()
    v1 = tf.compat.v1
    with graph.as_default():  # noqa: SIM117 - kept nested exactly as the tutorial wrote it
        with v1.Session(config=config) as sess:  # (1) a new Session for every image
            # (2) walks the whole, growing graph on every call
            ops = v1.get_default_graph().get_operations()
            all_tensor_names = {output.name for op in ops for output in op.outputs}
            tensor_dict = {}
            for key in _KEYS:
                tensor_name = key + ":0"
                if tensor_name in all_tensor_names:
                    tensor_dict[key] = v1.get_default_graph().get_tensor_by_name(tensor_name)
            if "detection_masks" in tensor_dict:
                # (3) new ops appended to the long-lived graph on EVERY call
                detection_boxes = tf.squeeze(tensor_dict["detection_boxes"], [0])
                detection_masks = tf.squeeze(tensor_dict["detection_masks"], [0])
                real_num_detection = tf.cast(tensor_dict["num_detections"][0], tf.int32)
                detection_boxes = tf.slice(detection_boxes, [0, 0], [real_num_detection, -1])
                detection_masks = tf.slice(detection_masks, [0, 0, 0], [real_num_detection, -1, -1])
                # (4) the image size is baked in as Python ints
                detection_masks_reframed = reframe_box_masks_to_image_masks(
                    detection_masks, detection_boxes, image.shape[0], image.shape[1])
                detection_masks_reframed = tf.cast(tf.greater(detection_masks_reframed, 0.5), tf.uint8)
                tensor_dict["detection_masks"] = tf.expand_dims(detection_masks_reframed, 0)
            image_tensor = v1.get_default_graph().get_tensor_by_name("image_tensor:0")
            output_dict = sess.run(tensor_dict, feed_dict={image_tensor: np.expand_dims(image, 0)})
            return _postprocess(output_dict)


class LegacyDetector:
    """A TF1 OD API export behind one finalized graph and one Session: the leak-free loop.

    ``model`` is a path (frozen ``.pb``, SavedModel dir, OD API export dir) or a ``LoadedModel``.
    Calling the detector with a uint8 HxWx3 image returns the tutorial's ``output_dict``
    (``num_detections`` int, boxes/scores [N...], classes uint8, image-sized uint8 masks).
    Not thread-safe for ``swap``/``close``; calls themselves go through one ``Session.run``.
    """

    def __init__(self, model: ModelLike, *, allow_growth: bool = True,
                 memory_fraction: Optional[float] = None, mask_threshold: float = 0.5) -> None:
        self.allow_growth = allow_growth
        self.memory_fraction = memory_fraction
        self.mask_threshold = mask_threshold
        self.graph: Any = None
        self.session: Any = None
        self._load(model)

    def _load(self, model: ModelLike) -> None:
        tf = _tf()
        loaded = _as_model(model)
        graph = import_model(loaded)
        with graph.as_default():
            tensor_dict = {key: graph.get_tensor_by_name(f"{key}:0") for key in _KEYS
                           if f"{key}:0" in loaded.outputs}
            image_tensor = graph.get_tensor_by_name("image_tensor:0")
            if "detection_masks" in tensor_dict:
                with tf.name_scope("oddoctor_reframe"):
                    # Built once: the image size comes from the fed tensor, not from Python ints.
                    size = tf.shape(image_tensor)
                    boxes = tf.squeeze(tensor_dict["detection_boxes"], [0])
                    masks = tf.squeeze(tensor_dict["detection_masks"], [0])
                    count = tf.cast(tensor_dict["num_detections"][0], tf.int32)
                    boxes = tf.slice(boxes, [0, 0], [count, -1])
                    masks = tf.slice(masks, [0, 0, 0], [count, -1, -1])
                    reframed = reframe_box_masks_to_image_masks(masks, boxes, size[1], size[2])
                    reframed = tf.cast(tf.greater(reframed, self.mask_threshold), tf.uint8)
                    tensor_dict["detection_masks"] = tf.expand_dims(reframed, 0)
        graph.finalize()  # any op added later raises instead of leaking
        self.graph = graph
        self.model = loaded
        self._fetches = tensor_dict
        self._image_tensor = image_tensor
        self.session = tf.compat.v1.Session(
            graph=graph, config=session_config(allow_growth=self.allow_growth,
                                               memory_fraction=self.memory_fraction))

    def __call__(self, image: np.ndarray) -> dict[str, Any]:
        if self.session is None:
            raise RuntimeError("LegacyDetector is closed")
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected a uint8 HxWx3 image, got {image.dtype} {image.shape}")
        out = self.session.run(self._fetches, feed_dict={self._image_tensor: image[None]})
        return _postprocess(out)

    def swap(self, model: ModelLike) -> None:
        """Close this model's Session, clear the default graph, load another model."""
        self.close()
        self._load(model)

    def close(self) -> None:
        """Release the Session and the graph; safe to call twice."""
        if self.session is not None:
            self.session.close()
        self.session = None
        self.graph = None
        # Inside someone's `with graph.as_default()` this raises AssertionError: their graph, leave it.
        with contextlib.suppress(AssertionError):
            _tf().compat.v1.reset_default_graph()

    def __enter__(self) -> LegacyDetector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
