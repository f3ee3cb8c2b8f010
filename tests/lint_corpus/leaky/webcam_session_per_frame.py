# ruff: noqa
# Pattern: willjjacobs/dora@591180d91af1a945c447f63d3bf2a0b5d15bd9b6 dora/core/neuralnet/NeuralNet_test.py:
#   the same webcam loop, but with the Session opened inside the `while True` (once per frame), and an
#   InteractiveSession made inside a helper the loop calls.
import cv2
import tensorflow.compat.v1 as tf

from_graph = tf.Graph()
cap = cv2.VideoCapture(0)


def grab_scores(graph, batch):
    sess = tf.InteractiveSession(graph=graph)  # expect: lint.session-per-item, lint.session-not-closed, lint.gpu-session-config
    return sess.run("detection_scores:0", feed_dict={"image_tensor:0": batch})


while True:
    ok, frame = cap.read()
    if not ok:
        break
    with from_graph.as_default():
        with tf.Session(graph=from_graph) as sess:  # expect: lint.session-per-item, lint.gpu-session-config
            boxes = sess.run("detection_boxes:0", feed_dict={"image_tensor:0": frame[None]})
    scores = grab_scores(from_graph, frame[None])
    cv2.imshow("detections", frame)
