"""Run the migrated Object Detection model over many images with Apache Beam (RunInference).

Written by `oddoctor migrate` beside run_inference.py, whose functions it imports (decoding, resizing,
the model call, records, COCO results): its detections are the runner's, record by record. It needs
apache-beam and TensorFlow (`pip install apache-beam tensorflow`). Each worker loads the SavedModel once
(RunInference shares it between the threads of a worker process) and calls it on batches that Beam
forms (--min-batch-size, --max-batch-size).

Example (local, DirectRunner):
    python beam_pipeline.py 'photos/*.jpg' --output out/detections
Any Beam runner option is passed through (--runner DataflowRunner --project ... --region ...,
--direct_num_workers 4 --direct_running_mode multi_processing); see docs/scale.md of oddoctor.

Output: JSON-lines shards OUTPUT-00000-of-0000N.jsonl, one record per image (the runner's format);
with --format coco one more file, OUTPUT.coco.json, the COCO results of every image.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import apache_beam as beam
import numpy as np
from apache_beam.io import fileio
from apache_beam.ml.inference.base import (
    KeyedModelHandler,
    ModelHandler,
    PredictionResult,
    RunInference,
)
from apache_beam.options.pipeline_options import PipelineOptions

HERE = os.path.dirname(os.path.abspath(__file__))
try:  # run_inference.py beside this file (a migration's folder)
    import run_inference as ri
except ImportError:  # oddoctor's own copy, when imported from the oddoctor package
    from oddoctor.migrate import run_inference as ri  # type: ignore[no-redef]

PROG = "beam_pipeline.py"
NAMESPACE = "oddoctor"
DEFAULT_MIN_BATCH = 1
DEFAULT_MAX_BATCH = 4


class LoadedModel:
    """What a worker loads once: TensorFlow, the SavedModel and its traced call (Beam's Shared needs an
    object it can hold a weak reference to)."""

    def __init__(self, tf: Any, model: Any, detect: Any) -> None:
        self.tf = tf
        self.model = model  # keeps the SavedModel's resources alive as long as detect
        self.detect = detect


class DetectionModelHandler(ModelHandler[np.ndarray, PredictionResult, LoadedModel]):
    """A migrated SavedModel behind RunInference: loaded with tf.saved_model.load (not Keras, which refuses a
    SavedModel that is not a Keras model), called through run_inference.make_detect on a padded batch in
    which each image still runs alone at its own size."""

    def __init__(self, model_dir: str, *, min_batch_size: int = DEFAULT_MIN_BATCH,
                 max_batch_size: int = DEFAULT_MAX_BATCH, threads: int = 0) -> None:
        super().__init__()
        self.model_dir = model_dir
        self.min_batch_size = min_batch_size
        self.max_batch_size = max_batch_size
        self.threads = threads

    def load_model(self) -> LoadedModel:
        """Once per worker process: TensorFlow's threads, the SavedModel, its checked signature, the traced call."""
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", ri.tf_log_floor())
        import tensorflow as tf

        ri.configure_devices(tf, None, None, self.threads)
        model = tf.saved_model.load(self.model_dir)
        problem = ri.signature_problem(model)
        if problem is not None:
            raise ValueError(f"--model {self.model_dir}: not a SavedModel migrated by oddoctor: {problem}")
        model_fn = model.signatures[ri.SIGNATURE_KEY]
        return LoadedModel(tf, model, ri.make_detect(tf, model_fn, self.max_batch_size, False))

    def run_inference(self, batch: Sequence[np.ndarray], model: LoadedModel,
                      inference_args: Mapping[str, Any] | None = None) -> Iterable[PredictionResult]:
        """Images (uint8 [h, w, 3], any sizes) -> one PredictionResult per image, its model outputs by the
        runner's short names ("boxes", "scores", "classes", "num", "masks"), as numpy arrays."""
        tf = model.tf
        sizes = np.array([image.shape[:2] for image in batch], np.int32)
        padded = np.zeros((len(batch), int(sizes[:, 0].max()), int(sizes[:, 1].max()), 3), np.uint8)
        for b, image in enumerate(batch):
            padded[b, :image.shape[0], :image.shape[1]] = image
        values, lengths = model.detect(tf.constant(padded), tf.constant(sizes))
        outputs = ri.split_outputs(values, lengths)
        return [PredictionResult(image, {name: arrays[b] for name, arrays in outputs.items()})
                for b, image in enumerate(batch)]

    def batch_elements_kwargs(self) -> Mapping[str, Any]:
        return {"min_batch_size": self.min_batch_size, "max_batch_size": self.max_batch_size}

    def get_num_bytes(self, batch: Sequence[np.ndarray]) -> int:
        return sum(int(image.nbytes) for image in batch)

    def get_metrics_namespace(self) -> str:
        return NAMESPACE


class DecodeImage(beam.DoFn):
    """(path, encoded bytes) -> ((path, original height, width), image after --max-side), decoded as the
    runner decodes (run_inference.decode_image_bytes, fit_max_side); an unreadable file is counted and
    dropped, as the runner skips it."""

    def __init__(self, max_side: int, jpeg_dct: str) -> None:
        self.max_side = max_side
        self.jpeg_dct = jpeg_dct
        self.images = beam.metrics.Metrics.counter(NAMESPACE, "images")
        self.skipped = beam.metrics.Metrics.counter(NAMESPACE, "skipped")

    def setup(self) -> None:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", ri.tf_log_floor())
        import tensorflow as tf

        self.tf = tf

    def process(self, element: tuple[str, bytes]) -> Iterator[tuple[tuple[str, int, int], np.ndarray]]:
        path, data = element
        tf = self.tf
        try:
            image = ri.decode_image_bytes(tf, tf.constant(data), self.jpeg_dct)
            height, width = (int(v) for v in image.shape[:2])
            resized = ri.fit_max_side(tf, image, self.max_side).numpy()
        except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError, ValueError) as e:
            self.skipped.inc()
            why = ri.first_line(e).split("}}")[-1].split("[Op:")[0].strip()  # without TF's node prefix
            print(f"{PROG}: warning: skipped {path}: not a readable image ({why})", file=sys.stderr)
            return
        self.images.inc()
        yield (path, height, width), resized


def read_file(readable: Any) -> tuple[str, bytes]:
    return readable.metadata.path, readable.read()


def is_image(path: str) -> bool:
    return path.lower().endswith(ri.IMAGE_EXTENSIONS)


def to_record(element: tuple[tuple[str, int, int], PredictionResult], score_threshold: float,
              mask_threshold: float | None, labels: Mapping[int, str] | None) -> dict[str, Any]:
    """One image's RunInference result -> the runner's record (run_inference.image_record)."""
    (path, height, width), result = element
    return ri.image_record(path, height, width, result.inference, score_threshold, mask_threshold, labels)


def coco_array(results: Iterable[Mapping[str, Any]]) -> str:
    """All COCO results as one JSON array, in a stable order (image id, then score, highest first)."""
    ordered = sorted(results, key=lambda r: (str(r["image_id"]), -r["score"], json.dumps(r, sort_keys=True)))
    return "[\n" + ",\n".join(json.dumps(r) for r in ordered) + "\n]" if ordered else "[]"


def parse_args(argv: Sequence[str] | None = None) -> tuple[argparse.Namespace, list[str]]:
    """This pipeline's options, and the rest (Beam's own: --runner, --direct_num_workers, ...)."""
    p = argparse.ArgumentParser(prog=PROG, description="Detect objects in images with the migrated model on "
                                "Apache Beam (RunInference); options it does not know go to Beam.")
    p.add_argument("patterns", nargs="+", help="file patterns of images (photos/*.jpg, gs://bucket/images/*); "
                   f"only names ending in {', '.join(ri.IMAGE_EXTENSIONS)} are read")
    p.add_argument("--output", required=True, metavar="PREFIX",
                   help="output prefix: PREFIX-SSSSS-of-NNNNN.jsonl shards (and PREFIX.coco.json)")
    p.add_argument("--model", metavar="DIR", default=os.path.join(HERE, "saved_model"),
                   help="SavedModel directory, readable by every worker (default: saved_model/ next to this file)")
    p.add_argument("--format", choices=ri.FORMATS, default="jsonl",
                   help="coco: also write PREFIX.coco.json, the COCO results (see run_inference.py --help)")
    p.add_argument("--coco-gt", metavar="FILE", default=None, help="COCO annotations giving the image ids")
    p.add_argument("--label-map", metavar="FILE", default=None, help="class names (label_map.pbtxt)")
    p.add_argument("--score-threshold", type=ri.float_in(0, 1), default=ri.DEFAULT_SCORE_THRESHOLD)
    p.add_argument("--mask-threshold", type=ri.float_in(0, 1), default=ri.DEFAULT_MASK_THRESHOLD)
    p.add_argument("--no-masks", action="store_true", help="do not compute or write masks")
    p.add_argument("--max-side", type=ri.int_in(0, ri.MAX_SIDE), default=ri.DEFAULT_MAX_SIDE)
    p.add_argument("--jpeg-dct", choices=sorted(ri.JPEG_DCT_METHODS), default=ri.DEFAULT_JPEG_DCT)
    p.add_argument("--min-batch-size", type=ri.int_in(1, ri.MAX_BATCH_SIZE), default=DEFAULT_MIN_BATCH,
                   help="smallest batch RunInference forms (Beam's batch_elements_kwargs)")
    p.add_argument("--max-batch-size", type=ri.int_in(1, ri.MAX_BATCH_SIZE), default=DEFAULT_MAX_BATCH,
                   help=f"largest batch (default {DEFAULT_MAX_BATCH}; each image still runs alone at its size)")
    p.add_argument("--threads", type=ri.int_in(0, ri.MAX_THREADS), default=0,
                   help="TensorFlow intra-op threads per worker (0: one per core)")
    p.add_argument("--summary-json", metavar="FILE", default=None,
                   help="write the counts (images, skipped, model loads) and the wall time here")
    args, beam_args = p.parse_known_args(argv)
    if args.min_batch_size > args.max_batch_size:
        p.error(f"--min-batch-size {args.min_batch_size} is above --max-batch-size {args.max_batch_size}")
    if args.coco_gt and args.format != "coco":
        p.error("--coco-gt is only used with --format coco")
    return args, beam_args


def build(pipeline: beam.Pipeline, args: argparse.Namespace) -> None:
    """The pipeline: match files -> read -> decode -> RunInference -> records -> shards (and COCO results)."""
    labels = ri.read_label_map(args.label_map) if args.label_map else None
    image_ids = ri.read_coco_image_ids(args.coco_gt) if args.coco_gt else None
    handler = DetectionModelHandler(args.model, min_batch_size=args.min_batch_size,
                                    max_batch_size=args.max_batch_size, threads=args.threads)
    mask_threshold = None if args.no_masks or ri.MASKS_KEY is None else args.mask_threshold
    score_threshold = args.score_threshold
    files = (pipeline
             | "Patterns" >> beam.Create(list(args.patterns))
             | "Match" >> fileio.MatchAll()
             | "Images only" >> beam.Filter(lambda m: is_image(m.path)))
    if args.format == "coco":
        files = files | "In annotations" >> beam.Filter(lambda m: ri.coco_image_id(m.path, image_ids) is not None)
    records = (files
               | "Read" >> fileio.ReadMatches()
               | "Bytes" >> beam.Map(read_file)
               | "Decode" >> beam.ParDo(DecodeImage(args.max_side, args.jpeg_dct))
               | "RunInference" >> RunInference(KeyedModelHandler(handler))
               | "Records" >> beam.Map(to_record, score_threshold, mask_threshold, labels))
    (records
     | "JSON lines" >> beam.Map(json.dumps)
     | "Write shards" >> beam.io.WriteToText(args.output, file_name_suffix=".jsonl"))
    if args.format == "coco":
        (records
         | "COCO results" >> beam.FlatMap(lambda r: ri.coco_results(r, ri.coco_image_id(r["file"], image_ids)))
         | "All results" >> beam.combiners.ToList()
         | "COCO array" >> beam.Map(coco_array)
         | "Write COCO" >> beam.io.WriteToText(args.output, file_name_suffix=".coco.json", num_shards=1,
                                               shard_name_template=""))


def counts(result: Any) -> dict[str, int]:
    """Images decoded, files skipped and model loads, from the pipeline's metrics (loads: how many times
    RunInference timed a load_model, once per worker process that ran inference)."""
    metrics = result.metrics().query()
    found = {"images": 0, "skipped": 0, "model_loads": 0}
    for counter in metrics["counters"]:
        if counter.key.metric.namespace == NAMESPACE and counter.key.metric.name in found:
            found[counter.key.metric.name] += int(counter.committed or counter.attempted or 0)
    for dist in metrics["distributions"]:
        if dist.key.metric.name.endswith("load_model_latency_milli_secs"):
            data = dist.committed or dist.attempted
            found["model_loads"] += int(data.count) if data is not None else 0
    return found


def main(argv: Sequence[str] | None = None) -> int:
    args, beam_args = parse_args(argv)
    # Worker processes of a local runner (multi_processing) import run_inference from this folder too.
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (HERE, os.environ.get("PYTHONPATH")) if p)
    try:
        if args.label_map:
            ri.read_label_map(args.label_map)
        if args.coco_gt:
            ri.read_coco_image_ids(args.coco_gt)
    except ValueError as e:  # LabelMapError is one
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return ri.EXIT_USAGE
    t0 = time.perf_counter()
    pipeline = beam.Pipeline(options=PipelineOptions(beam_args))
    build(pipeline, args)
    result = pipeline.run()
    result.wait_until_finish()
    wall = time.perf_counter() - t0
    found = counts(result)
    print(f"done: {found['images']} images in {wall:.2f} s, {found['skipped']} skipped (unreadable), "
          f"{found['model_loads']} model load(s)", file=sys.stderr)
    if args.summary_json:
        tmp = f"{args.summary_json}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump({**found, "wall_s": wall}, f, indent=2)
        os.replace(tmp, args.summary_json)  # never half-written
    return ri.EXIT_OK if found["images"] else ri.EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
