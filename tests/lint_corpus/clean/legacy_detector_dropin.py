# ruff: noqa
# Pattern: tensorflow/models@1411fc2f535b6286b70d70f187fbd58194929049 object_detection_tutorial.ipynb's per-image
#   loop, after the fix this linter suggests: oddoctor's LegacyDetector made once, called per image.
import numpy as np
from oddoctor_legacy_tf1 import LegacyDetector
from PIL import Image

TEST_IMAGE_PATHS = ["test_images/image1.jpg", "test_images/image2.jpg"]

with LegacyDetector("frozen_inference_graph.pb", allow_growth=True) as detector:
    for image_path in TEST_IMAGE_PATHS:
        output_dict = detector(np.array(Image.open(image_path).convert("RGB")))
        print(output_dict["num_detections"])
