"""The project's one version reader: every spelling facts arrive in, and what is not a version."""

from __future__ import annotations

import pytest
from packaging.version import InvalidVersion, Version

from oddoctor.versions import as_version, major_minor, padded, parse_version, two_part


@pytest.mark.parametrize(("text", "want"), [
    ("2.15.0", "2.15.0"), ("v2.15", "2.15"), (" 550.54.15 ", "550.54.15"), ("2.16.0-rc0", "2.16.0"),
    ("2.17.0rc1", "2.17.0"), ("9", "9"), ("12.2.140+cuda12", "12.2.140"), (Version("3.11"), "3.11"),
])
def test_parse_reads_the_leading_release(text: object, want: str) -> None:
    assert parse_version(text) == Version(want)


@pytest.mark.parametrize("text", [None, "", "N/A", "?", "unknown", "  ", "rc1"])
def test_parse_unreadable_is_none_never_zero(text: object) -> None:
    assert parse_version(text) is None


def test_shapes() -> None:
    assert major_minor("2.15.1") == Version("2.15") and major_minor("3") == Version("3.0")
    assert two_part("9") == Version("9.0") and two_part("12.5.1") == Version("12.5.1")
    assert padded("2.15") == Version("2.15.0") and str(padded("2.15")) == "2.15.0"
    assert padded("1.15.5.1") == Version("1.15.5")


def test_strict_read_raises() -> None:
    with pytest.raises(InvalidVersion):
        as_version("not a version")
