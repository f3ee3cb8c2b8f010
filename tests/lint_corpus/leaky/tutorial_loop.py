# ruff: noqa
# Pattern: tensorflow/models@1411fc2f535b6286b70d70f187fbd58194929049
#   research/object_detection/object_detection_tutorial.ipynb (TF1 tutorial, exported as a script):
#   run_inference_for_single_image opens a Session and builds the mask ops for every image of the loop.
import numpy as np
import tensorflow as tf
from object_detection.utils import ops as utils_ops
from PIL import Image

PATH_TO_FROZEN_GRAPH = "ssd_mobilenet/frozen_inference_graph.pb"
TEST_IMAGE_PATHS = ["test_images/image1.jpg", "test_images/image2.jpg"]

detection_graph = tf.Graph()
with detection_graph.as_default():
    od_graph_def = tf.GraphDef()
    with tf.gfile.GFile(PATH_TO_FROZEN_GRAPH, "rb") as fid:
        od_graph_def.ParseFromString(fid.read())
        tf.import_graph_def(od_graph_def, name="")


def run_inference_for_single_image(image, graph):
    with graph.as_default():
        with tf.Session() as sess:  # expect: lint.session-per-item, lint.gpu-session-config
            ops = tf.get_default_graph().get_operations()
            all_tensor_names = {output.name for op in ops for output in op.outputs}
            tensor_dict = {}
            for key in ["num_detections", "detection_boxes", "detection_scores", "detection_classes",
                        "detection_masks"]:
                tensor_name = key + ":0"
                if tensor_name in all_tensor_names:
                    tensor_dict[key] = tf.get_default_graph().get_tensor_by_name(tensor_name)
            if "detection_masks" in tensor_dict:
                detection_boxes = tf.squeeze(tensor_dict["detection_boxes"], [0])  # expect: lint.graph-op-per-item
                detection_masks = tf.squeeze(tensor_dict["detection_masks"], [0])  # expect: lint.graph-op-per-item
                num = tf.cast(tensor_dict["num_detections"][0], tf.int32)  # expect: lint.graph-op-per-item
                detection_boxes = tf.slice(detection_boxes, [0, 0], [num, -1])  # expect: lint.graph-op-per-item
                detection_masks = tf.slice(detection_masks, [0, 0, 0], [num, -1, -1])  # expect: lint.graph-op-per-item
                reframed = utils_ops.reframe_box_masks_to_image_masks(  # expect: lint.graph-op-per-item
                    detection_masks, detection_boxes, image.shape[0], image.shape[1])
                reframed = tf.cast(tf.greater(reframed, 0.5), tf.uint8)  # expect: lint.graph-op-per-item, lint.graph-op-per-item
                tensor_dict["detection_masks"] = tf.expand_dims(reframed, 0)  # expect: lint.graph-op-per-item
            image_tensor = tf.get_default_graph().get_tensor_by_name("image_tensor:0")
            return sess.run(tensor_dict, feed_dict={image_tensor: np.expand_dims(image, 0)})


for image_path in TEST_IMAGE_PATHS:
    image_np = np.array(Image.open(image_path))
    output_dict = run_inference_for_single_image(image_np, detection_graph)
