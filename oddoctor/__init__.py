"""oddoctor: the doctor for TensorFlow object detection."""

from __future__ import annotations

__version__ = "0.1.0"

from oddoctor.hookspecs import hookimpl

__all__ = ["__version__", "hookimpl"]
