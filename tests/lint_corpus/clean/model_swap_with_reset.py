# ruff: noqa
# Pattern: tensorflow/models@1411fc2f535b6286b70d70f187fbd58194929049 object_detection_tutorial.ipynb's graph
#   loading, in an evaluation script over several models done right: each model in its own graph and Session
#   (closed by `with`), the default graph reset between models.
import tensorflow.compat.v1 as tf

MODEL_PATHS = ["ssd/frozen_inference_graph.pb", "faster_rcnn/frozen_inference_graph.pb"]
config = tf.ConfigProto(gpu_options=tf.GPUOptions(allow_growth=True))

for model_path in MODEL_PATHS:
    tf.reset_default_graph()
    graph_def = tf.GraphDef()
    with tf.gfile.GFile(model_path, "rb") as f:
        graph_def.ParseFromString(f.read())
    tf.import_graph_def(graph_def, name="")
    with tf.Session(config=config) as sess:
        for batch in ([], []):
            sess.run("detection_boxes:0", {"image_tensor:0": batch})

for model_path in MODEL_PATHS:
    graph = tf.Graph()
    with graph.as_default():
        graph_def = tf.GraphDef()
        tf.import_graph_def(graph_def, name="")
