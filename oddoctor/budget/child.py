"""One budget configuration in a fresh process: ``python -m oddoctor.budget.child POINT.json RESULT.json``.

Loads the model, runs one warm-up call and ``repeats`` measured calls of a batch, and writes what it measured
(TensorFlow's allocator peak, the process's peak RSS, on a GPU the CUDA context) to RESULT.json, written to a
temporary file and renamed. Out of memory (MemoryError, TensorFlow's ResourceExhaustedError) is a result, not a
crash. The batch runs the way the runner that ``oddoctor migrate`` writes runs it (``run_inference.make_detect``:
one call per batch, each image at its own size, the images interleaved on idle cores or streams).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any, Optional

from oddoctor.budget.spec import PointSpec
from oddoctor.fsutil import atomic_write_text

EXIT_INPUT = 3  # the model or the images cannot be used: the parent reports it, no point in the other children
#: The region reserved in TensorFlow's allocator before the model loads (address space: its pages are not touched).
RESERVE_BYTES = 1 << 30
RESERVE_FLOOR = 256 << 20  # a device with less free memory than this gets no reserve


def reserve_region(tf: Any, device: str, want: int = RESERVE_BYTES) -> int:
    """Make TensorFlow's BFC allocator on ``device`` hold one large free region, as it does with a ``memory_limit``.

    With memory growth (TensorFlow's default on the CPU with ``TF_CPU_ALLOCATOR_USE_BFC``, and what ``measure`` sets
    on a GPU) the allocator grows by regions of 2, 4, 8, ... MiB and hands out a whole free chunk unless it is at
    least twice the request: 18 MiB asked of a fresh 32 MiB region are counted as 32 MiB. The peak is then a step
    function of the tensor sizes and of the order the regions happened to grow in. Out of one region allocated and
    freed first (kept by the allocator), every request is split off at its own size (rounded to 256 bytes), as on
    a GPU given ``set_logical_device_configuration(memory_limit=...)``, the setting ``budget`` prints. Returns the
    bytes reserved (halved until the device grants them; 0 below ``RESERVE_FLOOR`` or where the op is refused: the
    figures are then the growth mode's, as before).
    """
    size = want
    while size >= RESERVE_FLOOR:
        try:
            with tf.device(device):
                block = tf.raw_ops.Empty(shape=[size >> 20, 1 << 20], dtype=tf.uint8, init=False)
            del block
            return size
        except (tf.errors.ResourceExhaustedError, tf.errors.InternalError):
            size //= 2
        except tf.errors.OpError:
            return 0
    return 0


def _rss_peak() -> int:
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(kib) * (1 if sys.platform == "darwin" else 1024)  # bytes on macOS, KiB elsewhere


def _vm_size() -> Optional[int]:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _is_tf2_saved_model(directory: Path) -> bool:
    """A SavedModel written by ``tf.saved_model.save`` (an object graph), not by TF1's ``Builder``."""
    from tensorflow.core.protobuf import saved_model_pb2

    sm = saved_model_pb2.SavedModel()
    sm.ParseFromString((directory / "saved_model.pb").read_bytes())
    return any(len(mg.object_graph_def.nodes) > 0 for mg in sm.meta_graphs)


class _Pruned:
    """A TF1 graph's feed-to-fetches function, shaped like a TF2 signature (keyword input, dict outputs)."""

    def __init__(self, fn: Any, input_key: str) -> None:
        self._fn, self._key = fn, input_key
        self.structured_outputs = fn.structured_outputs

    def __call__(self, **kwargs: Any) -> Any:
        return self._fn(kwargs[self._key])


def load_model_fn(tf: Any, model: str) -> tuple[Any, str]:
    """The model as the runner calls it, and its kind (``frozen_graph``, ``tf1_saved_model``, ``tf2_saved_model``).
    Raises ``ModelError`` / ``MigrateInputError`` for a file that cannot be used."""
    from oddoctor.migrate import convert
    from oddoctor.migrate.run_inference import INPUT_KEY, SIGNATURE_KEY
    from oddoctor_legacy_tf1.graph_io import ModelError, resolve_model

    where, kind = resolve_model(model)
    if kind == "saved_model" and _is_tf2_saved_model(where):
        loaded = tf.saved_model.load(str(where))
        if SIGNATURE_KEY not in loaded.signatures:
            raise ModelError(f"{where}: TF2 SavedModel without a {SIGNATURE_KEY!r} signature")
        fn = loaded.signatures[SIGNATURE_KEY]
        _args, kwargs = fn.structured_input_signature
        if INPUT_KEY not in kwargs:
            raise ModelError(f"{where}: the {SIGNATURE_KEY!r} signature has inputs {sorted(kwargs)}, not "
                             f"{INPUT_KEY!r} (the Object Detection API's)")
        fn._oddoctor_keep = loaded  # the signature needs its object graph alive
        return fn, "tf2_saved_model"
    plan = convert.plan(Path(model))
    graph_def = plan.graph_def

    def _import() -> None:
        tf.compat.v1.import_graph_def(graph_def, name="")

    wrapped = tf.compat.v1.wrap_function(_import, [])
    g = wrapped.graph
    pruned = wrapped.prune(feeds=[g.as_graph_element(plan.input.tensor)],
                           fetches={o.key: g.as_graph_element(o.tensor) for o in plan.outputs})
    return _Pruned(pruned, INPUT_KEY), "frozen_graph" if kind == "frozen_graph" else "tf1_saved_model"


def make_batch(spec: PointSpec) -> tuple[Any, Any, int, int]:
    """The uint8 batch (zero-padded to its largest image), each image's (height, width), and the padded size."""
    import numpy as np

    from oddoctor_legacy_tf1.images import load_image_dir, synthetic_image

    if spec.images is not None:
        folder = load_image_dir(spec.images, limit=spec.batch)
        if not folder.images:
            raise ValueError(f"{spec.images}: no readable jpg/png image")
        imgs = [folder.images[i % len(folder.images)] for i in range(spec.batch)]
    else:
        rng = np.random.default_rng(spec.seed)
        one = synthetic_image(spec.height, spec.width, rng)
        imgs = [one] * spec.batch
    h = max(i.shape[0] for i in imgs)
    w = max(i.shape[1] for i in imgs)
    batch = np.zeros((spec.batch, h, w, 3), np.uint8)
    for k, img in enumerate(imgs):
        batch[k, : img.shape[0], : img.shape[1]] = img[..., :3]
    sizes = np.array([[i.shape[0], i.shape[1]] for i in imgs], np.int32)
    return batch, sizes, h, w


def _gpu_used(index: int = 0) -> Optional[int]:
    """NVML's used bytes on the first visible GPU (CUDA_VISIBLE_DEVICES respected by index 0 only when unset)."""
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            return int(pynvml.nvmlDeviceGetMemoryInfo(pynvml.nvmlDeviceGetHandleByIndex(index)).used)
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # noqa: BLE001 - no NVML, no figure: the context is then unknown
        return None


def _is_oom(tf: Any, e: BaseException) -> bool:
    if isinstance(e, (MemoryError, tf.errors.ResourceExhaustedError)):
        return True
    text = str(e).lower()
    return isinstance(e, tf.errors.OpError) and ("out of memory" in text or "bad_alloc" in text)


def measure(spec: PointSpec) -> dict[str, Any]:
    """Run the configuration; the result document (``status`` ok, oom or input_error)."""
    t0 = time.monotonic()
    gpu_before = None if spec.cpu else _gpu_used()
    import tensorflow as tf

    from oddoctor.migrate.run_inference import make_detect

    result: dict[str, Any] = {"batch": spec.batch, "pid": os.getpid(), "tf_version": tf.__version__}
    gpus = [] if spec.cpu else tf.config.list_physical_devices("GPU")
    if spec.cpu:
        tf.config.set_visible_devices([], "GPU")
    for g in gpus:  # grow on demand: the peak is then what the model needs, not what TensorFlow grabbed
        tf.config.experimental.set_memory_growth(g, True)
    device = "GPU:0" if gpus else "CPU:0"
    result["device"] = device
    if not gpus:
        # One inter-op thread: the images of a batch mostly run one after another and most peaks repeat exactly.
        # With more, how many images overlap depends on the cores the scheduler gives the child at that moment
        # (batch 4 measured above batch 8 on a loaded 2-core machine). Even with one, whether an image's float copy
        # is freed before the network runs varies between processes (docs/budget.md: the call's working set).
        tf.config.threading.set_inter_op_parallelism_threads(1)
        result["inter_op_threads"] = 1
    with tf.device(device):
        tf.constant(0.0).numpy()  # creates the context (the CUDA context on a GPU)
    if gpus and gpu_before is not None:
        after = _gpu_used()
        reserved = tf.config.experimental.get_memory_info(device)["current"]
        result["context_bytes"] = None if after is None else max(0, after - gpu_before - reserved)
    if spec.memory_limit is None:  # with a limit, the point is to see the allocator run out: no reserve
        result["reserved_bytes"] = reserve_region(tf, device)
    model_fn, kind = load_model_fn(tf, spec.model)
    batch, sizes, h, w = make_batch(spec)
    result.update(kind=kind, height=h, width=w, pixels=h * w, load_s=round(time.monotonic() - t0, 2))
    detect = make_detect(tf, model_fn, spec.batch, False)
    if spec.memory_limit is not None:
        vm = _vm_size()
        if vm is not None:
            limit = vm + spec.memory_limit
            resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))
            result["rlimit_as"] = limit
    peaks = []
    try:
        with tf.device(device):
            # The batch must live in TensorFlow's allocator, as it would on a GPU: tf.constant() of a numpy array
            # may alias the array's memory (when it happens to be aligned), so the figure would depend on luck.
            fed = tf.constant(batch)
            images, image_sizes = fed + tf.zeros([], tf.uint8), tf.constant(sizes)
            del batch, fed
            tf.nest.map_structure(lambda t: t.numpy(), detect(images, image_sizes))  # warm-up: traces, allocates
            held = calls = 0
            for _ in range(spec.repeats):
                tf.config.experimental.reset_memory_stats(device)
                before = int(tf.config.experimental.get_memory_info(device)["current"])
                t1 = time.monotonic()
                tf.nest.map_structure(lambda t: t.numpy(), detect(images, image_sizes))
                result.setdefault("call_s", []).append(round(time.monotonic() - t1, 4))
                peaks.append(int(tf.config.experimental.get_memory_info(device)["peak"]))
                # Held across the call: the weights and the batch fed to it. Set by the call: its working set.
                held, calls = max(held, before), max(calls, peaks[-1] - before)
            result.update(tf_held_bytes=held, tf_call_bytes=calls)
    except Exception as e:  # out of memory is a measured outcome; anything else propagates
        if not _is_oom(tf, e):
            raise
        words = str(e).strip().splitlines()[0][:300] if str(e).strip() else ""
        result.update(status="oom", error=f"{type(e).__name__}: {words}")
        result["rss_peak_bytes"] = _rss_peak()
        return result
    result.update(status="ok", tf_peak_bytes=max(peaks), tf_peaks=peaks, rss_peak_bytes=_rss_peak(),
                  seconds=round(time.monotonic() - t0, 2))
    return result


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m oddoctor.budget.child POINT.json RESULT.json", file=sys.stderr)
        return 2
    spec = PointSpec.from_dict(json.loads(Path(argv[0]).read_text()))
    out = Path(argv[1])
    try:
        result = measure(spec)
    except MemoryError:
        # Nothing left to build a result with: the parent reads this exit code and the stderr line.
        os.write(2, b"oddoctor-budget: MemoryError\n")
        return 4
    except Exception as e:
        from oddoctor.migrate.convert import MigrateInputError
        from oddoctor_legacy_tf1.graph_io import ModelError
        from oddoctor_legacy_tf1.images import ImageError

        if isinstance(e, (ModelError, MigrateInputError, ImageError, ValueError)) and not type(e).__module__.startswith(
                "tensorflow"):
            atomic_write_text(out, json.dumps({"status": "input_error", "error": str(e)}))
            return EXIT_INPUT
        raise
    atomic_write_text(out, json.dumps(result))
    return 0


if __name__ == "__main__":
    from oddoctor.childproc import exit_now

    exit_now(main(sys.argv[1:]))
