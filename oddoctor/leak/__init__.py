"""``oddoctor leak-test`` as a library: ``run_leak_test(LeakSpec(...)) -> LeakReport``.

    from oddoctor.leak import LeakSpec, run_leak_test

    report = run_leak_test(LeakSpec(model="frozen_inference_graph.pb", mode="fixed", iterations=50))
    report.exit_code, report.modes["fixed"].verdict, report.to_dict()   # to_dict(): the --json document

Nothing here imports TensorFlow: the measured inference loops run in a child process
(``python -m oddoctor.leak.child``, started by :mod:`oddoctor.leak.spawn`). ``oddoctor.leak.stats.trend``
is the verdict used everywhere, also by the in-process measurement of the pytest fixture
(:mod:`oddoctor.leak.inprocess`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from oddoctor.leak.api import LeakInputError, run_leak_test
    from oddoctor.leak.report import (
        CostRatio,
        Finding,
        Latency,
        LeakReport,
        MetricVerdict,
        ModeReport,
        Projection,
        render_text,
    )
    from oddoctor.leak.spec import LeakSpec, LeakSpecError

# Imported on first use: the CLI imports oddoctor.leak.spec at start-up, and must not pay for the rest.
_WHERE = {
    "LeakInputError": "api", "run_leak_test": "api",
    "CostRatio": "report", "Finding": "report", "Latency": "report", "LeakReport": "report",
    "MetricVerdict": "report", "ModeReport": "report", "Projection": "report", "render_text": "report",
    "LeakSpec": "spec", "LeakSpecError": "spec",
}
__all__ = [
    "CostRatio",
    "Finding",
    "Latency",
    "LeakInputError",
    "LeakReport",
    "LeakSpec",
    "LeakSpecError",
    "MetricVerdict",
    "ModeReport",
    "Projection",
    "render_text",
    "run_leak_test",
]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"oddoctor.leak.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
