"""Run a migrated Object Detection model (TF2 SavedModel) over a folder of images.

Written by `oddoctor migrate`. It needs only TensorFlow (`pip install tensorflow`, which brings
numpy) and the Python standard library: copy this file together with its saved_model/ folder.

Output: one JSON object per image (JSON lines) with boxes in pixels of the original image,
scores, class ids and, for mask models, image-sized binary masks as COCO compressed RLE
(decode with pycocotools.mask.decode). Progress and the final images/s go to stderr.

Example:
    python run_inference.py photos/ --out detections.jsonl --score-threshold 0.5
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import queue
import signal
import sys
import threading
import time

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

DEFAULT_BATCH_SIZE = 4
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
HERE = os.path.dirname(os.path.abspath(__file__))


def parse_args(argv=None):
    """Command-line options; parsed before TensorFlow is imported so --help is instant."""
    epilog = (
        f"model: migrated by oddoctor {ODDOCTOR_VERSION} from {SOURCE_MODEL!r}\n"
        f"  input {SOURCE_INPUT!r} -> signature {SIGNATURE_KEY!r} key {INPUT_KEY!r}\n"
        "output: one JSON object per image: {\"file\", \"height\", \"width\", \"detections\": [{\n"
        "  \"box\": [ymin, xmin, ymax, xmax] in pixels, \"score\", \"class_id\",\n"
        "  \"mask\": {\"size\": [h, w], \"counts\": COCO RLE string}}]}\n"
        "exit status: 0 ok (unreadable images are skipped, listed and counted), 1 no image could be\n"
        "  read, 2 bad options, no images found or the model cannot be loaded."
    )
    if "%(prog)" in epilog:
        epilog = epilog.replace("%", "%%")  # argparse %-formats text that mentions %(prog)
    p = argparse.ArgumentParser(
        prog="run_inference.py",
        description="Detect objects in images with the migrated TF2 SavedModel and write JSON lines.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=epilog,
    )
    p.add_argument("images", nargs="+", help="image files and/or folders of images (jpg, png, bmp, gif)")
    p.add_argument("--model", metavar="DIR", default=os.path.join(HERE, "saved_model"),
                   help="SavedModel directory (default: saved_model/ next to this script)")
    p.add_argument("--out", metavar="FILE", default="-", help="JSON lines output file (default: stdout)")
    p.add_argument("--recursive", action="store_true", help="also look for images in sub-folders")
    p.add_argument("--score-threshold", metavar="S", type=float, default=0.5,
                   help="keep detections with score >= this (default 0.5)")
    p.add_argument("--mask-threshold", metavar="P", type=float, default=0.5,
                   help="mask probability above which a pixel belongs to the object (default 0.5)")
    p.add_argument("--no-masks", action="store_true", help="do not compute or write masks")
    p.add_argument("--max-side", metavar="PX", type=int, default=1024,
                   help="resize so the longest side is at most this many pixels, keeping the aspect "
                        "ratio, before inference; boxes and masks are still reported in original "
                        "pixels (default 1024; 0 = never resize)")
    p.add_argument("--batch-size", metavar="N", type=int, default=DEFAULT_BATCH_SIZE,
                   help="images per call of the model graph (default %(default)s). Each image still "
                        "goes through the model alone and at its own size, so the results are the "
                        "same as with 1; the images of a batch run concurrently, so memory grows "
                        "with N: lower it if the GPU runs out of memory")
    p.add_argument("--gpu", metavar="N", type=int, default=None,
                   help="use only GPU number N (-1: CPU only; default: TensorFlow's choice)")
    p.add_argument("--memory-limit-mb", metavar="MB", type=int, default=None,
                   help="cap TensorFlow's GPU memory at this many MiB (the TF2 counterpart of "
                        "per_process_gpu_memory_fraction); default: memory growth (allocate as needed)")
    p.add_argument("--xla", action="store_true",
                   help="compile the model call with XLA (jit_compile); falls back when the model "
                        "has ops XLA cannot compile")
    p.add_argument("--threads", metavar="N", type=int, default=0,
                   help="TensorFlow intra-op threads (default 0: one per core)")
    p.add_argument("--parallel-decode", metavar="N", type=int, default=-1,
                   help="images decoded in parallel (default -1: one per core)")
    p.add_argument("--prefetch", metavar="N", type=int, default=-1,
                   help="batches prepared ahead of the model (default -1: a self-sizing buffer; 0: off)")
    p.add_argument("--no-overlap", dest="overlap", action="store_false",
                   help="paste masks and write JSON in the main thread instead of in a background "
                        "thread that overlaps the next model call")
    p.add_argument("--post-nice", metavar="N", type=int, default=0,
                   help="nice value of that background thread on Linux (default 0: the model's "
                        "priority; up to 19: only CPU time the model's threads leave idle, which "
                        "can hold up the next batch on a busy machine)")
    p.add_argument("--summary-json", metavar="FILE", default=None,
                   help="also write counts and timings to this JSON file")
    p.add_argument("--quiet", action="store_true", help="no progress lines (the final line is still shown)")
    args = p.parse_args(argv)
    if args.batch_size < 1:
        p.error("--batch-size must be >= 1")
    if args.max_side < 0:
        p.error("--max-side must be >= 0")
    if args.memory_limit_mb is not None and args.memory_limit_mb <= 0:
        p.error("--memory-limit-mb must be > 0")
    return args


def list_images(inputs, recursive):
    """Image paths in a stable order; folders are scanned for known image extensions."""
    paths = []
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
            print(f"run_inference.py: warning: {item}: no such file or folder", file=sys.stderr)
    return paths


def configure_devices(tf, gpu, memory_limit_mb, threads):
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
    return gpus


def make_dataset(tf, paths, max_side, batch_size, parallel, prefetch):
    """tf.data pipeline: read, decode and resize on TensorFlow ops, in parallel, ahead of the model."""
    autotune = tf.data.AUTOTUNE
    files = tf.constant([os.fsencode(p) for p in paths], dtype=tf.string)
    ds = tf.data.Dataset.from_tensor_slices((tf.range(len(paths), dtype=tf.int32), files))

    def load(index, path):
        image = tf.io.decode_image(tf.io.read_file(path), channels=3, dtype=tf.uint8,
                                   expand_animations=False)
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


def make_detect(tf, model_fn, batch_size, xla):
    """The model call plus box scaling, traced once: the input_signature fixes dtype and rank.

    A batch of N images is one call of this function, but the model still sees each image alone
    and at its own size: a loop inside the graph crops each image back from the zero-padded batch
    and calls the model on it, so the outputs are the ones batch 1 gives, for any model. The
    outputs come back concatenated over the images, with each image's row count (a model may
    return a different number of detections per image); split_outputs() cuts them apart.
    """
    batch = 1 if batch_size == 1 else None
    signature = [
        tf.TensorSpec([batch, None, None, 3], tf.uint8),
        tf.TensorSpec([batch, 2], tf.int32),  # original height, width
        tf.TensorSpec([batch, 2], tf.int32),  # height, width after --max-side, before padding
    ]
    available = model_fn.structured_outputs
    keys = {name: key for name, key in (("boxes", BOXES_KEY), ("scores", SCORES_KEY), ("classes", CLASSES_KEY),
                                        ("num", NUM_KEY), ("masks", MASKS_KEY))
            if key is not None and key in available}
    dtypes = {name: tf.float32 if name == "boxes" else tf.int32 if name == "num" else available[key].dtype
              for name, key in keys.items()}

    def one(image, original_size):
        """One image's outputs, without the batch dimension; boxes in pixels of the original image."""
        outs = model_fn(**{INPUT_KEY: image[None]})
        result = {}
        for name, key in keys.items():
            value = outs[key][0]
            if name == "boxes":  # normalised to the image the model saw
                value = tf.cast(value, tf.float32) * tf.tile(tf.cast(original_size, tf.float32), [2])
            elif name == "num":
                value = tf.reshape(tf.cast(value, tf.int32), [-1])[:1]
            result[name] = value
        return result

    def lengths_of(outs):
        return tf.stack([tf.shape(outs[name])[0] for name in keys])

    def by_name(lengths):  # [images, outputs] -> {name: [images]}
        return {name: lengths[:, j] for j, name in enumerate(keys)}

    @tf.function(input_signature=signature, jit_compile=xla or None)
    def detect(images, original_sizes, resized_sizes):
        if batch == 1:
            outs = one(images[0], original_sizes[0])
            return outs, by_name(lengths_of(outs)[None])
        n = tf.shape(images)[0]
        arrays = [tf.TensorArray(dtypes[name], size=n, infer_shape=False) for name in keys]
        lengths = tf.TensorArray(tf.int32, size=n)

        def body(i, lengths, *arrays):
            size = resized_sizes[i]
            outs = one(images[i, :size[0], :size[1]], original_sizes[i])
            return (i + 1, lengths.write(i, lengths_of(outs)),
                    *[a.write(i, outs[name]) for name, a in zip(keys, arrays)])

        # The images of a batch run concurrently (their ops interleave on idle cores or GPU
        # streams): memory grows with the batch size, as with a real batch.
        _, lengths, *arrays = tf.while_loop(lambda i, *_: i < n, body, (0, lengths, *arrays),
                                            parallel_iterations=batch_size)
        return {name: a.concat() for name, a in zip(keys, arrays)}, by_name(lengths.stack())

    return detect


def split_outputs(values, lengths):
    """detect()'s outputs, concatenated over the images, -> {name: [one numpy array per image]}."""
    return {name: np.split(np.asarray(value), np.cumsum(np.asarray(lengths[name]))[:-1])
            for name, value in values.items()}


def _paste_axis(low, extent, mask_size, size):
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
    first = int(min(max(np.floor(low * last), 0), last))
    stop = int(min(max(np.ceil((low + extent) * last), 0), last)) + 1
    px = np.arange(first, stop, dtype=f32)
    step = (w2 - w1) * m1 / f32(size - 1) if size > 1 else None
    pos = w1 * m1 + px * step if size > 1 else np.full_like(px, f32(0.5) * (w1 + w2) * m1)
    inside = (pos >= 0) & (pos <= m1)
    lo = np.floor(pos)
    frac = pos - lo
    lo_i = np.clip(lo, 0, mask_size - 1).astype(np.intp)
    hi_i = np.clip(np.ceil(pos), 0, mask_size - 1).astype(np.intp)
    return first, inside, lo_i, hi_i, frac


def paste_mask(mask, box, height, width, threshold):
    """A box-relative mask -> its binary mask in image pixels, computed over the box only.

    Gives what the OD API's reframe_box_masks_to_image_masks gives (crop_and_resize of the box mask,
    bilinear, at every image pixel; 0 outside the box) without an image-sized crop per detection,
    which costs as much as this model on a CPU. ``box`` is [ymin, xmin, ymax, xmax] normalised to
    the image. Returns (mask uint8 [rows, cols], top row, left column) of the region the box covers.
    """
    mask = np.asarray(mask, np.float32)
    low = box[:2].astype(np.float32)
    extent = np.maximum(box[2:].astype(np.float32) - low, np.float32(1e-4))  # as the OD API
    top, in_y, y0, y1, fy = _paste_axis(low[0], extent[0], mask.shape[0], height)
    left, in_x, x0, x1, fx = _paste_axis(low[1], extent[1], mask.shape[1], width)
    a = mask[:, x0]
    rows = a + (mask[:, x1] - a) * fx  # [mask_h, cols]: along x first, as crop_and_resize does
    t = rows[y0]
    value = t + (rows[y1] - t) * fy[:, None]
    local = (value > threshold) & in_y[:, None] & in_x[None, :]
    return local.view(np.uint8), top, left


def rle_encode_box(local, top, left, height, width):
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


def rle_encode(mask):
    """COCO compressed RLE of a 2-D 0/1 uint8 array (same string as pycocotools.mask.encode)."""
    return rle_encode_box(np.asarray(mask, np.uint8), 0, 0, mask.shape[0], mask.shape[1])


def _rle_string(counts):
    """pycocotools' rleToString, vectorised: run lengths (zeros first) -> its compact ASCII form.

    Each count (minus the one two places back, from the fourth on) is written 5 bits per character,
    low bits first, bit 0x20 meaning "more follows", plus 48.
    """
    counts = np.asarray(counts, np.int64)
    x = counts.copy()
    x[3:] -= counts[1:-2]
    active = np.ones(len(x), bool)
    chars, valid = [], []
    for _ in range(8):  # 8 x 5 bits: counts up to 2**39 pixels
        c = x & 0x1F
        x = x >> 5  # arithmetic shift, like C's on a signed long
        more = np.where(c & 0x10, x != -1, x != 0)
        chars.append(np.where(more, c | 0x20, c) + 48)
        valid.append(active)
        active = active & more
        if not active.any():
            break
    return np.stack(chars, 1)[np.stack(valid, 1)].astype(np.uint8).tobytes().decode("ascii")


class Writer(threading.Thread):
    """Runs write_batch on model outputs in order, in the background, while the model computes the
    next batch (TensorFlow releases the GIL while its ops run)."""

    def __init__(self, write_batch, depth=4, nice=0):
        super().__init__(daemon=True)
        self.write_batch = write_batch
        self.nice = nice
        self.queue = queue.Queue(depth)  # bounded: results cannot pile up in memory
        self.error = None
        self.start()

    def run(self):
        if self.nice > 0 and sys.platform.startswith("linux"):
            # On Linux the nice value is per thread: a model op split over all cores waits for its
            # slowest part, so post-processing at equal priority stalls every op it preempts.
            with contextlib.suppress(OSError):  # not allowed: stay at the process's priority
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), min(self.nice, 19))
        while True:
            item = self.queue.get()
            if item is None:
                return
            if self.error is None:
                try:
                    self.write_batch(*item)
                except BaseException as e:  # noqa: BLE001 - re-raised in the main thread by put()/finish()
                    self.error = e

    def put(self, item):
        if self.error is not None:
            raise self.error
        self.queue.put(item)

    def finish(self):
        self.queue.put(None)
        self.join()
        if self.error is not None:
            raise self.error

    def stop(self):
        self.error = self.error or RuntimeError("stopped")
        self.queue.put(None)
        self.join(timeout=10)


def stop_message(tf, error, args, done):
    """One line for the errors a user can act on (None: a bug, let the traceback through)."""
    kept = f"{args.out} not written" if args.out != "-" else "the lines already on stdout are complete"
    if isinstance(error, KeyboardInterrupt):
        return f"interrupted after {done} images; {kept}"
    if isinstance(error, tf.errors.ResourceExhaustedError):
        smaller = max(1, args.batch_size // 2)
        hint = (f"--batch-size {smaller}" if args.batch_size > 1 else
                f"--max-side {max(args.max_side // 2, 256) if args.max_side else 1024}")
        return (f"out of memory after {done} images at --batch-size {args.batch_size}; {kept}. "
                f"Re-run with {hint} (the images of a batch run concurrently), or on the CPU with --gpu -1")
    return None


class CtrlC:
    """Ctrl-C noted by a flag that the image loop checks after each batch.

    A KeyboardInterrupt raised wherever the main thread happens to be can land in Python code that
    TensorFlow's C++ fast path calls back (a TensorShape method) and be swallowed there: measured,
    3 of 6 interrupts were lost that way. A second Ctrl-C still raises at once.
    """

    def __init__(self):
        self.requested = False
        self.previous = None
        if threading.current_thread() is threading.main_thread() and \
                signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            self.previous = signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def check(self):
        if self.requested:
            raise KeyboardInterrupt

    def restore(self):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
            self.previous = None


def open_output(path):
    """stdout for '-', else the file (written to a temporary name, renamed at the end)."""
    if path == "-":
        return sys.stdout, None
    tmp = f"{path}.{os.getpid()}.tmp"
    return open(tmp, "w", encoding="utf-8"), tmp


def main(argv=None):
    """Parse options, configure TensorFlow, then stream images through the model once."""
    args = parse_args(argv)
    paths = list_images(args.images, args.recursive)
    if not paths:
        print(f"run_inference.py: error: no images found in {' '.join(args.images)}", file=sys.stderr)
        return 2
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf  # after argument parsing: --help and bad options stay fast

    try:
        configure_devices(tf, args.gpu, args.memory_limit_mb, args.threads)
    except (ValueError, RuntimeError) as e:  # RuntimeError: a GPU was initialised already
        print(f"run_inference.py: error: {e}", file=sys.stderr)
        return 2
    t_load = time.perf_counter()
    try:
        model = tf.saved_model.load(args.model)  # once, for every image
        model_fn = model.signatures[SIGNATURE_KEY]
    except (OSError, ValueError, KeyError, tf.errors.OpError) as e:
        first_line = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
        print(f"run_inference.py: error: cannot load the SavedModel {args.model!r}: {first_line}",
              file=sys.stderr)
        return 2
    load_s = time.perf_counter() - t_load
    detect = make_detect(tf, model_fn, args.batch_size, args.xla)
    want_masks = MASKS_KEY is not None and not args.no_masks and MASKS_KEY in model_fn.structured_outputs
    dataset = make_dataset(tf, paths, args.max_side, args.batch_size, args.parallel_decode, args.prefetch)

    out, tmp = open_output(args.out)
    seen = set()

    def write_batch(index, res, sizes):
        """Model outputs of one batch -> JSON lines (masks pasted, clipped boxes, RLE)."""
        for b, i in enumerate(index.tolist()):
            seen.add(i)
            h, w = int(sizes[b][0]), int(sizes[b][1])
            n = int(res["num"][b][0])
            scores = res["scores"][b][:n]
            keep = (scores >= args.score_threshold).nonzero()[0]
            raw_boxes = res["boxes"][b][keep]
            boxes = raw_boxes.copy()
            boxes[:, 0::2] = boxes[:, 0::2].clip(0, h)
            boxes[:, 1::2] = boxes[:, 1::2].clip(0, w)
            # Unclipped boxes, as the model meant them: a mask is pasted over its whole box.
            norm = (raw_boxes / [h, w, h, w]).astype(np.float32) if want_masks else None
            dets = []
            for j, k in enumerate(keep.tolist()):
                det = {"box": [round(float(v), 2) for v in boxes[j]],
                       "score": round(float(scores[k]), 6),
                       "class_id": int(res["classes"][b][k])}
                if want_masks:
                    local, top, left = paste_mask(res["masks"][b][k], norm[j], h, w, args.mask_threshold)
                    det["mask"] = rle_encode_box(local, top, left, h, w)
                dets.append(det)
            record = {"file": paths[i], "height": h, "width": w, "detections": dets}
            out.write(json.dumps(record) + "\n")

    writer = Writer(write_batch, nice=args.post_nice) if args.overlap else None
    done = 0
    first_batch_end = None
    first_batch_n = 0
    last_report = t0 = time.perf_counter()
    ctrl_c = CtrlC()
    try:
        for index, images, original_sizes, resized_sizes in dataset:
            ctrl_c.check()  # Ctrl-C during the last batch or while waiting for this one
            try:
                res = detect(images, original_sizes, resized_sizes)
            except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError) as e:
                if not args.xla:
                    raise
                # XLA cannot compile every detection op (e.g. dynamic NMS): run without it.
                first_line = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
                print(f"run_inference.py: warning: XLA failed ({first_line}); continuing without --xla",
                      file=sys.stderr)
                args.xla = False
                detect = make_detect(tf, model_fn, args.batch_size, False)
                res = detect(images, original_sizes, resized_sizes)
            batch = (index.numpy(), split_outputs(*res), original_sizes.numpy())
            if writer is not None:
                writer.put(batch)  # post-processing overlaps the next model call
            else:
                write_batch(*batch)
            done += len(batch[0])
            now = time.perf_counter()
            if first_batch_end is None:
                first_batch_end, first_batch_n = now, done
            if not args.quiet and (now - last_report >= 2.0):
                last_report = now
                print(f"progress: {done}/{len(paths)} images, {done / (now - t0):.2f} images/s",
                      file=sys.stderr, flush=True)
        if writer is not None:
            writer.finish()
        ctrl_c.check()
    except BaseException as e:
        if writer is not None:
            writer.stop()
        if tmp is not None:
            out.close()
            os.unlink(tmp)
        message = stop_message(tf, e, args, done)
        if message is None:
            raise
        print(f"run_inference.py: error: {message}", file=sys.stderr)
        return 130 if isinstance(e, KeyboardInterrupt) else 1
    finally:
        ctrl_c.restore()
    if tmp is not None:
        out.close()
        os.replace(tmp, args.out)
    wall = time.perf_counter() - t0
    skipped = [p for i, p in enumerate(paths) if i not in seen]
    steady = None
    if first_batch_end is not None and done > first_batch_n and wall > first_batch_end - t0:
        steady = (done - first_batch_n) / (t0 + wall - first_batch_end)
    rate = done / wall if wall > 0 else 0.0
    after_first = f" ({steady:.2f} images/s after the first batch)" if steady else ""
    print(f"done: {done} images in {wall:.2f} s, {rate:.2f} images/s{after_first}; "
          f"{len(skipped)} skipped (unreadable)", file=sys.stderr, flush=True)
    for p in skipped:
        print(f"  skipped: {p}", file=sys.stderr)
    if args.summary_json:
        with open(args.summary_json, "w", encoding="utf-8") as f:
            json.dump({"images": done, "skipped": skipped, "wall_s": wall, "load_s": load_s,
                       "images_per_s": done / wall if wall > 0 else None,
                       "steady_images_per_s": steady, "batch_size": args.batch_size,
                       "xla": args.xla, "overlap": args.overlap,
                       "post_nice": args.post_nice if args.overlap else None}, f, indent=2)
    return 0 if done else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # before or after the image loop (inside it, main() says more)
        print("run_inference.py: interrupted", file=sys.stderr)
        sys.exit(130)
