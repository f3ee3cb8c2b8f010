"""The migration as one call: plan, convert, prove parity, emit the runner, commit atomically."""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import math
import os
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Callable, Optional

from oddoctor import __version__
from oddoctor.migrate.convert import MigrateInputError
from oddoctor.migrate.emit import BEAM_FILE, RUNNER_FILE, RunnerSpec, beam_source, render_readme, render_runner
from oddoctor.migrate.outdir import OutputDirError, StagedDir, check_output_dir
from oddoctor_legacy_tf1.graph_io import one_line
from oddoctor_legacy_tf1.names import MASKS

SCHEMA_VERSION = 1
DEFAULT_TOLERANCE = 1e-4
MAX_TOLERANCE = 1.0  # scores and box coordinates live in [0, 1]: past 1 the parity check proves nothing
DEFAULT_PARITY_IMAGES = 4
MAX_PARITY_IMAGES = 64  # of an --images folder: a folder of 10,000 photos must not all be decoded into memory
DEFAULT_TF_TIMEOUT_S = 60.0


class TensorFlowUnusable(Exception):
    """TensorFlow does not import here (raises, crashes or hangs in a child): nothing was done (exit 1)."""


def tensorflow_preflight(timeout_s: float = DEFAULT_TF_TIMEOUT_S,
                         progress: Callable[[str], None] = lambda _msg: None) -> None:
    """Import TensorFlow in a child first (``oddoctor check``'s probe), so that a TensorFlow that aborts,
    segfaults or hangs on import fails this command with a message instead of killing or hanging it.

    :class:`MigrateInputError` when TensorFlow is not installed, :class:`TensorFlowUnusable` when it does not
    import. Free when this process has imported TensorFlow already (it evidently imports).
    """
    import importlib.util

    if "tensorflow" in sys.modules:
        return
    if importlib.util.find_spec("tensorflow") is None:
        raise MigrateInputError("migrate needs TensorFlow in this Python: pip install 'oddoctor[tf]'")
    from oddoctor.probes.tensorflow import probe_tensorflow

    progress("checking that TensorFlow imports (in a child process)")
    facts = probe_tensorflow(timeout_s=timeout_s)
    outcome = facts.probe
    assert outcome is not None
    died = bool(outcome.timed_out or outcome.signal or outcome.exit_code not in (0, 3, None))
    # Dying after the devices were listed (importing object_detection) does not concern migrate.
    if facts.importable and not (died and facts.gpus is None):
        return
    what = outcome.error or "TensorFlow did not import"
    if died and not outcome.timed_out:
        last = next((ln.strip() for ln in reversed(outcome.stderr_tail) if ln.strip()), "")
        if last:
            what += f" (its last words: {one_line(last, 200)})"
    raise TensorFlowUnusable(f"TensorFlow cannot be used here: {what}; nothing was written. "
                             "Run `oddoctor check` for the diagnosis")


class ParityError(Exception):
    """The migrated model's outputs differ from the legacy graph's beyond the tolerance (exit 1)."""

    def __init__(self, message: str, report: dict[str, Any]) -> None:
        super().__init__(message)
        self.report = report


def source_digest(path: Path) -> Optional[str]:
    """sha256 of a frozen graph; of a SavedModel directory, over every regular file in it, sorted by relative
    path (each as ``path NUL size NUL bytes``), so the same export gives the same digest wherever it lies.
    None for anything else (the model was refused before this is asked)."""
    h = hashlib.sha256()
    if path.is_file():
        files = [(path, "")]
    elif path.is_dir():
        files = sorted(((f, f.relative_to(path).as_posix()) for f in path.rglob("*") if f.is_file()),
                       key=lambda item: item[1])
    else:
        return None
    for f, rel in files:
        if rel:
            h.update(f"{rel}\0{f.stat().st_size}\0".encode())
        with f.open("rb") as fh:
            while chunk := fh.read(1 << 20):
                h.update(chunk)
    return h.hexdigest()


@contextlib.contextmanager
def _stderr_kept(lines: list[str], enabled: bool = True) -> Iterator[None]:
    """File descriptor 2 into a temporary file while the block runs; its lines appended to ``lines``.

    TensorFlow 2.21 writes its first log lines ("oneDNN custom operations are on", "Could not find cuda
    drivers") from C++ before its log settings are read, whatever TF_CPP_MIN_LOG_LEVEL says: only the file
    descriptor can keep them off the terminal. They are kept for the report (``tensorflow_log``)."""
    import tempfile

    if not enabled:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            lines.extend(ln.rstrip() for ln in tmp.read().decode("utf-8", "replace").splitlines() if ln.strip())


def _quiet_cpu_only_logs() -> None:
    """No "failed call to cuInit (303)" line on a machine without an NVIDIA device node (the emitted runner's
    rule, :func:`oddoctor.migrate.run_inference.tf_log_floor`; ``oddoctor check`` diagnoses a missing driver)."""
    from oddoctor.migrate.run_inference import tf_log_floor

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", tf_log_floor())


@contextlib.contextmanager
def _model_errors(tf: Any, source: Path, doing: str) -> Iterator[None]:
    """TensorFlow's complaints about the model (an op that fails on an image, a graph it cannot prune) are
    input errors naming the file, not internal errors."""
    try:
        yield
    except (ValueError, tf.errors.OpError) as e:
        raise MigrateInputError(f"{source}: {doing}: {one_line(f'{type(e).__name__}: {e}')}") from None


def parity_images(images_dir: Optional[Path], count: int = DEFAULT_PARITY_IMAGES) -> tuple[list[Any], list[str],
                                                                                            list[str]]:
    """(images, names, skipped) for the parity check: a folder's first 64 readable jpg/png, or seeded
    synthetic ones."""
    from oddoctor_legacy_tf1 import images as legacy_images

    if images_dir is None:
        imgs = legacy_images.synthetic_images(count, seed=0)
        return imgs, [f"synthetic-{i}-{im.shape[0]}x{im.shape[1]}" for i, im in enumerate(imgs)], []
    try:
        folder = legacy_images.load_image_dir(images_dir, limit=MAX_PARITY_IMAGES)
    except legacy_images.ImageError as e:
        raise MigrateInputError(f"--images: {e}") from None
    if not folder.images:
        raise MigrateInputError(f"--images {images_dir}: no readable jpg/png images"
                                + (f" ({len(folder.skipped)} skipped)" if folder.skipped else ""))
    return folder.images, [f.name for f in folder.files], [f"{f.name}: {why}" for f, why in folder.skipped]


def migrate(
    model: Path,
    out: Path,
    *,
    force: bool = False,
    input_name: Optional[str] = None,
    outputs: Optional[Mapping[str, str]] = None,
    images_dir: Optional[Path] = None,
    tolerance: float = DEFAULT_TOLERANCE,
    progress: Callable[[str], None] = lambda _msg: None,
    tf_timeout: float = DEFAULT_TF_TIMEOUT_S,
    quiet_tf: bool = True,
) -> dict[str, Any]:
    """Migrate ``model`` into ``out``; return the migration report (also written as migration.json).

    ``quiet_tf``: TensorFlow's own log lines at its import are kept off the terminal (in the report's
    ``tensorflow_log`` instead); False lets them through (``oddoctor migrate --verbose``).

    Raises :class:`MigrateInputError` or :class:`OutputDirError` for bad input, :class:`TensorFlowUnusable`
    when TensorFlow does not import (both before anything is written) and :class:`ParityError` when the
    outputs differ; in every case ``out`` is untouched and no folder this created is left.
    """
    from oddoctor_legacy_tf1.graph_io import ModelError, resolve_model

    model, out = Path(model), Path(out)
    if not (math.isfinite(tolerance) and 0 <= tolerance <= MAX_TOLERANCE):
        raise MigrateInputError(f"--tolerance {tolerance}: give a number from 0 to {MAX_TOLERANCE:g}")
    try:
        resolve_model(model)  # without TensorFlow: a FIFO or a device is refused before anything blocks
    except ModelError as e:
        raise MigrateInputError(str(e)) from None
    check_output_dir(out, force, protect=(model,))
    tensorflow_preflight(tf_timeout, progress)
    _quiet_cpu_only_logs()
    progress("loading TensorFlow")
    tf_log: list[str] = []
    with _stderr_kept(tf_log, enabled=quiet_tf and "tensorflow" not in sys.modules):
        import tensorflow as tf

    from oddoctor.migrate import convert

    progress(f"reading {model}")
    p = convert.plan(model, input_name, outputs)
    images, names, skipped = parity_images(images_dir)
    progress(f"mapped {p.input.tensor} -> {p.input.key}; outputs: "
             + ", ".join(f"{o.tensor} -> {o.key}" for o in p.outputs))
    with StagedDir(out, force=force, protect=(model,)) as staged:
        assert staged.path is not None
        sm_dir = staged.path / "saved_model"
        progress("converting: wrap_function over the GraphDef, prune, tf.saved_model.save")
        with _model_errors(tf, p.source, "cannot convert"):
            convert.save_saved_model(p, sm_dir)
        progress(f"parity: legacy TF1 Session vs SavedModel on {len(images)} image(s)")
        with _model_errors(tf, p.source, "the legacy graph fails on the parity images"):
            reference = convert.run_legacy(p, images)
        with _model_errors(tf, p.source, "the migrated SavedModel fails on the parity images"):
            migrated = convert.run_migrated(sm_dir, images)
        parity = convert.compare(reference, migrated, tolerance)
        parity["image_names"] = names
        parity["skipped_images"] = skipped
        report = {
            "schema_version": SCHEMA_VERSION,
            "oddoctor_version": __version__,
            "tensorflow_version": tf.__version__,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "source": {"path": str(model), "resolved": str(Path(p.source).resolve()), "kind": p.kind,
                       "sha256": source_digest(p.source)},
            "out": str(out),
            "saved_model": "saved_model",
            "signature": "serving_default",
            "input": p.input.to_dict(),
            "outputs": [o.to_dict() for o in p.outputs],
            "batch_one": p.batch_one,
            "parity": parity,
            "runner": RUNNER_FILE,
            "beam_pipeline": BEAM_FILE,
            "tensorflow_log": tf_log,
        }
        for key, diff in parity["max_abs_diff"].items():
            progress(f"  {key:<20} max abs diff {'n/a (shape differs)' if diff is None else f'{diff:.3g}'}")
        if not parity["passed"]:
            numeric = {k: v for k, v in parity["max_abs_diff"].items() if v is not None}
            worst = max(numeric.items(), key=lambda kv: kv[1], default=("?", 0.0))
            why = "; ".join(parity["problems"][:3]) or f"{worst[0]} differs by {worst[1]:.3g}"
            raise ParityError(f"parity check failed: {why} > tolerance {tolerance:g}; nothing written",
                              report)
        spec = RunnerSpec(
            source_model=str(model),
            source_input=p.input.tensor,
            source_outputs=p.output_map(),
            oddoctor_version=__version__,
            masks_key=MASKS if any(o.key == MASKS for o in p.outputs) else None,
        )
        runner = render_runner(spec)
        (staged.path / RUNNER_FILE).write_text(runner, encoding="utf-8")
        (staged.path / BEAM_FILE).write_text(beam_source(), encoding="utf-8")
        (staged.path / "README.md").write_text(render_readme(spec, parity, tf.__version__), encoding="utf-8")
        (staged.path / "migration.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        staged.commit()
    progress(f"wrote {out}/ (saved_model/, {RUNNER_FILE}, {BEAM_FILE}, README.md, migration.json)")
    return report


__all__ = ["DEFAULT_TF_TIMEOUT_S", "DEFAULT_TOLERANCE", "MigrateInputError", "OutputDirError", "ParityError",
           "TensorFlowUnusable", "migrate", "tensorflow_preflight"]
