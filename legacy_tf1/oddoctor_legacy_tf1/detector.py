"""The fixed TF1 inference loop as a drop-in class: one finalized graph, one Session, no leak.

``LegacyDetector(model, *, allow_growth=True, memory_fraction=None)``:
``with LegacyDetector("frozen_inference_graph.pb") as det: output_dict = det(image)`` gives the same
dict as the tutorial's ``run_inference_for_single_image``: one graph, mask reframing built once (the
image size is read from the fed tensor, so any size reuses it), ``graph.finalize()``, one ``Session``
with ``ConfigProto(gpu_options=GPUOptions(allow_growth=..., per_process_gpu_memory_fraction=...))``,
closed on exit; ``swap(model)`` closes it and calls ``tf.compat.v1.reset_default_graph()``.

``session_config(*, allow_growth=True, memory_fraction=None)`` is that ``ConfigProto`` on its own.
"""

from __future__ import annotations

import contextlib
from typing import Any, Optional

import numpy as np

from oddoctor_legacy_tf1.graph_io import ModelLike, import_model, loaded_model
from oddoctor_legacy_tf1.names import BOXES, INPUT_TENSOR, MASKS, NUM_DETECTIONS
from oddoctor_legacy_tf1.reframe import reframe_box_masks_to_image_masks
from oddoctor_legacy_tf1.tutorial import OUTPUT_KEYS, postprocess


def session_config(*, allow_growth: bool = True, memory_fraction: Optional[float] = None) -> Any:
    """``ConfigProto`` with the GPU memory options users need on a shared GPU."""
    import tensorflow as tf

    v1 = tf.compat.v1
    gpu_options = v1.GPUOptions(allow_growth=allow_growth)
    if memory_fraction is not None:
        # A hard upper bound for this process on each GPU (tensorflow#18656, SO 34199233).
        gpu_options.per_process_gpu_memory_fraction = float(memory_fraction)
    return v1.ConfigProto(gpu_options=gpu_options)


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
        import tensorflow as tf

        loaded = loaded_model(model)
        graph = import_model(loaded)
        with graph.as_default():
            tensor_dict = {key: graph.get_tensor_by_name(f"{key}:0") for key in OUTPUT_KEYS
                           if f"{key}:0" in loaded.outputs}
            image_tensor = graph.get_tensor_by_name(INPUT_TENSOR)
            if MASKS in tensor_dict:
                with tf.name_scope("oddoctor_reframe"):
                    # Built once: the image size comes from the fed tensor, not from Python ints.
                    size = tf.shape(image_tensor)
                    boxes = tf.squeeze(tensor_dict[BOXES], [0])
                    masks = tf.squeeze(tensor_dict[MASKS], [0])
                    count = tf.cast(tensor_dict[NUM_DETECTIONS][0], tf.int32)
                    boxes = tf.slice(boxes, [0, 0], [count, -1])
                    masks = tf.slice(masks, [0, 0, 0], [count, -1, -1])
                    reframed = reframe_box_masks_to_image_masks(masks, boxes, size[1], size[2])
                    reframed = tf.cast(tf.greater(reframed, self.mask_threshold), tf.uint8)
                    tensor_dict[MASKS] = tf.expand_dims(reframed, 0)
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
        return postprocess(out)

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
        import tensorflow as tf

        # Inside someone's `with graph.as_default()` this raises AssertionError: their graph, leave it.
        with contextlib.suppress(AssertionError):
            tf.compat.v1.reset_default_graph()

    def __enter__(self) -> LegacyDetector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
