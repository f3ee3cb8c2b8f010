# ruff: noqa
# Pattern: raspberrypi/picamera2@b223db167d5e9e83fc08101371ab8894eed00040 examples/hailo/detect.py: a function
#   assigned to `picam2.pre_callback`, which the camera calls for every frame; here, as a TF2 Keras port, the
#   callback loads the model each time it is called.
import tensorflow as tf
from picamera2 import MappedArray, Picamera2

picam2 = Picamera2()


def draw_plates(request):
    model = tf.keras.models.load_model("plates.h5")  # expect: lint.model-load-per-item
    with MappedArray(request, "main") as m:
        boxes = model.predict(m.array[None, :, :, :3])
    return boxes


picam2.configure(picam2.create_preview_configuration())
picam2.pre_callback = draw_plates
picam2.start()
