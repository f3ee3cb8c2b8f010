"""Shared by the benchmarks: write one section of docs/benchmarks.md, leaving the others alone."""

from __future__ import annotations

import platform
import re
from pathlib import Path

BENCH_DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
HEADER = """# Benchmarks

Figures measured on the machine named in each section, as ratios against a baseline run in the same
process tree at the same time (these machines are shared and noisy). Re-run a section with the command
it names; it rewrites only its own section.
"""


def machine_line() -> str:
    import os

    return f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}"


def update_section(name: str, body: str, path: Path = BENCH_DOC) -> None:
    """Replace the text between ``<!-- bench:name -->`` markers (append the section if absent)."""
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    block = f"{start}\n{body.rstrip()}\n{end}\n"
    text = path.read_text() if path.exists() else HEADER
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end) + r"\n?", re.S)
    text = pattern.sub(lambda _m: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(path)
