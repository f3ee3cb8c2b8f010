"""TensorFlow facts, from a child process with a timeout.

oddoctor's own process never imports TensorFlow for ``check``: an import that segfaults, aborts,
raises or hangs is recorded (exit code, signal, the tail of its stderr, elapsed time) as a fact.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from oddoctor.snapshot import ProbeOutcome, TensorFlowFacts, TfGpu

CHILD = Path(__file__).resolve().parent.parent / "_child" / "probe_tf.py"
DEFAULT_TIMEOUT_S = 60.0
STDERR_TAIL_LINES = 25

#: Distributions that provide the ``tensorflow`` module, in the order we report them.
TF_DISTRIBUTIONS = ("tensorflow", "tensorflow-gpu", "tensorflow-cpu", "tensorflow-intel",
                    "tensorflow-macos", "tensorflow-aarch64", "tensorflow-cpu-aws", "tf-nightly",
                    "tf-nightly-gpu", "tf-nightly-cpu", "intel-tensorflow")

#: TensorFlow log lines worth quoting in a diagnosis (library loads, device selection, CUDA init).
_LOG_PATTERNS = re.compile(
    r"Could not load dynamic library|Cannot dlopen some GPU libraries|dso_loader|cuda_dnn|"
    r"Loaded runtime CuDNN|Ignoring visible gpu device|cuInit|CUDA_ERROR|Could not find cuda drivers|"
    r"could not find cuda|libdevice|ptxas|device kernel image is invalid|minimum required Cuda capability|"
    r"Created device|Could not find TensorRT|TF-TRT Warning|failed to allocate|cudart_stub|"
    r"DNN library|Skipping registering GPU devices|Unable to register",
    re.IGNORECASE,
)


def installed_distribution() -> tuple[str | None, str | None]:
    """``(distribution, version)`` of the TensorFlow that is installed, read from metadata only."""
    for dist in TF_DISTRIBUTIONS:
        try:
            return dist, importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None, None


def probe_tensorflow(timeout_s: float = DEFAULT_TIMEOUT_S, python: str | None = None) -> TensorFlowFacts:
    """Import TensorFlow in a child process (``python`` or this interpreter) and record what happened."""
    dist, version = installed_distribution()
    facts = TensorFlowFacts(installed=dist is not None, distribution=dist, version=version)
    outcome = ProbeOutcome(ran=True, timeout_s=timeout_s)
    facts.probe = outcome
    env = dict(os.environ)
    env["TF_CPP_MIN_LOG_LEVEL"] = "0"  # we want the INFO lines ("Ignoring visible gpu device ...")
    env.setdefault("PYTHONUNBUFFERED", "1")
    with tempfile.TemporaryDirectory(prefix="oddoctor-tf-") as tmp:
        out = Path(tmp) / "facts.json"
        err_path = Path(tmp) / "stderr.txt"
        t0 = time.monotonic()
        with open(err_path, "wb") as err:
            try:
                proc = subprocess.Popen([python or sys.executable, str(CHILD), str(out)],
                                        stdin=subprocess.DEVNULL, stdout=err, stderr=err, env=env,
                                        start_new_session=True)
            except OSError as e:
                outcome.error = f"could not start the TensorFlow probe: {e}"
                facts.importable = None
                return facts
            try:
                code = proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                outcome.timed_out = True
                _kill_group(proc)
                code = proc.wait()
            except BaseException:  # Ctrl-C: its own session does not get the terminal's SIGINT
                _kill_group(proc)
                proc.wait()
                raise
        outcome.elapsed_s = round(time.monotonic() - t0, 3)
        if code is not None and code < 0:
            try:
                outcome.signal = signal.Signals(-code).name
            except ValueError:
                outcome.signal = f"signal {-code}"
        else:
            outcome.exit_code = code
        stderr = err_path.read_text(encoding="utf-8", errors="replace").splitlines()
        outcome.stderr_tail = [ln.rstrip() for ln in stderr[-STDERR_TAIL_LINES:]]
        facts.log_lines = _interesting(stderr)
        data = {}
        if out.exists():
            try:
                data = json.loads(out.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError):
                data = {}
    _apply(facts, outcome, data)
    return facts


def _apply(facts: TensorFlowFacts, outcome: ProbeOutcome, data: dict) -> None:
    stage = data.get("stage")
    if outcome.timed_out or outcome.signal or (outcome.exit_code not in (0, 3) and stage != "done"):
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
        facts.version = facts.version or data["version"]
    if isinstance(data.get("build_info"), dict):
        facts.build_info = data["build_info"]
    if "built_with_cuda" in data:
        facts.built_with_cuda = bool(data["built_with_cuda"])
    for g in data.get("gpus") or []:
        facts.gpus.append(TfGpu(name=str(g.get("name", "")), device_name=g.get("device_name"),
                                compute_capability=g.get("compute_capability")))


def _interesting(lines: list[str], limit: int = 40) -> list[str]:
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
    return out[:limit]


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        if sys.platform == "win32":
            proc.kill()
        else:
            os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        proc.kill()
