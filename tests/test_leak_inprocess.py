"""The pytest fixture's measurement (oddoctor.leak.inprocess.measure_leak) decides as leak-test does (no TensorFlow)."""

from __future__ import annotations

import pytest

from oddoctor.leak import inprocess
from oddoctor.leak.decide import MIB, MIN_DECIDED_IMAGES

STEP_THEN_FLAT = [700.0] * 13 + [760.0] * 7  # one 60 MiB step (an allocator pool), then flat


class FakeGraph:
    """A graph whose op count the measured function grows by ``per_call``."""

    def __init__(self, per_call: int) -> None:
        self.ops = 100
        self.per_call = per_call

    def get_operations(self) -> list[int]:
        return list(range(self.ops))

    def call(self) -> None:
        self.ops += self.per_call


def fake_rss(monkeypatch, values_mib):
    it = iter(values_mib)
    last = [values_mib[-1]]

    def rss_bytes():
        last[0] = next(it, last[0])
        return int(last[0] * MIB)

    monkeypatch.setattr(inprocess, "rss_bytes", rss_bytes)


def test_one_memory_step_is_not_a_leak(monkeypatch):
    # The plain trend (before) called this series a leak: its slope is positive with high confidence.
    fake_rss(monkeypatch, STEP_THEN_FLAT)
    result = inprocess.measure_leak(lambda: None, iterations=17, warmup=3, until_decided=False)
    assert result.trends["rss"].status != "leak" and not result.leaks
    assert result.calls == 20
    result.assert_no_leak()


def test_graph_growth_is_exact_and_stops_early(monkeypatch):
    fake_rss(monkeypatch, [700.0 + 0.5 * i for i in range(40)])  # the ops cost memory
    graph = FakeGraph(per_call=3)
    result = inprocess.measure_leak(graph.call, iterations=30, warmup=3, graph=graph)
    ops = result.trends["graph_ops"]
    assert (ops.status, ops.rule, ops.slope) == ("leak", "exact", 3)
    assert result.stopped == "decided" and result.calls == 3 + MIN_DECIDED_IMAGES  # not 33
    with pytest.raises(AssertionError, match=r"graph_ops: leak \(\+3\.000 ops/call"):
        result.assert_no_leak()


def test_a_flat_finalized_graph_passes_and_an_undecided_metric_does_not_fail(monkeypatch):
    fake_rss(monkeypatch, [700.0] * 9 + [760.0] * 3)  # a step near the end: rss undecided
    graph = FakeGraph(per_call=0)
    result = inprocess.measure_leak(graph.call, iterations=9, warmup=3, graph=graph, until_decided=False)
    assert result.trends["graph_ops"].status == "ok"
    assert result.trends["rss"].status == "undecided" and result.undecided == ["rss"]
    assert "calls needed for a verdict" in result.describe()
    result.assert_no_leak()


def test_a_steady_memory_leak_fails_with_the_numbers(monkeypatch):
    fake_rss(monkeypatch, [700.0 + 1.0 * i for i in range(50)])
    result = inprocess.measure_leak(lambda: None, iterations=40, warmup=3)
    assert result.trends["rss"].status == "leak"
    with pytest.raises(AssertionError, match=r"oddoctor: leak measured: rss: leak \(\+1\.000 MiB/call"):
        result.assert_no_leak()


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="at least 6"):
        inprocess.measure_leak(lambda: None, iterations=3)
    with pytest.raises(ValueError, match="warmup"):
        inprocess.measure_leak(lambda: None, warmup=-1)


def test_the_rss_is_read_after_a_trim_when_asked(monkeypatch):
    fake_rss(monkeypatch, [700.0] * 20)
    trims = []

    class CountingTrimmer:
        def trim(self) -> bool:
            trims.append(1)
            return True

    monkeypatch.setattr(inprocess, "HeapTrimmer", CountingTrimmer)
    result = inprocess.measure_leak(lambda: None, iterations=10, warmup=2, until_decided=False, malloc_trim=True)
    assert len(trims) == result.calls == 12  # one trim per call, each before its RSS reading
    trims.clear()
    inprocess.measure_leak(lambda: None, iterations=10, warmup=2, until_decided=False)  # the default: as it is
    assert trims == []
