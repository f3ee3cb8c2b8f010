# ruff: noqa
# Pattern: monkinng9/Pil_identifier@156f0a5b55de79a386bee57ddb0ea31ed6fd9df3 Flask/detect5.py (TF2 eager
#   inference), with the SavedModel loaded once, eager ops per image, and a tf.function with an input_signature.
import numpy as np
import tensorflow as tf

model = tf.saved_model.load("saved_model")
detect_fn = model.signatures["serving_default"]


@tf.function(input_signature=[tf.TensorSpec([None, None, 3], tf.uint8), tf.TensorSpec([], tf.int32)])
def top_k(image, k):
    return tf.image.resize(image, [k, k])


for i in range(10):
    image_np = np.zeros((320, 320, 3), np.uint8)
    input_tensor = tf.convert_to_tensor(image_np)[tf.newaxis, ...]
    detections = detect_fn(input_tensor)
    small = top_k(image_np, i)
    boxes = detections["detection_boxes"].numpy()
