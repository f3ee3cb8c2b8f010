"""Small TensorFlow helpers shared by the legacy modules (TensorFlow imported by the caller)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def quiet_deprecations(tf: Any) -> Iterator[None]:
    """Silence TF's Python-logger deprecation warnings: using the TF1 API is the point here."""
    logger = tf.get_logger()
    level = logger.level
    logger.setLevel("ERROR")
    try:
        yield
    finally:
        logger.setLevel(level)
