"""Benchmark `oddoctor lint`: files per second on a large generated tree (and, optionally, on site-packages).

    flock /tmp/oddoctor-bench.lock python bench/lint_bench.py [--files 10000] [--repeats 3] [--site-packages] [--write]

Two generated trees of --files files under numbered packages: a checkout-like one (10% the lint corpus's
scripts, tests/lint_corpus: Flask/FastAPI/Django apps, webcam loops, TF1 and TF2 inference; 90% plain Python
modules that import each other) and the worst case, where every file is one of the corpus's inference scripts
(a third padded with plain helper functions).
Times the whole command (`python -m oddoctor lint --json TREE`, start-up included) with `--jobs 1` and with the
default (every usable CPU), interleaved, checks that both give the same report, and reports the medians of
--repeats runs; --write puts the figures in the `oddoctor lint` section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path
from typing import Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import machine_line, update_section

from oddoctor.lint.parallel import usable_cpus

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "tests" / "lint_corpus"
PADDING = '''

def helper_{n}(values, scale=1.0):
    """Plain Python, no TensorFlow: what most files of a real tree look like."""
    total = 0.0
    for v in values:
        if v is None:
            continue
        total += float(v) * scale
    return {{"total": total, "count": len(values)}}
'''


PLAIN = '''"""Module {i}: plain Python, as most of a real checkout is."""

import json
import os
from pathlib import Path

from pkg{pkg:03d} import plain_{prev:05d}


class Record{i}:
    def __init__(self, path):
        self.path = Path(path)

    def load(self):
        with open(self.path) as f:
            return json.load(f)

    def rows(self):
        for row in self.load():
            if row.get("skip"):
                continue
            yield {{k: v for k, v in row.items() if not k.startswith("_")}}
'''


def make_tree(root: Path, count: int, tf_share: float) -> int:
    """``count`` files: ``tf_share`` of them inference scripts from the corpus, the rest plain modules."""
    sources = sorted(p for p in CORPUS.rglob("*.py"))
    every = max(1, round(1 / tf_share)) if tf_share > 0 else 0
    for i in range(count):
        pkg = root / f"pkg{i // 200:03d}"
        if not pkg.exists():
            pkg.mkdir()
            (pkg / "__init__.py").write_text("")
        if every and i % every == 0:
            src = sources[(i // every) % len(sources)]
            text = src.read_text(encoding="utf-8")
            if i % 3 == 0:
                text += "".join(PADDING.format(n=k) for k in range(20))
            (pkg / f"{src.stem}_{i:05d}.py").write_text(text, encoding="utf-8")
        else:
            text = PLAIN.format(i=i, pkg=i // 200, prev=max(i - 1, 0)) + "".join(PADDING.format(n=k) for k in range(5))
            (pkg / f"plain_{i:05d}.py").write_text(text, encoding="utf-8")
    return sum(1 for _ in root.rglob("*.py"))


def run_lint(path: Path, jobs: Optional[int] = None) -> tuple[float, dict]:
    t0 = time.perf_counter()
    extra = ["--jobs", str(jobs)] if jobs else []
    proc = subprocess.run([sys.executable, "-m", "oddoctor", "lint", "--json", *extra, str(path)],
                          capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if proc.returncode not in (0, 1):
        raise SystemExit(f"oddoctor lint failed ({proc.returncode}): {proc.stderr[-500:]}")
    return dt, json.loads(proc.stdout)


def measure(path: Path, repeats: int) -> dict[str, tuple[float, float, float, dict]]:
    """One process (--jobs 1) and the default (every usable CPU), interleaved so that noise hits both alike."""
    times: dict[str, list[float]] = {"1": [], "auto": []}
    docs: dict[str, dict] = {}
    for _ in range(repeats):
        for key, jobs in (("1", 1), ("auto", None)):
            dt, docs[key] = run_lint(path, jobs)
            times[key].append(dt)
    if docs["1"] != docs["auto"]:
        raise SystemExit(f"{path}: the parallel report differs from the one-process report")
    return {k: (statistics.median(v), min(v), max(v), docs[k]) for k, v in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=10000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--site-packages", action="store_true", help="also lint this interpreter's site-packages")
    ap.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = ap.parse_args()
    rows = []
    for label, share in (("10% inference scripts, 90% plain modules", 0.1), ("all inference scripts", 1.0)):
        with tempfile.TemporaryDirectory(prefix="oddoctor-lint-bench-") as tmp:
            n = make_tree(Path(tmp), args.files, share)
            rows.append((f"generated: {label}", n, measure(Path(tmp), args.repeats)))
    if args.site_packages:
        site = Path(sysconfig.get_paths()["purelib"])
        got = measure(site, 1)
        rows.append((f"site-packages ({site})", got["1"][3]["files_linted"], got))
    lines = ["| tree | files | processes | median s | min s | max s | files/s | findings |",
             "|---|---|---|---|---|---|---|---|"]
    for name, files, got in rows:
        for key, (med, lo, hi, doc) in got.items():
            procs = "1 (`--jobs 1`)" if key == "1" else f"{usable_cpus()} (default)"
            lines.append(f"| {name} | {files} | {procs} | {med:.2f} | {lo:.2f} | {hi:.2f} | {files / med:,.0f} | "
                         f"{len(doc['findings'])} |")
    table = "\n".join(lines)
    print(table)
    if args.write:
        verdicts = " ".join(
            f"{name}: {'met' if got['auto'][0] / files * 10000 < 10 else 'missed'} "
            f"({got['auto'][0] / files * 10000:.1f} s per 10,000 files; one process "
            f"{got['1'][0] / files * 10000:.1f} s, {got['1'][0] / got['auto'][0]:.2f}x the default's time)."
            for name, files, got in rows)
        body = (f"## oddoctor lint\n\nMachine: {machine_line()}; shared with other work while measured. "
                f"Median of {args.repeats} runs of the whole command (`python -m oddoctor lint --json TREE`, "
                "interpreter start-up and plugin loading included), with `--jobs 1` and with the default "
                "(every usable CPU), interleaved; the two reports are checked equal.\n"
                f"Re-run: `flock /tmp/oddoctor-bench.lock python bench/lint_bench.py --files {args.files} "
                f"--repeats {args.repeats}{' --site-packages' if args.site_packages else ''} --write`\n\n"
                f"{table}\n\n- Target: 10,000 files in under 10 s on 2 cores. {verdicts}\n"
                "- Files that neither mention TensorFlow nor import a module that does are read but not "
                "parsed; on the all-inference tree every file is parsed and analysed. From 1,500 files to parse "
                "up, the default spreads the tree over the CPUs: each worker parses and analyses a share, the "
                "modules that can reach each other by name are grouped, and each group is linted whole by one "
                "worker (the report is the one-process report, tested).\n")
        update_section("lint", body)


if __name__ == "__main__":
    main()
