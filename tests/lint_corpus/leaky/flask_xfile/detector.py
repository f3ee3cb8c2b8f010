# ruff: noqa
# Pattern: see app.py; the helper a Flask route reaches across files.
import numpy as np
import tensorflow.compat.v1 as tf

GRAPH = tf.Graph()
with GRAPH.as_default():
    graph_def = tf.GraphDef()
    with tf.gfile.GFile("frozen_inference_graph.pb", "rb") as f:
        graph_def.ParseFromString(f.read())
    tf.import_graph_def(graph_def, name="")


def _decode(data):
    return np.frombuffer(data, np.uint8)


def run_detection(data):
    pixels = _decode(data)
    with GRAPH.as_default():
        resized = tf.image.resize_images(pixels, [300, 300])  # expect: lint.graph-op-per-item
        with tf.Session(graph=GRAPH) as sess:  # expect: lint.session-per-item, lint.gpu-session-config
            return sess.run("detection_boxes:0", feed_dict={"image_tensor:0": sess.run(resized)[None]})
