"""Benchmark the emitted beam_pipeline.py (DirectRunner) against run_inference.py, same model, same images.

    flock /tmp/oddoctor-bench.lock python bench/beam_bench.py [--images 40] [--rounds 2] [--workers 2] [--write]

Setup (once, in a child): build the seeded built-in legacy Mask R-CNN, `oddoctor migrate` it (which emits
both scripts), write N seeded synthetic JPEGs of 4 sizes. Then, interleaved round-robin so that machine
noise hits every approach alike, each approach runs in its own child process on the same folder:

  runner                 python run_inference.py IMAGES (defaults: --batch-size auto)
  runner --no-preflight  the same without the child-process TensorFlow import it does first
  beam in_memory         python beam_pipeline.py 'IMAGES/*' (DirectRunner, one worker: Beam's default)
  beam multi_threading   --direct_num_workers W --direct_running_mode multi_threading
  beam multi_processing  --direct_num_workers W --direct_running_mode multi_processing

images/s is end to end: N images / the child's whole wall time (Python start, TensorFlow import, model
load, the images, writing), which is what a user waits for; the pipeline's own `wall_s` (from
pipeline.run() to its end) and model loads are reported too. The records of every Beam run are checked
equal to the runner's. --write updates the "beam" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import machine_line, update_section

SIZES = [(480, 640), (375, 500), (640, 480), (400, 600)]

SETUP = """
import sys
from pathlib import Path
import numpy as np
from PIL import Image
from oddoctor_legacy_tf1.images import synthetic_image
from oddoctor_legacy_tf1.model import build_model
root, n = Path(sys.argv[1]), int(sys.argv[2])
build_model(root / "export" / "frozen_inference_graph.pb", seed=0)
(root / "images").mkdir()
rng = np.random.default_rng(0)
sizes = {sizes!r}
for i in range(n):
    h, w = sizes[i % len(sizes)]
    Image.fromarray(synthetic_image(h, w, rng)).save(root / "images" / f"{{i:05d}}.jpg", quality=90)
"""


def approaches(workers: int) -> dict[str, list[str]]:
    return {
        "runner": [],
        "runner --no-preflight": ["--no-preflight"],
        "beam in_memory": [],
        f"beam multi_threading x{workers}": ["--direct_num_workers", str(workers),
                                              "--direct_running_mode", "multi_threading"],
        f"beam multi_processing x{workers}": ["--direct_num_workers", str(workers),
                                               "--direct_running_mode", "multi_processing"],
    }


def run_one(name: str, extra: list[str], root: Path, out: Path) -> dict:
    migrated, images = root / "migrated", root / "images"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    summary = out / "summary.json"
    if name.startswith("runner"):
        argv = [sys.executable, str(migrated / "run_inference.py"), str(images), "--out", str(out / "runner.jsonl"),
                "--quiet", "--summary-json", str(summary), *extra]
    else:
        argv = [sys.executable, str(migrated / "beam_pipeline.py"), f"{images}/*", "--output", str(out / "det"),
                "--summary-json", str(summary), *extra]
    t0 = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=1800)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{name} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    stats = json.loads(summary.read_text())
    records: dict[str, dict] = {}
    shards = sorted(Path(p) for p in glob.glob(f"{out}/det-*.jsonl"))
    files = [out / "runner.jsonl"] if name.startswith("runner") else shards
    for f in files:
        for line in f.read_text().splitlines():
            rec = json.loads(line)
            records[rec["file"]] = rec
    return {"wall": wall, "inner": stats["wall_s"], "loads": stats.get("model_loads"), "records": records}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=40)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="oddoctor-beam-bench-") as tmp:
        root = Path(tmp)
        subprocess.run([sys.executable, "-c", SETUP.format(sizes=SIZES), str(root), str(args.images)], check=True)
        subprocess.run([sys.executable, "-m", "oddoctor", "migrate", str(root / "export" / "frozen_inference_graph.pb"),
                        "--out", str(root / "migrated")], check=True, capture_output=True)
        names = approaches(args.workers)
        walls: dict[str, list[float]] = {n: [] for n in names}
        inner: dict[str, list[float]] = {n: [] for n in names}
        loads: dict[str, set] = {n: set() for n in names}
        reference: dict[str, dict] | None = None
        for r in range(args.rounds):
            for name, extra in names.items():
                out = root / f"out-{r}-{name.replace(' ', '_')}"
                out.mkdir()
                res = run_one(name, extra, root, out)
                if name.startswith("runner"):
                    reference = reference or res["records"]
                    if res["records"] != reference:
                        raise SystemExit(f"{name}: records differ from the runner's")
                elif reference is not None and res["records"] != reference:
                    raise SystemExit(f"{name}: records differ from the runner's")
                walls[name].append(res["wall"])
                inner[name].append(res["inner"])
                loads[name].add(res["loads"])
                print(f"round {r + 1}: {name:<30} {args.images / res['wall']:6.2f} images/s end to end "
                      f"({res['wall']:.1f} s; pipeline/loop {res['inner']:.1f} s; loads {res['loads']})",
                      file=sys.stderr, flush=True)
    base = statistics.median(walls["runner"])
    rows = []
    for name in names:
        wall = statistics.median(walls[name])
        load_text = "-" if name.startswith("runner") else ", ".join(str(x) for x in sorted(loads[name]))
        rows.append(f"| {name} | {args.images / wall:.2f} | {base / wall:.2f}x | {statistics.median(inner[name]):.1f} s"
                    f" | {load_text} |")
    command = (f"flock /tmp/oddoctor-bench.lock python bench/beam_bench.py --images {args.images} "
               f"--rounds {args.rounds} --workers {args.workers} --write")
    body = f"""## Apache Beam pipeline (DirectRunner) vs run_inference.py

`{command}` on {machine_line()} (shared with other jobs while measured), the small built-in model
migrated, {args.images} synthetic JPEGs (4 sizes, 375x500 to 640x480), medians of {args.rounds} interleaved
rounds, each run in its own process. images/s is end to end (Python start, TensorFlow import, model
load, images, output) over the child's wall time; "inner" is the runner's loop or the pipeline's
`run()`; "model loads" the loads Beam counted (RunInference's load timings). Every Beam run wrote
the runner's records exactly. The runner's end-to-end time holds its preflight (a first `import
tensorflow` in a child process: `--no-preflight` skips it), its own TensorFlow import and the model
load, and its inner time the image loop alone; Beam's inner time holds pipeline construction, the
worker's TensorFlow import and model load, and the images. With few images, start-up dominates both.

| approach | images/s | vs runner | inner | model loads |
|---|---|---|---|---|
{chr(10).join(rows)}
"""
    print(body)
    if args.write:
        update_section("beam", body)


if __name__ == "__main__":
    main()
