# ruff: noqa
# Pattern: the frame-callback shape of picamera2-style capture loops (a function registered with
#   `set_frame_callback` and called by the camera for every frame), as in AnneEjsing/Traffic-Data-Anonymisation-
#   Object-Detection@5a2adab579a5fe4b16a856bd4198e2d958551a3f service.py's per-request model handling; TF2 Keras.
import tensorflow as tf
from camera import Camera

camera = Camera(0)


def on_buffer(buf):
    model = tf.keras.models.load_model("plates.h5")  # expect: lint.model-load-per-item
    return model.predict(buf[None])


camera.set_frame_callback(on_buffer)
camera.start()
