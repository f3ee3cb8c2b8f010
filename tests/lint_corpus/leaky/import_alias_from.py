# ruff: noqa
# Pattern: tensorflow/models@1411fc2f535b6286b70d70f187fbd58194929049 object_detection_tutorial.ipynb's
#   load_image / run_inference split into helpers, with names imported the other ways scripts spell them.
from tensorflow import Session
from tensorflow.compat.v1 import GraphDef as GD
from tensorflow.compat.v1 import image as tfimage
from tensorflow.compat.v1 import import_graph_def

GRAPH_FILE = "frozen_inference_graph.pb"


def read_graph():
    graph_def = GD()
    with open(GRAPH_FILE, "rb") as f:
        graph_def.ParseFromString(f.read())  # expect: lint.model-load-per-item
    return graph_def


def infer(batch):
    import_graph_def(read_graph(), name="")  # expect: lint.model-load-per-item
    resized = tfimage.resize_bilinear(batch, [300, 300])  # expect: lint.graph-op-per-item
    with Session() as sess:  # expect: lint.session-per-item, lint.gpu-session-config
        return sess.run("detection_boxes:0", {"image_tensor:0": sess.run(resized)})


def main(paths):
    for path in paths:
        print(infer(load(path)))


def load(path):
    with open(path, "rb") as f:
        return f.read()
