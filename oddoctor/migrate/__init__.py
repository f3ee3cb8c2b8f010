"""``oddoctor migrate``: a TF1 Object Detection export to a TF2 SavedModel, proven equal.

Public API (TensorFlow is imported only when a migration runs):

- ``migrate(model, out, *, force=False, input_name=None, outputs=None, images_dir=None,
  tolerance=1e-4, progress=..., tf_timeout=60) -> dict``: import TensorFlow in a child first
  (``tensorflow_preflight``), then convert with ``tf.compat.v1.wrap_function``, check
  parity against a TF1 Session, write ``out/`` atomically (``saved_model/``, ``run_inference.py``,
  ``README.md``, ``migration.json``) and return the report written to ``migration.json``.
- ``MigrateInputError`` / ``OutputDirError``: bad model, options or output directory (exit 2).
- ``ParityError``: outputs differ beyond the tolerance; nothing was written (exit 1).
- ``TensorFlowUnusable``: TensorFlow raises, crashes or hangs on import; nothing was done (exit 1).
"""

from __future__ import annotations

from oddoctor.migrate.convert import MigrateInputError, parse_outputs
from oddoctor.migrate.outdir import OutputDirError
from oddoctor.migrate.pipeline import DEFAULT_TOLERANCE, ParityError, TensorFlowUnusable, migrate, tensorflow_preflight

__all__ = ["DEFAULT_TOLERANCE", "MigrateInputError", "OutputDirError", "ParityError", "TensorFlowUnusable",
           "migrate", "parse_outputs", "tensorflow_preflight"]
