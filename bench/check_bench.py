"""Benchmark `oddoctor check` against the bare TensorFlow import it wraps, in one run.

    python bench/check_bench.py [--repeats 9] [--write]

Times, interleaved round-robin (the order rotates each round) so that machine noise hits each command alike:
  P  python -c pass                                                             (Python's own start-up)
  A  python -c "import tensorflow as tf; tf.config.list_physical_devices()"   (the baseline)
  A2 the same, ending with os._exit(0)                                          (no teardown at exit)
  B  oddoctor check --json                                                      (all probes + checks)
  C  oddoctor check --from SNAPSHOT --json                                      (checks only)
and reports the median of the per-round ratios B/A (and B/A2), the median wall time of C, and the import-time
top 10 of C (`python -X importtime`, the least of 3 runs per module). --write puts them in docs/benchmarks.md.

Installed packages come with bytecode (.pyc); a source checkout run with PYTHONDONTWRITEBYTECODE=1 compiles
every module on every start. So the children run without PYTHONDONTWRITEBYTECODE, after `python -m compileall`
of oddoctor's own packages: what a user's installed oddoctor costs.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import machine_line, update_section

PACKAGES = ("oddoctor", "oddoctor_plugins", "oddoctor_legacy_tf1")


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.setdefault("NO_COLOR", "1")
    return env


def precompile(env: dict[str, str]) -> None:
    """Bytecode for oddoctor's own packages, as an install has (site-packages already has its own)."""
    for name in PACKAGES:
        spec = importlib.util.find_spec(name)
        for folder in (spec.submodule_search_locations or []) if spec else []:
            subprocess.run([sys.executable, "-m", "compileall", "-q", folder], check=True, env=env,
                           capture_output=True)


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall s, CPU s of the process and its children) of one run; exit 0 or 1 (a failed check) only."""
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, env=env)
        _pid, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode not in (0, 1):  # check exits 1 on a machine without a GPU driver
            err.seek(0)
            raise SystemExit(f"{cmd} failed ({proc.returncode}): {err.read()[-500:].decode(errors='replace')}")
    return wall, usage.ru_utime + usage.ru_stime


def import_top(cmd: list[str], env: dict[str, str], runs: int = 3, top: int = 10) -> list[tuple[str, int, int]]:
    """The ``top`` outermost imports of ``cmd`` by cumulative time (name, self us, cumulative us), least of ``runs``
    per module. Plugins loaded by entry point count as outermost imports (``manager._load``)."""
    best: dict[str, tuple[int, int]] = {}
    for _ in range(runs):
        proc = subprocess.run([cmd[0], "-X", "importtime", *cmd[1:]], capture_output=True, text=True, env=env)
        for line in proc.stderr.splitlines():
            if not line.startswith("import time:") or "self [us]" in line:
                continue
            _, self_us, cum_us, raw = line.replace("import time:", "|", 1).split("|")
            name = raw.strip()
            if raw[:2] != " " + name[:1]:  # an import made by another module: counted in its importer's line
                continue
            cur = (int(self_us), int(cum_us))
            best[name] = cur if name not in best else (min(best[name][0], cur[0]), min(best[name][1], cur[1]))
    rows = sorted(best.items(), key=lambda kv: -kv[1][1])[:top]
    return [(name, s, c) for name, (s, c) in rows]


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = ap.parse_args()
    py = sys.executable
    env = child_env()
    precompile(env)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        snap = Path(tmp) / "snap.json"
        subprocess.run([py, "-m", "oddoctor", "collect", "-o", str(snap)], check=True, capture_output=True, env=env)
        cmds = {
            "P: python -c pass": [py, "-c", "pass"],
            "A: import tensorflow + list_physical_devices": [
                py, "-c", "import tensorflow as tf; tf.config.list_physical_devices()"],
            "A2: the same, ending with os._exit(0)": [
                py, "-c", "import os, tensorflow as tf; tf.config.list_physical_devices(); os._exit(0)"],
            "B: oddoctor check --json": [py, "-m", "oddoctor", "check", "--json"],
            "C: oddoctor check --from snapshot --json": [py, "-m", "oddoctor", "check", "--from", str(snap), "--json"],
        }
        names = list(cmds)
        wall: dict[str, list[float]] = {k: [] for k in cmds}
        cpu: dict[str, list[float]] = {k: [] for k in cmds}
        for cmd in cmds.values():  # warm the file cache once
            timed(cmd, env)
        for i in range(args.repeats):
            order = names[i % len(names):] + names[:i % len(names)]
            for name in order:
                w, c = timed(cmds[name], env)
                wall[name].append(w)
                cpu[name].append(c)
            print(f"round {i + 1}/{args.repeats}: " + ", ".join(f"{wall[k][-1]:.2f}s" for k in names),
                  file=sys.stderr)
        top = import_top(cmds[names[4]], env)
    load_after = os.getloadavg()
    p_, a_, a2_, b_, c_ = names
    check_ratio = statistics.median(b / a for a, b in zip(wall[a_], wall[b_]))
    check_cpu_ratio = statistics.median(b / a for a, b in zip(cpu[a_], cpu[b_]))
    check_extra = statistics.median(b - a for a, b in zip(wall[a_], wall[b_]))
    bare_ratio = statistics.median(b / a for a, b in zip(wall[a2_], wall[b_]))
    bare_extra = statistics.median(b - a for a, b in zip(wall[a2_], wall[b_]))
    teardown = statistics.median(a - a2 for a, a2 in zip(wall[a_], wall[a2_]))
    cpu_extra = statistics.median(b - a for a, b in zip(cpu[a2_], cpu[b_]))
    from_median = statistics.median(wall[c_])
    p_med, a2_med = statistics.median(wall[p_]), statistics.median(wall[a2_])
    rows = "\n".join(
        f"| {k} | {statistics.median(wall[k]):.3f} | {min(wall[k]):.3f} | {max(wall[k]):.3f} "
        f"| {statistics.median(cpu[k]):.3f} |" for k in names)
    top_rows = "\n".join(f"| `{name}` | {s / 1000:.1f} | {c / 1000:.1f} |" for name, s, c in top)
    body = f"""## oddoctor check vs a bare TensorFlow import

Machine: {machine_line()}, no GPU (TensorFlow CPU wheel),
shared with other work while measured (load average {load_before[0]:.1f} before, {load_after[0]:.1f} after).
{args.repeats} interleaved rounds (the order rotates each round), medians. Bytecode allowed and oddoctor's
packages precompiled first, as an install has them (this checkout's shell sets PYTHONDONTWRITEBYTECODE=1,
which the bench unsets for its children).
Re-run: `python bench/check_bench.py --repeats {args.repeats} --write`

| command | median wall s | min s | max s | median CPU s (with children) |
|---|---|---|---|---|
{rows}

- `oddoctor check` / bare import: **{check_ratio:.2f}x** (median of the per-round ratios; median paired
  difference {check_extra * 1000:+.0f} ms; CPU time {check_cpu_ratio:.2f}x). The TensorFlow child starts
  first, before the plugins, NVML, the CUDA library search and the platform facts, which all run while it
  imports; it looks up only the TensorFlow distributions by name before its import, and it ends without
  TensorFlow's teardown once its facts are written (`os._exit`): the bare import pays that teardown at exit,
  {teardown * 1000:.0f} ms here (A less A2, median of the paired differences), and it tells the checks nothing.
- Against the import without its teardown (A2), `check` is **{bare_ratio:.2f}x** (median paired difference
  {bare_extra * 1000:+.0f} ms, {bare_extra / a2_med:.0%} of A2). That is what `check` adds to the import it
  diagnoses: a Python start-up before the child starts (about P) and the imports that start it, and after it
  ends the checks (in a forked child) and the report. It cannot go below 1.0x: the import is the fact.
  The rest of `check`'s work ({cpu_extra:.2f} s CPU more than A2, median of the paired differences: NVML,
  the library search and its own child, plugins, packages, the checks) runs beside the import on the
  second core.
- `oddoctor check --from`: **{from_median:.3f} s** median wall ({p_med:.3f} s of it is Python's own
  start-up, P). It never imports TensorFlow, numpy, matplotlib or Typer
  (`tests/test_imports.py`).

Import-time top 10 of `check --from` (`python -X importtime -m oddoctor check --from SNAPSHOT --json`:
the outermost imports, each the least of 3 runs; cumulative includes what the module imports; `site` is
Python's start-up with this machine's `.pth` files, an editable install among them):

| module | self ms | cumulative ms |
|---|---|---|
{top_rows}
"""
    print(body)
    if args.write:
        update_section("check", body)


if __name__ == "__main__":
    main()
