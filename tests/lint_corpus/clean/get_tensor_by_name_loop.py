# ruff: noqa
# Pattern: willjjacobs/dora@591180d91af1a945c447f63d3bf2a0b5d15bd9b6 dora/core/neuralnet/NeuralNet_test.py: graph
#   and Session made once, the loop only looks tensors up by name (no new ops) and runs the Session.
import numpy as np
import tensorflow.compat.v1 as tf

detection_graph = tf.Graph()
with detection_graph.as_default():
    graph_def = tf.GraphDef()
    with tf.gfile.GFile("frozen_inference_graph.pb", "rb") as fid:
        graph_def.ParseFromString(fid.read())
    tf.import_graph_def(graph_def, name="")

config = tf.ConfigProto(gpu_options=tf.GPUOptions(allow_growth=True))
with detection_graph.as_default(), tf.Session(graph=detection_graph, config=config) as sess:
    for image_path in ["a.jpg", "b.jpg"]:
        image = np.zeros((300, 300, 3), np.uint8)
        image_tensor = detection_graph.get_tensor_by_name("image_tensor:0")
        fetches = {k: detection_graph.get_tensor_by_name(k + ":0") for k in ("detection_boxes", "num_detections")}
        output = sess.run(fetches, feed_dict={image_tensor: image[None]})
