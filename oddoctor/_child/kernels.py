"""Small real kernels on each device, run by the TensorFlow probe child for ``oddoctor check --active``.

Stdlib and the TensorFlow module handed in only (this file sits beside ``probe_tf.py`` and is imported by it
by name). Some failures only show at the first kernel a GPU runs, not at ``import tensorflow``: cuDNN that
cannot initialise ("Failed to get convolution algorithm", CUDNN_STATUS_INTERNAL_ERROR), cuBLAS that cannot
("Blas GEMM launch failed"), a GPU the build has no kernels for ("no kernel image is available"), out of
memory at start-up, or a PTX JIT compile that makes the first call take seconds to minutes. Each kernel is
run twice on each device: the first call's time includes that start-up, the second is the kernel itself.
"""

import time

#: The ops Mask R-CNN inference needs that go through distinct GPU libraries / code paths.
KERNELS = ("conv2d", "matmul", "crop_and_resize", "non_max_suppression")


def _conv2d(tf):
    x = tf.random.stateless_normal([1, 64, 64, 16], seed=[1, 2])
    w = tf.random.stateless_normal([3, 3, 16, 32], seed=[3, 4])
    return tf.nn.conv2d(x, w, strides=1, padding="SAME")  # cuDNN on a GPU


def _matmul(tf):
    a = tf.random.stateless_normal([512, 512], seed=[5, 6])
    return tf.linalg.matmul(a, a)  # cuBLAS on a GPU


def _crop_and_resize(tf):
    image = tf.random.stateless_uniform([1, 64, 64, 3], seed=[7, 8])
    boxes = tf.constant([[0.1, 0.1, 0.8, 0.8], [0.0, 0.2, 0.5, 0.9]] * 8)
    return tf.image.crop_and_resize(image, boxes, tf.zeros([16], tf.int32), [14, 14])  # Mask R-CNN's ROI crops


def _non_max_suppression(tf):
    corners = tf.random.stateless_uniform([200, 2], seed=[9, 10]) * 0.8
    boxes = tf.concat([corners, corners + 0.2], axis=1)
    scores = tf.random.stateless_uniform([200], seed=[11, 12])
    return tf.image.non_max_suppression(boxes, scores, max_output_size=50, iou_threshold=0.5)


_RUN = {"conv2d": _conv2d, "matmul": _matmul, "crop_and_resize": _crop_and_resize,
        "non_max_suppression": _non_max_suppression}


def devices(tf):
    """The logical GPUs TensorFlow made (CUDA_VISIBLE_DEVICES applied), else the CPU."""
    gpus = [d.name for d in tf.config.list_logical_devices("GPU")]
    return gpus or [d.name for d in tf.config.list_logical_devices("CPU")][:1]


def iter_kernels(tf):
    """For each (device, kernel): first its record before it runs (ok None, error None), then the same record
    done: ok, the error text, the first and second call's seconds."""
    for device in devices(tf):
        for name in KERNELS:
            rec = {"device": device, "kernel": name, "ok": None, "error": None, "first_s": None, "second_s": None}
            yield dict(rec)
            try:
                with tf.device(device):
                    t0 = time.perf_counter()
                    _RUN[name](tf).numpy()  # .numpy() waits for the device
                    rec["first_s"] = round(time.perf_counter() - t0, 4)
                    t0 = time.perf_counter()
                    _RUN[name](tf).numpy()
                    rec["second_s"] = round(time.perf_counter() - t0, 4)
                rec["ok"] = True
            except Exception as e:  # noqa: BLE001 - a kernel that fails is the fact we came for
                rec["ok"] = False
                rec["error"] = f"{type(e).__name__}: {str(e).strip()[:4000]}"
            yield rec


def run_kernels(tf):
    """Every finished record of :func:`iter_kernels`."""
    return [rec for rec in iter_kernels(tf) if rec["ok"] is not None]
