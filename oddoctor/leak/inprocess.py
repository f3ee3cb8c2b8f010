"""Measure a callable for leaks in this process: what the pytest ``oddoctor_leak`` fixture runs.

The same memory reading (:func:`oddoctor.leak.sampling.rss_bytes`), trend statistics
(:func:`oddoctor.leak.stats.trend`) and thresholds (:mod:`oddoctor.leak.report`) as ``oddoctor leak-test``;
only the loop differs: the caller's function, called here, instead of a child running a model.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn, Optional

from oddoctor.leak.decide import MIB, NODES_THRESHOLD, RSS_THRESHOLD_MIB
from oddoctor.leak.sampling import rss_bytes
from oddoctor.leak.stats import MIN_POINTS, Trend, trend

THRESHOLDS = {"rss": RSS_THRESHOLD_MIB, "graph_ops": NODES_THRESHOLD}  # per call
UNITS = {"rss": "MiB", "graph_ops": "ops"}


def _raise_assertion(message: str) -> NoReturn:
    raise AssertionError(message)


class LeakResult:
    """Per-metric verdicts of a measured callable (``oddoctor.leak.stats.Trend`` each) and the series."""

    def __init__(self, trends: dict[str, Trend], series: dict[str, list[float]], units: dict[str, str], *,
                 fail: Callable[[str], NoReturn] = _raise_assertion) -> None:
        self.trends = trends
        self.series = series
        self.units = units
        self._fail = fail

    @property
    def leaks(self) -> bool:
        return any(t.leaks for t in self.trends.values())

    def describe(self) -> str:
        parts = []
        for name, t in self.trends.items():
            slope = "n/a" if t.slope is None else f"{t.slope:+.3f}"
            conf = "" if t.confidence is None else f", confidence {t.confidence:.0%}"
            parts.append(f"{name}: {t.status} ({slope} {self.units[name]}/call, threshold "
                         f"{t.threshold:g}{conf}, n={t.n})")
        return "; ".join(parts)

    def assert_no_leak(self) -> None:
        """Fail (``AssertionError`` unless the measurement was given another ``fail``) when a metric leaks."""
        if self.leaks:
            self._fail(f"oddoctor: leak measured: {self.describe()}")


def _rss_mib() -> float:
    rss = rss_bytes()
    if rss is None:
        raise RuntimeError("oddoctor: cannot read this process's resident memory (psutil)")
    return rss / MIB


def measure_leak(fn: Callable[[], Any], *, iterations: int = 30, warmup: int = 10, graph: Any = None,
                 fail: Optional[Callable[[str], NoReturn]] = None) -> LeakResult:
    """Call ``fn`` ``warmup + iterations`` times; judge RSS growth (and graph growth, given ``graph``) per call.

    The verdicts are those of ``oddoctor leak-test`` (same statistics, same thresholds). ``fail`` is what
    ``LeakResult.assert_no_leak`` calls with its message (default: raise ``AssertionError``).
    """
    if iterations < MIN_POINTS:
        raise ValueError(f"oddoctor_leak needs at least {MIN_POINTS} measured iterations")
    series: dict[str, list[float]] = {"rss": []}
    if graph is not None:
        series["graph_ops"] = []
    for i in range(warmup + iterations):
        fn()
        if i < warmup:
            continue
        series["rss"].append(_rss_mib())
        if graph is not None:
            series["graph_ops"].append(float(len(graph.get_operations())))
    trends = {name: trend(ys, THRESHOLDS[name]) for name, ys in series.items()}
    return LeakResult(trends, series, dict(UNITS), fail=fail or _raise_assertion)
