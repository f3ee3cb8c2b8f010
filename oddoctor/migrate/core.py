"""The migration as one call: plan, convert, prove parity, emit the runner, commit atomically."""

from __future__ import annotations

import datetime
import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Callable, Optional

from oddoctor import __version__
from oddoctor.migrate.convert import MigrateInputError
from oddoctor.migrate.emit import RunnerSpec, render_readme, render_runner
from oddoctor.migrate.outdir import OutputDirError, StagedDir, check_output_dir

SCHEMA_VERSION = 1
DEFAULT_TOLERANCE = 1e-4
DEFAULT_PARITY_IMAGES = 4


class ParityError(Exception):
    """The migrated model's outputs differ from the legacy graph's beyond the tolerance (exit 1)."""

    def __init__(self, message: str, report: dict[str, Any]) -> None:
        super().__init__(message)
        self.report = report


def _sha256(path: Path) -> Optional[str]:
    if not path.is_file():
        return None
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def parity_images(images_dir: Optional[Path], count: int = DEFAULT_PARITY_IMAGES) -> tuple[list[Any], list[str],
                                                                                            list[str]]:
    """(images, names, skipped) for the parity check: a folder's jpg/png, or seeded synthetic ones."""
    from oddoctor_legacy_tf1 import images as legacy_images

    if images_dir is None:
        imgs = legacy_images.synthetic_images(count, seed=0)
        return imgs, [f"synthetic-{i}-{im.shape[0]}x{im.shape[1]}" for i, im in enumerate(imgs)], []
    try:
        folder = legacy_images.load_image_dir(images_dir)
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
) -> dict[str, Any]:
    """Migrate ``model`` into ``out``; return the migration report (also written as migration.json).

    Raises :class:`MigrateInputError` or :class:`OutputDirError` for bad input (before anything is
    written) and :class:`ParityError` when the outputs differ; in both cases ``out`` is untouched.
    """
    model, out = Path(model), Path(out)
    if not model.exists():
        raise MigrateInputError(f"{model}: no such file or directory")
    check_output_dir(out, force, protect=(model,))
    if not tolerance >= 0:
        raise MigrateInputError(f"--tolerance {tolerance}: must be >= 0")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    progress("loading TensorFlow")
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
        convert.save_saved_model(p, sm_dir)
        progress(f"parity: legacy TF1 Session vs SavedModel on {len(images)} image(s)")
        reference = convert.run_legacy(p, images)
        migrated = convert.run_migrated(sm_dir, images)
        parity = convert.compare(reference, migrated, tolerance)
        parity["image_names"] = names
        parity["skipped_images"] = skipped
        report = {
            "schema_version": SCHEMA_VERSION,
            "oddoctor_version": __version__,
            "tensorflow_version": tf.__version__,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "source": {"path": str(model), "resolved": str(p.source), "kind": p.kind,
                       "sha256": _sha256(p.source)},
            "out": str(out),
            "saved_model": "saved_model",
            "signature": "serving_default",
            "input": p.input.to_dict(),
            "outputs": [o.to_dict() for o in p.outputs],
            "batch_one": p.batch_one,
            "parity": parity,
            "runner": "run_inference.py",
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
            masks_key="detection_masks" if any(o.key == "detection_masks" for o in p.outputs) else None,
        )
        runner = render_runner(spec)
        (staged.path / "run_inference.py").write_text(runner, encoding="utf-8")
        (staged.path / "README.md").write_text(render_readme(spec, parity, tf.__version__), encoding="utf-8")
        (staged.path / "migration.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        staged.commit()
    progress(f"wrote {out}/ (saved_model/, run_inference.py, README.md, migration.json)")
    return report


__all__ = ["DEFAULT_TOLERANCE", "MigrateInputError", "OutputDirError", "ParityError", "migrate"]
