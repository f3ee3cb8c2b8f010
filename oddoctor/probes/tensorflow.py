"""TensorFlow facts, from a child process with a timeout.

oddoctor's own process never imports TensorFlow for ``check``: an import that segfaults, aborts,
raises or hangs is recorded (exit code, signal, the tail of its stderr, elapsed time) as a fact.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any, Optional

from oddoctor.childproc import Cancelled, run_child
from oddoctor.probes.packages import TF_DISTRIBUTIONS, tf_distributions
from oddoctor.snapshot import Distribution, KernelRun, ProbeError, ProbeOutcome, TensorFlowFacts, TfGpu

__all__ = [
    "DEFAULT_TIMEOUT_S", "TF_DISTRIBUTIONS", "Cancelled", "TensorFlowFacts", "installed_distribution",
    "probe_tensorflow",
]

CHILD = Path(__file__).resolve().parent.parent / "_child" / "probe_tf.py"
DEFAULT_TIMEOUT_S = 60.0
STDERR_TAIL_LINES = 25

#: TensorFlow log lines worth quoting in a diagnosis: library loads, device selection, CUDA init, and
#: TensorFlow's own words for the failures oddoctor diagnoses (driver too old, no kernel image, OOM,
#: cuDNN/cuBLAS errors, numpy/protobuf/Keras mismatches). Short upper-case tokens match as words.
_LOG_PATTERNS = re.compile(
    r"(?i:Could not load dynamic library|Cannot dlopen some GPU libraries|dso_loader|cuda_dnn|"
    r"Loaded runtime CuDNN|Ignoring visible gpu device|cuInit|failed call to cuInit|CUDA_ERROR|"
    r"Could not find cuda drivers|could not find cuda|libdevice|ptxas|device kernel image is invalid|"
    r"no kernel image is available|minimum required Cuda capability|Created device|Could not find TensorRT|"
    r"TensorRT|TF-TRT Warning|failed to allocate|cudart_stub|DNN library|Skipping registering GPU devices|"
    r"Unable to register|CUDA driver version is insufficient for CUDA runtime version|ran out of memory|"
    r"OOM when allocating|Failed to get convolution algorithm|CUDNN_STATUS_|kernel version|"
    r"does not match DSO version|forward compatibility|numpy|_ARRAY_API|"
    r"Descriptors cannot be created directly|Keras 3|tf_keras|TF_USE_LEGACY_KERAS)"
    r"|\bJIT|\bPTX|\bBFC"
)
LOG_LINES_LIMIT = 80


def installed_distribution() -> tuple[Optional[str], Optional[str]]:
    """``(distribution, version)`` of the first installed TensorFlow distribution, read from metadata only."""
    dists = tf_distributions()
    return (dists[0].name, dists[0].version) if dists else (None, None)


def probe_tensorflow(timeout_s: float = DEFAULT_TIMEOUT_S, python: Optional[str] = None,
                     errors: Optional[list[ProbeError]] = None,
                     cancel: Optional[threading.Event] = None, kernels: bool = False) -> TensorFlowFacts:
    """Import TensorFlow in a child process (``python`` or this interpreter) and record what happened.

    ``kernels`` (``check --active``): then run small real kernels on each device (``_child/kernels.py``).

    Never raises (but Ctrl-C). The distributions are those the child's interpreter sees; facts the child
    did not get to (build info, GPUs) stay None with a :class:`ProbeError` in ``errors`` saying why.
    """
    facts = TensorFlowFacts()
    outcome = ProbeOutcome(ran=True, timeout_s=timeout_s)
    facts.probe = outcome
    same_python = python is None or os.path.realpath(python) == os.path.realpath(sys.executable)
    env = dict(os.environ)
    env["TF_CPP_MIN_LOG_LEVEL"] = "0"  # we want the INFO lines ("Ignoring visible gpu device ...")
    env.setdefault("PYTHONUNBUFFERED", "1")
    env["ODDOCTOR_PROBE_KERNELS"] = "1" if kernels else "0"
    data: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="oddoctor-tf-") as tmp:
        out = Path(tmp) / "facts.json"
        child = run_child([python or sys.executable, str(CHILD), str(out), *TF_DISTRIBUTIONS],
                          timeout_s=timeout_s, env=env, cancel=cancel, merge_stderr=True)
        if child.start_error is not None:
            if same_python:
                _distributions_here(facts, errors)
            outcome.ran = False
            outcome.error = f"could not start the TensorFlow probe: {child.start_error}"
            _note(errors, "tensorflow", outcome.error)
            return facts
        outcome.elapsed_s = child.elapsed_s
        outcome.timed_out = child.timed_out
        if child.signal and not child.timed_out:
            outcome.signal = child.signal
        elif not child.timed_out:
            outcome.exit_code = child.returncode
        outcome.stderr_tail = [ln.rstrip() for ln in child.stderr_lines[-STDERR_TAIL_LINES:]]
        facts.log_lines = _interesting(child.stderr_lines)
        if out.exists():
            try:
                loaded = json.loads(out.read_text(encoding="utf-8"))
                data = loaded if isinstance(loaded, dict) else {}
            except (OSError, UnicodeDecodeError, json.JSONDecodeError):
                data = {}
    if same_python and not isinstance(data.get("distributions"), list):
        _distributions_here(facts, errors)  # the child did not get to say: what this process reads
    _apply(facts, outcome, data, errors)
    return facts


def _distributions_here(facts: TensorFlowFacts, errors: Optional[list[ProbeError]]) -> None:
    """The TensorFlow distributions as this process reads them (the child's own list, when it wrote one, is the
    truth for it, and costs nothing while TensorFlow's import is the critical path)."""
    try:
        _set_distributions(facts, tf_distributions())
    except Exception as e:  # noqa: BLE001 - unreadable metadata: the child may still tell
        _note(errors, "tensorflow.distributions", f"could not read installed distributions: {_err(e)}")


def _set_distributions(facts: TensorFlowFacts, dists: list[Distribution]) -> None:
    facts.distributions = dists
    facts.installed = bool(dists)
    facts.distribution = dists[0].name if dists else None
    facts.version = dists[0].version if dists else None


def _apply(facts: TensorFlowFacts, outcome: ProbeOutcome, data: dict[str, Any],
           errors: Optional[list[ProbeError]]) -> None:
    stage = data.get("stage")
    child_dists = data.get("distributions")
    if isinstance(child_dists, list):  # what the child's interpreter sees is the truth for it
        _set_distributions(facts, [Distribution(name=str(n), version=None if v is None else str(v))
                                   for n, v in child_dists])
    died = outcome.timed_out or outcome.signal or (outcome.exit_code not in (0, 3) and stage != "done")
    if died:
        # The child died or hung; where it got to is still a fact.
        facts.importable = bool(data.get("importable")) if stage not in (None, "import") else False
        what = (f"hung for more than {outcome.timeout_s:g} s" if outcome.timed_out
                else f"was killed by {outcome.signal}" if outcome.signal
                else f"exited with code {outcome.exit_code}")
        outcome.error = f"the TensorFlow probe {what} during {stage or 'start-up'}"
    elif data.get("importable") is False:
        facts.importable = False
        outcome.error = data.get("error")
    else:
        facts.importable = bool(data.get("importable"))
    if data.get("version"):
        facts.version = facts.version or str(data["version"])
    if isinstance(data.get("build_info"), dict):
        facts.build_info = data["build_info"]
    if isinstance(data.get("built_with_cuda"), bool):
        facts.built_with_cuda = data["built_with_cuda"]
    if isinstance(data.get("gpus"), list):
        facts.gpus = [TfGpu(name=g.get("name"), device_name=g.get("device_name"),
                            compute_capability=g.get("compute_capability"))
                      for g in data["gpus"] if isinstance(g, dict)]
    if "od_api_importable" in data:
        facts.od_api_importable = bool(data["od_api_importable"])
        facts.od_api_error = data.get("od_api_error")
    elif died and stage == "od_api":  # importing object_detection took the process down
        facts.od_api_importable = False
        facts.od_api_error = outcome.error
    if isinstance(data.get("kernels"), list):
        facts.kernels = _kernel_runs(data["kernels"], outcome, bool(died))
        if data.get("kernels_error"):
            _note(errors, "tensorflow.kernels", str(data["kernels_error"]))
    if not facts.importable:
        _note(errors, "tensorflow", outcome.error or "TensorFlow did not import")
        return
    why = outcome.error if died else None
    for fact, key in (("build_info", "build_info_error"), ("built_with_cuda", "built_with_cuda_error"),
                      ("gpus", "list_devices_error")):
        if getattr(facts, fact) is None:
            _note(errors, f"tensorflow.{fact}", data.get(key) or why or f"the TensorFlow probe did not report {fact}")


def _kernel_runs(records: list[Any], outcome: ProbeOutcome, died: bool) -> list[KernelRun]:
    """The child's kernel records; the one it left unfinished took the process down (or hung) with it."""
    runs = []
    for rec in records:
        if not isinstance(rec, dict):
            continue
        run = KernelRun(device=rec.get("device"), kernel=rec.get("kernel"), ok=rec.get("ok"), error=rec.get("error"),
                        first_s=rec.get("first_s"), second_s=rec.get("second_s"))
        if run.ok is None and run.error is None and died:
            tail = " | ".join(ln.strip() for ln in outcome.stderr_tail[-3:] if ln.strip())
            run.ok = None if outcome.timed_out else False
            run.error = (f"not finished: {outcome.error}" if outcome.timed_out
                         else f"{outcome.error}" + (f"; its last words: {tail}" if tail else ""))
        runs.append(run)
    return runs


def _note(errors: Optional[list[ProbeError]], fact: str, error: str) -> None:
    if errors is not None:
        errors.append(ProbeError(fact=fact, error=error))


def _err(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}"


def _interesting(lines: list[str], limit: int = LOG_LINES_LIMIT) -> list[str]:
    """TF's log lines worth quoting, each once (TF often logs the same line on every init)."""
    out: list[str] = []
    seen: set[str] = set()
    for ln in lines:
        if not _LOG_PATTERNS.search(ln):
            continue
        key = ln.split("] ", 1)[-1].strip()  # without the timestamp/thread prefix
        if key not in seen:
            seen.add(key)
            out.append(ln.rstrip())
            if len(out) >= limit:
                break
    return out
