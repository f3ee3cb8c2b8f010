"""Child process of ``oddoctor leak-test``: run ONE inference loop and stream per-iteration samples.

Usage: ``python -m oddoctor.leak.child SPEC.json``, started by :mod:`oddoctor.leak.spawn`. Each mode runs
in a fresh process so one mode's leftovers (graph, allocator pools, sessions) cannot pollute the other.
Events go to stdout as JSON lines (``start``, ``iter``, ``done`` or ``error``); TensorFlow's own logging
stays on stderr.

The spec file is a :class:`~oddoctor.leak.spec.LeakSpec` (``to_dict``) with ``mode`` "legacy" (the
tutorial's loop, :mod:`oddoctor_legacy_tf1.tutorial`) or "fixed" (:class:`oddoctor_legacy_tf1.LegacyDetector`)
and ``model`` set; with ``demo`` the synthetic model is built at ``model`` first if it is missing.
Memory is read with :mod:`oddoctor.leak.sampling`, as the in-process measurement does.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from oddoctor.leak.sampling import NvmlSampler, host_available_bytes, rss_bytes
from oddoctor.leak.spec import MODES, LeakSpec, LeakSpecError

_OUT = sys.stdout


def emit(event: str, **data: Any) -> None:
    """One JSON line on the event stream."""
    _OUT.write(json.dumps({"event": event, **data}, default=str) + "\n")
    _OUT.flush()


def _tf_gpu_sampler(tf: Any) -> tuple[Any, str | None]:
    """TensorFlow's own allocator stats for GPU:0 as a callable, or (None, why not)."""
    try:
        gpus = tf.config.list_physical_devices("GPU")
    except Exception as e:  # noqa: BLE001 - device listing can fail on broken CUDA setups
        return None, f"cannot list GPUs ({type(e).__name__}: {e})"
    if not gpus:
        return None, "TensorFlow sees no GPU"

    def sample() -> int | None:
        try:
            return int(tf.config.experimental.get_memory_info("GPU:0")["current"])
        except Exception:  # noqa: BLE001 - experimental API; absent stats are "unknown"
            return None

    return sample, None


def _count_sessions(tf: Any) -> Any:
    """Wrap tf.compat.v1.Session so both patterns' Session constructions are counted."""
    base = tf.compat.v1.Session

    class CountingSession(base):  # type: ignore[misc, valid-type]
        created = 0

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            type(self).created += 1
            super().__init__(*args, **kwargs)

    tf.compat.v1.Session = CountingSession
    return CountingSession


FOLDER_POOL = 64  # photos read from --images, then cycled: a long run must not hold thousands decoded


def _images(spec: LeakSpec, count: int) -> tuple[Iterator[Any], int, list[tuple[int, int]],
                                                 list[tuple[str, str]]]:
    """(the ``count`` images in order, how many distinct, their sizes, skipped files).

    Synthetic images are made one at a time, just before their turn (``-n`` in the millions must not build
    them all first); a folder's first :data:`FOLDER_POOL` readable photos are read up front and cycled.
    """
    from oddoctor_legacy_tf1.images import DEFAULT_SIZES, ImageError, iter_synthetic_images, load_image_dir

    if not spec.images:
        sizes = sorted({DEFAULT_SIZES[i % len(DEFAULT_SIZES)] for i in range(min(count, len(DEFAULT_SIZES)))})
        return iter_synthetic_images(count, seed=spec.seed), count, sizes, []
    try:
        folder = load_image_dir(spec.images, limit=min(count, FOLDER_POOL))
    except ImageError as e:
        raise _InputError(str(e)) from None
    skipped = [(str(f), why) for f, why in folder.skipped]
    if not folder.images:
        raise _InputError(f"{spec.images}: no readable jpg/png images "
                          f"({len(folder.skipped)} skipped)")
    pool = folder.images
    sizes = sorted({(int(a.shape[0]), int(a.shape[1])) for a in pool})
    return (pool[i % len(pool)] for i in range(count)), len(pool), sizes, skipped


class _InputError(Exception):
    pass


def run(spec: LeakSpec) -> int:
    """Run the spec; return the process exit code (0 done, 2 input error, 1 failure)."""
    import numpy as np

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    from oddoctor_legacy_tf1._tfutil import quiet_deprecations
    from oddoctor_legacy_tf1.detector import LegacyDetector, session_config
    from oddoctor_legacy_tf1.graph_io import ModelError, image_input_problem, load_model, placeholder_shape
    from oddoctor_legacy_tf1.names import INPUT_TENSOR, MASKS, NUM_DETECTIONS
    from oddoctor_legacy_tf1.tutorial import load_detection_graph, run_inference_for_single_image

    mode = spec.mode
    iterations, warmup = spec.iterations, spec.warmup
    try:
        model_path = Path(spec.model or "")
        if spec.demo and not model_path.exists():
            from oddoctor_legacy_tf1.model import build_model

            build_model(model_path, seed=spec.seed)
        model = load_model(model_path)
        problem = image_input_problem(placeholder_shape(model.graph_def, INPUT_TENSOR))
        if problem:
            raise ModelError(f"{model.path}: input {INPUT_TENSOR} {problem}")
        images, distinct, sizes, skipped = _images(spec, warmup + iterations)
    except (ModelError, _InputError) as e:
        emit("error", kind="input", message=str(e))
        return 2

    sessions = _count_sessions(tf)
    nvml = NvmlSampler()
    tf_gpu, tf_gpu_reason = _tf_gpu_sampler(tf)
    config = session_config(allow_growth=spec.allow_growth, memory_fraction=spec.memory_fraction)
    emit("start", mode=mode, pid=os.getpid(), model=str(model.path), model_kind=model.kind,
         model_nodes=model.node_count, has_masks=model.has_masks, images=distinct, image_sizes=sizes,
         skipped=skipped,
         tf_version=tf.__version__, nvml=nvml.reason or "ok", tf_allocator=tf_gpu_reason or "ok",
         host_available_bytes=host_available_bytes(), gpu_free_bytes=nvml.free_bytes())

    detector = None
    graph = None
    with quiet_deprecations(tf):
        try:
            if mode == "legacy":
                graph = load_detection_graph(model)
            else:
                detector = LegacyDetector(model, allow_growth=spec.allow_growth, memory_fraction=spec.memory_fraction)
                graph = detector.graph
        except ModelError as e:  # a GraphDef that parses but does not import (an op this TF lacks, a bad edge)
            emit("error", kind="input", message=str(e))
            return 2
        try:
            for i, image in enumerate(images):
                t0 = time.perf_counter()
                if detector is not None:
                    out = detector(image)
                else:
                    out = run_inference_for_single_image(image, graph, config=config)
                latency_ms = (time.perf_counter() - t0) * 1000.0
                masks = out.get(MASKS)
                emit("iter", i=i, warmup=i < warmup, latency_ms=round(latency_ms, 3),
                     graph_nodes=len(graph.get_operations()), rss_bytes=rss_bytes(),
                     gpu_nvml_bytes=nvml.used_bytes(), gpu_tf_bytes=tf_gpu() if tf_gpu else None,
                     sessions=sessions.created, height=int(image.shape[0]), width=int(image.shape[1]),
                     num_detections=int(out[NUM_DETECTIONS]),
                     mask_pixels=int(np.count_nonzero(masks)) if masks is not None else None)
        finally:
            if detector is not None:
                detector.close()
    emit("done", sessions=sessions.created, nvml=nvml.reason or "ok",
         host_available_bytes=host_available_bytes(), gpu_free_bytes=nvml.free_bytes())
    nvml.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point: read the spec file, run, report any crash as an ``error`` event."""
    argv = sys.argv[1:] if argv is None else argv
    try:
        spec = LeakSpec.from_dict(json.loads(Path(argv[0]).read_text(encoding="utf-8")))
        if spec.mode not in MODES or not spec.model:
            raise LeakSpecError(f"leak spec: a child runs one mode ({', '.join(MODES)}) on one model, "
                                f"not mode={spec.mode!r} model={spec.model!r}")
    except (IndexError, OSError, ValueError) as e:  # LeakSpecError is a ValueError
        emit("error", kind="runtime", message=f"bad spec: {e}")
        return 1
    try:
        return run(spec)
    except MemoryError:
        emit("error", kind="oom", message="MemoryError: the process ran out of memory")
        return 1
    except Exception as e:  # noqa: BLE001 - reported to the parent as one line plus a traceback tail
        tail = traceback.format_exc().strip().splitlines()[-6:]
        from oddoctor_legacy_tf1.graph_io import one_line

        emit("error", kind="runtime", message=one_line(f"{type(e).__name__}: {e}"), traceback=tail)
        return 1


if __name__ == "__main__":
    sys.exit(main())
