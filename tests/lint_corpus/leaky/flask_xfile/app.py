# ruff: noqa
# Pattern: surendran893/Flask-Bff QarController.py (a Flask route calling a detection helper imported from the
#   project's TensorFlow module), with the helper opening a Session per call as in tensorflow/models@
#   1411fc2f535b6286b70d70f187fbd58194929049 object_detection_tutorial.ipynb. Findings are in detector.py.
import flask
from flask import jsonify, request

from detector import run_detection

app = flask.Flask(__name__)


@app.route("/api/detect", methods=["POST"])
def detect_route():
    data = request.files["image"].read()
    return jsonify(run_detection(data))
