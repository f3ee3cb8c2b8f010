"""Benchmark `oddoctor check` against the bare TensorFlow import it wraps, in one run.

    python bench/check_bench.py [--repeats 5] [--write]

Times, interleaved round-robin so that machine noise hits each command alike:
  A  python -c "import tensorflow as tf; tf.config.list_physical_devices()"   (the baseline)
  B  oddoctor check --json                                                      (all probes + checks)
  C  oddoctor check --from SNAPSHOT --json                                      (checks only)
and reports medians and the ratios B/A and C/A. --write puts them in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import machine_line, update_section


def timed(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if proc.returncode not in (0, 1):  # check exits 1 on a machine without a GPU driver
        raise SystemExit(f"{cmd} failed ({proc.returncode}): {proc.stderr[-500:]}")
    return dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = ap.parse_args()
    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        snap = Path(tmp) / "snap.json"
        subprocess.run([py, "-m", "oddoctor", "collect", "-o", str(snap)], check=True, capture_output=True)
        cmds = {
            "A: import tensorflow + list_physical_devices": [
                py, "-c", "import tensorflow as tf; tf.config.list_physical_devices()"],
            "B: oddoctor check --json": [py, "-m", "oddoctor", "check", "--json"],
            "C: oddoctor check --from snapshot --json": [py, "-m", "oddoctor", "check", "--from", str(snap), "--json"],
        }
        times: dict[str, list[float]] = {k: [] for k in cmds}
        for cmd in cmds.values():  # warm the file cache once
            timed(cmd)
        for i in range(args.repeats):
            for name, cmd in cmds.items():
                times[name].append(timed(cmd))
            print(f"round {i + 1}/{args.repeats}: " + ", ".join(f"{v[-1]:.2f}s" for v in times.values()),
                  file=sys.stderr)
    med = {k: statistics.median(v) for k, v in times.items()}
    a, b, c = med.values()
    rows = "\n".join(f"| {k} | {m:.2f} | {min(times[k]):.2f} | {max(times[k]):.2f} |" for k, m in med.items())
    body = f"""## oddoctor check vs a bare TensorFlow import

Machine: {machine_line()}, no GPU (TensorFlow CPU wheel). {args.repeats} interleaved rounds, medians.
Re-run: `python bench/check_bench.py --repeats {args.repeats} --write`

| command | median s | min s | max s |
|---|---|---|---|
{rows}

- `oddoctor check` / bare import: **{b / a:.2f}x**. The TensorFlow import (in a child process) is most
  of the cost; NVML, the CUDA library search (with its own child that reads library versions), plugin
  loading and the checks add the rest.
- `oddoctor check --from` / bare import: **{c / a:.2f}x**: diagnosing a snapshot costs a Python start-up
  plus plugin loading, and never imports TensorFlow.
"""
    print(body)
    if args.write:
        update_section("check", body)


if __name__ == "__main__":
    main()
