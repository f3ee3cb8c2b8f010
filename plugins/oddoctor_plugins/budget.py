"""Model-aware VRAM check: the free memory of each GPU CUDA selects against what the model needs at the batch and
image size asked for (``oddoctor check --model M --batch N --image-size WxH``).

The figures come from ``oddoctor budget`` (measured by ``check`` on the spot, or read from ``budget --json`` with
``--budget-from``) and travel in the snapshot as the ``model_budget`` fact (``Snapshot.extra``), so the check stays
a pure function of the snapshot.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

from oddoctor import hookimpl
from oddoctor.checks import Check, Context, Result, check, fail, ok, skip, unknown
from oddoctor.snapshot import Snapshot
from oddoctor.units import format_bytes
from oddoctor_plugins._advice import selected_gpus, view

if TYPE_CHECKING:
    from oddoctor.budget.fit import Fit

#: The snapshot fact (``Snapshot.extra``) the figures travel in (oddoctor.budget.facts.FACT; not imported here:
#: the budget package loads only when a model is judged, so that ``check --from`` starts fast).
FACT = "model_budget"


def fit_from_fact(fact: dict[str, Any]) -> Optional[Fit]:
    """The fit a ``model_budget`` fact carries (``budget --json``'s ``fits.tf_peak_bytes``), or None."""
    from oddoctor.budget.fit import MODELS, Fit

    f = fact.get("fit")
    if not isinstance(f, dict) or f.get("model") not in MODELS or not isinstance(f.get("coef"), dict):
        return None
    names, _ = MODELS[f["model"]]
    coef = f["coef"]
    if set(coef) != set(names) or not all(isinstance(coef[n], (int, float)) for n in names):
        return None
    return Fit(model=f["model"], coef={n: float(coef[n]) for n in names}, points=[], residuals=[], loo_error=None)


@check(id="memory.model-fits", title="VRAM free vs model need")
def memory_model_fits(snap: Snapshot, ctx: Context) -> Result | list[Result]:
    """Each GPU CUDA selects has the free memory the model needs (oddoctor budget's fit) at --batch and --image-size.

    The need is the fit of TensorFlow's allocator peak plus the CUDA context; the margin of the budget is kept free.

    Typical fix: use the largest batch that fits (named in the fix), a smaller image size, or another GPU.
    """
    fact = snap.extra.get(FACT)
    if not isinstance(fact, dict):
        return skip("no --model given (oddoctor check --model M --batch N --image-size WxH)")
    fit = fit_from_fact(fact)
    if fit is None:
        return unknown(f"extra.{FACT}", fact.get("error") or "the model's memory figures could not be measured")
    from oddoctor.budget.fit import largest_batch

    selected = selected_gpus(view(snap), ctx, "model VRAM checks")
    if isinstance(selected, Result):
        return selected
    batch, height, width = int(fact["batch"]), int(fact["height"]), int(fact["width"])
    margin, context = float(fact.get("margin", 0.10)), int(fact.get("context_bytes") or 0)
    pixels = height * width
    need = fit.predict(batch, pixels) + context
    want = f"batch {batch} at {width}x{height} needs {format_bytes(need)}"
    measured_batch = _largest_measured(fact.get("measured"), height, width)
    model = str(fact.get("model") or "MODEL")
    results: list[Result] = []
    for g in selected:
        rid = f"memory.model-fits.gpu{g.index}"
        details: dict[str, Any] = {"gpu": g.index, "free_bytes": g.free_bytes, "need_bytes": int(need),
                                   "batch": batch, "image_size": f"{width}x{height}", "margin": margin}
        if g.free_bytes is None:
            results.append(unknown("gpu.memory", f"{g.label}: free memory unknown (NVML gave no figure); {want}",
                                   details=details, id=rid))
            continue
        pred = largest_batch(fit, pixels, g.free_bytes, margin=margin, overhead=context)
        details["largest_batch"] = pred.batch
        usable = g.free_bytes * (1 - margin)
        what = f"{g.label}: {format_bytes(g.free_bytes)} free; {want} (+{margin:.0%} margin)"
        if measured_batch is not None:
            details["measured_batch"] = measured_batch
            details["extrapolated"] = batch > measured_batch
        if need <= usable:
            results.append(ok(f"{what}: fits; up to batch {pred.batch} would"
                              + _beyond(measured_batch, max(batch, pred.batch), model, width, height),
                              details=details, id=rid))
        elif pred.batch >= 1:
            results.append(fail(f"{what}: does not fit",
                                fix=f"Use batch size {pred.batch} at {width}x{height} (the largest that fits "
                                    f"{g.label}), or free memory on GPU {g.index}"
                                    + _beyond(measured_batch, pred.batch, model, width, height),
                                details=details, id=rid))
        else:
            results.append(fail(f"{what}: not even batch 1 fits",
                                fix=f"Use a smaller image size than {width}x{height}, free memory on GPU {g.index}, "
                                    "or a GPU with more memory", details=details, id=rid))
    return results


def _beyond(measured_batch: Optional[int], batch: int, model: str, width: int, height: int) -> str:
    """The words that mark a batch beyond those measured at this size as extrapolated, or ""."""
    if measured_batch is None or batch <= measured_batch:
        return ""
    return (f" (batch {batch} is extrapolated: the largest measured at {width}x{height} is "
            f"{measured_batch or 'none'}; confirm with "
            f"`oddoctor budget {model} --batch {batch} --image-size {width}x{height}`)")


def _largest_measured(measured: Any, height: int, width: int) -> Optional[int]:
    """The largest batch the figures measured at ``height`` x ``width`` (0: that size was not measured); None when
    the fact does not list what was measured (a snapshot or a budget file from before it did)."""
    if not isinstance(measured, list):
        return None
    batches = [m[0] for m in measured if isinstance(m, (list, tuple)) and len(m) == 3
               and all(isinstance(v, int) for v in m) and (m[1], m[2]) == (height, width)]
    return max(batches, default=0)


CHECKS: list[Check] = [memory_model_fits]


@hookimpl
def oddoctor_checks() -> list[Check]:
    return list(CHECKS)
