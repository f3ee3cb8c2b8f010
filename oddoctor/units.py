"""Byte sizes: parse what users type, print what they read."""

from __future__ import annotations

_UNITS = {"": 1, "B": 1, "K": 1024, "KB": 1000, "KIB": 1024, "M": 1024**2, "MB": 1000**2,
          "MIB": 1024**2, "G": 1024**3, "GB": 1000**3, "GIB": 1024**3, "T": 1024**4,
          "TB": 1000**4, "TIB": 1024**4}


#: The largest size accepted (1 EiB): anything above is a typo, not a machine.
MAX_SIZE = 2**60


def parse_size(text: str) -> int:
    """'8GiB' -> 8589934592, '500MB' -> 500000000, '1.5G' -> 1610612736 (bare G/M are binary).

    Raises ValueError with a one-line reason.
    """
    s = text.strip().upper().replace(" ", "")
    num = s.rstrip("KMGTIB")
    unit = s[len(num):]
    try:
        value = float(num)
    except ValueError:
        raise ValueError(f"cannot read size {text!r}: use e.g. 8GiB, 500MB, 2G") from None
    if unit not in _UNITS or not 0 <= value < float("inf"):  # also refuses nan
        raise ValueError(f"cannot read size {text!r}: use e.g. 8GiB, 500MB, 2G")
    size = value * _UNITS[unit]
    if size > MAX_SIZE:
        raise ValueError(f"size {text!r} is larger than any machine's memory ({MAX_SIZE // 2**60} EiB)")
    return int(size)


def format_bytes(n: float | None) -> str:
    """4294967296 -> '4.0 GiB'; None -> 'unknown'."""
    if n is None:
        return "unknown"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"
