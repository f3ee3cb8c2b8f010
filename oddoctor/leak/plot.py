"""The leak-test figure: memory, graph size and latency per image, both modes on one figure."""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Union

from oddoctor.fsutil import atomic_write_bytes
from oddoctor.leak.report import LeakReport
from oddoctor.leak.spawn import ModeRun

COLOURS = {"legacy": "#d62728", "fixed": "#1f77b4"}


def save_plot(runs: Mapping[str, ModeRun], report: Union[LeakReport, Mapping[str, Any]], path: Path) -> Path:
    """Write a PNG as ``atomic_write_bytes`` does; matplotlib is imported here only (the ``plot`` extra).

    ``runs`` are the children's records (``LeakReport.runs``); ``report`` the report or its JSON document.
    """
    if isinstance(report, LeakReport):
        report = report.to_dict()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("rss_bytes", "host RSS (MiB)", 1024 * 1024), ("graph_nodes", "graph nodes", 1),
              ("latency_ms", "latency (ms)", 1)]
    if any(s.get("gpu_nvml_bytes") is not None for r in runs.values() for s in r.samples):
        panels.insert(1, ("gpu_nvml_bytes", "GPU memory, NVML (MiB)", 1024 * 1024))
    elif any(s.get("gpu_tf_bytes") is not None for r in runs.values() for s in r.samples):
        panels.insert(1, ("gpu_tf_bytes", "GPU memory, TF allocator (MiB)", 1024 * 1024))
    fig, axes = plt.subplots(len(panels), 1, figsize=(8, 2.4 * len(panels)), sharex=True)
    for ax, (field_name, label, scale) in zip(axes, panels):
        for name, run in runs.items():
            pts = [(s["i"], s[field_name] / scale) for s in run.samples if s.get(field_name) is not None]
            if not pts:
                continue
            xs, ys = zip(*pts)
            mode = report["modes"][name]
            verdict = mode["verdict"].upper() if mode["verdict"] == "leak" else mode["verdict"]
            ax.plot(xs, ys, marker=".", lw=1, color=COLOURS.get(name), label=f"{mode['title']}: {verdict}")
            warm = [s["i"] for s in run.samples if s.get("warmup")]
            if warm:
                ax.axvspan(min(warm) - 0.5, max(warm) + 0.5, color="0.92", zorder=0)
        ax.set_ylabel(label)
        if field_name == "latency_ms":
            ax.set_yscale("log")  # the legacy loop costs 10x or more per image: both must stay readable
        ax.grid(alpha=0.3)
    axes[0].legend(loc="upper left", fontsize=8)
    axes[-1].set_xlabel("image (grey: warm-up, excluded from the verdicts)")
    ratio = report.get("cost_ratio")
    title = f"oddoctor leak-test: {Path(report['model']).name}"
    if ratio:
        title += f"  (per-image cost legacy/fixed {ratio['median']:.1f}x)"
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=110)
    finally:
        plt.close(fig)
    # Through a symlink to its target, into a device or FIFO, atomically onto a regular file: never replaced.
    atomic_write_bytes(path, buf.getvalue())
    return path
