"""Helpers the test modules import (``from tests.helpers import run_oddoctor``); fixtures live in conftest.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

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


_PTY_RUN = """
import os, pty, sys
pid, fd = pty.fork()
if pid == 0:
    os.execvpe(sys.executable, [sys.executable, "-m", "oddoctor", *sys.argv[1:]], os.environ)
chunks = []
while True:
    try:
        data = os.read(fd, 65536)
    except OSError:
        break
    if not data:
        break
    chunks.append(data)
_, status = os.waitpid(pid, 0)
sys.stdout.buffer.write(b"".join(chunks))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def run_in_pty(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> tuple[int, str]:
    """Run the real CLI with stdout and stderr on a pseudo-terminal (a real TTY to it): its exit code and
    everything it wrote (``\\r\\n`` as written)."""
    proc = subprocess.run([sys.executable, "-c", _PTY_RUN, *args], capture_output=True, timeout=timeout,
                          env={**os.environ, **(env or {})}, cwd=REPO)
    return proc.returncode, proc.stdout.decode("utf-8", "replace")


def cmdline_of(proc: Any) -> str:
    """The command line of a ``psutil.Process`` (or a pid), or "" for one that has just ended: a child that exits
    between the listing and the read is a zombie until reaped, and psutil raises for it."""
    import psutil

    try:
        p = proc if isinstance(proc, psutil.Process) else psutil.Process(proc)
        return " ".join(p.cmdline())
    except (psutil.ZombieProcess, psutil.NoSuchProcess, psutil.AccessDenied):
        return ""
