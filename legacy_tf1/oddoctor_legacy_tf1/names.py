"""The tensor names of a TF1 Object Detection API export: the one place they are spelled out.

An export made with ``exporter.export_inference_graph("image_tensor", ...)`` has one input,
``image_tensor`` (uint8 ``[batch, height, width, 3]``), and these outputs: boxes, scores, classes and
the detection count always, box-relative instance masks for Mask R-CNN models. Names without ``:0`` are
node names and the keys of the tutorial's ``output_dict``; ``*_TENSOR``/``*_OUTPUTS`` are tensor names.
"""

from __future__ import annotations

INPUT_NAME = "image_tensor"
BOXES = "detection_boxes"
SCORES = "detection_scores"
CLASSES = "detection_classes"
NUM_DETECTIONS = "num_detections"
MASKS = "detection_masks"

REQUIRED_OUTPUT_NAMES = (BOXES, SCORES, CLASSES, NUM_DETECTIONS)  # every OD API detector has these
OUTPUT_NAMES = (*REQUIRED_OUTPUT_NAMES, MASKS)  # and Mask R-CNN exports this one too

# Tensor names: the first (only) output of each node.
INPUT_TENSOR = f"{INPUT_NAME}:0"
REQUIRED_OUTPUTS = tuple(f"{n}:0" for n in REQUIRED_OUTPUT_NAMES)
MASK_OUTPUT = f"{MASKS}:0"
ALL_OUTPUTS = (*REQUIRED_OUTPUTS, MASK_OUTPUT)
