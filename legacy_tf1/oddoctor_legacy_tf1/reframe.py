"""The mask-reframe operation of the OD API (``utils/ops.py``), re-implemented with TensorFlow ops.

``reframe_box_masks_to_image_masks(box_masks, boxes, image_height, image_width)`` pastes box-relative
masks ``[N, mh, mw]`` into image-sized masks ``[N, H, W]``, with a ``tf.cond`` for an empty detection
set, as the OD API's own function does. Both inference loops need it: the tutorial's builds it once per
image with the size as Python ints, :class:`~oddoctor_legacy_tf1.detector.LegacyDetector` once, with
the size read from the fed tensor. TensorFlow is imported when the ops are built.
"""

from __future__ import annotations

from typing import Any


def reframe_box_masks_to_image_masks(box_masks: Any, boxes: Any, image_height: Any, image_width: Any) -> Any:
    """Paste box-relative masks [N, mh, mw] into image-sized masks [N, H, W] (OD API semantics).

    Each mask is resampled with ``crop_and_resize`` through the box that maps the unit square onto
    the image window as seen from the detection box; pixels outside the box get 0.
    """
    import tensorflow as tf

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
