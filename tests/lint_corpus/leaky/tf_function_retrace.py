# ruff: noqa
# Pattern: tensorflow/models@1411fc2f535b6286b70d70f187fbd58194929049 research/object_detection (TF2 eager
#   inference with `tf.function`), written the way retracing bugs look: a tf.function made inside the frame loop,
#   and another called with the loop counter as a Python int.
import tensorflow as tf

model = tf.saved_model.load("exported/saved_model")
frames = [tf.zeros([1, 320, 320, 3], tf.uint8)] * 10


@tf.function
def scaled(x, scale):
    return tf.cast(x, tf.float32) * scale


for frame in frames:
    detect = tf.function(model.signatures["serving_default"])  # expect: lint.tf-function-per-item
    out = detect(input_tensor=frame)

for step in range(100):
    y = scaled(frames[0], step)  # expect: lint.tf-function-retracing
    for _ in frames:
        @tf.function
        def postprocess(t):  # expect: lint.tf-function-per-item
            return t + 1
