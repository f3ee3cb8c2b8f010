"""oddoctor: the doctor for TensorFlow object detection."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from oddoctor.hookspecs import hookimpl

__all__ = ["__version__", "hookimpl"]


def __getattr__(name: str) -> Any:
    # ``hookimpl`` imports pluggy: only for what loads plugins, not for every ``import oddoctor.x``.
    if name == "hookimpl":
        from oddoctor.hookspecs import hookimpl

        return hookimpl
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
