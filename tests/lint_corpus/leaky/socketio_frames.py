# ruff: noqa
# Pattern: hiveml/simple-ml-serving@fedeadf86e5aad2d282aa7a6e8f02703cb4eb794 tf_classify_server.py (module-level
#   graph and Session, served per message), with a Socket.IO frame handler that decodes each frame with new ops.
import tensorflow.compat.v1 as tf
from flask import Flask
from flask_socketio import SocketIO

tf.disable_eager_execution()
app = Flask(__name__)
socketio = SocketIO(app)
sess = tf.Session(config=tf.ConfigProto(gpu_options=tf.GPUOptions(allow_growth=True)))


@socketio.on("frame")
def handle_frame(payload):
    decoded = tf.image.decode_jpeg(payload["jpeg"], channels=3)  # expect: lint.graph-op-per-item
    small = tf.image.resize(decoded, [320, 320])  # expect: lint.graph-op-per-item
    return sess.run(small).tolist()
