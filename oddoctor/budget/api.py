"""``run_budget(spec) -> BudgetReport``: ``oddoctor budget`` as a library.

Each configuration runs in a fresh child process (``python -m oddoctor.budget.child``, started through
:func:`oddoctor.childproc.run_child`): one allocator per point, nothing carried over. This process never imports
TensorFlow. A child that runs out of memory is a measured point (``does not fit``); one that passes the timeout is
killed and reported; one that crashes is reported with its stderr tail.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

from oddoctor.budget.report import BudgetReport, Measured, build_report
from oddoctor.budget.spec import BudgetSpec, PointSpec
from oddoctor.childproc import run_child

CHILD_MODULE = "oddoctor.budget.child"
EXIT_INPUT = 3  # oddoctor.budget.child.EXIT_INPUT (not imported: that module is the child's)
EXIT_MEMORY = 4
#: Signals that mean "out of memory" for a child: the kernel's OOM killer sends SIGKILL; a C++ allocation past
#: RLIMIT_AS throws std::bad_alloc, which TensorFlow's threads turn into abort() (SIGABRT).
OOM_SIGNALS = ("SIGKILL",)
#: Under --memory-limit (RLIMIT_AS) a failed mmap does not always surface as bad_alloc: in a fresh virtualenv
#: the same point died by SIGSEGV (a thread's stack or a library's unchecked allocation). Past the limit, these
#: deaths are the limit's doing: "does not fit".
LIMIT_SIGNALS = ("SIGABRT", "SIGSEGV", "SIGBUS")
OOM_WORDS = ("bad_alloc", "out of memory", "memoryerror", "cannot allocate memory", "resource exhausted")

EventHandler = Callable[[dict[str, Any]], None]


class BudgetInputError(Exception):
    """The model or the images cannot be used (one line): the first child said so."""


def child_env() -> dict[str, str]:
    """This process's environment with TensorFlow's BFC allocator on the CPU (its statistics are then real)."""
    env = dict(os.environ)
    env["TF_CPU_ALLOCATOR_USE_BFC"] = "true"
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def classify(returncode: Optional[int], signal: Optional[str], timed_out: bool, stderr_tail: list[str],
             memory_limited: bool) -> str:
    """How a child that wrote no result ended: ``timeout``, ``oom`` or ``crash``."""
    if timed_out:
        return "timeout"
    text = "\n".join(stderr_tail).lower()
    if returncode == EXIT_MEMORY or any(w in text for w in OOM_WORDS):
        return "oom"
    if signal in OOM_SIGNALS or (signal in LIMIT_SIGNALS and memory_limited):
        return "oom"
    return "crash"


def measure_point(point: PointSpec, *, timeout_s: float, python: Optional[str] = None) -> Measured:
    """One configuration in one child; never raises for the child's failures."""
    with tempfile.TemporaryDirectory(prefix="oddoctor-budget-") as tmp:
        spec_file, out_file = Path(tmp) / "point.json", Path(tmp) / "result.json"
        spec_file.write_text(json.dumps(point.to_dict()))
        run = run_child([python or sys.executable, "-m", CHILD_MODULE, str(spec_file), str(out_file)],
                        timeout_s=timeout_s, env=child_env())
        result: dict[str, Any] = {}
        if out_file.is_file() and not run.timed_out:
            try:
                result = json.loads(out_file.read_text())
            except (OSError, ValueError):
                result = {}
    m = Measured(batch=point.batch, height=point.height, width=point.width, seconds=run.elapsed_s,
                 stderr_tail=run.stderr_tail)
    if result.get("status") in ("ok", "oom", "input_error"):
        m.status = result["status"]
        m.result = result
        m.height, m.width = int(result.get("height", m.height)), int(result.get("width", m.width))
        m.error = result.get("error")
        return m
    m.status = classify(run.returncode, run.signal, run.timed_out, run.stderr_tail, point.memory_limit is not None)
    m.error = f"the child {run.how()}"
    if m.status == "oom":
        limited = " (past --memory-limit)" if point.memory_limit is not None else ""
        m.error = f"out of memory{limited}: {m.error}"
    return m


def run_budget(spec: BudgetSpec, *, on_event: Optional[EventHandler] = None, python: Optional[str] = None,
               gpu_free: Optional[list[dict[str, Any]]] = None, no_gpu_why: str = "") -> BudgetReport:
    """Measure every configuration of ``spec``, one child each, smallest first, and fit and predict.

    ``on_event`` gets ``{"event": "start", "point": i, "of": n, "batch", "height", "width"}`` before each child and
    ``{"event": "point", ...Measured.to_dict()}`` after it. ``gpu_free``: the visible GPUs as
    ``[{"label", "free_bytes"}]`` to predict for when ``spec.budget`` is None (the CLI reads them from NVML).
    Raises :class:`BudgetInputError` when the first child refuses the model or the images.
    """
    points = spec.points()
    measured: list[Measured] = []
    for i, point in enumerate(points):
        if on_event is not None:
            on_event({"event": "start", "point": i + 1, "of": len(points), "batch": point.batch,
                      "height": point.height, "width": point.width})
        m = measure_point(point, timeout_s=spec.timeout_s, python=python)
        if m.status == "input_error":
            raise BudgetInputError(m.error or "the model or the images cannot be used")
        measured.append(m)
        if on_event is not None:
            on_event({"event": "point", **m.to_dict()})
    return build_report(spec, measured, gpu_free=gpu_free, no_gpu_why=no_gpu_why)
