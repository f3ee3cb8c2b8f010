"""The project's one way to read a version number (on ``packaging``), and the few shapes it is compared in.

Facts arrive as text from many places (NVML's "550.54.15", TensorFlow's "2.16.0-rc0", a table's "N/A", a
library's "9", a report's "v2.15"). :func:`parse_version` reads them all the same way: the leading numeric
release, or None when there is none. Tables and checks then compare :class:`Version` objects only.
"""

from __future__ import annotations

import re
from typing import Optional, Union

from packaging.version import InvalidVersion, Version

__all__ = ["InvalidVersion", "Version", "VersionLike", "as_version", "major_minor", "padded", "parse_version",
           "two_part"]

VersionLike = Union[str, Version]

_RELEASE = re.compile(r"\d+(?:\.\d+)*")


def parse_version(text: object) -> Optional[Version]:
    """``"2.15.0"``, ``"v2.15"``, ``"2.16.0-rc0"`` (-> 2.16.0), ``"550.54.15"`` -> Version; anything without a
    leading release number (``None``, ``""``, ``"N/A"``, ``"?"``) -> None."""
    if text is None:
        return None
    if isinstance(text, Version):
        return text
    m = _RELEASE.match(str(text).strip().lstrip("vV"))
    if not m:
        return None
    try:
        return Version(m.group(0))
    except InvalidVersion:  # pragma: no cover - a numeric dotted release always parses
        return None


def as_version(v: VersionLike) -> Version:
    """A strict read for values given on purpose (a table row, a caller's argument): raises InvalidVersion."""
    return v if isinstance(v, Version) else Version(str(v).strip())


def major_minor(v: VersionLike) -> Version:
    """``2.15.1`` -> ``2.15``; ``3`` -> ``3.0``."""
    rel = (*as_version(v).release, 0)
    return Version(f"{rel[0]}.{rel[1]}")


def two_part(v: VersionLike) -> Version:
    """At least major.minor, as tables list CUDA/cuDNN: ``9`` -> ``9.0``, ``12.5.1`` stays."""
    ver = as_version(v)
    return ver if len(ver.release) >= 2 else Version(f"{ver.release[0]}.0")


def padded(v: VersionLike, parts: int = 3) -> Version:
    """The release padded with zeros: ``2.15`` -> ``2.15.0`` (how the build tables list TensorFlow)."""
    return Version(".".join(str(x) for x in (*as_version(v).release, *([0] * parts))[:parts]))
