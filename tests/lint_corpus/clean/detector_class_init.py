# ruff: noqa
# Pattern: willjjacobs/dora@f44fbc1df76f4504ecb39f6f176bd48ffea4890c dora/core/neuralnet/NeuralNet.py, fixed: the
#   graph, its extra ops and the Session are made in __init__; the per-image method only runs the Session.
import tensorflow.compat.v1 as tf


class Detector:
    def __init__(self, path, memory_fraction=0.5):
        self.graph = tf.Graph()
        with self.graph.as_default():
            graph_def = tf.GraphDef()
            with tf.gfile.GFile(path, "rb") as f:
                graph_def.ParseFromString(f.read())
            tf.import_graph_def(graph_def, name="")
            self.image = self.graph.get_tensor_by_name("image_tensor:0")
            self.boxes = tf.squeeze(self.graph.get_tensor_by_name("detection_boxes:0"), [0])
        self.graph.finalize()
        options = tf.GPUOptions(per_process_gpu_memory_fraction=memory_fraction)
        self.sess = tf.Session(graph=self.graph, config=tf.ConfigProto(gpu_options=options))

    def __call__(self, image):
        return self.sess.run(self.boxes, feed_dict={self.image: image[None]})

    def close(self):
        self.sess.close()
