"""Helpers the test modules import (``from tests.helpers import run_oddoctor``); fixtures live in conftest.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SNAPSHOTS = Path(__file__).parent / "snapshots"
REPO = Path(__file__).resolve().parent.parent


def run_oddoctor(*args: str, env: dict[str, str] | None = None, timeout: float = 120,
                 cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real CLI in a child process, as a user would."""
    full_env = {**os.environ, "NO_COLOR": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "oddoctor", *args], capture_output=True, text=True,
                          env=full_env, timeout=timeout, cwd=cwd)


def run_json(*args: str, **kw) -> tuple[int, dict]:
    proc = run_oddoctor(*args, "--json", **kw)
    assert proc.stdout.strip(), proc.stderr
    return proc.returncode, json.loads(proc.stdout)
