# ruff: noqa
# Pattern: ksks14/my_project@6e0fc14ea6fea77d531ec3e8cfb382f7c4caa48c 深度学习demo/aio_hand/system/models_set.py,
#   written here as the TF1 variant: the frozen graph is read and imported on every call.
import tensorflow as tf


def detect(file_byte):
    graph_def = tf.compat.v1.GraphDef()
    with open("model/frozen.pb", "rb") as f:
        graph_def.ParseFromString(f.read())
    graph = tf.Graph()
    with graph.as_default():
        tf.import_graph_def(graph_def, name="")  # expect: lint.model-load-per-item
    config = tf.compat.v1.ConfigProto(gpu_options=tf.compat.v1.GPUOptions(allow_growth=True))
    sess = tf.compat.v1.Session(graph=graph, config=config)  # expect: lint.session-per-item, lint.session-not-closed
    return sess.run("output:0", feed_dict={"input:0": file_byte})
