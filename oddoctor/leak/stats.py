"""Robust trend statistics for leak verdicts: Theil-Sen slope, Mann-Kendall confidence, persistence.

Pure Python (no numpy): series are a few hundred points at most, and the CLI parent process that
computes verdicts must stay light.

A metric *leaks* when, over the post-warm-up series,

1. the Theil-Sen slope (median of all pairwise slopes, robust to ~29% outliers) exceeds the
   threshold, with a one-sided Mann-Kendall confidence of at least ``level`` (0.95) that the true
   slope is above the threshold (the test is run on ``y - threshold * x``, the dual of Sen's
   confidence interval), and
2. the growth persists: each half of the series on its own still shows a slope above the threshold
   with confidence of at least ``part_level`` (0.75), and the last third leans that way too
   (confidence above ``tail_level``, 0.5).

Condition 2 is what keeps a plateau from being flagged: a single step (the first image of a new
size, a cache filling once) makes the whole-series slope positive, but one of the two halves is
then flat; an allocator warm-up that steps up a few times, less and less often, ends flat, so its
last third is flat. A steady leak, and a leak that grows in chunks (one allocation every few
images), grow in every part. A single outlier spike moves neither the median slope nor the rank
statistic much.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Optional

MAX_POINTS = 400  # pairwise work is O(n^2); longer series are thinned evenly
MIN_POINTS = 6


@dataclass(frozen=True)
class Trend:
    """The verdict on one metric's series."""

    status: str  # "leak", "plateau" (grew, then levelled off), "ok", "too-short"
    slope: Optional[float]  # Theil-Sen, units per iteration
    intercept: Optional[float]
    threshold: float
    confidence: Optional[float]  # P(slope > threshold), one-sided Mann-Kendall, 0..1
    part_confidence: tuple[Optional[float], ...] = ()  # first half, second half, last third
    n: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def leaks(self) -> bool:
        return self.status == "leak"


def _thin(xs: Sequence[float], ys: Sequence[float]) -> tuple[list[float], list[float]]:
    if len(xs) <= MAX_POINTS:
        return list(xs), list(ys)
    step = len(xs) / MAX_POINTS
    idx = [int(i * step) for i in range(MAX_POINTS)]
    return [xs[i] for i in idx], [ys[i] for i in idx]


def theil_sen(ys: Sequence[float], xs: Optional[Sequence[float]] = None) -> tuple[float, float]:
    """Median pairwise slope and the median intercept (Sen 1968); needs two distinct x values."""
    xs = list(range(len(ys))) if xs is None else list(xs)
    if len(xs) != len(ys):
        raise ValueError("xs and ys differ in length")
    xs, ys = _thin(xs, list(ys))
    slopes = [(ys[j] - ys[i]) / (xs[j] - xs[i])
              for i in range(len(xs)) for j in range(i + 1, len(xs)) if xs[j] != xs[i]]
    if not slopes:
        raise ValueError("need at least two distinct x values")
    slope = _median(slopes)
    intercept = _median([y - slope * x for x, y in zip(xs, ys)])
    return slope, intercept


def _median(values: list[float]) -> float:
    s = sorted(values)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2.0


def _normal_cdf(z: float) -> float:
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def confidence_above(ys: Sequence[float], threshold: float, xs: Optional[Sequence[float]] = None) -> float:
    """One-sided confidence (0..1) that the series' slope exceeds ``threshold`` (Mann-Kendall, ties corrected)."""
    xs = list(range(len(ys))) if xs is None else list(xs)
    xs, ys = _thin(xs, list(ys))
    resid = [y - threshold * x for x, y in zip(xs, ys)]
    n = len(resid)
    if n < 3:
        return 0.5
    s = 0
    for i in range(n):
        ri = resid[i]
        for j in range(i + 1, n):
            d = resid[j] - ri
            # Exact float ties are measurement ties (same RSS page count, same op count).
            s += (d > 0) - (d < 0)
    var = float(n * (n - 1) * (2 * n + 5))
    for t in Counter(resid).values():
        if t > 1:
            var -= t * (t - 1) * (2 * t + 5)
    var /= 18.0
    if var <= 0 or s == 0:
        return 0.5
    z = (s - math.copysign(1, s)) / math.sqrt(var)  # continuity correction
    return _normal_cdf(z)


def trend(ys: Sequence[float], threshold: float, *, level: float = 0.95, part_level: float = 0.75,
          tail_level: float = 0.5,
          xs: Optional[Sequence[float]] = None) -> Trend:
    """Classify a post-warm-up series against a growth threshold (units per iteration)."""
    ys = [float(y) for y in ys]
    xs = [float(x) for x in (range(len(ys)) if xs is None else xs)]
    n = len(ys)
    if n < MIN_POINTS:
        return Trend("too-short", None, None, threshold, None, n=n,
                     notes=[f"only {n} measured iterations; need at least {MIN_POINTS}"])
    slope, intercept = theil_sen(ys, xs)
    conf = confidence_above(ys, threshold, xs)
    half, third = n // 2, n - n // 3
    parts = (confidence_above(ys[:half], threshold, xs[:half]),
             confidence_above(ys[half:], threshold, xs[half:]),
             confidence_above(ys[third:], threshold, xs[third:]))
    notes: list[str] = []
    if slope > threshold and conf >= level:
        # The last third is short, so it only has to lean towards growth, not prove it.
        if min(parts[:2]) >= part_level and parts[2] >= tail_level:
            status = "leak"
        else:
            status = "plateau"
            notes.append("grew, then levelled off (flat in one half or in the last third): "
                         "warm-up or a one-off step, not a steady leak")
    else:
        status = "ok"
    return Trend(status, slope, intercept, threshold, conf, parts, n, notes)


def median(values: Sequence[float]) -> Optional[float]:
    """Median, or None for an empty sequence."""
    return _median(list(values)) if values else None
