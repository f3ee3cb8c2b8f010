# ruff: noqa
# Pattern: hiveml/simple-ml-serving@fedeadf86e5aad2d282aa7a6e8f02703cb4eb794 tf_classify_server.py: the module-level
#   `sess = tf.Session()` with no ConfigProto at all.
import tensorflow as tf
from flask import Flask, request

app = Flask(__name__)
sess = tf.Session()  # expect: lint.gpu-session-config


@app.route("/", methods=["POST"])
def classify():
    return str(sess.run("final_result:0", {"DecodeJpeg/contents:0": request.files["data"].read()}))
