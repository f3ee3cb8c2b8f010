# ruff: noqa
# Pattern: monkinng9/Pil_identifier@156f0a5b55de79a386bee57ddb0ea31ed6fd9df3 Flask/detect5.py: the TF2 helper
#   star-imported by main.py; its eager ops are fine (no finding here).
import numpy as np
import tensorflow as tf
from PIL import Image


def show_inference(model, image_path):
    image_np = np.array(Image.open(image_path))
    input_tensor = tf.convert_to_tensor(image_np)[tf.newaxis, ...]
    output = model(input_tensor)
    return {k: v.numpy() for k, v in output.items()}
