"""``run_leak_test(spec) -> LeakReport``: the leak test as a library; ``oddoctor leak-test`` is its CLI.

Each mode runs in a fresh child process (:mod:`oddoctor.leak.spawn`, ``python -m oddoctor.leak.child``);
this process never imports TensorFlow.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

from oddoctor.leak.report import LeakReport, build_report
from oddoctor.leak.spawn import ModeRun, run_mode
from oddoctor.leak.spec import LeakSpec, LeakSpecError

DEMO_MODEL = "built-in demo model (synthetic Mask R-CNN Inception v2)"

EventHandler = Callable[[dict[str, Any]], None]


class LeakInputError(Exception):
    """A child refused its input (a model that is not an OD API export, no readable images, an ``entry``
    that does not import or raises on the first image): one line; ``traceback``: the user's code's tail."""

    def __init__(self, message: str, traceback: Optional[list[str]] = None) -> None:
        super().__init__(message)
        self.traceback = list(traceback or [])


def run_leak_test(spec: LeakSpec, *, on_event: Optional[EventHandler] = None) -> LeakReport:
    """Run ``spec``'s modes, one fresh child process each (legacy first), and judge them.

    ``on_event`` receives every event as a dict with an ``"event"`` key, in order. Per mode: ``launch``
    (``mode``, ``demo_build``: the demo model is built first) before the child starts; the child's own
    ``start`` (model facts, images, pid), one ``iter`` per image (``i``, ``warmup``, ``latency_ms``,
    ``graph_nodes``, ``rss_bytes``, ``sessions``...), ``done`` or ``error``; then ``finish`` (``mode``,
    ``error``: the child's error record or None, ``stderr_tail``, ``stderr``: all its lines) once it has ended.

    A child that crashes, hangs past ``spec.timeout_s`` or is killed is part of the report (verdict
    ``error``, exit code 1); a child that refuses its input raises :class:`LeakInputError`. Any exception
    in this process (Ctrl-C, one raised by ``on_event``) kills the running child's process group and removes
    the temporary folders before it propagates.
    """
    if spec.model is None and not spec.demo:
        raise LeakSpecError("leak spec: model: give a model path, or demo=True")
    modes = spec.modes
    runs: dict[str, ModeRun] = {}
    with tempfile.TemporaryDirectory(prefix="oddoctor-demo-") as tmp:
        model_path = spec.model if spec.model is not None else str(Path(tmp) / "frozen_inference_graph.pb")
        for name in modes:
            if on_event is not None:
                on_event({"event": "launch", "mode": name, "demo_build": spec.demo and name == modes[0]})
            child_spec = dataclasses.replace(spec, mode=name, model=model_path)
            run = run_mode(child_spec, timeout_s=spec.timeout_s, on_event=on_event)
            if run.input_error:
                raise LeakInputError(run.input_error, (run.error or {}).get("traceback"))
            runs[name] = run
            if on_event is not None:
                on_event({"event": "finish", "mode": name, "error": run.error, "stderr_tail": run.stderr_tail,
                          "stderr": run.stderr})
    shown_model = DEMO_MODEL if spec.demo else str(spec.model)
    return build_report(runs, model=shown_model, options=spec.options(), demo=spec.demo)
