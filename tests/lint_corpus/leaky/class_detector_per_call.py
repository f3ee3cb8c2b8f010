# ruff: noqa
# Pattern: willjjacobs/dora@f44fbc1df76f4504ecb39f6f176bd48ffea4890c dora/core/neuralnet/NeuralNet.py: a detector
#   class that loads the graph in __init__ (fine) but opens a Session and adds ops in its per-image method.
import numpy as np
import tensorflow.compat.v1 as tf


class NeuralNet:
    def __init__(self, path="frozen_inference_graph.pb"):
        self.detection_graph = tf.Graph()
        with self.detection_graph.as_default():
            graph_def = tf.GraphDef()
            with tf.gfile.GFile(path, "rb") as fid:
                graph_def.ParseFromString(fid.read())
            tf.import_graph_def(graph_def, name="")
        self.config = tf.ConfigProto(gpu_options=tf.GPUOptions(allow_growth=True))

    def run_inference(self, image):
        with self.detection_graph.as_default():
            batch = tf.expand_dims(tf.constant(image), 0)  # expect: lint.graph-op-per-item, lint.graph-op-per-item
            with tf.Session(config=self.config) as sess:  # expect: lint.session-per-item
                return sess.run("detection_boxes:0", feed_dict={"image_tensor:0": sess.run(batch)})

    def run_many(self, images):
        return [self.run_inference(np.asarray(i)) for i in images]
