"""Run one inference loop in a fresh child process and collect its per-iteration samples.

TensorFlow is only imported in the child (``python -m oddoctor.leak.child``), started through
:func:`oddoctor.childproc.run_child`. The parent reads JSON-line events as they come, so progress is
live, and kills the child's process group on timeout.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from oddoctor.childproc import run_child
from oddoctor.leak.spec import MODES, LeakSpec

CHILD_MODULE = "oddoctor.leak.child"


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
    stderr: list[str] = field(default_factory=list)  # every line the child wrote there (TensorFlow's log)
    wall_s: float = 0.0

    @property
    def input_error(self) -> Optional[str]:
        if self.error and self.error.get("kind") == "input":
            return str(self.error.get("message"))
        return None


def wants_odapi(spec: LeakSpec) -> bool:
    """Whether this mode's child gets the OD API on its path: the legacy loop (for the OD API's own mask
    reframing, unless ``reframe="oddoctor"``), and a user's ``--entry`` (a tutorial copy imports it)."""
    return spec.mode == "legacy" and (spec.entry is not None or spec.reframe != "oddoctor")


def child_env(spec: LeakSpec) -> dict[str, str]:
    """This process's environment, with the private OD API site on PYTHONPATH when :func:`wants_odapi`
    and it is installed (:func:`oddoctor_legacy_tf1.odapi.child_env`)."""
    env = dict(os.environ)
    if wants_odapi(spec):
        from oddoctor_legacy_tf1 import odapi

        if odapi.is_installed():
            env = odapi.child_env(base=env)
    return env


def run_mode(spec: LeakSpec, *, timeout_s: float,
             on_event: Optional[Callable[[dict[str, Any]], None]] = None,
             python: Optional[str] = None) -> ModeRun:
    """Run ``spec`` (one mode: ``spec.mode`` is legacy or fixed) in a child; never raises for child failures.

    Any BaseException in this process while the child runs (Ctrl-C, the CLI's ``Terminated`` for SIGTERM and
    SIGHUP, an error in ``on_event``) kills the child's process group and reaps it before it propagates
    (:func:`oddoctor.childproc.run_child`); a ``timeout_s`` that is not a finite number > 0 is a ValueError.
    """
    if spec.mode not in MODES:
        raise ValueError(f"run_mode runs one mode ({', '.join(MODES)}), not {spec.mode!r}")
    result = ModeRun(mode=spec.mode)
    env = child_env(spec)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["PYTHONUNBUFFERED"] = "1"

    def _line(raw: str) -> None:
        line = raw.strip()
        if not line.startswith("{"):
            return  # something else printed on stdout; not our event
        try:
            event = json.loads(line)
        except ValueError:
            return
        if not isinstance(event, dict):
            return
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

    with tempfile.TemporaryDirectory(prefix="oddoctor-leak-") as tmp:
        spec_path = Path(tmp) / "spec.json"
        spec_path.write_text(json.dumps(spec.to_dict()), encoding="utf-8")
        child = run_child([python or sys.executable, "-m", CHILD_MODULE, str(spec_path)], timeout_s=timeout_s,
                          env=env, on_line=_line)
    result.wall_s = child.elapsed_s
    result.returncode = child.returncode
    result.stderr = [ln.rstrip() for ln in child.stderr_lines if ln.strip()]
    result.stderr_tail = [ln.strip() for ln in result.stderr][-15:]
    if child.start_error is not None and result.error is None:
        result.error = {"kind": "died", "message": f"the {result.mode} process could not start: {child.start_error}"}
    elif child.timed_out and result.error is None:
        result.error = {"kind": "timeout", "message": f"the {result.mode} run did not finish in "
                        f"{timeout_s:.0f} s (killed after {len(result.samples)} iterations)"}
    elif result.error is None and not result.done:
        sig = child.signal
        code = child.returncode or 0
        what = f"killed by signal {-code}" if sig else f"exited with status {code}"
        hint = " (SIGKILL: often the kernel's out-of-memory killer)" if sig == "SIGKILL" else ""
        result.error = {"kind": "died", "message": f"the {result.mode} process {what}{hint} after "
                        f"{len(result.samples)} iterations"}
    return result
