"""Turn the samples of each mode into verdicts, projections and the leak-test report (typed, JSON, text).

:class:`LeakReport` is what :func:`oddoctor.leak.run_leak_test` returns; its ``to_dict()`` is the
``oddoctor leak-test --json`` document (``schema_version`` 1) and :func:`render_text` the human report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from oddoctor.leak.decide import GATING_METRICS, METRICS, Decision, judge
from oddoctor.leak.spawn import ModeRun
from oddoctor.leak.stats import MIN_POINTS, median

SCHEMA_VERSION = 1
MIB = 1024.0 * 1024.0

MODE_TITLES = {"legacy": "legacy (tutorial loop)", "fixed": "fixed (LegacyDetector)"}
FIX_GRAPH = ("Build tensor_dict (and the mask-reframe ops) once outside the loop, call graph.finalize(), "
             "and only sess.run per image: `with LegacyDetector(model) as det: det(image)`")
FIX_SESSIONS = "Open one tf.compat.v1.Session(graph=graph) outside the loop and reuse it"
NOT_AVAILABLE = "n/a"
REFRAME_WORDS = {"od_api": "the OD API's own utils_ops.reframe_box_masks_to_image_masks",
                 "oddoctor": "oddoctor's re-implementation of reframe_box_masks_to_image_masks"}


def verdict_confidence(status: str, confidence: Optional[float]) -> Optional[float]:
    """Confidence in a metric's verdict: P(slope > threshold) for a leak, its complement for ok."""
    if confidence is None or status not in ("leak", "ok"):
        return None  # a plateau is a judgement on the parts of the series, not one test
    return confidence if status == "leak" else 1.0 - confidence


@dataclass
class MetricVerdict:
    """The verdict on one metric of one mode; ``status`` "n/a" (with ``reason``) when it was not measured."""

    label: str
    unit: str
    status: str  # "leak", "plateau", "ok", "undecided", "too-short" (oddoctor.leak.decide.Decision), or "n/a"
    reason: Optional[str] = None  # why n/a
    slope_per_image: Optional[float] = None
    threshold_per_image: Optional[float] = None
    confidence: Optional[float] = None
    part_confidence: list[Optional[float]] = field(default_factory=list)
    n: int = 0
    notes: list[str] = field(default_factory=list)
    first: Optional[float] = None
    last: Optional[float] = None
    decided: bool = False
    rule: Optional[str] = None  # decide.Decision.rule: "exact", "trend", "segment", "tail", ...
    segment: Optional[list[int]] = None  # first and last image index (0-based) of the series judged
    steps: list[int] = field(default_factory=list)  # image index of each step found (memory)
    needed: Optional[int] = None  # undecided: measured images after which a verdict can be expected

    @classmethod
    def not_available(cls, label: str, unit: str, reason: str) -> MetricVerdict:
        return cls(label=label, unit=unit, status=NOT_AVAILABLE, reason=reason)

    @classmethod
    def from_decision(cls, d: Decision, *, label: str, unit: str, series: list[float]) -> MetricVerdict:
        return cls(label=label, unit=unit, status=d.status, slope_per_image=d.slope, threshold_per_image=d.threshold,
                   confidence=d.confidence, part_confidence=list(d.part_confidence), n=d.n, notes=list(d.notes),
                   first=series[0], last=series[-1], decided=d.decided, rule=d.rule,
                   segment=[int(d.segment[0]), int(d.segment[1])] if d.segment else None,
                   steps=[int(x) for x in d.steps], needed=d.needed)

    @property
    def verdict_confidence(self) -> Optional[float]:
        return verdict_confidence(self.status, self.confidence)

    def to_dict(self) -> dict[str, Any]:
        if self.status == NOT_AVAILABLE:
            return {"status": self.status, "label": self.label, "unit": self.unit, "reason": self.reason}
        return {"status": self.status, "slope_per_image": self.slope_per_image,
                "threshold_per_image": self.threshold_per_image, "confidence": self.confidence,
                "verdict_confidence": self.verdict_confidence, "part_confidence": list(self.part_confidence),
                "unit": self.unit, "n": self.n, "notes": self.notes, "label": self.label, "first": self.first,
                "last": self.last, "decided": self.decided, "rule": self.rule, "segment": self.segment,
                "steps": self.steps, "needed_images": self.needed}


@dataclass
class Latency:
    """Per-image cost of one mode, in ms: the first image (warm-up included) and the measured ones."""

    first_image_ms: Optional[float]
    median_ms: Optional[float]
    p90_ms: Optional[float]

    def to_dict(self) -> dict[str, Any]:
        return {"first_image_ms": self.first_image_ms, "median_ms": self.median_ms, "p90_ms": self.p90_ms}


@dataclass
class Projection:
    """At the measured growth, after how many more images the free RAM or VRAM runs out."""

    free_bytes: int
    bytes_per_image: float
    images_to_exhaustion: int
    segment: Optional[list[int]] = None  # the images (0-based, inclusive) whose growth it extrapolates

    def to_dict(self) -> dict[str, Any]:
        return {"free_bytes": self.free_bytes, "bytes_per_image": self.bytes_per_image,
                "images_to_exhaustion": self.images_to_exhaustion, "segment": self.segment}


@dataclass
class Finding:
    """A cause in plain language and its fix."""

    id: str
    message: str
    fix: str

    def to_dict(self) -> dict[str, str]:
        return {"id": self.id, "message": self.message, "fix": self.fix}


@dataclass
class ModeReport:
    """One mode's verdicts; ``start`` and ``error`` are the child's own records, ``samples`` its iterations."""

    mode: str
    title: str
    wall_s: float
    iterations: int  # measured (after warm-up)
    warmup: int
    start: dict[str, Any]
    error: Optional[dict[str, Any]]
    metrics: dict[str, MetricVerdict]
    latency: Latency
    sessions_created: Optional[int]
    images_run: int
    verdict: str  # "leak", "ok", "inconclusive" (a graph or memory metric undecided), "error", "too-short"
    leaking_metrics: list[str]
    projection: dict[str, Projection]  # "RAM", "VRAM"
    findings: list[Finding]
    samples: list[dict[str, Any]] = field(default_factory=list)
    undecided_metrics: list[str] = field(default_factory=list)
    stopped: dict[str, Any] = field(default_factory=dict)  # reason ("decided", "max-images", "error"), message
    reframe: Optional[str] = None  # legacy loop: "od_api" or "oddoctor" (whose mask-reframe ops it built)
    entry: Optional[str] = None  # --entry: the user's function that replaced the tutorial loop
    smallest_run: dict[str, Any] = field(default_factory=dict)  # see smallest_run()

    def to_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "title": self.title, "wall_s": self.wall_s, "iterations": self.iterations,
                "warmup": self.warmup, "start": self.start, "error": self.error,
                "metrics": {k: m.to_dict() for k, m in self.metrics.items()}, "latency": self.latency.to_dict(),
                "sessions_created": self.sessions_created, "images_run": self.images_run, "verdict": self.verdict,
                "leaking_metrics": self.leaking_metrics,
                "projection": {k: p.to_dict() for k, p in self.projection.items()},
                "findings": [f.to_dict() for f in self.findings], "undecided_metrics": self.undecided_metrics,
                "stopped": self.stopped, "reframe": self.reframe, "entry": self.entry,
                "smallest_run": self.smallest_run, "samples": self.samples}


@dataclass
class CostRatio:
    """Legacy over fixed per-image latency: the medians, and the first images."""

    median: float
    first_image: Optional[float]

    def to_dict(self) -> dict[str, Any]:
        return {"median": self.median, "first_image": self.first_image}


@dataclass
class LeakReport:
    """The leak test's outcome; ``to_dict()`` is the ``--json`` document, ``runs`` the children's raw records."""

    model: str
    demo: bool
    options: dict[str, Any]
    modes: dict[str, ModeReport]
    exit_code: int  # 1 when a measured mode leaks or failed (with demo: unless it went as expected)
    cost_ratio: Optional[CostRatio] = None  # with both modes measured
    demo_as_expected: Optional[bool] = None  # with demo only
    plot: Optional[str] = None  # where the figure was written, if it was
    runs: dict[str, ModeRun] = field(default_factory=dict, repr=False, compare=False)
    schema_version: int = SCHEMA_VERSION
    command: str = "leak-test"

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"schema_version": self.schema_version, "command": self.command, "model": self.model,
                               "demo": self.demo, "options": self.options,
                               "modes": {k: m.to_dict() for k, m in self.modes.items()}}
        if self.cost_ratio is not None:
            doc["cost_ratio"] = self.cost_ratio.to_dict()
        if self.demo_as_expected is not None:
            doc["demo_as_expected"] = self.demo_as_expected
        doc["exit_code"] = self.exit_code
        if self.plot is not None:
            doc["plot"] = self.plot
        return doc


def analyze_mode(run: ModeRun) -> ModeReport:
    """Verdicts per metric over the post-warm-up series of one mode (:func:`oddoctor.leak.decide.judge`)."""
    measured = [s for s in run.samples if not s.get("warmup")]
    lat = [float(s["latency_ms"]) for s in measured]
    med_latency = median(lat)
    decisions = judge(run.samples)
    metrics: dict[str, MetricVerdict] = {}
    for key, field_name, label, unit, scale in METRICS:
        decision = decisions.get(key)
        if decision is None:
            reason = _unavailable_reason(run, key) if measured else "no measured iterations"
            metrics[key] = MetricVerdict.not_available(label, unit, reason)
            continue
        series = [float(s[field_name]) / scale for s in measured]
        metrics[key] = MetricVerdict.from_decision(decision, label=label, unit=unit, series=series)
    first = run.samples[0]["latency_ms"] if run.samples else None
    leaking = [k for k, m in metrics.items() if m.status == "leak"]
    undecided = [k for k, m in metrics.items() if m.status not in (NOT_AVAILABLE, "n/a") and not m.decided]
    if run.error:
        verdict = "error"
    elif len(measured) < MIN_POINTS:
        verdict = "too-short"
    elif leaking:
        verdict = "leak"
    else:
        verdict = "inconclusive" if any(k in GATING_METRICS for k in undecided) else "ok"
    title = f"your loop ({run.start['entry']})" if run.start.get("entry") else MODE_TITLES.get(run.mode, run.mode)
    mode = ModeReport(
        mode=run.mode, title=title, wall_s=round(run.wall_s, 2),
        iterations=len(measured), warmup=len(run.samples) - len(measured), start=run.start, error=run.error,
        metrics=metrics,
        latency=Latency(first_image_ms=first, median_ms=med_latency, p90_ms=_quantile(lat, 0.9) if lat else None),
        sessions_created=run.done.get("sessions", run.samples[-1]["sessions"] if run.samples else None),
        images_run=len(run.samples), verdict=verdict, leaking_metrics=leaking,
        projection=_projection(run, metrics), findings=[], samples=run.samples, undecided_metrics=undecided,
        stopped=_stopped(run, len(measured), undecided), reframe=run.start.get("reframe"),
        entry=run.start.get("entry"),
        smallest_run=smallest_run(metrics, len(measured), len(run.samples) - len(measured)))
    mode.findings = _findings(run, mode)
    return mode


def smallest_run(metrics: dict[str, MetricVerdict], measured: int, warmup: int) -> dict[str, Any]:
    """The shortest run that gives this model's verdicts: ``warmup`` and ``iterations`` (measured images)
    for the graph and memory verdicts (those measured here when all were decided, else the most any
    undecided one still needs), and ``latency_iterations`` for a latency verdict (None when decided)."""
    gating = [m for k, m in metrics.items() if k in GATING_METRICS and m.status not in (NOT_AVAILABLE, "n/a")]
    open_ = [m.needed or measured + 1 for m in gating if not m.decided]
    lat = metrics.get("latency")
    lat_needed = None
    if lat is not None and lat.status not in (NOT_AVAILABLE, "n/a") and not lat.decided:
        lat_needed = lat.needed or measured + 1
    return {"warmup": warmup, "iterations": max(open_) if open_ else measured, "decided": not open_,
            "latency_iterations": lat_needed}


def _stopped(run: ModeRun, measured: int, undecided: list[str]) -> dict[str, Any]:
    """Why the mode's child stopped: every metric decided, -n reached, or it failed."""
    images = len(run.samples)
    warm = images - measured
    ran = f"{images} images ({warm} warm-up + {measured} measured)"
    if run.error:
        return {"reason": "error", "images": images, "message": f"stopped after {ran}: {run.error.get('kind')}"}
    if run.done.get("stopped") == "decided":
        rest = f"; {', '.join(undecided)} undecided (latency never holds a mode back)" if undecided else ""
        return {"reason": "decided", "images": images,
                "message": f"stopped after {ran}: graph and memory decided{rest}"}
    open_ = f"; undecided: {', '.join(undecided)}" if undecided else ""
    how = " (-n reached before every metric was decided)" if run.done.get("until_decided") and undecided else ""
    return {"reason": "max-images", "images": images, "message": f"ran all {ran}{how}{open_}"}


def run_advice(mode: ModeReport) -> Optional[str]:
    """One line: the smallest run that decides this model's verdicts, when this run was too short for one."""
    run = mode.smallest_run
    if not run or mode.verdict in ("error", "too-short"):
        return None
    parts = []
    if not run.get("decided"):
        open_ = [k for k in mode.undecided_metrics if k in GATING_METRICS]
        parts.append(f"inconclusive ({', '.join(open_)} undecided after {mode.iterations} measured images): run "
                     f"longer, -w {run['warmup']} -n {run['iterations']} at least")
    if run.get("latency_iterations"):
        parts.append(f"a latency verdict needs about {run['latency_iterations']} measured images at this noise "
                     f"(--no-until-decided -n {run['latency_iterations']})")
    return "; ".join(parts) or None


def _unavailable_reason(run: ModeRun, key: str) -> str:
    if key == "gpu_nvml":
        return str(run.done.get("nvml") or run.start.get("nvml") or "NVML unavailable")
    if key == "gpu_tf":
        return str(run.start.get("tf_allocator") or "TensorFlow allocator stats unavailable")
    return "not recorded"


def _quantile(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def _projection(run: ModeRun, metrics: dict[str, MetricVerdict]) -> dict[str, Projection]:
    """At the measured growth, after how many more images free RAM / VRAM runs out."""
    proj: dict[str, Projection] = {}
    for key, free_key, what in (("rss", "host_available_bytes", "RAM"),
                                ("gpu_nvml", "gpu_free_bytes", "VRAM"), ("gpu_tf", "gpu_free_bytes", "VRAM")):
        m = metrics.get(key)
        free = run.done.get(free_key) or run.start.get(free_key)
        if m is None or m.status != "leak" or not free or not m.slope_per_image:
            continue
        if what in proj:
            continue  # NVML and TF measure the same VRAM; NVML first
        per_image = float(m.slope_per_image) * MIB
        proj[what] = Projection(free_bytes=int(free), bytes_per_image=per_image,
                                images_to_exhaustion=int(free / per_image), segment=m.segment)
    return proj


def _findings(run: ModeRun, mode: ModeReport) -> list[Finding]:
    """Plain-language causes and fixes for what was measured (rules A1-A8 of the user reports)."""
    found: list[Finding] = []
    nodes = mode.metrics.get("graph_nodes")
    graph_grows = nodes is not None and nodes.status == "leak"
    images = mode.images_run
    if nodes is not None and graph_grows:
        masks = run.start.get("has_masks")
        where = (" The model has detection_masks: the mask-reframe block (squeeze/slice/"
                 "reframe_box_masks_to_image_masks/greater/expand_dims) is rebuilt per image."
                 if masks else "")
        found.append(Finding("leak.graph-growth",
                             f"the graph grows by {nodes.slope_per_image:.0f} ops per image: ops are "
                             f"added inside the inference loop.{where}", FIX_GRAPH))
    sessions = mode.sessions_created
    if sessions and images and sessions > 1 and sessions >= images:
        found.append(Finding("leak.session-per-image",
                             f"{sessions} Sessions created for {images} images (expect 1): every image pays "
                             "for session setup and graph optimisation", FIX_SESSIONS))
    for key in ("rss", "gpu_nvml", "gpu_tf"):
        m = mode.metrics.get(key)
        if m is None:
            continue
        if m.status == "leak" and not graph_grows:
            found.append(Finding("leak.runtime-memory",
                                 f"{m.label} grows {m.slope_per_image:.2f} MiB per image while the graph is "
                                 "constant: a possible runtime/allocator leak, not user graph growth",
                                 "Report it upstream with this JSON; meanwhile restart the worker every N images"))
        elif m.status == "plateau":
            found.append(Finding("leak.plateau",
                                 f"{m.label} stepped up once and then levelled off (allocator warm-up or "
                                 "a new image size), not a leak",
                                 "None needed; raise --warmup to keep the step out of the measured series"))
    return found


def build_report(runs: dict[str, ModeRun], *, model: str, options: dict[str, Any],
                 demo: bool = False) -> LeakReport:
    """The whole report; ``exit_code`` is 1 when a measured mode leaks (for --demo: unless it went as expected)."""
    modes = {name: analyze_mode(run) for name, run in runs.items()}
    leg, fix = modes.get("legacy"), modes.get("fixed")
    cost_ratio = None
    if leg and fix and leg.latency.median_ms and fix.latency.median_ms:
        leg_first, fix_first = leg.latency.first_image_ms, fix.latency.first_image_ms
        cost_ratio = CostRatio(median=leg.latency.median_ms / fix.latency.median_ms,
                               first_image=leg_first / fix_first if fix_first and leg_first is not None else None)
    demo_as_expected = None
    if demo:
        # Only the modes that were measured: legacy must leak, fixed must pass.
        demo_as_expected = ((leg is None or leg.verdict == "leak") and (fix is None or fix.verdict == "ok")
                            and bool(modes))
        exit_code = 0 if demo_as_expected else 1
    else:
        bad = [m for m in modes.values() if m.verdict in ("leak", "error")]
        exit_code = 1 if bad else 0
    return LeakReport(model=model, demo=demo, options=options, modes=modes, exit_code=exit_code,
                      cost_ratio=cost_ratio, demo_as_expected=demo_as_expected, runs=dict(runs))


def _fmt_slope(m: MetricVerdict) -> str:
    if m.status == NOT_AVAILABLE:
        return NOT_AVAILABLE
    if m.slope_per_image is None:
        return m.status
    digits = 1 if m.unit in ("ops", "ms") else 2
    return f"{m.slope_per_image:+.{digits}f} {m.unit}/image"


def _fmt_status(m: MetricVerdict) -> str:
    if m.status == NOT_AVAILABLE:
        return ""
    label = {"leak": "LEAK", "ok": "ok", "plateau": "plateau", "too-short": "too short"}.get(m.status, m.status)
    if m.rule == "exact":
        return f"{label} exact"
    if m.rule == "sessions":
        return f"{label} in chunks"
    conf = m.verdict_confidence
    text = label if conf is None else f"{label} {conf:.0%}"
    if m.rule == "segment" and m.segment:
        text += f" from #{m.segment[0] + 1}"
    return text


def _fmt_bytes(n: Optional[float]) -> str:
    from oddoctor.units import format_bytes

    return format_bytes(n)


def render_text(report: LeakReport) -> str:
    """The human report: one column per mode, then ratio, projection, findings."""
    modes = report.modes
    names = list(modes)
    lines: list[str] = []
    any_mode = next(iter(modes.values()))
    start = any_mode.start
    sizes = start.get("image_sizes") or []
    lines.append(f"oddoctor leak-test: {report.model}")
    kind = start.get("model_kind", "?").replace("_", " ")
    lines.append(f"  model: {kind}, {start.get('model_nodes', '?')} nodes"
                 f"{', instance masks' if start.get('has_masks') else ''}; "
                 f"{any_mode.warmup} warm-up image(s), then measured "
                 f"{'until decided' if report.options.get('until_decided', True) else 'to -n'} "
                 f"(at most {report.options.get('iterations', '?')}), "
                 f"{len(sizes)} image size(s); TensorFlow {start.get('tf_version', '?')}")
    if start.get("warmup_why"):
        lines.append(f"  {start['warmup_why']}")
    skipped = start.get("skipped") or []
    if skipped:
        lines.append(f"  skipped {len(skipped)} unreadable image(s), e.g. {skipped[0][0]}: {skipped[0][1]}")
    lines.append("")
    w0, w = 34, 38
    lines.append("".ljust(w0) + "".join(modes[n].title.ljust(w) for n in names))
    verdicts = {"leak": "LEAKS", "ok": "no leak", "error": "ERROR", "too-short": "too few iterations",
                "inconclusive": "inconclusive: run longer"}
    if any(modes[n].undecided_metrics and modes[n].verdict == "ok" for n in names):
        verdicts["ok"] = "no leak found"
    lines.append("verdict".ljust(w0) + "".join(verdicts.get(modes[n].verdict, modes[n].verdict).ljust(w)
                                              for n in names))
    for key, _field, label, _unit, _scale in METRICS:
        cells = []
        for n in names:
            m = modes[n].metrics.get(key)
            if m is None:
                cells.append("".ljust(w))
            elif m.status == NOT_AVAILABLE:
                cells.append(NOT_AVAILABLE.ljust(w))
            else:
                cells.append(f"{_fmt_slope(m)}  {_fmt_status(m)}".ljust(w))
        lines.append(f"{label} growth".ljust(w0) + "".join(cells))
    lines.append("per-image cost (median)".ljust(w0) + "".join(
        f"{modes[n].latency.median_ms:.1f} ms (first {modes[n].latency.first_image_ms:.0f} ms)".ljust(w)
        if modes[n].latency.median_ms is not None else "n/a".ljust(w) for n in names))
    lines.append("sessions created".ljust(w0) + "".join(
        (f"{modes[n].sessions_created} for {modes[n].images_run} images"
         if modes[n].sessions_created is not None else "n/a").ljust(w) for n in names))
    lines.append("images run".ljust(w0) + "".join(
        f"{modes[n].images_run} ({modes[n].stopped.get('reason', '?')})".ljust(w) for n in names))
    chunks = any(m.rule == "sessions" for mode in modes.values() for m in mode.metrics.values())
    lines.append("(growth = Theil-Sen slope after warm-up, exact for graph ops that grew alike 3 times; % = confidence "
                 "in the verdict, one-sided Mann-Kendall against the threshold; from #K = memory judged after its "
                 "last step, at image K"
                 + ("; in chunks = steps while the graph grows and every image opens a Session, growth their "
                    "average over the measured images" if chunks else "") + ")")
    lines.append("")
    na = {m.label: m.reason for mode in modes.values() for m in mode.metrics.values() if m.status == NOT_AVAILABLE}
    for label, reason in na.items():
        lines.append(f"n/a {label}: {reason}")
    starts = [m.start for m in modes.values() if isinstance(m.start, dict)]
    reads = {str(st["rss_read"]) for st in starts if st.get("rss_read") not in (None, "as it is")}
    if reads:
        lines.append(f"host RSS read {'; '.join(sorted(reads))} after each image")
    envs = {" ".join(f"{k}={v}" for k, v in st["malloc_env"].items()) for st in starts
            if isinstance(st.get("malloc_env"), dict) and st["malloc_env"]}
    if envs:
        lines.append(f"host allocator set by the environment: {'; '.join(sorted(envs))} (it changes the RSS's "
                     "steps and creep: docs/leak-test.md)")
    ratio = report.cost_ratio
    if ratio:
        lines.append(f"per-image cost ratio legacy/fixed: {ratio.median:.1f}x median"
                     + (f", {ratio.first_image:.1f}x on the first image" if ratio.first_image else ""))
    for n in names:
        mode = modes[n]
        if mode.stopped.get("message"):
            lines.append(f"{n}: {mode.stopped['message']}")
        advice = run_advice(mode)
        if advice:
            lines.append(f"{n}: {advice}")
        if mode.reframe:
            why = mode.start.get("reframe_why") if isinstance(mode.start, dict) else None
            lines.append(f"{n}: mask reframing built with {REFRAME_WORDS.get(mode.reframe, mode.reframe)}"
                         + (f" ({why})" if why else ""))
        for what, p in mode.projection.items():
            seg = f", measured over images {p.segment[0] + 1}-{p.segment[1] + 1}" if p.segment else ""
            lines.append(f"{n}: at this rate the process exhausts free {what} ({_fmt_bytes(p.free_bytes)}) "
                         f"after about {p.images_to_exhaustion:,} more images "
                         f"(+{_fmt_bytes(p.bytes_per_image)} per image{seg})")
        if mode.error:
            lines.append(f"{n}: {mode.error.get('message')}")
        for f in mode.findings:
            lines.append(f"{n}: {f.message}")
            lines.append(f"{' ' * len(n)}  fix: {f.fix}")
    if report.demo:
        lines.append("")
        fixed = modes.get("fixed")
        if report.demo_as_expected:
            lines.append("demo: the legacy loop leaks and the fixed one does not, as expected.")
        elif fixed is not None and fixed.verdict == "inconclusive" and fixed.stopped.get("reason") == "max-images":
            lines.append("demo: the fixed loop found no leak but was not decided in this run: run longer "
                         "(see above).")
        else:
            lines.append("demo: UNEXPECTED result (expected: legacy leaks, fixed passes); see the table above.")
    return "\n".join(lines) + "\n"
