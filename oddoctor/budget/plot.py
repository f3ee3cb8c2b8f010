"""The budget figure: peak memory against the batch, one line per image size, measured points and the fit."""

from __future__ import annotations

import io
from pathlib import Path

from oddoctor.budget.report import MIB, BudgetReport
from oddoctor.budget.spec import size_text
from oddoctor.fsutil import atomic_write_bytes


def save_plot(report: BudgetReport, path: Path) -> Path:
    """Write a PNG as ``atomic_write_bytes`` does; matplotlib is imported here only (the ``plot`` extra)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    sizes = sorted({(p.height, p.width) for p in report.points}, key=lambda hw: hw[0] * hw[1])
    fit = report.fit
    # Twice the largest measured batch: the fit's extrapolation stays in view next to the points it came from
    # (the predicted batches are in the text report; plotted to scale they would squeeze the points into a corner).
    top = 2 * max((p.batch for p in report.points), default=1)
    for k, (h, w) in enumerate(sizes):
        colour = f"C{k}"
        pts = [p for p in report.points if (p.height, p.width) == (h, w)]
        ok = [(p.batch, v / MIB) for p in pts if (v := p.value("tf_peak_bytes")) is not None]
        if ok:
            ax.plot(*zip(*ok), "o", color=colour, label=f"{size_text(h, w)} measured")
        oom = [p.batch for p in pts if p.status == "oom"]
        if oom:
            ax.plot(oom, [0] * len(oom), "x", color=colour, markersize=9, label=f"{size_text(h, w)} does not fit")
        if fit is not None:
            xs = list(range(1, top + 1))
            ax.plot(xs, [fit.predict(x, h * w) / MIB for x in xs], "-", color=colour, alpha=0.6)
    peaks = [v for p in report.points if (v := p.value("tf_peak_bytes")) is not None]
    for pr in report.predictions:
        if peaks and pr.batch.usable <= 4 * max(peaks):  # a budget line far above the points says nothing
            ax.axhline(pr.batch.usable / MIB, color="0.5", ls="--", lw=1)
            ax.annotate(f"{pr.target}: usable {pr.batch.usable / MIB:,.0f} MiB", (1, pr.batch.usable / MIB),
                        fontsize=7, va="bottom")
    ax.set_xlabel("batch size")
    ax.set_ylabel("TF allocator peak (MiB)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    title = f"oddoctor budget: {Path(report.model).name}"
    if fit is not None:
        title += f"\n{fit.model}"
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return path
