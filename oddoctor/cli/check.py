"""`oddoctor check`, `oddoctor collect`, `oddoctor checks` (being written)."""

from __future__ import annotations


def check() -> None:
    """Diagnose this machine (or a snapshot) before training or serving."""


def collect() -> None:
    """Write a snapshot of this machine's facts."""


def list_checks() -> None:
    """List every registered check."""
