"""Legacy TF1 Object Detection models and inference patterns (the leak and its fix).

``from oddoctor_legacy_tf1 import LegacyDetector`` is the fixed inference loop
(:mod:`oddoctor_legacy_tf1.detector`). It is imported on first use, so importing a submodule
(``oddoctor_legacy_tf1.names``, ``oddoctor_legacy_tf1.graph_io``) costs neither numpy nor TensorFlow.
This package imports nothing from ``oddoctor`` (``tests/test_architecture.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from oddoctor_legacy_tf1.detector import LegacyDetector

__all__ = ["LegacyDetector"]


def __getattr__(name: str) -> Any:
    if name == "LegacyDetector":
        from oddoctor_legacy_tf1.detector import LegacyDetector

        return LegacyDetector
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
