"""The two TF1 inference loops, re-exported from where they live (kept for existing imports).

``from oddoctor_legacy_tf1.patterns import LegacyDetector`` is documented and keeps working:

- :mod:`oddoctor_legacy_tf1.detector`: ``LegacyDetector`` (the fix) and ``session_config``;
- :mod:`oddoctor_legacy_tf1.tutorial`: ``load_detection_graph`` and ``run_inference_for_single_image``
  (the tutorial's leaky loop);
- :mod:`oddoctor_legacy_tf1.reframe`: ``reframe_box_masks_to_image_masks`` (the OD API's mask op).
"""

from __future__ import annotations

from oddoctor_legacy_tf1.detector import LegacyDetector, session_config
from oddoctor_legacy_tf1.graph_io import ModelLike
from oddoctor_legacy_tf1.reframe import reframe_box_masks_to_image_masks
from oddoctor_legacy_tf1.tutorial import load_detection_graph, run_inference_for_single_image

__all__ = [
    "LegacyDetector",
    "ModelLike",
    "load_detection_graph",
    "reframe_box_masks_to_image_masks",
    "run_inference_for_single_image",
    "session_config",
]
