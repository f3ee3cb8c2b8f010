"""The TF1 inference loop as the OD API tutorial taught it: it leaks. Kept to show and measure the leak.

- ``load_detection_graph(model) -> tf.Graph``: the tutorial's ``detection_graph``.
- ``run_inference_for_single_image(image, graph, *, config=None) -> dict``: the tutorial's function
  (tensorflow/models r1.13 ``object_detection_tutorial.ipynb``, cell ``92BHxzcNWKMf``), same
  structure and outputs, with the OD API's ``utils_ops.reframe_box_masks_to_image_masks`` when the caller
  passes it (``reframe=``), else oddoctor's re-implementation of it
  (:mod:`oddoctor_legacy_tf1.reframe`), and the tensor names from
  :mod:`oddoctor_legacy_tf1.names`. Every call opens a new ``Session`` and adds the mask-reframing
  ops to ``graph``, with the image size baked in as constants: the graph grows by a fixed number of
  ops per image and every image pays for a new session.
- ``postprocess(output_dict)``: the tutorial's conversions of the fetched arrays, shared by the fix.

Do not use this loop; :class:`oddoctor_legacy_tf1.detector.LegacyDetector` is the fix.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Optional

import numpy as np

from oddoctor_legacy_tf1.graph_io import ModelLike, import_model, loaded_model
from oddoctor_legacy_tf1.names import BOXES, CLASSES, INPUT_TENSOR, MASKS, NUM_DETECTIONS, SCORES
from oddoctor_legacy_tf1.reframe import reframe_box_masks_to_image_masks as reframe_oddoctor

# The tutorial's order of the output_dict keys.
OUTPUT_KEYS = (NUM_DETECTIONS, BOXES, SCORES, CLASSES, MASKS)


def load_detection_graph(model: ModelLike) -> Any:
    """Import a frozen OD API export into a new ``tf.Graph`` (the tutorial's ``detection_graph``)."""
    return import_model(loaded_model(model))


def postprocess(output_dict: dict[str, Any]) -> dict[str, Any]:
    """The tutorial's conversions: batch dimension dropped, classes to uint8, count to int."""
    output_dict[NUM_DETECTIONS] = int(output_dict[NUM_DETECTIONS][0])
    output_dict[CLASSES] = output_dict[CLASSES][0].astype(np.uint8)
    output_dict[BOXES] = output_dict[BOXES][0]
    output_dict[SCORES] = output_dict[SCORES][0]
    if MASKS in output_dict:
        output_dict[MASKS] = output_dict[MASKS][0]
    return output_dict


def run_inference_for_single_image(image: np.ndarray, graph: Any, *, config: Any = None,
                                   reframe: Optional[Callable[..., Any]] = None) -> dict[str, Any]:
    """The OD API tutorial's per-image function, leak included (do not use this; see LegacyDetector).

    ``reframe`` is the ``reframe_box_masks_to_image_masks`` to build: the OD API's own
    ``object_detection.utils.ops`` one when the caller has it, else (None) oddoctor's re-implementation.
    """
    import tensorflow as tf

    reframe_box_masks_to_image_masks = reframe or reframe_oddoctor
    v1 = tf.compat.v1
    with graph.as_default():  # noqa: SIM117 - kept nested exactly as the tutorial wrote it
        with v1.Session(config=config) as sess:  # (1) a new Session for every image
            # (2) walks the whole, growing graph on every call
            ops = v1.get_default_graph().get_operations()
            all_tensor_names = {output.name for op in ops for output in op.outputs}
            tensor_dict = {}
            for key in OUTPUT_KEYS:
                tensor_name = key + ":0"
                if tensor_name in all_tensor_names:
                    tensor_dict[key] = v1.get_default_graph().get_tensor_by_name(tensor_name)
            if MASKS in tensor_dict:
                # (3) new ops appended to the long-lived graph on EVERY call
                detection_boxes = tf.squeeze(tensor_dict[BOXES], [0])
                detection_masks = tf.squeeze(tensor_dict[MASKS], [0])
                real_num_detection = tf.cast(tensor_dict[NUM_DETECTIONS][0], tf.int32)
                detection_boxes = tf.slice(detection_boxes, [0, 0], [real_num_detection, -1])
                detection_masks = tf.slice(detection_masks, [0, 0, 0], [real_num_detection, -1, -1])
                # (4) the image size is baked in as Python ints
                detection_masks_reframed = reframe_box_masks_to_image_masks(
                    detection_masks, detection_boxes, image.shape[0], image.shape[1])
                detection_masks_reframed = tf.cast(tf.greater(detection_masks_reframed, 0.5), tf.uint8)
                tensor_dict[MASKS] = tf.expand_dims(detection_masks_reframed, 0)
            image_tensor = v1.get_default_graph().get_tensor_by_name(INPUT_TENSOR)
            output_dict = sess.run(tensor_dict, feed_dict={image_tensor: np.expand_dims(image, 0)})
            return postprocess(output_dict)
