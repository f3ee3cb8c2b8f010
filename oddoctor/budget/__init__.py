"""``oddoctor budget`` as a library: ``run_budget(BudgetSpec(...)) -> BudgetReport``.

    from oddoctor.budget import BudgetSpec, run_budget

    report = run_budget(BudgetSpec(model="frozen_inference_graph.pb", batches=(1, 2, 4), budget=8 << 30))
    report.fit.predict(8, 1024 * 768), report.predictions[0].batch.batch, report.to_dict()

Nothing here imports TensorFlow: each configuration runs in a child process (``python -m oddoctor.budget.child``).
:mod:`oddoctor.budget.fit` (the least squares and the prediction) is pure Python.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from oddoctor.budget.api import BudgetInputError, measure_point, run_budget
    from oddoctor.budget.fit import Fit, Point, best_fit, largest_batch
    from oddoctor.budget.report import BudgetReport, Measured, render_text
    from oddoctor.budget.spec import BudgetSpec, BudgetSpecError, PointSpec

_WHERE = {
    "BudgetInputError": "api", "measure_point": "api", "run_budget": "api",
    "Fit": "fit", "Point": "fit", "best_fit": "fit", "largest_batch": "fit",
    "BudgetReport": "report", "Measured": "report", "render_text": "report",
    "BudgetSpec": "spec", "BudgetSpecError": "spec", "PointSpec": "spec",
}
__all__ = [
    "BudgetInputError", "BudgetReport", "BudgetSpec", "BudgetSpecError", "Fit", "Measured", "Point", "PointSpec",
    "best_fit", "largest_batch", "measure_point", "render_text", "run_budget",
]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"oddoctor.budget.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
