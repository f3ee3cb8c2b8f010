"""The diagnosis accuracy table over the corpus (tests/snapshots/corpus/), from one run of the checks.

    python bench/corpus_accuracy.py [--write]

For every broken case: did the root-cause check get the expected status with a fix naming what worked?
For every healthy case: is it clean (no fail, warn or error)? Also: the other fail/warn results per case
(noise a user reads past), and the same broken cases with only their log (`check --log` evidence; the
snapshot's other facts kept). --write puts the table in docs/diagnosis-accuracy.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import update_section  # noqa: E402

from tests.corpus_eval import corpus_files, evaluate, raw, table  # noqa: E402

DOC = ROOT / "docs" / "diagnosis-accuracy.md"
HEADER = """# Diagnosis accuracy

How often `oddoctor check` names the right root cause, with a fix that worked, on real machines: the corpus
in `tests/snapshots/corpus/` (see its README). Each case is a public bug report rebuilt as a snapshot that
holds **only what the report states** (everything else unknown, listed in `_report.unknowns`), or a snapshot
collected on real hardware. A broken case counts when its root-cause check has the expected status and its fix
contains the version, pin, variable or command that worked in the thread; a healthy case counts when nothing
fails, warns or errors. The test suite (`tests/test_corpus.py`) asserts every row.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="update docs/diagnosis-accuracy.md")
    args = parser.parse_args(argv)
    files = corpus_files()
    cases = [evaluate(p) for p in files]
    text = table(cases)
    gaps = [(p.stem, raw(p)["_expect"]["why"]) for p in files if raw(p)["_expect"].get("kind") == "undiagnosable"]
    if gaps:
        text += "\nReports that do not state enough to diagnose (the right answer is \"could not tell\"):\n\n"
        text += "".join(f"- {name}: {why}\n" for name, why in gaps)
    print(text)
    if args.write:
        if not DOC.exists():
            DOC.write_text(HEADER)
        update_section("accuracy", "Run: `python bench/corpus_accuracy.py --write`\n\n" + text, DOC)
        print(f"written to {DOC.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
