"""The ``model_budget`` fact that ``oddoctor check --model`` puts in the snapshot (``Snapshot.extra``) for the check
``memory.model-fits``: the fit of the allocator peak, the context, the margin and the configuration asked for."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

from oddoctor.budget.fit import MODELS
from oddoctor.budget.spec import BudgetSpec

FACT = "model_budget"
ON_THE_SPOT_BATCHES = (1, 2, 4)  # measured at the asked image size when no --budget-from is given


class BudgetFactError(ValueError):
    """A ``--budget-from`` file that is not ``oddoctor budget --json`` output (one line)."""


def fact_from_json(doc: Any, *, source: str) -> dict[str, Any]:
    """The fit, context and margin of a ``budget --json`` document; :class:`BudgetFactError` names what is wrong."""
    if not isinstance(doc, dict) or doc.get("tool") != "oddoctor budget":
        raise BudgetFactError(f"{source}: not the output of `oddoctor budget --json`")
    fit = (doc.get("fits") or {}).get("tf_peak_bytes")
    if not isinstance(fit, dict) or fit.get("model") not in MODELS or not isinstance(fit.get("coef"), dict):
        raise BudgetFactError(f"{source}: holds no fit of the allocator peak (fits.tf_peak_bytes); re-run "
                              "`oddoctor budget` with at least two configurations that fit")
    names, _ = MODELS[fit["model"]]
    coef = fit["coef"]
    if set(coef) != set(names) or not all(isinstance(coef[n], (int, float)) and not isinstance(coef[n], bool)
                                          for n in names):
        raise BudgetFactError(f"{source}: fits.tf_peak_bytes.coef must give {', '.join(names)} as numbers")
    margin = doc.get("margin", 0.10)
    context = doc.get("context_bytes")
    if not isinstance(margin, (int, float)) or not 0 <= margin < 1:
        raise BudgetFactError(f"{source}: margin must be a number from 0 to below 1, not {margin!r}")
    if context is not None and (not isinstance(context, int) or context < 0):
        raise BudgetFactError(f"{source}: context_bytes must be a whole number of bytes or null, not {context!r}")
    return {"model": doc.get("model"), "fit": {"model": fit["model"], "coef": dict(coef)}, "margin": float(margin),
            "context_bytes": context, "device": doc.get("device"), "source": source,
            "measured": _measured_points(doc.get("points"))}


def _measured_points(points: Any) -> Optional[list[list[int]]]:
    """``[batch, height, width]`` of each configuration ``budget --json`` measured (status ok); None when the
    document does not list them (then nobody can tell whether a prediction is extrapolated)."""
    if not isinstance(points, list):
        return None
    out = []
    for p in points:
        if not isinstance(p, dict) or p.get("status") != "ok":
            continue
        vals = [p.get("batch"), p.get("height"), p.get("width")]
        ints = [v for v in vals if isinstance(v, int) and not isinstance(v, bool) and v > 0]
        if len(ints) == 3:
            out.append(ints)
    return out


def read_budget_file(path: Path) -> dict[str, Any]:
    """``--budget-from FILE``: :func:`fact_from_json` of its JSON; :class:`BudgetFactError` when unreadable."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as e:
        raise BudgetFactError(f"--budget-from {path}: cannot read: {e.strerror or e}") from None
    except ValueError as e:
        raise BudgetFactError(f"--budget-from {path}: not JSON: {e}") from None
    return fact_from_json(doc, source=str(path))


def measure_fact(model: str, height: int, width: int, *, timeout_s: float = 300.0,
                 progress: Optional[Any] = None) -> dict[str, Any]:
    """Measure ``model`` on the spot (batches 1, 2, 4 at the asked size, one child each) and return the fact;
    a model that could not be measured gives a fact with ``error`` and no fit (the check then says unknown)."""
    from oddoctor.budget.api import run_budget

    # No budget here: the check compares the need with each GPU's free memory itself.
    spec = BudgetSpec(model=model, batches=ON_THE_SPOT_BATCHES, sizes=((height, width),), timeout_s=timeout_s)
    report = run_budget(spec, on_event=progress)
    fit = report.fit
    if fit is None:
        failed = [p for p in report.points if p.status != "ok"]
        why = "; ".join(f"batch {p.batch}: {p.status} ({p.error})" for p in failed[:3]) or "no fit"
        return {"model": model, "fit": None, "error": f"could not measure the model: {why}", "source": "measured"}
    return {"model": model, "fit": {"model": fit.model, "coef": dict(fit.coef)}, "margin": report.margin,
            "context_bytes": report.context_bytes, "device": report.device, "source": "measured",
            "measured": [[p.batch, p.height, p.width] for p in report.points if p.status == "ok"]}


def with_request(fact: dict[str, Any], batch: int, height: int, width: int) -> dict[str, Any]:
    """The fact with the configuration the user asked about."""
    return {**fact, "batch": batch, "height": height, "width": width}
