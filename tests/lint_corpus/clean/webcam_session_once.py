# ruff: noqa
# Pattern: willjjacobs/dora@591180d91af1a945c447f63d3bf2a0b5d15bd9b6 dora/core/neuralnet/NeuralNet_test.py: one
#   Session around the webcam loop, GPU memory growth on, the frame only fed.
import os

import cv2
import tensorflow as tf

os.environ["TF_FORCE_GPU_ALLOW_GROWTH"] = "true"
graph = tf.Graph()
cap = cv2.VideoCapture(0)
with graph.as_default():
    with tf.compat.v1.Session(graph=graph) as sess:
        boxes = graph.get_tensor_by_name("detection_boxes:0")
        while True:
            ret, frame = cap.read()
            if not ret:
                break
            out = sess.run(boxes, feed_dict={"image_tensor:0": frame[None]})
            cv2.imshow("object detection", frame)
            if cv2.waitKey(25) & 0xFF == ord("q"):
                break
