"""`oddoctor leak-test` (being written)."""

from __future__ import annotations


def leak_test() -> None:
    """(being written)"""
