"""Run one inference pattern in a fresh child process and collect its per-iteration samples.

TensorFlow is only imported in the child (``python -m oddoctor_legacy_tf1.leakrun``). The parent
reads JSON-line events as they come, so progress is live, and kills the child's process group on
timeout.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

CHILD_MODULE = "oddoctor_legacy_tf1.leakrun"


@dataclass
class ModeRun:
    """What one child reported: its start facts, the per-iteration samples, how it ended."""

    mode: str
    start: dict[str, Any] = field(default_factory=dict)
    samples: list[dict[str, Any]] = field(default_factory=list)
    done: dict[str, Any] = field(default_factory=dict)
    error: Optional[dict[str, Any]] = None
    returncode: Optional[int] = None
    stderr_tail: list[str] = field(default_factory=list)
    wall_s: float = 0.0

    @property
    def input_error(self) -> Optional[str]:
        if self.error and self.error.get("kind") == "input":
            return str(self.error.get("message"))
        return None


def _kill_group(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def run_mode(spec: dict[str, Any], *, timeout_s: float,
             on_event: Optional[Callable[[dict[str, Any]], None]] = None,
             python: Optional[str] = None) -> ModeRun:
    """Run ``spec`` (see leakrun's docstring) in a child; never raises for child failures.

    Any BaseException in this process while the child runs (Ctrl-C, the CLI's ``Terminated`` for SIGTERM and
    SIGHUP, an error in ``on_event``) kills the child's process group and reaps it before it propagates.
    """
    import math
    import time

    if not (math.isfinite(timeout_s) and timeout_s > 0):  # inf would crash the watchdog thread, nan fire at once
        raise ValueError(f"timeout_s must be a finite number of seconds > 0, not {timeout_s!r}")
    result = ModeRun(mode=str(spec["mode"]))
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["PYTHONUNBUFFERED"] = "1"
    with tempfile.TemporaryDirectory(prefix="oddoctor-leak-") as tmp:
        spec_path = Path(tmp) / "spec.json"
        spec_path.write_text(json.dumps(spec), encoding="utf-8")
        err_path = Path(tmp) / "stderr.txt"
        t0 = time.monotonic()
        with open(err_path, "wb") as err:
            proc = subprocess.Popen(
                [python or sys.executable, "-m", CHILD_MODULE, str(spec_path)],
                stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL, env=env,
                start_new_session=True)
            timed_out = threading.Event()
            timer: Optional[threading.Timer] = None

            def _watchdog() -> None:
                if proc.poll() is None:
                    timed_out.set()
                    _kill_group(proc)

            try:
                timer = threading.Timer(timeout_s, _watchdog)
                timer.daemon = True
                timer.start()
                assert proc.stdout is not None
                for raw in proc.stdout:
                    line = raw.decode("utf-8", "replace").strip()
                    if not line.startswith("{"):
                        continue  # something else printed on stdout; not our event
                    try:
                        event = json.loads(line)
                    except ValueError:
                        continue
                    kind = event.pop("event", None)
                    if kind == "start":
                        result.start = event
                    elif kind == "iter":
                        result.samples.append(event)
                    elif kind == "done":
                        result.done = event
                    elif kind == "error":
                        result.error = event
                    if on_event is not None:
                        on_event({"event": kind, **event})
                proc.wait()
            except BaseException:
                _kill_group(proc)
                proc.wait()
                raise
            finally:
                if timer is not None:
                    timer.cancel()
        result.wall_s = time.monotonic() - t0
        result.returncode = proc.returncode
        result.stderr_tail = err_path.read_text("utf-8", "replace").strip().splitlines()[-15:]
    if timed_out.is_set() and result.error is None:
        result.error = {"kind": "timeout", "message": f"the {result.mode} run did not finish in "
                        f"{timeout_s:.0f} s (killed after {len(result.samples)} iterations)"}
    elif result.error is None and not result.done:
        sig = -proc.returncode if proc.returncode and proc.returncode < 0 else None
        what = f"killed by signal {sig}" if sig else f"exited with status {proc.returncode}"
        hint = " (SIGKILL: often the kernel's out-of-memory killer)" if sig == signal.SIGKILL else ""
        result.error = {"kind": "died", "message": f"the {result.mode} process {what}{hint} after "
                        f"{len(result.samples)} iterations"}
    return result
