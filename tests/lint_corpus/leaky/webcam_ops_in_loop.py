# ruff: noqa
# Pattern: yllagimi/yllagimi.github.io@c466fb9d4c1b928a0eac4d50c9ea69cd3aea4057 tn/object_detection_web.py:
#   the Session is opened once around a webcam `while` loop, but the tutorial's mask ops are built inside it,
#   nested in ifs, on every frame.
import cv2
import numpy as np
import tensorflow as tf
from object_detection.utils import ops as utils_ops

detection_graph = tf.Graph()
cap = cv2.VideoCapture(0)
config = tf.ConfigProto()
config.gpu_options.allow_growth = True
with detection_graph.as_default():
    with tf.Session(graph=detection_graph, config=config) as sess:
        ret = True
        while ret:
            ret, image_np = cap.read()
            ops = tf.get_default_graph().get_operations()
            names = {o.name for op in ops for o in op.outputs}
            tensor_dict = {}
            for key in ["num_detections", "detection_boxes", "detection_masks"]:
                if key + ":0" in names:
                    tensor_dict[key] = tf.get_default_graph().get_tensor_by_name(key + ":0")
                    if "detection_masks" in tensor_dict:
                        if image_np is not None:
                            boxes = tf.squeeze(tensor_dict["detection_boxes"], [0])  # expect: lint.graph-op-per-item
                            masks = tf.squeeze(tensor_dict["detection_masks"], [0])  # expect: lint.graph-op-per-item
                            masks = utils_ops.reframe_box_masks_to_image_masks(  # expect: lint.graph-op-per-item
                                masks, boxes, image_np.shape[0], image_np.shape[1])
                            tensor_dict["detection_masks"] = tf.expand_dims(masks, 0)  # expect: lint.graph-op-per-item
            image_tensor = tf.get_default_graph().get_tensor_by_name("image_tensor:0")
            output = sess.run(tensor_dict, feed_dict={image_tensor: np.expand_dims(image_np, 0)})
            cv2.imshow("object detection", image_np)
            if cv2.waitKey(25) & 0xFF == ord("q"):
                break
