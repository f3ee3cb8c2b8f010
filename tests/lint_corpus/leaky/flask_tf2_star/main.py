# ruff: noqa
# Pattern: monkinng9/Pil_identifier@95229603654226b3fdf7540f6a58dec971a15863 Flask/main.py: a TF2 Flask upload
#   route that loads the SavedModel on every request; `tf` itself arrives through `from detect5 import *`.
from flask import Flask, jsonify, request

from detect5 import *

app = Flask(__name__)


@app.route("/upload", methods=["POST"])
def upload():
    imagefile = request.files["image"]
    model = tf.saved_model.load("saved_model")  # expect: lint.model-load-per-item
    detection_model = model.signatures["serving_default"]
    show_inference(detection_model, imagefile)
    return jsonify({"message": "ok"})
