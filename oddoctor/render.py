"""Render a :class:`~oddoctor.runner.Report`: a doctor-style text report, or versioned JSON.

The JSON document is described in docs/json-schema.md and oddoctor/schemas/check-report.schema.json.
"""

from __future__ import annotations

import json
import sys
from typing import Any, Optional, TextIO

from oddoctor import __version__
from oddoctor.checks import Result, Status
from oddoctor.runner import Report
from oddoctor.snapshot import Snapshot

REPORT_SCHEMA_VERSION = 1

_MARKS = {Status.OK: "✓", Status.WARN: "!", Status.FAIL: "✗", Status.SKIP: "-", Status.ERROR: "☠"}
_ASCII = {Status.OK: "ok", Status.WARN: "!", Status.FAIL: "X", Status.SKIP: "-", Status.ERROR: "E"}
_COLORS = {Status.OK: "32", Status.WARN: "33", Status.FAIL: "31", Status.SKIP: "2", Status.ERROR: "35"}


def report_to_dict(report: Report, *, strict: bool = False, origin: str = "this machine") -> dict[str, Any]:
    snap = report.snapshot
    counts = report.counts()
    code = report.exit_code(strict=strict)
    return {
        "schema_version": REPORT_SCHEMA_VERSION,
        "kind": "oddoctor.check-report",
        "oddoctor_version": __version__,
        "origin": origin,
        "snapshot": {
            "schema_version": snap.schema_version,
            "hostname": snap.hostname,
            "collected_at": snap.collected_at,
            "source": snap.source,
            "facts": facts_summary(snap, report.target_tf),
        },
        "results": [r.to_dict() for r in report.results],
        "summary": {**counts, "total": len(report.results)},
        "strict": strict,
        "exit_code": code,
        "verdict": "ok" if code == 0 else "problems",
    }


def render_json(report: Report, *, strict: bool = False, origin: str = "this machine",
                out: TextIO | None = None) -> None:
    stream = out or sys.stdout
    stream.write(json.dumps(report_to_dict(report, strict=strict, origin=origin), indent=2, default=str) + "\n")
    stream.flush()


def facts_summary(snap: Snapshot, target_tf: Optional[str] = None) -> dict[str, Any]:
    """The few facts a reader wants first, for the report header and the JSON summary (null: unknown)."""
    from oddoctor.view import view

    v = view(snap, target_tf)
    tf = snap.tensorflow
    bi = tf.build_info or {}
    cuda, _ = v.build_cuda()
    cudnn, _ = v.build_cudnn()
    cudart_pick, cudnn_pick = v.loader_pick("cudart"), v.loader_pick("cudnn")
    return {
        "platform": " ".join(x for x in (snap.platform.system, snap.platform.machine) if x) or None,
        "distro": (snap.platform.distro or "") + (" (WSL)" if snap.platform.is_wsl else "") or None,
        "python": snap.python.version,
        "driver": snap.nvml.driver_version or (str(v.driver) if v.driver else None),
        "nvml_error": snap.nvml.error if not snap.nvml.available else None,
        "gpus": None if v.gpus is None else
        [f"{g.name or 'unnamed GPU'} (cc {g.compute_capability or 'unknown'})" for g in v.gpus],
        "nvidia_hardware": v.nvidia_hw,
        "tensorflow": tf.version if v.tf_installed is not False else None,
        "tf_installed": v.tf_installed,
        "tf_build_cuda": bi.get("cuda_version") or (str(cuda) if cuda else None),
        "tf_build_cudnn": bi.get("cudnn_version") or (str(cudnn) if cudnn else None),
        "cudart": cudart_pick.version if cudart_pick else None,
        "cudnn": cudnn_pick.version if cudnn_pick else None,
        "user_log_lines": len(snap.user_log),
    }


_CONTROL = {c: f"\\x{c:02x}" for c in [*range(0x20), *range(0x7F, 0xA0)]}
_CONTROL.update({0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t"})


def clean(text: object) -> str:
    """Text from facts, made safe for a terminal: control characters (escape sequences, a newline that would
    forge a result line) are shown escaped, never interpreted."""
    return str(text).translate(_CONTROL)


class _Style:
    def __init__(self, stream: TextIO, color: bool) -> None:
        self.color = color
        enc = getattr(stream, "encoding", None) or "ascii"
        try:
            "✓✗☠→".encode(enc)
            self.unicode = True
        except (UnicodeEncodeError, LookupError):
            self.unicode = False

    def paint(self, text: str, code: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.color else text

    def mark(self, status: Status) -> str:
        m = (_MARKS if self.unicode else _ASCII)[status]
        return self.paint(f"[{m}]", _COLORS[status])


def render_human(report: Report, *, verbose: bool = False, strict: bool = False, color: bool = False,
                 origin: str = "this machine", out: TextIO | None = None, grouped: bool = True) -> None:
    """The report for a person. ``grouped`` (unless ``verbose``): one line per area when all is well, each problem
    with its fix under its area, skips folded into one line. Else (``-v``, ``--only``): one line per check."""
    stream = out or sys.stdout
    st = _Style(stream, color)
    snap = report.snapshot
    f = facts_summary(snap, report.target_tf)
    w = stream.write
    host = f" ({clean(snap.hostname)})" if snap.hostname else ""
    w(st.paint(f"oddoctor {__version__}: diagnosis of {clean(origin)}{host}", "1"))
    w(f", collected {clean(snap.collected_at)}\n" if snap.collected_at else "\n")
    if snap.source not in ("", "collected"):
        w(f"  source: {clean(snap.source)}\n")
    f = {k: clean(val) if isinstance(val, str) else [clean(x) for x in val] if isinstance(val, list) else val
         for k, val in f.items()}
    w(f"  Python {f['python'] or 'unknown'} on {f['platform'] or 'unknown platform'}"
      + (f", {f['distro']}" if f["distro"] else "") + "\n")
    gpus = "no GPU listed" if f["gpus"] == [] else "GPUs unknown" if f["gpus"] is None else "; ".join(f["gpus"])
    if f["driver"]:
        w(f"  NVIDIA driver {f['driver']}: {gpus}\n")
    elif f["nvml_error"]:
        w(f"  NVIDIA driver: not answering ({f['nvml_error']}); {gpus}\n")
    elif f["nvidia_hardware"] is False:
        w("  NVIDIA driver: none (no NVIDIA GPU on this machine)\n")
    else:
        w(f"  NVIDIA driver: unknown; {gpus}\n")
    if report.target_tf:
        tf = snap.tensorflow
        installed = (f"installed: {tf.version}" if tf.installed and tf.version else "not installed"
                     if tf.installed is False else "installed: unknown")
        w(f"  TensorFlow {report.target_tf} judged (--tf; {installed}), built for CUDA {f['tf_build_cuda']}, "
          f"cuDNN {f['tf_build_cudnn']}\n")
    elif f["tensorflow"]:
        build = (f"built for CUDA {f['tf_build_cuda']}, cuDNN {f['tf_build_cudnn']}"
                 if f["tf_build_cuda"] else "CUDA build unknown")
        w(f"  TensorFlow {f['tensorflow']} ({clean(snap.tensorflow.distribution or 'tensorflow')}), {build}\n")
    elif f["tf_installed"] is False:
        w("  TensorFlow: not installed\n")
    else:
        w("  TensorFlow: unknown\n")
    if f["user_log_lines"]:
        w(f"  with {f['user_log_lines']} line(s) of the user's log as evidence\n")
    w("\n")
    if verbose or not grouped:  # one line per check (with -v: and its details)
        width = max([len(r.id) for r in report.results] + [10])
        for r in report.results:
            _render_result(r, st, w, width, verbose)
    else:
        _render_grouped(report.results, st, w)
    w("\n" + _summary_line(report, strict, st) + "\n")
    stream.flush()


_WORST = (Status.FAIL, Status.ERROR, Status.WARN, Status.OK)


def _is_unknown(r: Result) -> bool:
    return r.status == Status.SKIP and r.message.startswith("could not tell")


def _counts_text(results: list[Result]) -> str:
    n = {s: sum(1 for r in results if r.status == s) for s in Status}
    unknown = sum(1 for r in results if _is_unknown(r))
    parts = [(n[Status.FAIL], "failed"), (n[Status.ERROR], "errored"), (n[Status.WARN], "warning(s)"),
             (n[Status.OK], "ok"), (unknown, "could not tell"), (n[Status.SKIP] - unknown, "not applicable")]
    return ", ".join(f"{k} {label}" for k, label in parts if k)


def _render_grouped(results: list[Result], st: _Style, w: Any) -> None:
    """One line per area (the id's first part) when all is well; an area with a problem lists each failure,
    error and warning with its fix under it; areas where every check skipped fold into one line (``-v``: all)."""
    areas: dict[str, list[Result]] = {}
    for r in results:
        areas.setdefault(r.id.split(".", 1)[0], []).append(r)
    shown = {a: rs for a, rs in areas.items() if any(r.status != Status.SKIP for r in rs)}
    folded = [r for a, rs in areas.items() if a not in shown for r in rs]
    width = max([len(a) for a in shown] + [8])
    rwidth = max([len(r.id) for r in results if r.status in _WORST[:3]] + [10])
    for area, rs in shown.items():
        active = [r for r in rs if r.status != Status.SKIP]
        worst = next(s for s in _WORST if any(r.status == s for r in active))
        w(f"{st.mark(worst)} {clean(area).ljust(width)}  {_counts_text(rs)}\n")
        for r in rs:
            if r.status in _WORST[:3]:
                w("    ")
                _render_result(r, st, w, rwidth, False, pad=" " * 8)
    if folded:
        names = ", ".join(clean(a) for a in areas if a not in shown)
        w(f"{st.mark(Status.SKIP)} {_counts_text(folded)} ({names}): -v lists them\n")


def _render_result(r: Result, st: _Style, w: Any, width: int, verbose: bool, pad: str = " " * 4) -> None:
    w(f"{st.mark(r.status)} {clean(r.id).ljust(width)}  {clean(r.message)}\n")
    if r.fix and r.status in (Status.FAIL, Status.WARN, Status.ERROR):
        arrow = "→" if st.unicode else "->"
        w(pad + st.paint(f"{arrow} fix: {clean(r.fix)}", "36") + "\n")
    if verbose:
        w(f"{pad}{clean(r.title)} [plugin {clean(r.plugin)}, {r.duration_s * 1000:.1f} ms]\n")
        for k, v in r.details.items():
            text = v if isinstance(v, str) else json.dumps(v, default=str)
            lines = text.splitlines() or [""]
            w(f"{pad}  {clean(k)}: {clean(lines[0])}\n")
            for ln in lines[1:]:
                w(f"{pad}    {clean(ln)}\n")


def _summary_line(report: Report, strict: bool, st: _Style) -> str:
    c = report.counts()
    problems = c["fail"] + c["error"] + (c["warn"] if strict else 0)
    parts = [f"{c['fail']} failed", f"{c['error']} errored", f"{c['warn']} warning(s)",
             f"{c['ok']} ok", f"{c['skip']} skipped"]
    if problems == 0:
        head = "No problems found" + (" (warnings do not fail without --strict)" if c["warn"] else "")
        return st.paint(head, "32") + ": " + ", ".join(parts) + "."
    return st.paint(f"Doctor found {problems} problem(s)", "31") + ": " + ", ".join(parts) + "."
