"""What a budget run found: the measured points, the fits, the predictions and the settings to use; text and JSON."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from oddoctor.budget.fit import BatchPrediction, Fit, Point, best_fit, fit_above_floor, largest_batch
from oddoctor.budget.spec import BudgetSpec, size_text
from oddoctor.units import format_bytes

SCHEMA_VERSION = 1
MIB = 1 << 20
#: The allocator's peak; of it, what is held across the call (weights and the batch fed in: linear in the
#: batch's pixels); the process's peak resident memory. ``tf_call_bytes`` (the peak less the held part: the
#: call's working set) is reported per point, not fitted: see docs/budget.md.
METRICS = ("tf_peak_bytes", "tf_held_bytes", "rss_peak_bytes")
FAILED = ("timeout", "crash")


@dataclass
class Measured:
    """One configuration's outcome: ``status`` ok, oom (does not fit), timeout, crash or input_error."""

    batch: int
    height: int
    width: int
    status: str = "crash"
    result: dict[str, Any] = field(default_factory=dict)
    error: Optional[str] = None
    seconds: float = 0.0
    stderr_tail: list[str] = field(default_factory=list)

    @property
    def pixels(self) -> int:
        return self.height * self.width

    def value(self, metric: str) -> Optional[int]:
        v = self.result.get(metric) if self.status == "ok" else None
        return int(v) if isinstance(v, (int, float)) and v > 0 else None

    def to_dict(self) -> dict[str, Any]:
        return {"batch": self.batch, "image_size": size_text(self.height, self.width), "height": self.height,
                "width": self.width, "status": self.status, "tf_peak_bytes": self.value("tf_peak_bytes"),
                "rss_peak_bytes": self.value("rss_peak_bytes"), "tf_held_bytes": self.value("tf_held_bytes"),
                "tf_call_bytes": self.value("tf_call_bytes"), "context_bytes": self.result.get("context_bytes"),
                "device": self.result.get("device"), "seconds": self.seconds, "error": self.error,
                "stderr_tail": self.stderr_tail if self.status in FAILED else []}


@dataclass
class Prediction:
    """The largest batch for one budget (a GPU's free memory, or ``--vram``) at one image size."""

    target: str  # "--vram" or the GPU's label
    budget: int
    height: int
    width: int
    batch: BatchPrediction
    memory_limit_mb: int  # for tf.config.set_logical_device_configuration: the budget less the margin and context
    measured_batch: int = 0  # the largest batch measured at this image size

    @property
    def extrapolated(self) -> bool:
        """True when the predicted batch is larger than any measured at this size: the fit's straight line carries
        the held memory (weights and input) well, but not the call's working set (docs/budget.md)."""
        return self.batch.batch > self.measured_batch

    def to_dict(self) -> dict[str, Any]:
        b = self.batch
        return {"target": self.target, "budget_bytes": self.budget, "image_size": size_text(self.height, self.width),
                "largest_batch": b.batch, "need_bytes": None if b.need is None else int(b.need),
                "usable_bytes": int(b.usable), "capped": b.capped, "reason": b.reason,
                "measured_batch": self.measured_batch, "extrapolated": self.extrapolated,
                "settings": {"batch_size": b.batch, "memory_limit_mb": self.memory_limit_mb, "allow_growth": True}}


@dataclass
class BudgetReport:
    """``oddoctor budget``'s result; ``to_dict()`` is its ``--json`` document."""

    model: str
    options: dict[str, Any]
    points: list[Measured]
    fits: dict[str, Optional[Fit]]
    device: Optional[str]
    kind: Optional[str]
    context_bytes: Optional[int]
    margin: float
    predictions: list[Prediction] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    plot: Optional[str] = None

    @property
    def fit(self) -> Optional[Fit]:
        """The fit the predictions use: the allocator's peak (what a GPU's memory must hold)."""
        return self.fits.get("tf_peak_bytes")

    @property
    def exit_code(self) -> int:
        """1 when a point timed out or crashed, no fit could be made, or batch 1 does not fit a budget."""
        if any(p.status in FAILED for p in self.points) or self.fit is None:
            return 1
        return 1 if any(p.batch.batch == 0 for p in self.predictions) else 0

    def need(self, batch: int, height: int, width: int) -> Optional[float]:
        """Predicted device memory for ``batch`` images of ``height`` x ``width``: the fit plus the context."""
        if self.fit is None:
            return None
        return self.fit.predict(batch, height * width) + (self.context_bytes or 0)

    def to_dict(self) -> dict[str, Any]:
        return {"schema_version": SCHEMA_VERSION, "tool": "oddoctor budget", "model": self.model,
                "kind": self.kind, "device": self.device, "options": self.options,
                "points": [p.to_dict() for p in self.points],
                "fits": {k: None if f is None else f.to_dict() for k, f in self.fits.items()},
                "context_bytes": self.context_bytes, "margin": self.margin,
                "predictions": [p.to_dict() for p in self.predictions], "notes": self.notes,
                "plot": self.plot, "exit_code": self.exit_code}


def points_of(points: list[Measured], metric: str) -> list[Point]:
    """The configurations that measured ``metric``, as fit points."""
    return [Point(m.batch, m.pixels, float(v)) for m in points if (v := m.value(metric)) is not None]


def fit_points(points: list[Measured], metric: str) -> Optional[Fit]:
    """The best fit (:func:`oddoctor.budget.fit.best_fit`) of ``metric`` over the points that measured it."""
    pts = points_of(points, metric)
    return best_fit(pts) if len(pts) >= 2 else None


def predict(report: BudgetReport, target: str, budget: int, sizes: list[tuple[int, int]]) -> list[Prediction]:
    """The largest batch at each (height, width) of ``sizes`` for ``budget`` bytes."""
    fit = report.fit
    if fit is None:
        return []
    context = report.context_bytes or 0
    limit_mb = max(0, int((budget * (1 - report.margin) - context) // MIB))
    measured = {(h, w): max((p.batch for p in report.points if p.status == "ok" and (p.height, p.width) == (h, w)),
                            default=0) for h, w in sizes}
    return [Prediction(target, budget, h, w, largest_batch(fit, h * w, budget, margin=report.margin, overhead=context),
                       limit_mb, measured[(h, w)]) for h, w in sizes]


def build_report(spec: BudgetSpec, points: list[Measured], *,
                 gpu_free: Optional[list[dict[str, Any]]] = None, no_gpu_why: str = "") -> BudgetReport:
    """Fit the measured points and predict for ``spec.budget`` or each GPU of ``gpu_free``."""
    ok = [p for p in points if p.status == "ok"]
    first = ok[0].result if ok else {}
    device = first.get("device")
    contexts = [p.result["context_bytes"] for p in ok if isinstance(p.result.get("context_bytes"), int)]
    report = BudgetReport(model=spec.model, options=spec.options(), points=points,
                          fits={m: fit_points(points, m) for m in METRICS}, device=device, kind=first.get("kind"),
                          context_bytes=max(contexts) if contexts else None, margin=spec.margin)
    sizes = sorted({(p.height, p.width) for p in ok}, key=lambda hw: hw[0] * hw[1])
    held = report.fits.get("tf_held_bytes")
    peaks = points_of(points, "tf_peak_bytes") if report.fit is None and held is not None else []
    if len(peaks) >= 2 and held is not None:
        # Least squares made the peak shrink with the batch: held at least what the call holds.
        floor = held.coef.get("per_pixel", 0.0)
        report.fits["tf_peak_bytes"] = fit_above_floor(
            peaks, floor, f"the allocator peak measured lower at a larger batch (its call's working set differs "
                          f"between runs), which least squares read as memory that shrinks with the batch: its "
                          f"per-pixel term is the held part's ({floor:.3g} B per batch pixel: the batch and what "
                          "the call holds across it), its fixed term the highest point's remainder")
        if report.fit is not None and report.fit.floor:
            report.notes.append(f"fit of the allocator peak: {report.fit.floor}")
    if report.fit is None:
        measured = sum(1 for p in points if p.value("tf_peak_bytes") is not None)
        report.notes.append("no fit: fewer than two configurations were measured (see the table)" if measured < 2 else
                            f"no fit: no candidate model fits the {measured} measured peaks with memory that grows "
                            "with the batch and the pixels (see the table); measure more batches or sizes")
    if device is not None and not device.startswith("GPU"):
        report.notes.append("measured on the CPU: TensorFlow's allocator peak with TF_CPU_ALLOCATOR_USE_BFC=true "
                            "stands for the GPU allocator's; a GPU adds its CUDA context (not measured here)")
    calls = [(p, c, t) for p in ok if (c := p.value("tf_call_bytes")) and (t := p.value("tf_peak_bytes"))]
    if calls:
        p, c, t = max(calls, key=lambda x: x[1] / x[2])
        report.notes.append(
            f"of the allocator peak, {c / t:.0%} at batch {p.batch} at {size_text(p.height, p.width)} is the call's "
            "working set (the peak less the weights and the batch held across the call), set by whichever stage of "
            "an image is largest, by which of its tensors are still alive then (the executor's order) and by "
            "where TensorFlow's allocator places them (it counts a whole chunk: up to twice a tensor's bytes), "
            "which can differ between configurations and between two runs of one. It does not "
            "scale linearly with the batch or the image size: predictions beyond the measured batches and sizes "
            "can miss it (see the held and call columns; docs/budget.md gives the figures)")
    oom = [p for p in points if p.status == "oom"]
    if oom:
        report.notes.append("does not fit: " + ", ".join(f"batch {p.batch} at {size_text(p.height, p.width)}"
                                                          for p in oom))
    if spec.budget is not None:
        report.predictions = predict(report, "--vram", spec.budget, sizes)
    elif gpu_free:
        for g in gpu_free:
            if g.get("free_bytes") is None:
                report.notes.append(f"{g.get('label')}: free memory unknown: no prediction for it")
                continue
            report.predictions += predict(report, str(g.get("label")), int(g["free_bytes"]), sizes)
    else:
        why = f" ({no_gpu_why})" if no_gpu_why else ""
        report.notes.append(f"no GPU visible{why} and no --vram: no batch prediction (give --vram 8GiB to predict "
                            "for a GPU of that size)")
    return report


def _mib(n: Optional[float]) -> str:
    return "-" if n is None else f"{n / MIB:,.1f}"


def render_text(report: BudgetReport) -> str:
    """The human report: table, fit with residuals, predictions and settings, notes."""
    out = [f"oddoctor budget: {report.model} ({report.kind or 'kind unknown'}, measured on "
           f"{report.device or 'no device'})", ""]
    fit = report.fit
    residual = {(pt.batch, pt.pixels): r for pt, r in zip(fit.points, fit.residuals)} if fit else {}
    out.append(f"  {'batch':>5}  {'image':>10}  {'TF peak MiB':>11}  {'fit MiB':>9}  {'resid':>6}  "
               f"{'held MiB':>8}  {'call MiB':>8}  {'RSS peak MiB':>12}  outcome")
    for p in report.points:
        tf_peak = p.value("tf_peak_bytes")
        fitted = fit.predict(p.batch, p.pixels) if fit and p.status == "ok" else None
        r = residual.get((p.batch, p.pixels))
        outcome = {"ok": "ok", "oom": "does not fit (out of memory)"}.get(p.status, f"{p.status}: {p.error}")
        out.append(f"  {p.batch:>5}  {size_text(p.height, p.width):>10}  {_mib(tf_peak):>11}  {_mib(fitted):>9}  "
                   f"{'-' if r is None else f'{r:+.1%}':>6}  {_mib(p.value('tf_held_bytes')):>8}  "
                   f"{_mib(p.value('tf_call_bytes')):>8}  {_mib(p.value('rss_peak_bytes')):>12}  {outcome}")
    out.append("")
    for metric, label in (("tf_peak_bytes", "TF allocator peak"), ("tf_held_bytes", "TF held across the call"),
                          ("rss_peak_bytes", "process RSS peak")):
        f = report.fits.get(metric)
        if f is None:
            out.append(f"fit ({label}): none")
            continue
        loo = "n/a (too few points)" if f.loo_error is None else f"{f.loo_error:.1%}"
        worst = max((abs(r) for r in f.residuals), default=0.0)
        out.append(f"fit ({label}): {f.model}: {f.formula()}")
        out.append(f"  worst residual {worst:.1%}; worst leave-one-out error {loo}")
    if report.context_bytes is not None:
        out.append(f"CUDA context: {format_bytes(report.context_bytes)} (added to every prediction)")
    if report.predictions:
        out.append("")
        out.append(f"largest batch that fits (keeping {report.margin:.0%} of the budget free):")
        for pr in report.predictions:
            b = pr.batch
            need = "" if b.need is None else f", needs {format_bytes(b.need)}"
            out.append(f"  {pr.target} ({format_bytes(pr.budget)}), {size_text(pr.height, pr.width)}: "
                       f"batch {b.batch}{need} ({b.reason})")
            if pr.extrapolated:
                out.append(f"    extrapolated beyond batch {pr.measured_batch}, the largest measured at this size: "
                           f"the call's working set may not follow the line; confirm with "
                           f"--batch {b.batch} --image-size {size_text(pr.height, pr.width)}")
        best = report.predictions[-1]
        out.append("")
        out.append("settings to use (TF2):")
        out.append(f"  batch size {best.batch.batch} at {size_text(best.height, best.width)}")
        out.append("  tf.config.set_logical_device_configuration(gpu, "
                   f"[tf.config.LogicalDeviceConfiguration(memory_limit={best.memory_limit_mb})])")
        out.append("  or instead tf.config.experimental.set_memory_growth(gpu, True) (allow_growth; not both on one "
                   "GPU); TF1: ConfigProto(gpu_options=GPUOptions(allow_growth=True))")
    for n in report.notes:
        out.append(f"note: {n}")
    return "\n".join(out) + "\n"
