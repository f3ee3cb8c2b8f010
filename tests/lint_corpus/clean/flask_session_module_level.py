# ruff: noqa
# Pattern: hiveml/simple-ml-serving@fedeadf86e5aad2d282aa7a6e8f02703cb4eb794 tf_classify_server.py: the graph is
#   loaded and the Session made once at module level; the route only runs it.
import tensorflow.compat.v1 as tf
from flask import Flask, request

app = Flask(__name__)
graph = tf.Graph()
with graph.as_default():
    graph_def = tf.GraphDef()
    with tf.gfile.GFile("retrained_graph.pb", "rb") as f:
        graph_def.ParseFromString(f.read())
    tf.import_graph_def(graph_def, name="")
    softmax = graph.get_tensor_by_name("final_result:0")
graph.finalize()
sess = tf.Session(graph=graph, config=tf.ConfigProto(gpu_options=tf.GPUOptions(allow_growth=True)))


@app.route("/", methods=["POST"])
def classify():
    data = request.files.get("data").read()
    for _ in range(1):
        scores = sess.run(softmax, {"DecodeJpeg/contents:0": data})
    return str(scores.tolist())
