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

import itertools
import json
import os
import sys
import time
import traceback
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from oddoctor.leak.sampling import (
    HeapInUse,
    HeapTrimmer,
    NvmlSampler,
    allocator_env,
    host_available_bytes,
    rss_bytes,
)
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


class _SessionCounter:
    created = 0


def _count_sessions(tf: Any) -> Any:
    """Count every TF1 Session constructed in this process, however its class was imported
    (``tf.compat.v1.Session``, ``import tensorflow.compat.v1 as tf; tf.Session``, InteractiveSession)."""
    from tensorflow.python.client import session as tf_session

    base_init = tf_session.BaseSession.__init__

    def counting_init(self: Any, *args: Any, **kwargs: Any) -> None:
        _SessionCounter.created += 1
        base_init(self, *args, **kwargs)

    tf_session.BaseSession.__init__ = counting_init
    return _SessionCounter


FOLDER_POOL = 64  # photos read from --images, then cycled: a long run must not hold thousands decoded
MAX_SIZE_WARMUP = 16  # the warm-up is raised to one pass over the image sizes, to this many images at most


def one_pass(sizes_in_order: Sequence[tuple[int, int]]) -> int:
    """How many images, from the first, it takes to see every distinct size once (at most
    :data:`MAX_SIZE_WARMUP`): the least warm-up, since the first image of a size steps memory up."""
    distinct = set(sizes_in_order)
    seen: set[tuple[int, int]] = set()
    for i, size in enumerate(sizes_in_order):
        seen.add(size)
        if len(seen) == len(distinct):
            return min(i + 1, MAX_SIZE_WARMUP)
    return min(len(sizes_in_order), MAX_SIZE_WARMUP)


def _images(spec: LeakSpec, count: int) -> tuple[Iterator[Any], int, list[tuple[int, int]],
                                                 list[tuple[str, str]], int]:
    """(the ``count`` images in order, how many distinct, their sizes, skipped files, :func:`one_pass`).

    Synthetic images are made one at a time, just before their turn (``-n`` in the millions must not build
    them all first); a folder's first :data:`FOLDER_POOL` readable photos are read up front and cycled.
    """
    from oddoctor_legacy_tf1.images import DEFAULT_SIZES, ImageError, iter_synthetic_images, load_image_dir

    if not spec.images:
        sizes = sorted({DEFAULT_SIZES[i % len(DEFAULT_SIZES)] for i in range(min(count, len(DEFAULT_SIZES)))})
        return (iter_synthetic_images(count, seed=spec.seed), count, sizes, [],
                one_pass(DEFAULT_SIZES[:min(count, len(DEFAULT_SIZES))]))
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
    passes = one_pass([(int(a.shape[0]), int(a.shape[1])) for a in pool])
    return (pool[i % len(pool)] for i in range(count)), len(pool), sizes, skipped, passes


class _InputError(Exception):
    pass


def _pick_reframe(choice: str) -> tuple[Any, str, str | None]:
    """(reframe_box_masks_to_image_masks, "od_api" or "oddoctor", why not the OD API's) for the legacy loop.

    The OD API's own ``utils_ops`` needs ``odapi.shims.prepare()`` first, which switches this process to
    TF1 behaviour; a leak-test child is exactly the kind of process it is meant for.
    """
    from oddoctor_legacy_tf1.reframe import reframe_box_masks_to_image_masks

    if choice == "oddoctor":
        return reframe_box_masks_to_image_masks, "oddoctor", "--reframe oddoctor"
    import importlib.util

    if importlib.util.find_spec("object_detection") is None:  # before prepare(): it would switch to TF1 anyway
        from oddoctor_legacy_tf1.odapi import INSTALL_HINT

        why = f"the OD API is not installed (`{INSTALL_HINT}`)"
        if choice == "od_api":
            raise _InputError(f"--reframe od_api: {why}")
        return reframe_box_masks_to_image_masks, "oddoctor", why
    try:
        from oddoctor_legacy_tf1.odapi import shims

        shims.prepare(None)
        from object_detection.utils import ops as utils_ops  # type: ignore[import-not-found]

        return utils_ops.reframe_box_masks_to_image_masks, "od_api", None
    except Exception as e:  # noqa: BLE001 - any failure means: not importable here, say why
        why = f"the OD API is not importable ({type(e).__name__}: {e})"
    if choice == "od_api":
        from oddoctor_legacy_tf1.odapi import INSTALL_HINT

        raise _InputError(f"--reframe od_api: {why}; run `{INSTALL_HINT}`")
    return reframe_box_masks_to_image_masks, "oddoctor", why


def _prepare_odapi_quietly() -> None:
    """Let a user's tutorial copy ``from object_detection.utils import ops`` unchanged, when the OD API is here."""
    try:
        from oddoctor_legacy_tf1.odapi import shims

        shims.prepare(None)
    except Exception:  # noqa: BLE001 - best effort: the user's own import error will say what is missing
        pass


def run(spec: LeakSpec) -> int:
    """Run the spec; return the process exit code (0 done, 2 input error, 1 failure)."""
    import numpy as np

    from oddoctor.leak.decide import may_stop

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    mode = spec.mode
    reframe_fn, reframe_used, reframe_why = None, None, None
    try:
        if mode == "legacy" and spec.entry is None:
            reframe_fn, reframe_used, reframe_why = _pick_reframe(spec.reframe)
        elif mode == "legacy" and os.environ.get("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION") == "python":
            _prepare_odapi_quietly()
    except _InputError as e:
        emit("error", kind="input", message=str(e))
        return 2
    import tensorflow as tf

    from oddoctor_legacy_tf1._tfutil import quiet_deprecations
    from oddoctor_legacy_tf1.detector import LegacyDetector, session_config
    from oddoctor_legacy_tf1.graph_io import ModelError, image_input_problem, load_model, placeholder_shape
    from oddoctor_legacy_tf1.names import INPUT_TENSOR, MASKS, NUM_DETECTIONS
    from oddoctor_legacy_tf1.tutorial import load_detection_graph, run_inference_for_single_image

    iterations, warmup = spec.iterations, spec.warmup
    warmup_why = None
    try:
        model_path = Path(spec.model or "")
        if spec.demo and not model_path.exists():
            from oddoctor_legacy_tf1.model import build_model

            build_model(model_path, seed=spec.seed)
        model = load_model(model_path)
        problem = image_input_problem(placeholder_shape(model.graph_def, INPUT_TENSOR))
        if problem:
            raise ModelError(f"{model.path}: input {INPUT_TENSOR} {problem}")
        images, distinct, sizes, skipped, size_pass = _images(spec, warmup + iterations + MAX_SIZE_WARMUP)
        if size_pass > warmup:  # the first image of each size steps memory up: keep those steps out
            warmup_why = (f"warm-up raised from {warmup} to {size_pass}: one pass over the "
                          f"{len(sizes)} image sizes, whose first images step memory up")
            warmup = size_pass
        images = itertools.islice(images, warmup + iterations)
    except (ModelError, _InputError) as e:
        emit("error", kind="input", message=str(e))
        return 2

    sessions = _count_sessions(tf)
    user_fn = None
    if spec.entry is not None and mode == "legacy":
        from oddoctor.leak.entry import EntryError, load_entry

        try:  # after _count_sessions: a `from tensorflow.compat.v1 import Session` in it gets the counted one
            user_fn = load_entry(spec.entry)
        except EntryError as e:
            emit("error", kind="input", message=str(e), traceback=e.traceback)
            return 2
    nvml = NvmlSampler()
    trimmer = HeapTrimmer() if spec.malloc_trim else None  # its trim() does nothing where unavailable
    rss_read = ("as it is" if trimmer is None else "after malloc_trim(0)" if trimmer.available
                else f"as it is ({trimmer.reason})")
    heap = HeapInUse()
    tf_gpu, tf_gpu_reason = _tf_gpu_sampler(tf)
    config = session_config(allow_growth=spec.allow_growth, memory_fraction=spec.memory_fraction)
    emit("start", mode=mode, pid=os.getpid(), model=str(model.path), model_kind=model.kind,
         model_nodes=model.node_count, has_masks=model.has_masks, images=distinct, image_sizes=sizes,
         skipped=skipped,
         tf_version=tf.__version__, nvml=nvml.reason or "ok", tf_allocator=tf_gpu_reason or "ok",
         host_available_bytes=host_available_bytes(), gpu_free_bytes=nvml.free_bytes(),
         reframe=reframe_used if model.has_masks else None, reframe_why=reframe_why if model.has_masks else None,
         entry=spec.entry if user_fn is not None else None,
         entry_call=user_fn.call_form if user_fn is not None else None, until_decided=spec.until_decided,
         warmup=warmup, warmup_why=warmup_why, rss_read=rss_read,
         malloc_env=allocator_env(), heap_in_use=heap.reason or "mallinfo2")

    detector = None
    graph = None
    samples: list[dict[str, Any]] = []
    stopped = "max-images"
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
                elif user_fn is not None:
                    try:
                        out = user_fn(image, graph)
                    except Exception as e:  # the user's code: failing on the first image is bad input
                        if i == 0:
                            from oddoctor.leak.entry import describe_failure

                            message, tail = describe_failure(spec.entry or "", e)
                            emit("error", kind="input", message=message, traceback=tail)
                            return 2
                        raise
                else:
                    out = run_inference_for_single_image(image, graph, config=config, reframe=reframe_fn)
                latency_ms = (time.perf_counter() - t0) * 1000.0
                if trimmer is not None:
                    trimmer.trim()  # after the clock stops: the latency is the loop's alone
                record = {"i": i, "warmup": i < warmup, "latency_ms": round(latency_ms, 3),
                          "graph_nodes": _graph_ops(tf, graph), "rss_bytes": rss_bytes(),
                          "heap_in_use_bytes": heap.bytes(),
                          "gpu_nvml_bytes": nvml.used_bytes(), "gpu_tf_bytes": tf_gpu() if tf_gpu else None,
                          "sessions": sessions.created, "height": int(image.shape[0]),
                          "width": int(image.shape[1]), **_outputs_facts(out, np, MASKS, NUM_DETECTIONS)}
                if user_fn is not None:
                    record["default_graph_nodes"] = len(tf.compat.v1.get_default_graph().get_operations())
                emit("iter", **record)
                samples.append(record)
                if spec.until_decided and i >= warmup and may_stop(samples).stop:
                    stopped = "decided"
                    break
        finally:
            if detector is not None:
                detector.close()
    emit("done", sessions=sessions.created, nvml=nvml.reason or "ok",
         host_available_bytes=host_available_bytes(), gpu_free_bytes=nvml.free_bytes(), stopped=stopped,
         until_decided=spec.until_decided, images_run=len(samples))
    nvml.close()
    return 0


def _graph_ops(tf: Any, graph: Any) -> int:
    """Ops in the model's graph, plus the default graph's when that is another graph (a user's loop may add
    ops to either)."""
    count = len(graph.get_operations())
    default = tf.compat.v1.get_default_graph()
    if default is not graph:
        count += len(default.get_operations())
    return count


def _outputs_facts(out: Any, np: Any, masks_key: str, count_key: str) -> dict[str, Any]:
    """Detections and mask pixels of one output dict, or None each when a user's function returns other things."""
    if not isinstance(out, dict):
        return {"num_detections": None, "mask_pixels": None}
    try:
        count = int(np.asarray(out[count_key]).reshape(-1)[0]) if count_key in out else None
    except (TypeError, ValueError, IndexError):
        count = None
    masks = out.get(masks_key)
    try:
        pixels = int(np.count_nonzero(masks)) if masks is not None else None
    except (TypeError, ValueError):
        pixels = None
    return {"num_detections": count, "mask_pixels": pixels}


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
    from oddoctor.childproc import exit_now

    exit_now(main())
