"""Benchmark `oddoctor leak-test`: wall time and images to a verdict, and whether any verdict flips.

    python bench/leak_bench.py [--repeats 10] [--demo-repeats 10] [--size 300] [--write] [--save runs.json]

Runs `oddoctor leak-test MODEL --json` (defaults: --until-decided, warm-up 3) --repeats times on the OD API's
own Mask R-CNN Inception v2 (`odapi.ensure_model(size=...)`; skipped when the OD API site is not installed)
and --demo-repeats times on the built-in demo model, then once on the demo with the previous defaults
(`--no-until-decided -n 30 -w 10`) for comparison. Reports per run the wall time, the images each mode ran
and why it stopped, every metric's verdict, the legacy graph growth (and whose reframe ops made it) and the
legacy/fixed per-image cost ratio; then, per model, how many metrics changed verdict between runs.
--write puts it in docs/benchmarks.md (section `leak`); --save writes every run's figures as JSON, as they
come, so that a long run cut short keeps what it measured. Run it under `flock /tmp/oddoctor-bench.lock`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import machine_line, update_section

MODES = ("legacy", "fixed")
TARGET_IMAGES = 12  # issue #10: the right verdicts in at most this many images per mode, warm-up included
METRICS = ("graph_nodes", "rss", "latency")  # GPU metrics are n/a on this machine
SHORT = {"leak": "LEAK", "ok": "ok", "plateau": "plateau", "undecided": "undecided", "too-short": "short",
         "n/a": "n/a"}


NOTES = """- Images per mode count the warm-up: 3 asked, raised to 4 (one pass over the 4 synthetic image sizes).
  A mode stops after 6 measured images at the earliest, so 10 images is the shortest run; the graph verdict
  (exact) is known after 4 measured images, memory decides the rest (`oddoctor/leak/decide.py`).
- Latency gets a verdict only from 20 measured images on, and from as many as its own noise needs; modes
  that stop earlier report it `undecided` with that number, every run alike. It never holds a mode back."""


def run_once(args: list[str]) -> dict[str, Any]:
    """One `oddoctor leak-test ... --json`; the figures this benchmark reports."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "oddoctor", "leak-test", *args, "--json"], capture_output=True,
                          text=True, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode not in (0, 1) or not proc.stdout.strip():
        raise SystemExit(f"leak-test {args} failed ({proc.returncode}): {proc.stderr[-800:]}")
    doc = json.loads(proc.stdout)
    out: dict[str, Any] = {"wall_s": wall, "exit_code": doc["exit_code"],
                           "cost_ratio": (doc.get("cost_ratio") or {}).get("median"), "modes": {}}
    for name, mode in doc["modes"].items():
        out["modes"][name] = {
            "images": mode["images_run"], "stopped": (mode.get("stopped") or {}).get("reason", "?"),
            "wall_s": mode["wall_s"], "verdict": mode["verdict"], "reframe": mode.get("reframe"),
            "median_ms": mode["latency"]["median_ms"],
            "metrics": {k: mode["metrics"][k]["status"] for k in METRICS},
            "graph_slope": mode["metrics"]["graph_nodes"].get("slope_per_image"),
            # For a later look at why a mode took the images it took (--save keeps them).
            "rss_read": (mode.get("start") or {}).get("rss_read"),
            "rss_mib": [round(s["rss_bytes"] / 2**20, 2) if s.get("rss_bytes") else None
                        for s in mode.get("samples", [])],
        }
    return out


def changed_metrics(runs: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """(metrics whose status differed between runs, those that were LEAK in one run and ok in another)."""
    changed, flipped = [], []
    for mode in MODES:
        for metric in METRICS:
            seen = {r["modes"][mode]["metrics"][metric] for r in runs if mode in r["modes"]}
            if len(seen) > 1:
                changed.append(f"{mode} {metric} ({'/'.join(sorted(seen))})")
            if "leak" in seen and seen & {"ok", "plateau"}:
                flipped.append(f"{mode} {metric}")
    return changed, flipped


def table(runs: list[dict[str, Any]]) -> str:
    head = ("| run | wall s | legacy images (stop) | fixed images (stop) | legacy graph / RSS / latency "
            "| fixed graph / RSS / latency | legacy ops/image | cost ratio |\n|---|---|---|---|---|---|---|---|")
    rows = []
    for i, r in enumerate(runs, 1):
        leg, fix = r["modes"]["legacy"], r["modes"]["fixed"]
        verdicts = [" / ".join(SHORT.get(m["metrics"][k], m["metrics"][k]) for k in METRICS) for m in (leg, fix)]
        ratio = f"{r['cost_ratio']:.1f}x" if r["cost_ratio"] else "n/a"
        rows.append(f"| {i} | {r['wall_s']:.0f} | {leg['images']} ({leg['stopped']}) | {fix['images']} "
                    f"({fix['stopped']}) | {verdicts[0]} | {verdicts[1]} | {leg['graph_slope']:+.0f} "
                    f"({leg['reframe']}) | {ratio} |")
    return head + "\n" + "\n".join(rows)


def summary(name: str, runs: list[dict[str, Any]]) -> str:
    walls = [r["wall_s"] for r in runs]
    ratios = [r["cost_ratio"] for r in runs if r["cost_ratio"]]
    cost = (f"{statistics.median(ratios):.1f}x median ({min(ratios):.1f}-{max(ratios):.1f}x)." if ratios
            else "n/a.")
    changed, flipped = changed_metrics(runs)
    per_mode = "; ".join(
        f"{mode} {statistics.median([r['modes'][mode]['images'] for r in runs]):.0f} images median "
        f"(max {max(r['modes'][mode]['images'] for r in runs)}, at most {TARGET_IMAGES} in "
        f"{sum(r['modes'][mode]['images'] <= TARGET_IMAGES for r in runs)}/{len(runs)}), stopped decided in "
        f"{sum(r['modes'][mode]['stopped'] == 'decided' for r in runs)}/{len(runs)}" for mode in MODES)
    right = sum(r["modes"]["legacy"]["metrics"]["graph_nodes"] == "leak"
                and r["modes"]["fixed"]["metrics"]["graph_nodes"] == "ok"
                and r["modes"]["legacy"]["verdict"] == "leak" and r["modes"]["fixed"]["verdict"] == "ok"
                for r in runs)
    return (f"- **{name}**, {len(runs)} runs: wall {statistics.median(walls):.0f} s median "
            f"({min(walls):.0f}-{max(walls):.0f}); {per_mode}. Right verdicts (legacy graph LEAK, fixed no growth) "
            f"in {right}/{len(runs)}. Metrics whose verdict changed between runs: "
            f"{', '.join(changed) if changed else 'none'} ({len(changed)} of {len(MODES) * len(METRICS)}); "
            f"LEAK vs ok flips: {len(flipped)}"
            f"{' (' + ', '.join(flipped) + ')' if flipped else ''}. Legacy/fixed per-image cost: {cost}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=10, help="runs on the OD API model")
    ap.add_argument("--demo-repeats", type=int, default=10, help="runs on the built-in demo model")
    ap.add_argument("--size", type=int, default=300, help="the OD API model's resizer min dimension")
    ap.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    ap.add_argument("--save", type=Path, help="write every run's figures to this JSON file as they come")
    args = ap.parse_args()
    saved: dict[str, list[dict[str, Any]]] = {}

    def keep(name: str, run: dict[str, Any]) -> dict[str, Any]:
        saved.setdefault(name, []).append(run)
        if args.save:
            tmp = args.save.with_suffix(".tmp")
            tmp.write_text(json.dumps(saved, indent=1))
            tmp.replace(args.save)
        return run

    sections: list[tuple[str, list[dict[str, Any]]]] = []
    reruns = []
    if args.repeats:
        from oddoctor_legacy_tf1 import odapi

        if odapi.is_installed():
            model = odapi.ensure_model(size=args.size, seed=0) / odapi.FROZEN_GRAPH
            real = []
            for i in range(args.repeats):
                real.append(keep("odapi", run_once([str(model)])))
                print(f"odapi run {i + 1}/{args.repeats}: {real[-1]['wall_s']:.0f} s", file=sys.stderr)
            sections.append(("OD API Mask R-CNN Inception v2, size " + str(args.size), real))
            reruns.append(f"--repeats {args.repeats}")
        else:
            print(f"OD API not installed: {odapi.INSTALL_HINT}; real-model runs skipped", file=sys.stderr)
    demo = []
    for i in range(args.demo_repeats):
        demo.append(keep("demo", run_once(["--demo"])))
        print(f"demo run {i + 1}/{args.demo_repeats}: {demo[-1]['wall_s']:.0f} s", file=sys.stderr)
    if demo:
        sections.append(("built-in demo model", demo))
    before = keep("before", run_once(["--demo", "--no-until-decided", "-n", "30", "-w", "10"]))
    parts = [f"""## oddoctor leak-test: time to a verdict

Machine: {machine_line()}, no GPU, shared with other jobs (per-image latency is noisy). Each run is
`oddoctor leak-test MODEL --json` with the defaults (`--until-decided`, warm-up 3 raised to one pass over the
4 image sizes, `-n 30` at most), both
modes, each in its own process. Re-run: `flock /tmp/oddoctor-bench.lock python bench/leak_bench.py
{' '.join(reruns) or '--repeats 0'} --demo-repeats {args.demo_repeats} --write`
"""]
    for name, runs in sections:
        parts.append(summary(name, runs))
    leg, fix = before["modes"]["legacy"], before["modes"]["fixed"]
    parts.append(f"- **before** (the previous defaults, demo: `--no-until-decided -n 30 -w 10`): wall "
                 f"{before['wall_s']:.0f} s, {leg['images']} + {fix['images']} images.")
    parts.append(NOTES)
    for name, runs in sections:
        parts.append(f"\n{name}:\n\n{table(runs)}")
    body = "\n".join(parts) + "\n"
    print(body)
    if args.write:
        update_section("leak", body)


if __name__ == "__main__":
    main()
