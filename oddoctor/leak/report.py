"""Turn the samples of each mode into verdicts, projections and the leak-test report (dict and text)."""

from __future__ import annotations

from typing import Any, Optional

from oddoctor.leak.runner import ModeRun
from oddoctor.leak.stats import Trend, median, trend

SCHEMA_VERSION = 1
MIB = 1024.0 * 1024.0

# Growth per image that counts as a leak. Graph ops are counted exactly, so any steady growth counts.
# Memory: 0.25 MiB/image is ~250 MiB per 1000 images, well above allocator noise once warmed up.
NODES_THRESHOLD = 0.5
RSS_THRESHOLD_MIB = 0.25
GPU_THRESHOLD_MIB = 0.25
# Latency: 2% of the median per image (twice as slow within ~50 images), at least 1 ms.
LATENCY_THRESHOLD_FRACTION = 0.02
LATENCY_THRESHOLD_FLOOR_MS = 1.0

MODE_TITLES = {"legacy": "legacy (tutorial loop)", "fixed": "fixed (LegacyDetector)"}
METRICS = (  # key, sample field, label, unit, scale
    ("graph_nodes", "graph_nodes", "graph nodes", "ops", 1.0),
    ("rss", "rss_bytes", "host RSS", "MiB", MIB),
    ("gpu_nvml", "gpu_nvml_bytes", "GPU memory (NVML)", "MiB", MIB),
    ("gpu_tf", "gpu_tf_bytes", "GPU memory (TF allocator)", "MiB", MIB),
    ("latency", "latency_ms", "latency", "ms", 1.0),
)
FIX_GRAPH = ("Build tensor_dict (and the mask-reframe ops) once outside the loop, call graph.finalize(), "
             "and only sess.run per image: `with LegacyDetector(model) as det: det(image)`")
FIX_SESSIONS = "Open one tf.compat.v1.Session(graph=graph) outside the loop and reuse it"


def _trend_dict(t: Trend, unit: str) -> dict[str, Any]:
    return {"status": t.status, "slope_per_image": t.slope, "threshold_per_image": t.threshold,
            "confidence": t.confidence,
            "verdict_confidence": verdict_confidence({"status": t.status, "confidence": t.confidence}),
            "part_confidence": list(t.part_confidence), "unit": unit,
            "n": t.n, "notes": t.notes}


def analyze_mode(run: ModeRun) -> dict[str, Any]:
    """Verdicts per metric over the post-warm-up series of one mode."""
    measured = [s for s in run.samples if not s.get("warmup")]
    out: dict[str, Any] = {
        "mode": run.mode, "title": MODE_TITLES.get(run.mode, run.mode), "wall_s": round(run.wall_s, 2),
        "iterations": len(measured), "warmup": len(run.samples) - len(measured),
        "start": run.start, "error": run.error, "metrics": {},
    }
    xs = [float(s["i"]) for s in measured]
    lat = [float(s["latency_ms"]) for s in measured]
    med_latency = median(lat)
    for key, field_name, label, unit, scale in METRICS:
        values = [s.get(field_name) for s in measured]
        if not measured or any(v is None for v in values):
            reason = _unavailable_reason(run, key) if measured else "no measured iterations"
            out["metrics"][key] = {"status": "n/a", "label": label, "unit": unit, "reason": reason}
            continue
        series = [float(v) / scale for v in values if v is not None]
        if key == "graph_nodes":
            threshold = NODES_THRESHOLD
        elif key == "rss":
            threshold = RSS_THRESHOLD_MIB
        elif key.startswith("gpu"):
            threshold = GPU_THRESHOLD_MIB
        else:
            threshold = max(LATENCY_THRESHOLD_FLOOR_MS, LATENCY_THRESHOLD_FRACTION * (med_latency or 0.0))
        d = _trend_dict(trend(series, threshold, xs=xs), unit)
        d.update(label=label, first=series[0], last=series[-1])
        out["metrics"][key] = d
    first = run.samples[0]["latency_ms"] if run.samples else None
    out["latency"] = {"first_image_ms": first, "median_ms": med_latency,
                      "p90_ms": _quantile(lat, 0.9) if lat else None}
    out["sessions_created"] = run.done.get("sessions", run.samples[-1]["sessions"] if run.samples else None)
    out["images_run"] = len(run.samples)
    leaking = [k for k, m in out["metrics"].items() if m["status"] == "leak"]
    if run.error:
        out["verdict"] = "error"
    elif len(measured) < 6:
        out["verdict"] = "too-short"
    else:
        out["verdict"] = "leak" if leaking else "ok"
    out["leaking_metrics"] = leaking
    out["projection"] = _projection(run, out["metrics"])
    out["findings"] = _findings(run, out)
    return out


def _unavailable_reason(run: ModeRun, key: str) -> str:
    if key == "gpu_nvml":
        return str(run.done.get("nvml") or run.start.get("nvml") or "NVML unavailable")
    if key == "gpu_tf":
        return str(run.start.get("tf_allocator") or "TensorFlow allocator stats unavailable")
    return "not recorded"


def _quantile(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def _projection(run: ModeRun, metrics: dict[str, Any]) -> dict[str, Any]:
    """At the measured growth, after how many more images free RAM / VRAM runs out."""
    proj: dict[str, Any] = {}
    for key, free_key, what in (("rss", "host_available_bytes", "RAM"),
                                ("gpu_nvml", "gpu_free_bytes", "VRAM"), ("gpu_tf", "gpu_free_bytes", "VRAM")):
        m = metrics.get(key, {})
        free = run.done.get(free_key) or run.start.get(free_key)
        if m.get("status") != "leak" or not free or not m.get("slope_per_image"):
            continue
        if what in proj:
            continue  # NVML and TF measure the same VRAM; NVML first
        per_image = float(m["slope_per_image"]) * MIB
        proj[what] = {"free_bytes": int(free), "bytes_per_image": per_image,
                      "images_to_exhaustion": int(free / per_image)}
    return proj


def _findings(run: ModeRun, mode: dict[str, Any]) -> list[dict[str, str]]:
    """Plain-language causes and fixes for what was measured (rules A1-A8 of the user reports)."""
    found: list[dict[str, str]] = []
    nodes = mode["metrics"].get("graph_nodes", {})
    images = mode["images_run"]
    if nodes.get("status") == "leak":
        masks = run.start.get("has_masks")
        where = (" The model has detection_masks: the mask-reframe block (squeeze/slice/"
                 "reframe_box_masks_to_image_masks/greater/expand_dims) is rebuilt per image."
                 if masks else "")
        found.append({"id": "leak.graph-growth",
                      "message": f"the graph grows by {nodes['slope_per_image']:.0f} ops per image: ops are "
                                 f"added inside the inference loop.{where}",
                      "fix": FIX_GRAPH})
    sessions = mode.get("sessions_created")
    if sessions and images and sessions > 1 and sessions >= images:
        found.append({"id": "leak.session-per-image",
                      "message": f"{sessions} Sessions created for {images} images (expect 1): every image pays "
                                 "for session setup and graph optimisation",
                      "fix": FIX_SESSIONS})
    for key in ("rss", "gpu_nvml", "gpu_tf"):
        m = mode["metrics"].get(key, {})
        if m.get("status") == "leak" and nodes.get("status") != "leak":
            found.append({"id": "leak.runtime-memory",
                          "message": f"{m['label']} grows {m['slope_per_image']:.2f} MiB per image while the "
                                     "graph is constant: a possible runtime/allocator leak, not user graph growth",
                          "fix": "Report it upstream with this JSON; meanwhile restart the worker every N images"})
        elif m.get("status") == "plateau":
            found.append({"id": "leak.plateau",
                          "message": f"{m['label']} stepped up once and then levelled off (allocator warm-up or "
                                     "a new image size), not a leak",
                          "fix": "None needed; raise --warmup to keep the step out of the measured series"})
    return found


def build_report(runs: dict[str, ModeRun], *, model: str, options: dict[str, Any],
                 demo: bool = False) -> dict[str, Any]:
    """The whole report; ``exit_code`` is 1 when a measured mode leaks (for --demo: unless it went as expected)."""
    modes = {name: analyze_mode(run) for name, run in runs.items()}
    report: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "command": "leak-test", "model": model,
                              "demo": demo, "options": options, "modes": modes}
    leg, fix = modes.get("legacy"), modes.get("fixed")
    if leg and fix and leg["latency"]["median_ms"] and fix["latency"]["median_ms"]:
        report["cost_ratio"] = {
            "median": leg["latency"]["median_ms"] / fix["latency"]["median_ms"],
            "first_image": (leg["latency"]["first_image_ms"] / fix["latency"]["first_image_ms"]
                            if fix["latency"]["first_image_ms"] else None)}
    if demo:
        # Only the modes that were measured: legacy must leak, fixed must pass.
        expected = ((leg is None or leg["verdict"] == "leak") and (fix is None or fix["verdict"] == "ok")
                    and bool(modes))
        report["demo_as_expected"] = expected
        report["exit_code"] = 0 if expected else 1
    else:
        bad = [m for m in modes.values() if m["verdict"] in ("leak", "error")]
        report["exit_code"] = 1 if bad else 0
    return report


def _fmt_slope(m: dict[str, Any]) -> str:
    if m["status"] == "n/a":
        return "n/a"
    if m.get("slope_per_image") is None:
        return m["status"]
    digits = 1 if m["unit"] in ("ops", "ms") else 2
    return f"{m['slope_per_image']:+.{digits}f} {m['unit']}/image"


def _fmt_status(m: dict[str, Any]) -> str:
    if m["status"] == "n/a":
        return ""
    label = {"leak": "LEAK", "ok": "ok", "plateau": "plateau", "too-short": "too short"}.get(m["status"], m["status"])
    conf = verdict_confidence(m)
    return label if conf is None else f"{label} {conf:.0%}"


def verdict_confidence(m: dict[str, Any]) -> Optional[float]:
    """Confidence in the metric's verdict: P(slope > threshold) for a leak, its complement otherwise."""
    conf = m.get("confidence")
    if conf is None or m["status"] not in ("leak", "ok"):
        return None  # a plateau is a judgement on the parts of the series, not one test
    return conf if m["status"] == "leak" else 1.0 - conf


def _fmt_bytes(n: Optional[float]) -> str:
    from oddoctor.units import format_bytes

    return format_bytes(n)


def render_text(report: dict[str, Any]) -> str:
    """The human report: one column per mode, then ratio, projection, findings."""
    modes = report["modes"]
    names = list(modes)
    lines: list[str] = []
    any_mode = next(iter(modes.values()))
    start = any_mode["start"]
    sizes = start.get("image_sizes") or []
    lines.append(f"oddoctor leak-test: {report['model']}")
    kind = start.get("model_kind", "?").replace("_", " ")
    lines.append(f"  model: {kind}, {start.get('model_nodes', '?')} nodes"
                 f"{', instance masks' if start.get('has_masks') else ''}; "
                 f"{any_mode['iterations']} measured images after {any_mode['warmup']} warm-up, "
                 f"{len(sizes)} image size(s); TensorFlow {start.get('tf_version', '?')}")
    skipped = start.get("skipped") or []
    if skipped:
        lines.append(f"  skipped {len(skipped)} unreadable image(s), e.g. {skipped[0][0]}: {skipped[0][1]}")
    lines.append("")
    w0, w = 34, 38
    lines.append("".ljust(w0) + "".join(modes[n]["title"].ljust(w) for n in names))
    verdicts = {"leak": "LEAKS", "ok": "no leak", "error": "ERROR", "too-short": "too few iterations"}
    lines.append("verdict".ljust(w0) + "".join(verdicts.get(modes[n]["verdict"], modes[n]["verdict"]).ljust(w)
                                              for n in names))
    for key, _field, label, _unit, _scale in METRICS:
        cells = []
        for n in names:
            m = modes[n]["metrics"].get(key)
            if m is None:
                cells.append("".ljust(w))
            elif m["status"] == "n/a":
                cells.append("n/a".ljust(w))
            else:
                cells.append(f"{_fmt_slope(m)}  {_fmt_status(m)}".ljust(w))
        lines.append(f"{label} growth".ljust(w0) + "".join(cells))
    lines.append("per-image cost (median)".ljust(w0) + "".join(
        f"{modes[n]['latency']['median_ms']:.1f} ms (first {modes[n]['latency']['first_image_ms']:.0f} ms)".ljust(w)
        if modes[n]["latency"]["median_ms"] is not None else "n/a".ljust(w) for n in names))
    lines.append("sessions created".ljust(w0) + "".join(
        (f"{modes[n]['sessions_created']} for {modes[n]['images_run']} images"
         if modes[n]["sessions_created"] is not None else "n/a").ljust(w) for n in names))
    lines.append("(growth = Theil-Sen slope after warm-up; % = confidence in the verdict, one-sided "
                 "Mann-Kendall against the threshold)")
    lines.append("")
    na = {m["label"]: m["reason"] for mode in modes.values() for m in mode["metrics"].values()
          if m["status"] == "n/a"}
    for label, reason in na.items():
        lines.append(f"n/a {label}: {reason}")
    ratio = report.get("cost_ratio")
    if ratio:
        lines.append(f"per-image cost ratio legacy/fixed: {ratio['median']:.1f}x median"
                     + (f", {ratio['first_image']:.1f}x on the first image" if ratio.get("first_image") else ""))
    for n in names:
        mode = modes[n]
        for what, p in mode["projection"].items():
            lines.append(f"{n}: at this rate the process exhausts free {what} ({_fmt_bytes(p['free_bytes'])}) "
                         f"after about {p['images_to_exhaustion']:,} more images "
                         f"(+{_fmt_bytes(p['bytes_per_image'])} per image)")
        if mode["error"]:
            lines.append(f"{n}: {mode['error'].get('message')}")
        for f in mode["findings"]:
            lines.append(f"{n}: {f['message']}")
            lines.append(f"{' ' * len(n)}  fix: {f['fix']}")
    if report.get("demo"):
        lines.append("")
        lines.append("demo: the legacy loop leaks and the fixed one does not, as expected."
                     if report.get("demo_as_expected") else
                     "demo: UNEXPECTED result (expected: legacy leaks, fixed passes); see the table above.")
    return "\n".join(lines) + "\n"
