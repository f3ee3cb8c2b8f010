"""Child entry: build and export the OD API's own TF1 Mask R-CNN Inception v2 with seeded random weights.

``python -m oddoctor_legacy_tf1.odapi.build --out DIR --size N --seed S [--site SITE]``

Run by ``oddoctor_legacy_tf1.odapi.ensure_model`` in a child process (it switches TensorFlow to TF1
behaviour for the whole process). Steps, all with the OD API's own code:

1. the pipeline config (``mask_rcnn_inception_v2_coco.config.tmpl``, resizer ``min_dimension=size``);
2. ``exporter.export_inference_graph("image_tensor", ...)`` into ``DIR``, in a graph with
   ``tf.compat.v1.set_random_seed(seed)``. It builds the model with ``model_builder.build(...,
   is_training=False)`` and the graph with ``build_detection_graph``; at its profiling hook the
   variables' own initializers (those the config names: truncated normal, variance scaling; slim's
   for Inception v2) are run and saved as the checkpoint it then freezes. It writes
   ``frozen_inference_graph.pb``, ``saved_model/`` and ``pipeline.config``, as the model zoo tarballs
   had them; its re-saved copy of the checkpoint (``model.ckpt.*``) is skipped.

Determinism: TF1 op-level seeds are derived from the graph seed and each op's creation index, and the
OD API builds the same graph in the same order, so the same (size, seed) gives the same weights and,
with the exporter's own serialization, byte-identical ``frozen_inference_graph.pb`` (and
``saved_model.pb``) files: checked by ``tests/test_odapi_model.py``, on one machine and TF version.
The weights are drawn on the CPU (``CUDA_VISIBLE_DEVICES=-1``): TF's GPU kernels draw other numbers.
``DIR/model.json`` records what was built.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import time
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any, Optional

from oddoctor_legacy_tf1.names import INPUT_NAME, OUTPUT_NAMES
from oddoctor_legacy_tf1.odapi import FROZEN_GRAPH, MODEL_JSON, MODEL_NAME, shims

_START = time.perf_counter()

CONFIG_TEMPLATE = "mask_rcnn_inception_v2_coco.config.tmpl"
# The sample's resizer is 800/1365; max keeps that ratio for any min.
SAMPLE_MIN_DIMENSION, SAMPLE_MAX_DIMENSION = 800, 1365
INPUT_TYPE = INPUT_NAME  # the exporter's input_type is also the placeholder's name
# What exporter.add_output_tensor_nodes also adds to a Faster/Mask R-CNN export since 2019 (the 2018
# model zoo graphs did not have them).
EXTRA_OUTPUT_NAMES = ("raw_detection_boxes", "raw_detection_scores", "detection_multiclass_scores",
                      "detection_features")


def max_dimension(size: int) -> int:
    """The resizer's max dimension for a min dimension of ``size``, in the sample's 800:1365 ratio."""
    return round(size * SAMPLE_MAX_DIMENSION / SAMPLE_MIN_DIMENSION)


def config_text(size: int) -> str:
    """The pipeline config, as protobuf text, for a resizer min dimension of ``size``."""
    if size < 32:
        raise ValueError(f"size {size} too small: the Inception v2 trunk has stride 16 and a 14x14 ROI crop")
    template = resources.files(__package__).joinpath(CONFIG_TEMPLATE).read_text(encoding="utf-8")
    return Template(template).substitute(min_dimension=size, max_dimension=max_dimension(size))


def build(out: Path, *, size: int, seed: int, site: Optional[Path] = None) -> dict[str, Any]:
    """Build, initialise and export the model into ``out`` (created); return what ``model.json`` says."""
    shims.prepare(site)
    import tensorflow as tf
    from google.protobuf import text_format
    from object_detection import exporter
    from object_detection.protos import pipeline_pb2

    tf1 = tf.compat.v1
    config = pipeline_pb2.TrainEvalPipelineConfig()
    text_format.Merge(config_text(size), config)

    out.mkdir(parents=True, exist_ok=True)
    ckpt_prefix = out / ".init" / "model.ckpt"

    def initialise_and_save(graph: Any) -> None:
        # Runs where the exporter calls profile_inference_graph: right after it has built the
        # detection graph, before it restores `ckpt_prefix` into it and freezes it.
        with graph.as_default():
            init = tf1.global_variables_initializer()
            saver = tf1.train.Saver(tf1.global_variables(), name="oddoctor_init_saver")
        with tf1.Session(graph=graph) as sess:
            sess.run(init)
            saver.save(sess, str(ckpt_prefix), write_meta_graph=False)

    # profile_inference_graph prints a parameter/FLOP table with tensorflow.contrib.tfprof, which TF2
    # does not have (NameError: contrib_tfprof); replaced by the seeded initialisation above.
    exporter.profile_inference_graph = initialise_and_save
    # write_graph_and_checkpoint restores the checkpoint and saves it again as DIR/model.ckpt (17 s
    # of the build on 2 cores); the frozen graph and SavedModel are made from the checkpoint itself.
    exporter.write_graph_and_checkpoint = lambda **kwargs: None
    with tf.Graph().as_default():
        tf1.set_random_seed(seed)
        exporter.export_inference_graph(INPUT_TYPE, config, str(ckpt_prefix), str(out))
    shutil.rmtree(ckpt_prefix.parent)

    info = describe(out / FROZEN_GRAPH, size=size, seed=seed)
    (out / MODEL_JSON).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return info


def describe(frozen: Path, *, size: int, seed: int) -> dict[str, Any]:
    """``model.json``: what was built, from what, how long it took and how much memory."""
    import tensorflow as tf

    data = frozen.read_bytes()
    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(data)
    names = {node.name for node in graph_def.node}
    return {
        "model": MODEL_NAME,
        "size": size,
        "max_dimension": max_dimension(size),
        "seed": seed,
        "nodes": len(graph_def.node),
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "input": f"{INPUT_TYPE}:0",
        "outputs": [f"{n}:0" for n in OUTPUT_NAMES if n in names],
        "extra_outputs": [f"{n}:0" for n in EXTRA_OUTPUT_NAMES if n in names],
        "odapi_version": _version("tf-models-research-object-detection"),
        "tf_slim_version": _version("tf-slim"),
        "tf_keras_version": _version("tf-keras"),
        "tf_version": tf.__version__,
        "python": sys.version.split()[0],
        "build_seconds": round(time.perf_counter() - _START, 1),
        "peak_rss_mb": _peak_rss_mb(),
    }


def _version(dist: str) -> Optional[str]:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _peak_rss_mb() -> Optional[float]:
    try:
        import resource
    except ImportError:  # Windows
        return None
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return round(kb / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


def main(argv: Optional[list[str]] = None) -> int:
    """Parse the arguments and build; exit 0 and print model.json on success."""
    parser = argparse.ArgumentParser(prog="python -m oddoctor_legacy_tf1.odapi.build",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="directory to export into (created)")
    parser.add_argument("--size", type=int, default=300, help="resizer min dimension (sample: 800)")
    parser.add_argument("--seed", type=int, default=0, help="graph-level random seed of the initial weights")
    parser.add_argument("--site", type=Path, default=None, help="pip --target folder holding the OD API")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    # TF's random ops draw other numbers on a GPU: the weights are drawn on the CPU so that a machine
    # with a GPU builds the same frozen graph for a seed (the export clears device placements anyway).
    os.environ["CUDA_VISIBLE_DEVICES"] = "-1"
    info = build(args.out, size=args.size, seed=args.seed, site=args.site)
    print(json.dumps(info, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
