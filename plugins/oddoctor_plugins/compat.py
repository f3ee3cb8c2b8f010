"""Built-in compatibility checks (being written)."""

from __future__ import annotations

from oddoctor import hookimpl


@hookimpl
def oddoctor_checks() -> list:
    return []
