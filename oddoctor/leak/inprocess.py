"""Measure a callable for leaks in this process: what the pytest ``oddoctor_leak`` fixture runs.

The same memory reading (:func:`oddoctor.leak.sampling.rss_bytes`) and the same verdicts as
``oddoctor leak-test``: each call becomes one sample and :func:`oddoctor.leak.decide.judge` decides (exact
graph growth, memory on its high-water mark after its last step, ``undecided`` while the series cannot carry
a verdict), and with ``until_decided`` the loop stops as soon as :func:`oddoctor.leak.decide.may_stop` says
so. Only the loop differs: the caller's function, called here, instead of a child running a model.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, NoReturn, Optional

from oddoctor.leak.decide import Decision, judge, may_stop
from oddoctor.leak.sampling import HeapTrimmer, rss_bytes
from oddoctor.leak.stats import MIN_POINTS

UNITS = {"rss": "MiB", "graph_ops": "ops"}
_KEYS = {"rss": "rss", "graph_ops": "graph_nodes"}  # this result's names -> oddoctor.leak.decide's


def _raise_assertion(message: str) -> NoReturn:
    raise AssertionError(message)


class LeakResult:
    """Per-metric verdicts of a measured callable (:class:`oddoctor.leak.decide.Decision` each) and the series.

    ``trends["rss"]`` and, given a graph, ``trends["graph_ops"]``: ``status`` is "leak", "ok", "plateau",
    "undecided" (the calls measured cannot tell yet; ``needed`` says how many can) or "too-short".
    """

    def __init__(self, trends: dict[str, Decision], series: dict[str, list[float]], units: dict[str, str], *,
                 fail: Callable[[str], NoReturn] = _raise_assertion, calls: int = 0, stopped: str = "") -> None:
        self.trends = trends
        self.series = series
        self.units = units
        self.calls = calls  # warm-up included
        self.stopped = stopped  # "decided" or "max-iterations"
        self._fail = fail

    @property
    def leaks(self) -> bool:
        return any(t.leaks for t in self.trends.values())

    @property
    def undecided(self) -> list[str]:
        return [name for name, t in self.trends.items() if not t.decided]

    def describe(self) -> str:
        parts = []
        for name, t in self.trends.items():
            slope = "n/a" if t.slope is None else f"{t.slope:+.3f}"
            conf = "" if t.confidence is None else f", confidence {t.confidence:.0%}"
            more = f", about {t.needed} calls needed for a verdict" if t.needed and not t.decided else ""
            parts.append(f"{name}: {t.status} ({slope} {self.units[name]}/call, threshold "
                         f"{t.threshold:g}{conf}, n={t.n}{more})")
        return "; ".join(parts)

    def assert_no_leak(self) -> None:
        """Fail (``AssertionError`` unless the measurement was given another ``fail``) when a metric leaks.

        An ``undecided`` metric does not fail: it is not a leak found (``result.undecided`` lists them)."""
        if self.leaks:
            self._fail(f"oddoctor: leak measured: {self.describe()}")


def measure_leak(fn: Callable[[], Any], *, iterations: int = 30, warmup: int = 10, graph: Any = None,
                 fail: Optional[Callable[[str], NoReturn]] = None, until_decided: bool = True,
                 malloc_trim: bool = False) -> LeakResult:
    """Call ``fn`` ``warmup + iterations`` times; judge RSS growth (and graph growth, given ``graph``) per call.

    The verdicts are those of ``oddoctor leak-test`` (:func:`oddoctor.leak.decide.judge`: same rules, same
    thresholds). ``until_decided`` stops as soon as every verdict is decided (after at least
    :data:`oddoctor.leak.decide.MIN_DECIDED_IMAGES` measured calls); ``iterations`` is then the most it
    measures. ``fail`` is what ``LeakResult.assert_no_leak`` calls with its message (default: raise
    ``AssertionError``). With ``malloc_trim`` (glibc) the allocator's free pages go back to the OS after each
    call, before the RSS is read, as in ``leak-test`` (:class:`oddoctor.leak.sampling.HeapTrimmer`).
    """
    if iterations < MIN_POINTS:
        raise ValueError(f"oddoctor_leak needs at least {MIN_POINTS} measured iterations")
    if warmup < 0:
        raise ValueError(f"oddoctor_leak: warmup must be >= 0, not {warmup}")
    samples: list[dict[str, Any]] = []
    stopped = "max-iterations"
    trimmer = HeapTrimmer() if malloc_trim else None
    for i in range(warmup + iterations):
        t0 = time.perf_counter()
        fn()
        latency_ms = (time.perf_counter() - t0) * 1000.0
        if trimmer is not None:
            trimmer.trim()
        rss = rss_bytes()
        if rss is None:
            raise RuntimeError("oddoctor: cannot read this process's resident memory (psutil)")
        samples.append({"i": i, "warmup": i < warmup, "latency_ms": latency_ms, "rss_bytes": rss,
                        "graph_nodes": len(graph.get_operations()) if graph is not None else None,
                        "gpu_nvml_bytes": None, "gpu_tf_bytes": None})
        if until_decided and i >= warmup and may_stop(samples).stop:
            stopped = "decided"
            break
    decisions = judge(samples)
    measured = [s for s in samples if not s["warmup"]]
    trends: dict[str, Decision] = {}
    series: dict[str, list[float]] = {}
    for name, key in _KEYS.items():
        decision = decisions.get(key)
        if decision is None:
            continue
        trends[name] = decision
        field = "rss_bytes" if key == "rss" else "graph_nodes"
        series[name] = [float(s[field]) / (1024.0 * 1024.0 if key == "rss" else 1.0) for s in measured]
    return LeakResult(trends, series, {k: UNITS[k] for k in trends}, fail=fail or _raise_assertion,
                      calls=len(samples), stopped=stopped)
