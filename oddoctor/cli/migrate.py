"""`oddoctor migrate` (being written)."""

from __future__ import annotations


def migrate() -> None:
    """(being written)"""
