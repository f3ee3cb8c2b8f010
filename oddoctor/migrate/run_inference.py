"""Run a migrated Object Detection model (TF2 SavedModel) over a folder of images.

Written by `oddoctor migrate`. It needs only TensorFlow (`pip install tensorflow`, which brings
numpy) and the Python standard library: copy this file together with its saved_model/ folder.

Output: one JSON object per image (JSON lines) with boxes in pixels of the original image,
scores, class ids and, for mask models, image-sized binary masks as COCO compressed RLE
(decode with pycocotools.mask.decode). Progress and the final images/s go to stderr.
JPEGs are decoded with libjpeg's accurate integer IDCT by default: the pixels PIL gives.

Example:
    python run_inference.py photos/ --out detections.jsonl --score-threshold 0.5
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import math
import os
import queue
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import FrameType
from typing import Any, NoReturn, TextIO

import numpy as np  # installed with TensorFlow (one of its own requirements)

# --- oddoctor:constants begin ---
# Values below come from the migrated model; oddoctor writes them as Python literals.
SOURCE_MODEL = "frozen_inference_graph.pb"
SOURCE_INPUT = "image_tensor"
SOURCE_OUTPUTS = {
    "detection_boxes": "detection_boxes",
    "detection_scores": "detection_scores",
    "detection_classes": "detection_classes",
    "num_detections": "num_detections",
    "detection_masks": "detection_masks",
}
SIGNATURE_KEY = "serving_default"
INPUT_KEY = "input_tensor"
BOXES_KEY = "detection_boxes"
SCORES_KEY = "detection_scores"
CLASSES_KEY = "detection_classes"
NUM_KEY = "num_detections"
MASKS_KEY = "detection_masks"
ODDOCTOR_VERSION = "0.1.0"
# --- oddoctor:constants end ---

PROG = "run_inference.py"
HERE = os.path.dirname(os.path.abspath(__file__))

# The model outputs this script reads, by the short names it uses for them inside (None: absent).
OUTPUT_KEYS = {"boxes": BOXES_KEY, "scores": SCORES_KEY, "classes": CLASSES_KEY, "num": NUM_KEY, "masks": MASKS_KEY}
REQUIRED_OUTPUTS = ("boxes", "scores", "classes", "num")

# Images: folders are scanned for these extensions; a file's format is read from its first bytes.
NVIDIA_DEVICE_NODES = ("/dev/nvidiactl", "/dev/dxg")  # a driver's control node; WSL's GPU paravirtualisation
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
JPEG_MAGIC = b"\xff\xd8\xff"  # start-of-image marker and the next marker's first byte
# --jpeg-dct -> tf.io.decode_jpeg's dct_method. "accurate" (libjpeg's JDCT_ISLOW, its own default) gives
# the pixels of PIL, which the TF1 tutorial pipeline decoded with; "fast" (JDCT_IFAST) is what
# tf.io.decode_image uses: most pixels a level or more off, and the detections move with them. With
# libjpeg-turbo's SIMD IDCTs the accurate one costs no measurable time more.
JPEG_DCT_METHODS = {"accurate": "INTEGER_ACCURATE", "fast": "INTEGER_FAST"}
DEFAULT_JPEG_DCT = "accurate"

# Option defaults.
AUTO = "auto"
DEFAULT_BATCH_SIZE = AUTO
# --batch-size auto, from the SavedModel's size on disk and the cores this process may use. A batch of N
# runs N images concurrently inside one graph call: that fills cores which one small model's ops leave
# idle (the small built-in Mask R-CNN, ~12 ms per image on 2 vCPUs: batch 4 1.39x batch 1), but the ops
# of a real one (Mask R-CNN Inception v2, 63 MiB, seconds per image) already fill every core with
# intra-op threads, and there batch 4 ran at 0.79x-1.03x batch 1 with 280-555 MiB more memory. The frozen
# weights are constants in saved_model.pb, so its size tells the two apart.
AUTO_SMALL_MODEL_BYTES = 16 << 20  # below: batch AUTO_BATCH_SIZE; at or above: batch 1
AUTO_BATCH_SIZE = 4
DEFAULT_SCORE_THRESHOLD = 0.5
DEFAULT_MASK_THRESHOLD = 0.5
DEFAULT_MAX_SIDE = 1024
DEFAULT_TF_TIMEOUT_S = 120.0
# Bounds of the numeric options: beyond them a value is a typo, and a huge one fails deep inside
# TensorFlow's C++ runtime (or as an overflow) instead of with a message naming the option.
MAX_BATCH_SIZE = 4096
MAX_THREADS = 1024  # also --parallel-decode and --prefetch
MAX_SIDE = 65536  # above JPEG's own limit (65535 pixels a side)
MAX_GPU = 1023
MAX_MEMORY_LIMIT_MB = 1 << 24  # 16 TiB
MAX_NICE = 19  # Linux's lowest priority
MIN_TF_TIMEOUT_S = 1.0
MAX_TF_TIMEOUT_S = 3600.0
MIN_HINT_MAX_SIDE = 256  # the smallest --max-side an out-of-memory message suggests

# Output records.
BOX_DECIMALS = 2  # pixels
SCORE_DECIMALS = 6
MIN_BOX_EXTENT = 1e-4  # a box's smallest height or width (normalised) when pasting its mask, as the OD API
RLE_MAX_CHARS = 8  # characters per COCO RLE count: 8 x 5 bits, counts up to 2**39 pixels

# Running.
WRITER_QUEUE_DEPTH = 4  # batches waiting for the background writer: results cannot pile up in memory
PROGRESS_EVERY_S = 2.0
MESSAGE_CHARS = 300  # of a library's error message quoted in one of this script's lines
MAX_SYMLINKS = 40  # the kernel's own limit on links followed

# Exit status.
EXIT_OK = 0
EXIT_FAILURE = 1  # no image could be read, out of memory, an output could not be written
EXIT_USAGE = 2  # bad options, no images, an output that cannot be created, an unusable model
EXIT_SIGNAL_BASE = 128  # + the signal's number


def error(message: str) -> None:
    """One line on stderr, the way every failure a user can act on is reported."""
    print(f"{PROG}: error: {message}", file=sys.stderr)


def warning(message: str) -> None:
    print(f"{PROG}: warning: {message}", file=sys.stderr)


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad option is one line on stderr (what is wrong, with which option), exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def int_in(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: an integer from low to high (no 1e3, nan or inf)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer from {low} to {high}, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be from {low} to {high}, got {value}")
        return value
    return parse


def float_in(low: float, high: float) -> Callable[[str], float]:
    """An argparse type: a finite number from low to high."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number from {low:g} to {high:g}, got {text!r}") from None
        if not (math.isfinite(value) and low <= value <= high):
            raise argparse.ArgumentTypeError(f"must be a number from {low:g} to {high:g}, got {text!r}")
        return value
    return parse


def batch_size_arg(text: str) -> int | str:
    """An argparse type: "auto" or an integer from 1 to MAX_BATCH_SIZE."""
    return AUTO if text.strip().lower() == AUTO else int_in(1, MAX_BATCH_SIZE)(text)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options; parsed before TensorFlow is imported so --help is instant."""
    epilog = (
        f"model: migrated by oddoctor {ODDOCTOR_VERSION} from {SOURCE_MODEL!r}\n"
        f"  input {SOURCE_INPUT!r} -> signature {SIGNATURE_KEY!r} key {INPUT_KEY!r}\n"
        "output: one JSON object per image: {\"file\", \"height\", \"width\", \"detections\": [{\n"
        "  \"box\": [ymin, xmin, ymax, xmax] in pixels, \"score\", \"class_id\",\n"
        "  \"mask\": {\"size\": [h, w], \"counts\": COCO RLE string}}]}\n"
        "  --out FILE is written to a temporary file renamed onto FILE at the end (through a symlink\n"
        "  to its target); a device or FIFO (/dev/stdout, /dev/null, a named pipe) is written into.\n"
        f"exit status: {EXIT_OK} ok (unreadable images are skipped, listed and counted), {EXIT_FAILURE} no image "
        "could be\n  read, out of memory or an output could not be written, "
        f"{EXIT_USAGE} bad options, no images found,\n"
        "  an output that cannot be created or a model that cannot be loaded or is not a migrated\n"
        f"  detection model, {EXIT_SIGNAL_BASE}+N stopped by signal N (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP); on any\n"
        "  failure or signal --out and --summary-json FILEs are left as they were."
    )
    if "%(prog)" in epilog:
        epilog = epilog.replace("%", "%%")  # argparse %-formats text that mentions %(prog)
    p = OneLineParser(
        prog=PROG,
        description="Detect objects in images with the migrated TF2 SavedModel and write JSON lines.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=epilog,
    )
    kinds = ", ".join(ext[1:] for ext in IMAGE_EXTENSIONS if ext != ".jpeg")
    p.add_argument("images", nargs="+", help=f"image files and/or folders of images ({kinds})")
    p.add_argument("--model", metavar="DIR", default=os.path.join(HERE, "saved_model"),
                   help="SavedModel directory (default: saved_model/ next to this script)")
    p.add_argument("--out", metavar="FILE", default="-", help="JSON lines output file (default: stdout)")
    p.add_argument("--recursive", action="store_true", help="also look for images in sub-folders")
    p.add_argument("--score-threshold", metavar="S", type=float_in(0, 1), default=DEFAULT_SCORE_THRESHOLD,
                   help=f"keep detections with score >= this, 0 to 1 (default {DEFAULT_SCORE_THRESHOLD:g})")
    p.add_argument("--mask-threshold", metavar="P", type=float_in(0, 1), default=DEFAULT_MASK_THRESHOLD,
                   help="mask probability above which a pixel belongs to the object, 0 to 1 "
                        f"(default {DEFAULT_MASK_THRESHOLD:g})")
    p.add_argument("--no-masks", action="store_true", help="do not compute or write masks")
    p.add_argument("--max-side", metavar="PX", type=int_in(0, MAX_SIDE), default=DEFAULT_MAX_SIDE,
                   help="resize so the longest side is at most this many pixels, keeping the aspect "
                        "ratio, before inference; boxes and masks are still reported in original "
                        f"pixels (default {DEFAULT_MAX_SIDE}; 0 = never resize; at most {MAX_SIDE})")
    p.add_argument("--jpeg-dct", choices=sorted(JPEG_DCT_METHODS), default=DEFAULT_JPEG_DCT,
                   help="how JPEG files (recognised by their first bytes, whatever their name) are decoded: "
                        "'accurate' (default) gives exactly the pixels of PIL and libjpeg, as the TF1 "
                        "tutorial pipeline read them; 'fast' is tf.io.decode_image's IDCT, off by a level "
                        "or more in most pixels, which moves scores, boxes and masks")
    p.add_argument("--batch-size", metavar="N", type=batch_size_arg, default=DEFAULT_BATCH_SIZE,
                   help=f"images per call of the model graph, 1 to {MAX_BATCH_SIZE}, or 'auto' (default): "
                        f"{AUTO_BATCH_SIZE} for a SavedModel under {AUTO_SMALL_MODEL_BYTES >> 20} MiB, whose "
                        "ops leave cores idle, else 1 (a large model's ops fill the cores alone). Each image "
                        "still goes through the model alone and at its own size, so the results are the "
                        "same as with 1; the images of a batch run concurrently, so memory grows with N: "
                        "lower it if the GPU runs out of memory")
    p.add_argument("--gpu", metavar="N", type=int_in(-1, MAX_GPU), default=None,
                   help="use only GPU number N (-1: CPU only; default: TensorFlow's choice)")
    p.add_argument("--memory-limit-mb", metavar="MB", type=int_in(1, MAX_MEMORY_LIMIT_MB), default=None,
                   help="cap TensorFlow's GPU memory at this many MiB (the TF2 counterpart of "
                        "per_process_gpu_memory_fraction); default: memory growth (allocate as needed)")
    p.add_argument("--xla", action="store_true",
                   help="compile the model call with XLA (jit_compile); falls back when the model "
                        "has ops XLA cannot compile")
    p.add_argument("--threads", metavar="N", type=int_in(0, MAX_THREADS), default=None,
                   help=f"TensorFlow intra-op threads, up to {MAX_THREADS}; 0: one per core (default: 0, "
                        "or with --batch-size auto choosing N > 1, cores / N: N images in flight "
                        "share the cores)")
    p.add_argument("--parallel-decode", metavar="N", type=int_in(-1, MAX_THREADS), default=-1,
                   help=f"images decoded in parallel, up to {MAX_THREADS} (default -1: one per core; "
                        "0 is 1)")
    p.add_argument("--prefetch", metavar="N", type=int_in(-1, MAX_THREADS), default=-1,
                   help=f"batches prepared ahead of the model, up to {MAX_THREADS} "
                        "(default -1: a self-sizing buffer; 0: off)")
    p.add_argument("--no-overlap", dest="overlap", action="store_false",
                   help="paste masks and write JSON in the main thread instead of in a background "
                        "thread that overlaps the next model call")
    p.add_argument("--post-nice", metavar="N", type=int_in(0, MAX_NICE), default=0,
                   help=f"nice value of that background thread on Linux, 0 to {MAX_NICE} (default 0: the "
                        f"model's priority; {MAX_NICE}: only CPU time the model's threads leave idle, which "
                        "can hold up the next batch on a busy machine)")
    p.add_argument("--summary-json", metavar="FILE", default=None,
                   help="also write counts and timings to this JSON file (written only if the run "
                        "succeeds, together with --out)")
    p.add_argument("--quiet", action="store_true", help="no progress lines (the final line is still shown)")
    p.add_argument("--tf-timeout", metavar="S", type=float_in(MIN_TF_TIMEOUT_S, MAX_TF_TIMEOUT_S),
                   default=DEFAULT_TF_TIMEOUT_S,
                   help=f"seconds a first `import tensorflow` in a child process may take (default "
                        f"{DEFAULT_TF_TIMEOUT_S:g}): a TensorFlow that crashes or hangs on import is reported "
                        "in one line instead of killing or hanging this script")
    p.add_argument("--no-preflight", action="store_true",
                   help="skip that child-process import (saves one TensorFlow import, a few seconds)")
    return p.parse_args(argv)


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def model_bytes(model_dir: str) -> int:
    """Bytes of the regular files under a SavedModel directory (0 when there is none)."""
    total = 0
    for root, _dirs, files in os.walk(model_dir):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.stat(os.path.join(root, name)).st_size
    return total


def choose_batch(size_bytes: int, cores: int, threads: int | None) -> tuple[int, int, str]:
    """--batch-size auto: (batch size, intra-op threads (0: one per core), the reason in words).

    Batch AUTO_BATCH_SIZE for a model under AUTO_SMALL_MODEL_BYTES on more than one core, with
    cores / batch intra-op threads each unless --threads was given (4 images in flight on 2 cores
    with 1 thread each: 1.14x one per core); else batch 1 with one thread per core. Pure.
    """
    mib = size_bytes / (1 << 20)
    limit = AUTO_SMALL_MODEL_BYTES >> 20
    if size_bytes >= AUTO_SMALL_MODEL_BYTES:
        why = f"SavedModel {mib:.1f} MiB >= {limit} MiB: one image's ops fill the {cores} core(s)"
        return 1, threads or 0, why
    if cores < 2:
        return 1, threads or 0, "1 core: no idle core for concurrent images to fill"
    chosen_threads = threads if threads is not None else max(1, cores // AUTO_BATCH_SIZE)
    why = (f"SavedModel {mib:.1f} MiB < {limit} MiB: {AUTO_BATCH_SIZE} images run concurrently to fill "
           f"the {cores} cores one image's ops leave idle")
    return AUTO_BATCH_SIZE, chosen_threads, why


def resolve_batch(args: argparse.Namespace) -> str | None:
    """Turn --batch-size auto (and a --threads left unset) into numbers in ``args``; the reason, or None
    when the batch size was given."""
    if args.batch_size != AUTO:
        args.threads = args.threads or 0
        return None
    args.batch_size, args.threads, why = choose_batch(model_bytes(args.model), usable_cores(), args.threads)
    return why


def list_images(inputs: Iterable[str], recursive: bool) -> list[str]:
    """Image paths in a stable order; folders are scanned for known image extensions."""
    paths: list[str] = []
    for item in inputs:
        if os.path.isdir(item):
            if recursive:
                for root, dirs, files in os.walk(item):
                    dirs.sort()
                    paths.extend(os.path.join(root, f) for f in sorted(files)
                                 if f.lower().endswith(IMAGE_EXTENSIONS))
            else:
                paths.extend(os.path.join(item, f) for f in sorted(os.listdir(item))
                             if f.lower().endswith(IMAGE_EXTENSIONS)
                             and os.path.isfile(os.path.join(item, f)))
        elif os.path.exists(item):
            paths.append(item)
        else:
            warning(f"{item}: no such file or folder")
    return paths


def configure_devices(tf: Any, gpu: int | None, memory_limit_mb: int | None, threads: int) -> list[Any]:
    """Set GPU visibility and memory policy; must run before TensorFlow first touches a GPU."""
    gpus = tf.config.list_physical_devices("GPU")
    if gpu is not None:
        if gpu < 0:
            gpus = []
        elif gpu >= len(gpus):
            raise ValueError(f"--gpu {gpu}: TensorFlow sees {len(gpus)} GPU(s)")
        else:
            gpus = [gpus[gpu]]
        tf.config.set_visible_devices(gpus, "GPU")
    for dev in gpus:
        if memory_limit_mb:
            tf.config.set_logical_device_configuration(
                dev, [tf.config.LogicalDeviceConfiguration(memory_limit=memory_limit_mb)])
        else:
            tf.config.experimental.set_memory_growth(dev, True)
    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
    return list(gpus)


def decode_image_bytes(tf: Any, data: Any, jpeg_dct: str = DEFAULT_JPEG_DCT) -> Any:
    """An encoded image (scalar string tensor) -> uint8 [height, width, 3], the first frame of a GIF.

    A JPEG, known by its first bytes rather than its name, goes through decode_jpeg with the
    --jpeg-dct IDCT; anything else through decode_image, which finds PNG, BMP or GIF the same way.
    """
    dct_method = JPEG_DCT_METHODS[jpeg_dct]

    def jpeg() -> Any:
        return tf.io.decode_jpeg(data, channels=3, dct_method=dct_method)

    def other() -> Any:
        return tf.io.decode_image(data, channels=3, dtype=tf.uint8, expand_animations=False)

    return tf.cond(tf.strings.substr(data, 0, len(JPEG_MAGIC)) == JPEG_MAGIC, jpeg, other)


def make_dataset(tf: Any, paths: Sequence[str], max_side: int, batch_size: int, parallel: int, prefetch: int,
                 jpeg_dct: str = DEFAULT_JPEG_DCT) -> Any:
    """tf.data pipeline: read, decode and resize on TensorFlow ops, in parallel, ahead of the model.

    Yields (index into paths, images padded to one shape, original [height, width], [height, width]
    after --max-side) per batch.
    """
    autotune = tf.data.AUTOTUNE
    files = tf.constant([os.fsencode(p) for p in paths], dtype=tf.string)
    ds = tf.data.Dataset.from_tensor_slices((tf.range(len(paths), dtype=tf.int32), files))

    def load(index: Any, path: Any) -> tuple[Any, Any, Any, Any]:
        image = decode_image_bytes(tf, tf.io.read_file(path), jpeg_dct)
        size = tf.shape(image)[:2]
        if max_side > 0:
            longest = tf.cast(tf.reduce_max(size), tf.float32)
            scale = tf.minimum(1.0, max_side / longest)
            new_size = tf.maximum(1, tf.cast(tf.round(tf.cast(size, tf.float32) * scale), tf.int32))
            image = tf.cond(
                scale < 1.0,
                lambda: tf.cast(tf.clip_by_value(
                    tf.round(tf.image.resize(image, new_size, antialias=True)), 0, 255), tf.uint8),
                lambda: image)
        return index, image, size, tf.shape(image)[:2]

    ds = ds.map(load, num_parallel_calls=autotune if parallel < 0 else max(parallel, 1), deterministic=True)
    # An unreadable file drops out here; the main loop notices the missing index and reports it.
    ds = ds.ignore_errors() if hasattr(ds, "ignore_errors") else ds.apply(tf.data.experimental.ignore_errors())
    ds = ds.padded_batch(batch_size, padded_shapes=([], [None, None, 3], [2], [2]))
    if prefetch != 0:
        ds = ds.prefetch(autotune if prefetch < 0 else prefetch)
    options = tf.data.Options()
    # No model-based autotuning thread: AUTOTUNE above then means one decode per tf.data thread
    # (one per core) and a self-sizing prefetch buffer. That thread cost up to 1 s per run: deleting
    # the iterator at the end of the images waits for it to wake up.
    options.autotune.enabled = False
    return ds.with_options(options)


def make_detect(tf: Any, model_fn: Any, batch_size: int, xla: bool) -> Callable[[Any, Any], Any]:
    """The model call, traced once: the input_signature fixes dtype and rank.

    A batch of N images is one call of this function, but the model still sees each image alone
    and at its own size: a loop inside the graph crops each image back from the zero-padded batch
    and calls the model on it, so the outputs are the ones batch 1 gives, for any model. The
    outputs come back as the model gives them (boxes normalised, masks box-relative), concatenated
    over the images, with each image's row count (a model may return a different number of
    detections per image); split_outputs() cuts them apart and batch_records() turns them into
    records.
    """
    batch = 1 if batch_size == 1 else None
    signature = [
        tf.TensorSpec([batch, None, None, 3], tf.uint8),
        tf.TensorSpec([batch, 2], tf.int32),  # height, width after --max-side, before padding
    ]
    available = model_fn.structured_outputs
    keys = {name: key for name, key in OUTPUT_KEYS.items() if key is not None and key in available}
    dtypes = {name: tf.int32 if name == "num" else available[key].dtype for name, key in keys.items()}

    def one(image: Any) -> dict[str, Any]:
        """One image's outputs, without the batch dimension."""
        outs = model_fn(**{INPUT_KEY: image[None]})
        result = {}
        for name, key in keys.items():
            value = outs[key][0]
            if name == "num":  # a row of its own, like the other outputs'
                value = tf.reshape(tf.cast(value, tf.int32), [-1])[:1]
            result[name] = value
        return result

    def lengths_of(outs: Mapping[str, Any]) -> Any:
        return tf.stack([tf.shape(outs[name])[0] for name in keys])

    def by_name(lengths: Any) -> dict[str, Any]:  # [images, outputs] -> {name: [images]}
        return {name: lengths[:, j] for j, name in enumerate(keys)}

    @tf.function(input_signature=signature, jit_compile=xla or None)
    def detect(images: Any, resized_sizes: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        if batch == 1:
            outs = one(images[0])
            return outs, by_name(lengths_of(outs)[None])
        n = tf.shape(images)[0]
        arrays = [tf.TensorArray(dtypes[name], size=n, infer_shape=False) for name in keys]
        lengths = tf.TensorArray(tf.int32, size=n)

        def body(i: Any, lengths: Any, *arrays: Any) -> tuple[Any, ...]:
            size = resized_sizes[i]
            outs = one(images[i, :size[0], :size[1]])
            return (i + 1, lengths.write(i, lengths_of(outs)),
                    *[a.write(i, outs[name]) for name, a in zip(keys, arrays)])

        # The images of a batch run concurrently (their ops interleave on idle cores or GPU
        # streams): memory grows with the batch size, as with a real batch.
        _, lengths, *arrays = tf.while_loop(lambda i, *_: i < n, body, (0, lengths, *arrays),
                                            parallel_iterations=batch_size)
        return {name: a.concat() for name, a in zip(keys, arrays)}, by_name(lengths.stack())

    traced: Callable[[Any, Any], Any] = detect
    return traced


def split_outputs(values: Mapping[str, Any], lengths: Mapping[str, Any]) -> dict[str, list[np.ndarray]]:
    """detect()'s outputs, concatenated over the images, -> {name: [one numpy array per image]}."""
    return {name: np.split(np.asarray(value), np.cumsum(np.asarray(lengths[name]))[:-1])
            for name, value in values.items()}


def batch_records(files: Sequence[str], sizes: Any, outputs: Mapping[str, Sequence[np.ndarray]],
                  score_threshold: float, mask_threshold: float | None = None) -> list[dict[str, Any]]:
    """One batch of model outputs -> one JSON record per image, in the order of ``files``.

    ``outputs`` maps the names of OUTPUT_KEYS to one array per image, as the model returns them
    ("boxes" [ymin, xmin, ymax, xmax] normalised to the image, "scores", "classes", "num" the count
    of valid rows, "masks" box-relative probabilities); ``sizes`` holds each image's original
    [height, width]. Masks are pasted and encoded only given ``mask_threshold`` and "masks".
    Pure: numpy only, no TensorFlow.
    """
    return [image_record(file, int(sizes[b][0]), int(sizes[b][1]),
                         {name: values[b] for name, values in outputs.items()}, score_threshold, mask_threshold)
            for b, file in enumerate(files)]


def image_record(file: str, height: int, width: int, outputs: Mapping[str, np.ndarray], score_threshold: float,
                 mask_threshold: float | None = None) -> dict[str, Any]:
    """One image's model outputs -> its record: of the first num detections, those scoring at least
    the threshold, with boxes in pixels clipped to the image, class ids and COCO RLE masks."""
    scores = np.asarray(outputs["scores"])
    n = min(max(int(np.asarray(outputs["num"]).reshape(-1)[0]), 0), len(scores))
    keep = np.flatnonzero(scores[:n] >= score_threshold)
    normalised = np.asarray(outputs["boxes"])[keep].astype(np.float32)
    scale = np.array([height, width, height, width], np.float32)
    boxes = np.clip(normalised * scale, 0, scale)
    classes = np.asarray(outputs["classes"])
    masks = outputs.get("masks") if mask_threshold is not None else None
    detections = []
    for j, k in enumerate(keep.tolist()):
        det: dict[str, Any] = {"box": [round(float(v), BOX_DECIMALS) for v in boxes[j]],
                               "score": round(float(scores[k]), SCORE_DECIMALS),
                               "class_id": int(classes[k])}
        if masks is not None and mask_threshold is not None:
            # Over the unclipped box, as the model meant it.
            local, top, left = paste_mask(masks[k], normalised[j], height, width, mask_threshold)
            det["mask"] = rle_encode_box(local, top, left, height, width)
        detections.append(det)
    return {"file": file, "height": height, "width": width, "detections": detections}


def _paste_axis(low: np.float32, extent: np.float32, mask_size: int,
                size: int) -> tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One axis of crop_and_resize for a box: first image pixel, inside flags, source rows, lerps.

    The arithmetic is crop_and_resize's own (float32, same order) on the window the OD API gives it:
    the image's [0, 1] range expressed in the box's coordinates.
    """
    f32 = np.float32
    last = f32(max(size - 1, 1))
    m1 = f32(mask_size - 1)
    w1 = (f32(0.0) - low) / extent
    w2 = (f32(1.0) - low) / extent
    # One pixel of margin (floor/ceil) around the box: the inside test below decides, not rounding.
    first = int(min(max(float(np.floor(low * last)), 0.0), float(last)))
    stop = int(min(max(float(np.ceil((low + extent) * last)), 0.0), float(last))) + 1
    px = np.arange(first, stop, dtype=f32)
    if size > 1:
        step = (w2 - w1) * m1 / f32(size - 1)
        pos = w1 * m1 + px * step
    else:
        pos = np.full_like(px, f32(0.5) * (w1 + w2) * m1)
    inside = (pos >= 0) & (pos <= m1)
    lo = np.floor(pos)
    frac = pos - lo
    lo_i = np.clip(lo, 0, mask_size - 1).astype(np.intp)
    hi_i = np.clip(np.ceil(pos), 0, mask_size - 1).astype(np.intp)
    return first, inside, lo_i, hi_i, frac


def paste_mask(mask: Any, box: np.ndarray, height: int, width: int, threshold: float) -> tuple[np.ndarray, int, int]:
    """A box-relative mask -> its binary mask in image pixels, computed over the box only.

    Gives what the OD API's reframe_box_masks_to_image_masks gives (crop_and_resize of the box mask,
    bilinear, at every image pixel; 0 outside the box) without an image-sized crop per detection,
    which costs as much as this model on a CPU. ``box`` is [ymin, xmin, ymax, xmax] normalised to
    the image. Returns (mask uint8 [rows, cols], top row, left column) of the region the box covers.
    """
    mask = np.asarray(mask, np.float32)
    low = box[:2].astype(np.float32)
    extent = np.maximum(box[2:].astype(np.float32) - low, np.float32(MIN_BOX_EXTENT))
    top, in_y, y0, y1, fy = _paste_axis(low[0], extent[0], mask.shape[0], height)
    left, in_x, x0, x1, fx = _paste_axis(low[1], extent[1], mask.shape[1], width)
    a = mask[:, x0]
    rows = a + (mask[:, x1] - a) * fx  # [mask_h, cols]: along x first, as crop_and_resize does
    t = rows[y0]
    value = t + (rows[y1] - t) * fy[:, None]
    local = (value > threshold) & in_y[:, None] & in_x[None, :]
    return local.view(np.uint8), top, left


def rle_encode_box(local: np.ndarray, top: int, left: int, height: int, width: int) -> dict[str, Any]:
    """COCO RLE of a height x width mask that is 0 except for ``local`` placed at (top, left)."""
    local = local[:height - top, :width - left]
    rows, cols = local.shape
    # Runs go down the columns; each box column, padded with a 0 above and below, gives its own
    # 0->1 and 1->0 positions in the image's column-major order.
    padded = np.zeros((cols, rows + 2), np.uint8)
    padded[:, 1:-1] = local.T
    col, row = np.nonzero(padded[:, 1:] != padded[:, :-1])
    pos = (left + col) * height + top + row
    if rows == height and len(pos):
        # A run touching the bottom edge goes on at the top of the next column: that column's
        # "end" and the next one's "start" are the same position and cancel.
        same = np.flatnonzero(pos[1:] == pos[:-1])
        drop = np.zeros(len(pos), bool)
        drop[same] = drop[same + 1] = True
        pos = pos[~drop]
    if len(pos) and pos[-1] == height * width:
        pos = pos[:-1]  # ones up to the very last pixel: no closing run
    counts = np.diff(np.concatenate(([0], pos, [height * width])))
    return {"size": [int(height), int(width)], "counts": _rle_string(counts)}


def rle_encode(mask: np.ndarray) -> dict[str, Any]:
    """COCO compressed RLE of a 2-D 0/1 uint8 array (same string as pycocotools.mask.encode)."""
    return rle_encode_box(np.asarray(mask, np.uint8), 0, 0, mask.shape[0], mask.shape[1])


def _rle_string(counts: np.ndarray) -> str:
    """pycocotools' rleToString, vectorised: run lengths (zeros first) -> its compact ASCII form.

    Each count (minus the one two places back, from the fourth on) is written 5 bits per character,
    low bits first, bit 0x20 meaning "more follows", plus 48.
    """
    counts = np.asarray(counts, np.int64)
    x = counts.copy()
    x[3:] -= counts[1:-2]
    active = np.ones(len(x), bool)
    chars: list[np.ndarray] = []
    valid: list[np.ndarray] = []
    for _ in range(RLE_MAX_CHARS):
        c = x & 0x1F
        x = x >> 5  # arithmetic shift, like C's on a signed long
        more = np.where(c & 0x10, x != -1, x != 0)
        chars.append(np.where(more, c | 0x20, c) + 48)
        valid.append(active)
        active = active & more
        if not active.any():
            break
    text: str = np.stack(chars, 1)[np.stack(valid, 1)].astype(np.uint8).tobytes().decode("ascii")
    return text


class Writer(threading.Thread):
    """Runs write_batch on model outputs in order, in the background, while the model computes the
    next batch (TensorFlow releases the GIL while its ops run)."""

    def __init__(self, write_batch: Callable[..., None], depth: int = WRITER_QUEUE_DEPTH, nice: int = 0) -> None:
        super().__init__(daemon=True)
        self.write_batch = write_batch
        self.nice = nice
        self.queue: queue.Queue[tuple[Any, ...] | None] = queue.Queue(depth)  # bounded: no pile-up
        self.error: BaseException | None = None
        self.start()

    def run(self) -> None:
        if self.nice > 0 and sys.platform.startswith("linux"):
            # On Linux the nice value is per thread: a model op split over all cores waits for its
            # slowest part, so post-processing at equal priority stalls every op it preempts.
            with contextlib.suppress(OSError):  # not allowed: stay at the process's priority
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), min(self.nice, MAX_NICE))
        while True:
            item = self.queue.get()
            if item is None:
                return
            if self.error is None:
                try:
                    self.write_batch(*item)
                except BaseException as e:  # noqa: BLE001 - re-raised in the main thread by put()/finish()
                    self.error = e

    def put(self, item: tuple[Any, ...]) -> None:
        if self.error is not None:
            raise self.error
        self.queue.put(item)

    def finish(self) -> None:
        self.queue.put(None)
        self.join()
        if self.error is not None:
            raise self.error

    def stop(self) -> None:
        self.error = self.error or RuntimeError("stopped")
        self.queue.put(None)
        self.join(timeout=10)


class OutputError(Exception):
    """An output cannot be created or written; the message names the option, the file and the cause."""


class Output:
    """One output of the runner (--out, --summary-json), which nobody ever sees half-written.

    A regular file, or a symlink to one, is written to a hidden temporary file next to the
    symlink's target (``.NAME.XXXXXXXX.tmp``) that commit() renames onto the target: one atomic
    step, and the symlink stays. discard() removes it, so any failure leaves the target as it was.
    '-' is stdout. A device or FIFO (/dev/null, /dev/full, a named pipe), or a path through /proc
    (/dev/stdout), is written straight into: replacing it with a regular file would break whoever
    reads it (and, as root, the machine). The file is created here, before any work, so that a
    folder that does not exist or cannot be written is found in a second, not after the images.
    """

    def __init__(self, path: str, option: str, dash_is_stdout: bool = True) -> None:
        self.path = path
        self.option = option
        self.tmp: str | None = None
        self.target: str | None = None
        self.committed = False
        self.broken = False  # a write failed: a stream may end with part of a line
        self.file: TextIO
        if path == "-" and dash_is_stdout:
            self.kind, self.file = "stdout", sys.stdout
            return
        if not path or path.endswith(("/", os.sep)):
            raise OutputError(f"{option} {path!r}: give a file name, not a folder")
        st: os.stat_result | None
        try:
            st = os.stat(path)  # follows symlinks: what the path writes into
        except FileNotFoundError:
            st = None
        except OSError as e:
            raise OutputError(f"{option} {path}: {describe(e)}") from None
        if st is not None and stat.S_ISDIR(st.st_mode):
            raise OutputError(f"{option} {path}: is a folder; give a file name")
        if st is not None and (not stat.S_ISREG(st.st_mode) or reaches_proc(path)):
            self.kind = "stream"
            try:
                # Append: /dev/stdout may be a file the shell opened with >>, which "w" would truncate.
                self.file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed by close()/discard()
            except OSError as e:
                raise OutputError(f"{option} {path}: cannot open for writing: {describe(e)}") from None
            return
        self.kind = "file"
        self.target = os.path.realpath(path)
        folder = os.path.dirname(self.target)
        if not os.path.isdir(folder):
            raise OutputError(f"{option} {path}: folder {folder} does not exist")
        try:
            fd, self.tmp = tempfile.mkstemp(prefix=f".{os.path.basename(self.target)}.", suffix=".tmp",
                                            dir=folder)
        except OSError as e:
            raise OutputError(f"{option} {path}: cannot create a file in {folder}: {describe(e)}") from None
        umask = os.umask(0)
        os.umask(umask)
        # mkstemp makes it 0600; the result should look like the file it replaces, or a new one.
        with contextlib.suppress(OSError):  # a filesystem without modes (FAT) may refuse
            os.fchmod(fd, stat.S_IMODE(st.st_mode) if st is not None else 0o666 & ~umask)
        self.file = os.fdopen(fd, "w", encoding="utf-8")

    def write(self, text: str) -> None:
        try:
            self.file.write(text)
        except OSError as e:
            raise self.failed(e) from None

    def close(self) -> None:
        """Flush what is buffered: a full disk may only show here."""
        try:
            if self.kind == "stdout":
                self.file.flush()
            elif not self.file.closed:
                self.file.close()
        except OSError as e:
            raise self.failed(e) from None

    def commit(self) -> None:
        """Close, and put the file in place (a stream is only flushed)."""
        self.close()
        if self.tmp is not None and self.target is not None:
            try:
                os.replace(self.tmp, self.target)
            except OSError as e:
                raise OutputError(f"{self.option} {self.path}: cannot rename the finished file onto "
                                  f"{self.target}: {describe(e)}") from None
            self.tmp = None
        self.committed = True

    def discard(self) -> None:
        """Remove the temporary file (a no-op after commit); never raises."""
        if self.kind != "stdout":
            with contextlib.suppress(OSError):
                self.file.close()
        if self.tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.tmp)
            self.tmp = None

    def failed(self, error: OSError) -> OutputError:
        """The OutputError for a failed write (after which discard() still cleans up)."""
        self.broken = True
        if self.kind == "stdout" and isinstance(error, BrokenPipeError):
            # The reader went away: point stdout at /dev/null so that Python's own flush at exit
            # does not print a second error.
            with contextlib.suppress(OSError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        where = " to stdout" if self.kind == "stdout" else ""
        return OutputError(f"{self.option} {self.path}: cannot write{where}: {describe(error)}")

    def kept(self) -> str:
        """What the reader has after a failure or an interrupt."""
        where = "stdout" if self.kind == "stdout" else self.path
        if self.kind != "file" and self.broken:
            return f"what reached {where} may end with part of a line"
        if self.kind != "file":
            return f"the lines already on {where} are complete"
        return f"{self.path} written" if self.committed else f"{self.path} not written"


def describe(error: OSError) -> str:
    """An OSError in words, with its errno name: 'No space left on device (ENOSPC)'."""
    name = errno.errorcode.get(error.errno) if error.errno is not None else None
    return f"{error.strerror or error}" + (f" ({name})" if name else "")


def reaches_proc(path: str) -> bool:
    """Whether the path is, or links through, /proc (/dev/stdout -> /proc/self/fd/1, /dev/fd/N).

    Such a path is a file another process holds open (a shell's > or >> redirection): it is
    written into, as a stream, never replaced by a rename.
    """
    for _ in range(MAX_SYMLINKS):
        path = os.path.abspath(path)
        if path.startswith("/proc/") or os.path.realpath(os.path.dirname(path)).startswith("/proc/"):
            return True
        if not os.path.islink(path):
            return False
        path = os.path.join(os.path.dirname(path), os.readlink(path))
    return False


def exit_status(error: BaseException) -> int:
    """128 + the signal's number for an interrupt (130 for Ctrl-C, 143 for SIGTERM), else 1."""
    if isinstance(error, KeyboardInterrupt):
        return EXIT_SIGNAL_BASE + int(getattr(error, "signum", signal.SIGINT))
    return EXIT_FAILURE


def stop_message(tf: Any, error: BaseException, args: Any, done: int, kept: str | None = None) -> str | None:
    """One line for the errors a user can act on (None: a bug, let the traceback through)."""
    if kept is None:
        kept = f"{args.out} not written" if args.out != "-" else "the lines already on stdout are complete"
    if isinstance(error, KeyboardInterrupt):
        signum = getattr(error, "signum", signal.SIGINT)
        by = "" if signum == signal.SIGINT else f" by {signal.Signals(signum).name}"
        return f"interrupted{by} after {done} images; {kept}"
    if isinstance(error, OutputError):
        return f"{error} after {done} images; {kept}"
    if isinstance(error, tf.errors.ResourceExhaustedError):
        smaller = max(1, args.batch_size // 2)
        hint = (f"--batch-size {smaller}" if args.batch_size > 1 else
                f"--max-side {max(args.max_side // 2, MIN_HINT_MAX_SIDE) if args.max_side else DEFAULT_MAX_SIDE}")
        return (f"out of memory after {done} images at --batch-size {args.batch_size}; {kept}. "
                f"Re-run with {hint} (the images of a batch run concurrently), or on the CPU with --gpu -1")
    return None


class Interrupted(KeyboardInterrupt):
    """A signal (SIGINT, SIGTERM, SIGHUP) asked the runner to stop."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class Signals:
    """SIGINT, SIGTERM and SIGHUP, each raising Interrupted(signum) at a point where stopping is safe.

    Inside the image loop a signal only sets a flag that the loop checks after each batch: a
    KeyboardInterrupt raised wherever the main thread happens to be can land in Python code that
    TensorFlow's C++ fast path calls back (a TensorShape method) and be swallowed there (measured,
    3 of 6 interrupts were lost that way). A second signal still raises at once. So it is while
    the outputs are created (a temporary file must not be half-made). Between the two (TensorFlow
    import, model load) a signal raises at once, and the flag catches one swallowed there at the
    next check(). While the outputs are cleaned up, hold() never raises. A handler is installed
    only where the signal has its default action: under nohup SIGHUP stays ignored.
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self.mode = "raise"  # "raise": at once; "flag": at the next check() or second signal; "hold"
        self.previous: dict[int, Any] = {}
        if threading.current_thread() is not threading.main_thread():
            return
        for name, default in (("SIGINT", signal.default_int_handler), ("SIGTERM", signal.SIG_DFL),
                              ("SIGHUP", signal.SIG_DFL)):
            signum = getattr(signal, name, None)  # no SIGHUP on Windows
            if signum is not None and signal.getsignal(signum) is default:
                self.previous[signum] = signal.signal(signum, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        first = self.signum is None
        if self.signum is None:
            self.signum = signum
        if self.mode == "raise" or (self.mode == "flag" and not first):
            raise Interrupted(self.signum)

    def raise_now(self) -> None:
        self.mode = "raise"
        self.check()

    def flag(self) -> None:
        self.mode = "flag"

    def hold(self) -> None:
        self.mode = "hold"

    def check(self) -> None:
        if self.signum is not None:
            raise Interrupted(self.signum)

    def restore(self) -> None:
        for signum, previous in self.previous.items():
            signal.signal(signum, previous)
        self.previous = {}


def signature_problem(model: Any) -> str | None:
    """Why the loaded SavedModel cannot be called as a detection model, in a few words (None: it can)."""
    signatures = getattr(model, "signatures", None) or {}
    if SIGNATURE_KEY not in signatures:
        return f"it has no signature {SIGNATURE_KEY!r} (signatures: {sorted(signatures) or 'none'})"
    fn = signatures[SIGNATURE_KEY]
    inputs = fn.structured_input_signature[1]
    spec = inputs.get(INPUT_KEY)
    if (spec is None or len(inputs) != 1 or spec.dtype.name != "uint8" or spec.shape.rank != 4
            or spec.shape[-1] not in (None, 3)):
        have = ", ".join(f"{k!r} ({v.dtype.name} {v.shape})" for k, v in sorted(inputs.items()))
        return f"its {SIGNATURE_KEY!r} signature takes {have or 'no input'}"
    outputs = fn.structured_outputs
    missing = [key for key in required_keys() if key not in outputs]
    if missing:
        return f"its {SIGNATURE_KEY!r} signature returns {sorted(outputs)}, without {', '.join(missing)}"
    return None


def required_keys() -> list[str]:
    """The signature output keys this script cannot do without."""
    return [key for key in (OUTPUT_KEYS[name] for name in REQUIRED_OUTPUTS) if key is not None]


def main(argv: Sequence[str] | None = None) -> int:
    """Parse options, create the outputs, run; whatever happens, no temporary file stays behind."""
    args = parse_args(argv)
    paths = list_images(args.images, args.recursive)
    if not paths:
        error(f"no images found in {' '.join(args.images)}")
        return EXIT_USAGE
    signals = Signals()  # before any temporary file exists: a signal must not leave one behind
    outputs: list[Output] = []
    try:
        signals.flag()  # creating a temporary file: a first signal waits for check()
        try:
            open_outputs(args, outputs)
        except OutputError as e:
            error(str(e))
            return EXIT_USAGE
        signals.check()
        summary = outputs[1] if len(outputs) > 1 else None
        return run(args, paths, signals, outputs[0], summary)
    except KeyboardInterrupt as e:  # before the image loop (inside it, run() says more)
        signals.hold()
        kept = outputs[0].kept() if outputs else None
        error(f"{stop_message(None, e, args, 0, kept)}")
        return exit_status(e)
    finally:
        signals.hold()
        for output in outputs:
            output.discard()
        signals.restore()


def open_outputs(args: argparse.Namespace, opened: list[Output]) -> None:
    """Create the --out and --summary-json Outputs, appending each to ``opened`` for main() to clean up."""
    opened.append(Output(args.out, "--out"))
    if args.summary_json:
        opened.append(Output(args.summary_json, "--summary-json", dash_is_stdout=False))
        out, summary = opened
        if out.target is not None and out.target == summary.target:
            raise OutputError(f"--summary-json {args.summary_json}: is the same file as --out {args.out}")


def tf_log_floor() -> str:
    """TensorFlow's C++ log floor when the user set none: "2" (warnings and errors), but "3" on a Linux machine
    with no NVIDIA device node, where the only error TensorFlow logs is "failed call to cuInit ... (303)": noise
    on a CPU-only machine, not news (WSL's GPU node is /dev/dxg)."""
    linux = sys.platform.startswith("linux")
    return "3" if linux and not any(os.path.exists(d) for d in NVIDIA_DEVICE_NODES) else "2"


def preflight(timeout_s: float) -> str | None:
    """Import TensorFlow in a child process first: why it cannot be used here, or None.

    A TensorFlow that segfaults, aborts or hangs on import would otherwise take this script down with no
    message, or hang it forever.
    """
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    try:
        proc = subprocess.run([sys.executable, "-c", "import tensorflow"], capture_output=True, text=True,
                              timeout=timeout_s, env=env, stdin=subprocess.DEVNULL, check=False)
    except subprocess.TimeoutExpired:
        return f"`import tensorflow` hung for more than {timeout_s:g} s (--tf-timeout)"
    except OSError as e:
        return f"cannot start {sys.executable}: {e.strerror or e}"
    if proc.returncode == 0:
        return None
    lines = [ln.strip() for ln in proc.stderr.splitlines() if ln.strip()]
    last = lines[-1][:MESSAGE_CHARS] if lines else ""
    if proc.returncode < 0:
        try:
            how = f"was killed by {signal.Signals(-proc.returncode).name}"
        except ValueError:
            how = f"was killed by signal {-proc.returncode}"
        return f"`import tensorflow` {how}" + (f": {last}" if last else "")
    return f"`import tensorflow` failed: {last or f'exit status {proc.returncode}'}"


def first_line(e: BaseException) -> str:
    """The first line of an exception's message (its type's name if it has none), cut short."""
    return (str(e).strip().splitlines() or [type(e).__name__])[0][:MESSAGE_CHARS]


def run(args: argparse.Namespace, paths: Sequence[str], signals: Signals, out: Output,
        summary: Output | None) -> int:
    """Configure TensorFlow, load the model, stream the images through it once, commit the outputs."""
    signals.raise_now()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", tf_log_floor())
    if not args.no_preflight and "tensorflow" not in sys.modules:
        problem = preflight(args.tf_timeout)
        signals.raise_now()
        if problem is not None:
            error(f"TensorFlow cannot be used here: {problem}; nothing was written "
                  "(`pip install oddoctor && oddoctor check` names the cause and its fix)")
            return EXIT_FAILURE
    import tensorflow as tf  # after argument parsing: --help and bad options stay fast

    requested_batch = args.batch_size
    auto_reason = resolve_batch(args)  # before configure_devices: the thread count is set there
    if auto_reason is not None and not args.quiet:
        threads = f"{args.threads} intra-op thread(s)" if args.threads else "one intra-op thread per core"
        print(f"batch size auto: {args.batch_size}, {threads} ({auto_reason}); --batch-size N to choose",
              file=sys.stderr, flush=True)
    try:
        configure_devices(tf, args.gpu, args.memory_limit_mb, args.threads)
    except (ValueError, RuntimeError) as e:  # RuntimeError: a GPU was initialised already
        error(str(e))
        return EXIT_USAGE
    t_load = time.perf_counter()
    try:
        model = tf.saved_model.load(args.model)  # once, for every image
    except Exception as e:  # noqa: BLE001 - whatever the loader raises, the model is unusable: say it in one line
        error(f"cannot load the SavedModel {args.model!r}: {first_line(e)}")
        return EXIT_USAGE
    problem = signature_problem(model)
    if problem is not None:
        error(f"--model {args.model}: not a SavedModel migrated by oddoctor "
              f"(or exported by the TF2 Object Detection API): {problem}; expected signature "
              f"{SIGNATURE_KEY!r} with the one input {INPUT_KEY!r} (uint8 [batch, height, width, 3]) "
              f"and the outputs {', '.join(required_keys())} (a TF1 export needs `oddoctor migrate` first)")
        return EXIT_USAGE
    model_fn = model.signatures[SIGNATURE_KEY]
    load_s = time.perf_counter() - t_load
    signals.check()  # one that TensorFlow swallowed while loading
    detect = make_detect(tf, model_fn, args.batch_size, args.xla)
    want_masks = MASKS_KEY is not None and not args.no_masks and MASKS_KEY in model_fn.structured_outputs
    mask_threshold = args.mask_threshold if want_masks else None
    dataset = make_dataset(tf, paths, args.max_side, args.batch_size, args.parallel_decode, args.prefetch,
                           args.jpeg_dct)

    seen: set[int] = set()

    def write_batch(index: np.ndarray, outputs: Mapping[str, Sequence[np.ndarray]], sizes: np.ndarray) -> None:
        """Model outputs of one batch -> JSON lines, one write per batch (a full disk raises OutputError)."""
        numbers = index.tolist()
        seen.update(numbers)
        records = batch_records([paths[i] for i in numbers], sizes, outputs, args.score_threshold, mask_threshold)
        out.write("".join(json.dumps(record) + "\n" for record in records))

    writer = Writer(write_batch, nice=args.post_nice) if args.overlap else None
    done = 0
    first_batch_end: float | None = None
    first_batch_n = 0
    last_report = t0 = time.perf_counter()
    try:
        signals.flag()
        for index, images, original_sizes, resized_sizes in dataset:
            signals.check()  # a signal during the last batch or while waiting for this one
            try:
                res = detect(images, resized_sizes)
            except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError) as e:
                if not args.xla:
                    raise
                # XLA cannot compile every detection op (e.g. dynamic NMS): run without it.
                warning(f"XLA failed ({first_line(e)}); continuing without --xla")
                args.xla = False
                detect = make_detect(tf, model_fn, args.batch_size, False)
                res = detect(images, resized_sizes)
            batch = (index.numpy(), split_outputs(*res), original_sizes.numpy())
            if writer is not None:
                writer.put(batch)  # post-processing overlaps the next model call
            else:
                write_batch(*batch)
            done += len(batch[0])
            now = time.perf_counter()
            if first_batch_end is None:
                first_batch_end, first_batch_n = now, done
            if not args.quiet and (now - last_report >= PROGRESS_EVERY_S):
                last_report = now
                print(f"progress: {done}/{len(paths)} images, {done / (now - t0):.2f} images/s",
                      file=sys.stderr, flush=True)
        if writer is not None:
            writer.finish()
        out.close()  # flushed: a full disk shows here at the latest
        wall = time.perf_counter() - t0
        skipped = [p for i, p in enumerate(paths) if i not in seen]
        steady = None
        if first_batch_end is not None and done > first_batch_n and wall > first_batch_end - t0:
            steady = (done - first_batch_n) / (t0 + wall - first_batch_end)
        if summary is not None:
            # Written and flushed before --out is committed: a summary that cannot be written
            # leaves both files as they were.
            summary.write(json.dumps({"images": done, "skipped": skipped, "wall_s": wall, "load_s": load_s,
                                      "images_per_s": done / wall if wall > 0 else None,
                                      "steady_images_per_s": steady, "batch_size": args.batch_size,
                                      "batch_size_requested": requested_batch, "batch_size_rule": auto_reason,
                                      "threads": args.threads,
                                      "xla": args.xla, "jpeg_dct": args.jpeg_dct, "overlap": args.overlap,
                                      "post_nice": args.post_nice if args.overlap else None}, indent=2))
            summary.close()
        signals.check()
        out.commit()
        if summary is not None:
            summary.commit()
    except BaseException as e:
        signals.hold()  # stopping: a further signal must not cut the clean-up short
        if writer is not None:
            writer.stop()
        message = stop_message(tf, e, args, done, out.kept())
        if message is None:
            raise
        error(message)
        return exit_status(e)
    rate = done / wall if wall > 0 else 0.0
    after_first = f" ({steady:.2f} images/s after the first batch)" if steady else ""
    print(f"done: {done} images in {wall:.2f} s, {rate:.2f} images/s{after_first}; "
          f"{len(skipped)} skipped (unreadable)", file=sys.stderr, flush=True)
    for p in skipped:
        print(f"  skipped: {p}", file=sys.stderr)
    return EXIT_OK if done else EXIT_FAILURE


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt as e:  # while parsing options (after that, main() says more)
        print(f"{PROG}: interrupted", file=sys.stderr)
        sys.exit(exit_status(e))
