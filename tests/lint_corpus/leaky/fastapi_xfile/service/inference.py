# ruff: noqa
# Pattern: see main.py; TF Hub's detector loaded inside the function every request reaches.
import tensorflow as tf
import tensorflow_hub as hub

MODEL_URL = "https://tfhub.dev/tensorflow/ssd_mobilenet_v2/2"


def detect_objects(pixels):
    detector = hub.load(MODEL_URL)  # expect: lint.model-load-per-item
    result = detector(tf.convert_to_tensor(pixels)[tf.newaxis, ...])
    return {k: v.numpy().tolist() for k, v in result.items()}
