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
    p.add_argument("--label-map", metavar="FILE", default=None,
                   help="class names from this Object Detection API label map (label_map.pbtxt: "
                        "item { id: 1 name: \"/m/01g317\" display_name: \"person\" }): each detection gets "
                        "a \"class_name\" (display_name, else name), and the drawings show it")
    p.add_argument("--format", choices=FORMATS, default="jsonl",
                   help="--out as JSON lines, one record per image (jsonl, default), or as one COCO results "
                        "JSON array (coco: image_id, category_id = class id, bbox [x, y, width, height] in "
                        "pixels, score, segmentation as RLE), for pycocotools' loadRes and COCOeval; use a "
                        "low --score-threshold (e.g. 0.05) for mAP")
    p.add_argument("--coco-gt", metavar="FILE", default=None,
                   help="with --format coco: the COCO annotations whose image ids the results use, matched by "
                        "file name (images it does not list are skipped); without it an image's id is the "
                        "number its file is named (000000397133.jpg: 397133)")
    p.add_argument("--draw", metavar="DIR", default=None,
                   help="also write each image with its detections drawn into DIR (created if missing; its "
                        "parent must exist): masks in translucent colour, boxes, and class name (or id) and "
                        "score; one file per image, named after it")
    p.add_argument("--draw-format", choices=DRAW_FORMATS, default="png",
                   help="file format of the drawings (default png: lossless)")
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


def fit_max_side(tf: Any, image: Any, max_side: int) -> Any:
    """uint8 [height, width, 3] -> the same, resized (antialiased, aspect kept) so that its longest side is
    at most max_side pixels (0: never); an image that fits is returned as it is."""
    if max_side <= 0:
        return image
    size = tf.shape(image)[:2]
    longest = tf.cast(tf.reduce_max(size), tf.float32)
    scale = tf.minimum(1.0, max_side / longest)
    new_size = tf.maximum(1, tf.cast(tf.round(tf.cast(size, tf.float32) * scale), tf.int32))
    return tf.cond(
        scale < 1.0,
        lambda: tf.cast(tf.clip_by_value(tf.round(tf.image.resize(image, new_size, antialias=True)), 0, 255),
                        tf.uint8),
        lambda: image)


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
        image = fit_max_side(tf, image, max_side)
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
                  score_threshold: float, mask_threshold: float | None = None,
                  labels: Mapping[int, str] | None = None) -> list[dict[str, Any]]:
    """One batch of model outputs -> one JSON record per image, in the order of ``files``.

    ``outputs`` maps the names of OUTPUT_KEYS to one array per image, as the model returns them
    ("boxes" [ymin, xmin, ymax, xmax] normalised to the image, "scores", "classes", "num" the count
    of valid rows, "masks" box-relative probabilities); ``sizes`` holds each image's original
    [height, width]. Masks are pasted and encoded only given ``mask_threshold`` and "masks". With
    ``labels`` (a label map, {class id: name}) each detection also has a "class_name" (None for an id
    the label map lacks). Pure: numpy only, no TensorFlow.
    """
    return [image_record(file, int(sizes[b][0]), int(sizes[b][1]),
                         {name: values[b] for name, values in outputs.items()}, score_threshold, mask_threshold,
                         labels)
            for b, file in enumerate(files)]


def image_record(file: str, height: int, width: int, outputs: Mapping[str, np.ndarray], score_threshold: float,
                 mask_threshold: float | None = None, labels: Mapping[int, str] | None = None) -> dict[str, Any]:
    """One image's model outputs -> its record: of the first num detections, those scoring at least
    the threshold, with boxes in pixels clipped to the image, class ids (and names, given a label
    map) and COCO RLE masks."""
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
        if labels is not None:
            det["class_name"] = labels.get(det["class_id"])
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


# --- Label maps (--label-map) ---------------------------------------------------------------------------
# The Object Detection API's StringIntLabelMap in protobuf text format, read without protobuf:
#   item { name: "/m/01g317" id: 1 display_name: "person" }
# A detection's class name is the item's display_name, else its name.

class LabelMapError(ValueError):
    """A label map that cannot be read; the message names the line and what is wrong."""


def _label_map_tokens(text: str) -> list[tuple[str, str, int]]:
    """(kind, value, line) tokens of protobuf text format: "word", "string", "{", "}", ":"."""
    tokens: list[tuple[str, str, int]] = []
    i, line, n = 0, 1, len(text)
    escapes = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"'}
    while i < n:
        ch = text[i]
        if ch == "\n":
            line += 1
            i += 1
        elif ch.isspace() or ch in ",;":
            i += 1
        elif ch == "#":
            while i < n and text[i] != "\n":
                i += 1
        elif ch in "{}:<>":
            tokens.append(({"<": "{", ">": "}"}.get(ch, ch), ch, line))
            i += 1
        elif ch in "\"'":
            quote, i, chars = ch, i + 1, []
            while True:
                if i >= n or text[i] == "\n":
                    raise LabelMapError(f"line {line}: string not closed")
                if text[i] == quote:
                    i += 1
                    break
                if text[i] == "\\" and i + 1 < n:
                    chars.append(escapes.get(text[i + 1], "\\" + text[i + 1]))
                    i += 2
                else:
                    chars.append(text[i])
                    i += 1
            tokens.append(("string", "".join(chars), line))
        else:
            start = i
            while i < n and not text[i].isspace() and text[i] not in "{}:<>#\"',;":
                i += 1
            tokens.append(("word", text[start:i], line))
    return tokens


def parse_label_map(text: str) -> dict[int, str]:
    """A label map's text -> {class id: name}. Each ``item`` needs an ``id`` and a ``name`` or
    ``display_name`` (display_name wins, as in the OD API's visualisations); other fields (and
    nested blocks such as keypoints) are skipped. Pure."""
    tokens = _label_map_tokens(text)
    labels: dict[int, str] = {}
    where: dict[int, int] = {}
    pos = 0

    def expect(kind: str) -> tuple[str, str, int]:
        nonlocal pos
        if pos >= len(tokens):
            raise LabelMapError(f"ends early: expected {kind!r}")
        token = tokens[pos]
        if token[0] != kind:
            raise LabelMapError(f"line {token[2]}: expected {kind!r}, found {token[1]!r}")
        pos += 1
        return token

    def skip_value() -> None:
        nonlocal pos
        if pos < len(tokens) and tokens[pos][0] == ":":
            pos += 1
        if pos < len(tokens) and tokens[pos][0] == "{":
            depth = 0
            while pos < len(tokens):
                depth += {"{": 1, "}": -1}.get(tokens[pos][0], 0)
                pos += 1
                if depth == 0:
                    return
            raise LabelMapError("ends inside a block: a '}' is missing")
        if pos < len(tokens) and tokens[pos][0] in ("word", "string"):
            pos += 1
            return
        raise LabelMapError(f"line {tokens[pos - 1][2]}: a field without a value")

    while pos < len(tokens):
        _, word, line = expect("word")
        if word != "item":
            skip_value()
            continue
        if pos < len(tokens) and tokens[pos][0] == ":":
            pos += 1
        expect("{")
        fields: dict[str, str] = {}
        while True:
            if pos >= len(tokens):
                raise LabelMapError(f"line {line}: item not closed: a '}}' is missing")
            if tokens[pos][0] == "}":
                pos += 1
                break
            _, key, key_line = expect("word")
            if key in ("id", "name", "display_name"):
                expect(":")
                if pos >= len(tokens) or tokens[pos][0] not in ("word", "string"):
                    raise LabelMapError(f"line {key_line}: {key} has no value")
                fields[key] = tokens[pos][1]
                pos += 1
            else:
                skip_value()
        if "id" not in fields:
            raise LabelMapError(f"line {line}: item without an id")
        try:
            class_id = int(fields["id"])
        except ValueError:
            raise LabelMapError(f"line {line}: id {fields['id']!r} is not an integer") from None
        if class_id < 0:
            raise LabelMapError(f"line {line}: id {class_id} is negative")
        name = fields.get("display_name") or fields.get("name")
        if not name:
            raise LabelMapError(f"line {line}: item {class_id} has neither a name nor a display_name")
        if class_id in labels and labels[class_id] != name:
            raise LabelMapError(f"line {line}: id {class_id} is {name!r} here and {labels[class_id]!r} "
                                f"on line {where[class_id]}")
        labels[class_id] = name
        where[class_id] = line
    if not labels:
        raise LabelMapError("no items (expected `item { id: 1 name: \"...\" }`)")
    return labels


def read_label_map(path: str) -> dict[int, str]:
    """--label-map FILE -> {class id: name}; LabelMapError names the file and the problem."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        why = describe(e) if isinstance(e, OSError) else "not UTF-8 text"
        raise LabelMapError(f"--label-map {path}: cannot read: {why}") from None
    try:
        return parse_label_map(text)
    except LabelMapError as e:
        raise LabelMapError(f"--label-map {path}: {e}") from None


# --- COCO results (--format coco, --coco-gt) ------------------------------------------------------------

FORMATS = ("jsonl", "coco")


def coco_image_ids(gt: Any) -> dict[str, int]:
    """A COCO annotations document -> {image file name (its last path part): image id}. Pure."""
    if not isinstance(gt, dict) or not isinstance(gt.get("images"), list):
        raise TypeError("not COCO annotations: no \"images\" list")
    ids: dict[str, int] = {}
    for image in gt["images"]:
        if not isinstance(image, dict) or "id" not in image or not isinstance(image.get("file_name"), str):
            raise TypeError(f"an image without \"id\" and \"file_name\": {json.dumps(image)[:80]}")
        name = os.path.basename(image["file_name"].replace("\\", "/"))
        if name in ids and ids[name] != image["id"]:
            raise ValueError(f"two images named {name!r} (ids {ids[name]} and {image['id']})")
        ids[name] = image["id"]
    return ids


def read_coco_image_ids(path: str) -> dict[str, int]:
    """--coco-gt FILE -> {file name: image id}; ValueError names the file and the problem."""
    try:
        with open(path, encoding="utf-8") as f:
            gt = json.load(f)
        return coco_image_ids(gt)
    except OSError as e:
        raise ValueError(f"--coco-gt {path}: cannot read: {describe(e)}") from None
    except (TypeError, ValueError) as e:  # JSONDecodeError is a ValueError
        raise ValueError(f"--coco-gt {path}: {first_line(e)}") from None


def coco_image_id(path: str, ids: Mapping[str, int] | None) -> int | None:
    """An image's COCO id: by file name from --coco-gt, else the file name's digits (COCO's own
    000000397133.jpg is image 397133); None when there is neither."""
    name = os.path.basename(path)
    if ids is not None:
        return ids.get(name)
    stem = os.path.splitext(name)[0]
    return int(stem) if stem.isdigit() else None


def coco_results(record: Mapping[str, Any], image_id: Any) -> list[dict[str, Any]]:
    """One image's record -> its COCO results: bbox [x, y, width, height] in pixels, category_id the
    class id, score, and segmentation (the record's RLE) when there is a mask. Pure."""
    results = []
    for det in record["detections"]:
        ymin, xmin, ymax, xmax = det["box"]
        result: dict[str, Any] = {"image_id": image_id, "category_id": det["class_id"],
                                  "bbox": [xmin, ymin, round(xmax - xmin, BOX_DECIMALS),
                                           round(ymax - ymin, BOX_DECIMALS)],
                                  "score": det["score"]}
        if "mask" in det:
            result["segmentation"] = det["mask"]
        results.append(result)
    return results


def rle_counts(counts: str) -> list[int]:
    """COCO compressed RLE string -> run lengths (zeros first): _rle_string read backwards."""
    runs: list[int] = []
    value = shift = 0
    for ch in counts.encode("ascii"):
        group = ch - 48
        value |= (group & 0x1F) << shift
        shift += 5
        if group & 0x20:
            continue
        if group & 0x10:
            value -= 1 << shift
        if len(runs) > 2:
            value += runs[-2]
        runs.append(value)
        value = shift = 0
    return runs


def rle_decode(rle: Mapping[str, Any]) -> np.ndarray:
    """COCO RLE (compressed string or a list of counts) -> height x width uint8 0/1 mask."""
    height, width = (int(v) for v in rle["size"])
    counts = rle["counts"]
    runs = rle_counts(counts) if isinstance(counts, str) else [int(c) for c in counts]
    flat = np.zeros(height * width, np.uint8)
    ends = np.cumsum(runs)
    starts = ends - np.asarray(runs, np.int64)
    for start, end in zip(starts[1::2].tolist(), ends[1::2].tolist()):
        flat[start:end] = 1
    return flat.reshape(width, height).T


# --- Drawings (--draw) ----------------------------------------------------------------------------------

DRAW_FORMATS = ("png", "jpg")
MASK_ALPHA = 0.45  # how much of a mask's colour covers the image under it
PALETTE = ((230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
           (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128), (220, 190, 255),
           (170, 110, 40), (128, 0, 0), (170, 255, 195), (0, 0, 128))

# A 5 x 7 pixel font for the labels (capitals, digits and a few signs): each glyph is 7 rows of 5 bits,
# the top row first, the leftmost pixel the highest bit. Drawn for this script (no font file needed).
FONT_W, FONT_H = 5, 7
FONT = {
    "A": (14, 17, 17, 31, 17, 17, 17), "B": (30, 17, 17, 30, 17, 17, 30), "C": (14, 17, 16, 16, 16, 17, 14),
    "D": (30, 17, 17, 17, 17, 17, 30), "E": (31, 16, 16, 30, 16, 16, 31), "F": (31, 16, 16, 30, 16, 16, 16),
    "G": (14, 17, 16, 23, 17, 17, 15), "H": (17, 17, 17, 31, 17, 17, 17), "I": (14, 4, 4, 4, 4, 4, 14),
    "J": (7, 2, 2, 2, 2, 18, 12), "K": (17, 18, 20, 24, 20, 18, 17), "L": (16, 16, 16, 16, 16, 16, 31),
    "M": (17, 27, 21, 21, 17, 17, 17), "N": (17, 25, 21, 19, 17, 17, 17), "O": (14, 17, 17, 17, 17, 17, 14),
    "P": (30, 17, 17, 30, 16, 16, 16), "Q": (14, 17, 17, 17, 21, 18, 13), "R": (30, 17, 17, 30, 20, 18, 17),
    "S": (15, 16, 16, 14, 1, 1, 30), "T": (31, 4, 4, 4, 4, 4, 4), "U": (17, 17, 17, 17, 17, 17, 14),
    "V": (17, 17, 17, 17, 17, 10, 4), "W": (17, 17, 17, 21, 21, 21, 10), "X": (17, 17, 10, 4, 10, 17, 17),
    "Y": (17, 17, 10, 4, 4, 4, 4), "Z": (31, 1, 2, 4, 8, 16, 31),
    "0": (14, 17, 19, 21, 25, 17, 14), "1": (4, 12, 4, 4, 4, 4, 14), "2": (14, 17, 1, 2, 4, 8, 31),
    "3": (31, 2, 4, 2, 1, 17, 14), "4": (2, 6, 10, 18, 31, 2, 2), "5": (31, 16, 30, 1, 1, 17, 14),
    "6": (6, 8, 16, 30, 17, 17, 14), "7": (31, 1, 2, 4, 8, 8, 8), "8": (14, 17, 17, 14, 17, 17, 14),
    "9": (14, 17, 17, 15, 1, 2, 12), " ": (0, 0, 0, 0, 0, 0, 0), ".": (0, 0, 0, 0, 0, 12, 12),
    "-": (0, 0, 0, 31, 0, 0, 0), "_": (0, 0, 0, 0, 0, 0, 31), ":": (0, 12, 12, 0, 12, 12, 0),
    "/": (1, 1, 2, 4, 8, 16, 16), "(": (2, 4, 8, 8, 8, 4, 2), ")": (8, 4, 2, 2, 2, 4, 8),
    "?": (14, 17, 1, 2, 4, 0, 4), "'": (4, 4, 8, 0, 0, 0, 0), "&": (12, 18, 20, 8, 21, 18, 13),
}


def text_bitmap(text: str, scale: int = 1) -> np.ndarray:
    """A label's pixels (bool [7 * scale, 6 * scale * len]) in the built-in font; letters in capitals,
    signs it lacks as '?'."""
    glyphs = [FONT.get(ch, FONT["?"]) for ch in text.upper()]
    bits = np.zeros((FONT_H, (FONT_W + 1) * max(len(glyphs), 1)), bool)
    for i, rows in enumerate(glyphs):
        for r, row in enumerate(rows):
            for c in range(FONT_W):
                bits[r, i * (FONT_W + 1) + c] = bool(row >> (FONT_W - 1 - c) & 1)
    return np.repeat(np.repeat(bits, scale, 0), scale, 1)


def class_color(class_id: int) -> np.ndarray:
    """The colour of a class's boxes, masks and labels (uint8 RGB), the same in every drawing."""
    return np.array(PALETTE[class_id % len(PALETTE)], np.uint8)


def label_text(det: Mapping[str, Any]) -> str:
    name = det.get("class_name")
    return f"{name if name is not None else det['class_id']} {det['score']:.2f}"


def draw_record(image: np.ndarray, record: Mapping[str, Any]) -> np.ndarray:
    """An image (uint8 [H, W, 3]) with its record's detections drawn: masks blended in the class's
    colour, then box outlines and a label (class name or id, and score) above each box. Pure numpy;
    returns a new array."""
    out = np.array(image, np.uint8, copy=True)
    height, width = out.shape[:2]
    thick = max(2, round(min(height, width) / 250))
    scale = max(1, round(min(height, width) / 400))
    for det in record["detections"]:
        if "mask" in det:
            mask = rle_decode(det["mask"]).astype(bool)
            if mask.shape == (height, width):
                color = class_color(det["class_id"]).astype(np.float32)
                out[mask] = np.round(out[mask] * (1 - MASK_ALPHA) + color * MASK_ALPHA).astype(np.uint8)
    for det in record["detections"]:
        color = class_color(det["class_id"])
        ymin, xmin, ymax, xmax = det["box"]
        top, left = int(np.clip(np.floor(ymin), 0, height - 1)), int(np.clip(np.floor(xmin), 0, width - 1))
        bottom = int(np.clip(np.ceil(ymax), top + 1, height))
        right = int(np.clip(np.ceil(xmax), left + 1, width))
        out[top:min(top + thick, bottom), left:right] = color
        out[max(bottom - thick, top):bottom, left:right] = color
        out[top:bottom, left:min(left + thick, right)] = color
        out[top:bottom, max(right - thick, left):right] = color
        bits = text_bitmap(label_text(det), scale)
        pad = scale
        box_h, box_w = bits.shape[0] + 2 * pad, bits.shape[1] + pad
        y0 = top - box_h if top - box_h >= 0 else top  # above the box, else inside its top edge
        y1, x1 = min(y0 + box_h, height), min(left + box_w, width)
        if y1 <= y0 or x1 <= left:
            continue
        out[y0:y1, left:x1] = color
        ink = np.array([0, 0, 0] if int(color.astype(np.int32).sum()) > 382 else [255, 255, 255], np.uint8)
        region = out[y0 + pad:min(y0 + pad + bits.shape[0], y1), left + pad:min(left + pad + bits.shape[1], x1)]
        region[bits[:region.shape[0], :region.shape[1]]] = ink
    return out


def drawing_names(paths: Sequence[str], ext: str) -> list[str]:
    """One file name per image for --draw: its own name with the drawing's extension, and -2, -3 ...
    when two images (in different folders) share a name. Pure."""
    names: list[str] = []
    taken: set[str] = set()
    for path in paths:
        stem = os.path.splitext(os.path.basename(path))[0] or "image"
        name, n = f"{stem}.{ext}", 1
        while name in taken:
            n += 1
            name = f"{stem}-{n}.{ext}"
        taken.add(name)
        names.append(name)
    return names


def write_atomically(path: str, data: bytes) -> None:
    """Write bytes to a temporary file next to ``path`` and rename it into place (OutputError on failure)."""
    folder = os.path.dirname(path) or "."
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    except OSError as e:
        raise OutputError(f"--draw {folder}: cannot create a file: {describe(e)}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise OutputError(f"--draw {path}: cannot write: {describe(e)}") from None


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
    try:
        paths = prepare_results(args, paths)
    except (LabelMapError, OutputError, ValueError) as e:
        error(str(e))
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


def prepare_results(args: argparse.Namespace, paths: list[str]) -> list[str]:
    """Read --label-map and --coco-gt and create the --draw folder, before TensorFlow is imported; the
    images to run (with --format coco, those with an image id). Sets args.labels and args.image_ids."""
    args.labels = read_label_map(args.label_map) if args.label_map else None
    args.image_ids = None
    if args.format != "coco":
        if args.coco_gt:
            raise ValueError(f"--coco-gt {args.coco_gt}: only used with --format coco")
    else:
        if args.coco_gt:
            args.image_ids = read_coco_image_ids(args.coco_gt)
        known = [p for p in paths if coco_image_id(p, args.image_ids) is not None]
        unknown = [p for p in paths if coco_image_id(p, args.image_ids) is None]
        if not known:
            where = (f"listed in --coco-gt {args.coco_gt}" if args.coco_gt
                     else "named by a number (give --coco-gt annotations.json)")
            raise ValueError(f"--format coco: none of the {len(paths)} image(s) is {where}")
        if unknown:
            where = f"not in --coco-gt {args.coco_gt}" if args.coco_gt else "not named by a number"
            warning(f"--format coco: skipping {len(unknown)} image(s) {where}: "
                    + ", ".join(os.path.basename(p) for p in unknown[:5]) + (" ..." if len(unknown) > 5 else ""))
        paths = known
    if args.draw:
        folder = args.draw
        if os.path.exists(folder) and not os.path.isdir(folder):
            raise OutputError(f"--draw {folder}: is a file; give a folder")
        parent = os.path.dirname(os.path.abspath(folder))
        if not os.path.isdir(parent):
            raise OutputError(f"--draw {folder}: folder {parent} does not exist")
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as e:
            raise OutputError(f"--draw {folder}: cannot create: {describe(e)}") from None
        if not os.access(folder, os.W_OK | os.X_OK):
            raise OutputError(f"--draw {folder}: cannot write into it (permission denied)")
    return paths


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
    coco_started = [False]  # --format coco: the array's "[" is written
    draw_names = drawing_names(paths, args.draw_format) if args.draw else []
    drawn = [0]

    def write_batch(index: np.ndarray, outputs: Mapping[str, Sequence[np.ndarray]], sizes: np.ndarray) -> None:
        """Model outputs of one batch -> JSON lines, one write per batch (a full disk raises OutputError)."""
        numbers = index.tolist()
        seen.update(numbers)
        records = batch_records([paths[i] for i in numbers], sizes, outputs, args.score_threshold, mask_threshold,
                                args.labels)
        if args.format == "coco":
            pieces = []
            for record in records:
                for result in coco_results(record, coco_image_id(record["file"], args.image_ids)):
                    pieces.append((",\n" if coco_started[0] else "[\n") + json.dumps(result))
                    coco_started[0] = True
            out.write("".join(pieces))
        else:
            out.write("".join(json.dumps(record) + "\n" for record in records))
        for i, record in zip(numbers, records):
            if args.draw:
                image = decode_image_bytes(tf, tf.io.read_file(paths[i]), args.jpeg_dct).numpy()
                drawing = draw_record(image, record)
                data = (tf.io.encode_png(drawing) if args.draw_format == "png"
                        else tf.io.encode_jpeg(drawing, quality=95)).numpy()
                write_atomically(os.path.join(args.draw, draw_names[i]), data)
                drawn[0] += 1

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
        if args.format == "coco":
            out.write("\n]\n" if coco_started[0] else "[]\n")
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
                                      "threads": args.threads, "format": args.format,
                                      "label_map": args.label_map, "drawn": drawn[0] if args.draw else None,
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
