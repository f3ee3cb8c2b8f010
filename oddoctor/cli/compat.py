"""`oddoctor compat` (being written)."""

from __future__ import annotations


def compat() -> None:
    """(being written)"""
