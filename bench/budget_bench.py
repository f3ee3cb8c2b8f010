"""How well `oddoctor budget` predicts a larger configuration from smaller ones, on this machine's CPU.

    flock /tmp/oddoctor-bench.lock python bench/budget_bench.py [--children 3] [--write]

Two models: the seeded legacy Mask R-CNN of legacy_tf1 (a TF1 frozen graph) and the TF2 SavedModel that
`oddoctor migrate` writes from it; a third, the real OD API Mask R-CNN Inception v2, when
`python -m oddoctor_legacy_tf1.odapi build` has cached it. For each: `run_budget` measures batches 1, 2, 4 at
320x240 and 640x480 (six fresh children), fits, and predicts the held-out batch 8 at 1024x768, which
--children more children then measure, each on its own: the same configuration reads differently from one
process to the next (docs/budget.md). Each child's error is (predicted - measured) / measured, for
TensorFlow's allocator peak (what the predictions use), for the part of it held across the call (the weights
and the batch fed in) and for the process's peak RSS. The call's working set (the peak less the held part) is
printed too. --write puts the table
in docs/budget.md (between the bench:budget markers). Exit 1 when the held part or the RSS misses the issue's 15 %.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parent.parent))
from _report import machine_line, update_section  # noqa: E402

from oddoctor.budget.api import measure_point, run_budget  # noqa: E402
from oddoctor.budget.report import METRICS  # noqa: E402
from oddoctor.budget.spec import BudgetSpec, PointSpec  # noqa: E402

DOC = HERE.parent.parent / "docs" / "budget.md"
TRAIN_BATCHES = (1, 2, 4)
TRAIN_SIZES = ((240, 320), (480, 640))
HELD_OUT = (8, 768, 1024)  # batch, height, width
LIMIT = 0.15  # the bound on the held-out error


def held_out_errors(model: str, *, children: int = 3, timeout_s: float = 300.0) -> dict[str, object]:
    """Fit on the small configurations, measure the held-out one in ``children`` fresh children (the same
    configuration can read differently from one process to the next); per metric the predicted bytes, each
    child's measured bytes and each error."""
    report = run_budget(BudgetSpec(model=model, batches=TRAIN_BATCHES, sizes=TRAIN_SIZES, timeout_s=timeout_s),
                        on_event=lambda e: print(f"  {e}", file=sys.stderr) if e["event"] == "point" else None)
    batch, height, width = HELD_OUT
    held = [measure_point(PointSpec(model=model, batch=batch, height=height, width=width), timeout_s=timeout_s)
            for _ in range(children)]
    out: dict[str, object] = {"report": report, "held": held}
    for metric in METRICS:
        fit = report.fits.get(metric)
        predicted = fit.predict(batch, height * width) if fit is not None else None
        measured = [h.value(metric) for h in held]
        errors = [None if predicted is None or m is None else (predicted - m) / m for m in measured]
        out[metric] = {"fit": fit, "predicted": predicted, "measured": measured, "errors": errors}
    out["call_bytes"] = {"held-out": [h.value("tf_call_bytes") for h in held],
                         "fitted points": [m.value("tf_call_bytes") for m in report.points]}
    return out


def build_models(tmp: Path) -> dict[str, str]:
    """The legacy frozen graph and its migration, built in children (this process never imports TensorFlow)."""
    pb = tmp / "legacy" / "frozen_inference_graph.pb"
    subprocess.run([sys.executable, "-c", "import sys; from oddoctor_legacy_tf1.model import build_model; "
                    "build_model(sys.argv[1])", str(pb)], check=True)
    subprocess.run([sys.executable, "-m", "oddoctor", "migrate", str(pb), "-o", str(tmp / "migrated")], check=True,
                   capture_output=True)
    models = {"legacy frozen graph": str(pb), "migrated TF2 SavedModel": str(tmp / "migrated" / "saved_model")}
    odapi = odapi_model()
    if odapi is not None:
        models["OD API Mask R-CNN Inception v2 (frozen graph)"] = odapi
    return models


def odapi_model() -> str | None:
    """The real OD API model's frozen graph when ``python -m oddoctor_legacy_tf1.odapi build`` has cached it."""
    proc = subprocess.run([sys.executable, "-m", "oddoctor_legacy_tf1.odapi", "path"], capture_output=True, text=True,
                          timeout=120)
    try:
        where = json.loads(proc.stdout)
    except ValueError:
        return None
    pb = Path(str(where.get("model"))) / "frozen_inference_graph.pb"
    return str(pb) if where.get("built") and pb.is_file() else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true", help="update docs/budget.md")
    ap.add_argument("--children", type=int, default=3, help="fresh children that measure the held-out point")
    args = ap.parse_args()
    rows: list[str] = []
    calls: list[str] = []
    worst = dict.fromkeys(METRICS, 0.0)
    within = dict.fromkeys(METRICS, 0)
    total = dict.fromkeys(METRICS, 0)
    with tempfile.TemporaryDirectory(prefix="budget-bench-") as t:
        for name, model in build_models(Path(t)).items():
            print(f"{name}: {model}", file=sys.stderr)
            r = held_out_errors(model, children=args.children)
            c = r["call_bytes"]
            assert isinstance(c, dict)
            fitted = [v for v in c["fitted points"] if v]
            held_calls = ", ".join(f"{(v or 0) / 2**20:.1f}" for v in c["held-out"])
            calls.append(f"{name}: {min(fitted) / 2**20:.1f} to {max(fitted) / 2**20:.1f} MiB at the fitted points, "
                         f"{held_calls} MiB at the held-out one" if fitted else f"{name}: no figure")
            for metric in METRICS:
                m = r[metric]
                assert isinstance(m, dict)
                fit, errors = m["fit"], m["errors"]
                if fit is None or any(e is None for e in errors):
                    worst[metric] = float("inf")
                    rows.append(f"| {name} | {metric} | no figure |")
                    continue
                worst[metric] = max(worst[metric], *(abs(e) for e in errors))
                within[metric] += sum(abs(e) <= LIMIT for e in errors)
                total[metric] += len(errors)
                rows.append(f"| {name} | {metric.replace('_bytes', '')} | {fit.model} | {fit.formula()} | "
                            f"{max(abs(x) for x in fit.residuals):.1%} | {(m['predicted'] or 0) / 2**20:,.1f} | "
                            + ", ".join(f"{(v or 0) / 2**20:,.1f}" for v in m["measured"]) + " | "
                            + ", ".join(f"{e:+.1%}" for e in errors) + " |")
    b, h, w = HELD_OUT
    body = "\n".join([
        f"Machine: {machine_line()}, CPU only. Fitted on batches {', '.join(map(str, TRAIN_BATCHES))} at "
        f"{', '.join(f'{x}x{y}' for y, x in TRAIN_SIZES)}; held out: batch {b} at {w}x{h}, measured in "
        f"{args.children} fresh children (one measured figure and one error per child).",
        "Command: `flock /tmp/oddoctor-bench.lock python bench/budget_bench.py --write`.",
        "",
        "| model | metric | model chosen | fit | worst residual | predicted MiB | measured MiB | errors |",
        "|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        "Worst held-out error: " + "; ".join(f"{m.replace('_bytes', '')} {w:.1%} ({within[m]} of {total[m]} "
                                             f"within {LIMIT:.0%})" for m, w in worst.items())
        + f" (the issue's bound: {LIMIT:.0%}).",
        "",
        "The call's working set (tf_peak less tf_held): " + "; ".join(calls) + ".",
    ])
    print(body)
    if args.write:
        update_section("budget", body, path=DOC)
    return 0 if worst["rss_peak_bytes"] <= LIMIT and worst["tf_held_bytes"] <= LIMIT else 1


if __name__ == "__main__":
    sys.exit(main())
