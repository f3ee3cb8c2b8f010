# ruff: noqa
# Pattern: tensorflow/models@1411fc2f535b6286b70d70f187fbd58194929049 object_detection_tutorial.ipynb's graph
#   loading, repeated in an evaluation script over several exported models without resetting the default graph;
#   the per-model Session is made and never closed.
import tensorflow.compat.v1 as tf

MODEL_PATHS = ["ssd/frozen_inference_graph.pb", "faster_rcnn/frozen_inference_graph.pb"]
config = tf.ConfigProto(gpu_options=tf.GPUOptions(allow_growth=True))


def evaluate(batches):
    sess = tf.Session(config=config)  # expect: lint.session-not-closed
    return [sess.run("detection_boxes:0", {"image_tensor:0": b}) for b in batches]


for model_path in MODEL_PATHS:
    graph_def = tf.GraphDef()
    with tf.gfile.GFile(model_path, "rb") as f:
        graph_def.ParseFromString(f.read())
    tf.import_graph_def(graph_def, name="")  # expect: lint.reload-without-reset
    print(model_path, evaluate([]))
