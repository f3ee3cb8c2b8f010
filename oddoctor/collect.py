"""Build a :class:`Snapshot` of this machine: every probe, plus the plugins' fact probes."""

from __future__ import annotations

import datetime
import json
import socket
import threading
from typing import Any, Callable, Optional, TypeVar

from oddoctor import __version__
from oddoctor.manager import PluginSet, collect_fact_probes
from oddoctor.probes import cudalibs, hardware, nvml, packages, system
from oddoctor.probes import tensorflow as tf_probe
from oddoctor.snapshot import (
    CudaLibsFacts,
    HardwareFacts,
    NvmlFacts,
    PlatformFacts,
    ProbeError,
    PythonFacts,
    Snapshot,
    TensorFlowFacts,
)

T = TypeVar("T")


def _guarded(errors: list[ProbeError], fact: str, probe: Callable[[], T], unknown: T) -> T:
    """``probe()``; if it raises after all (a bug: probes never raise), ``unknown`` and a ProbeError for ``fact``."""
    try:
        return probe()
    except Exception as e:  # noqa: BLE001 - one broken probe must not cost the whole snapshot
        errors.append(ProbeError(fact=fact, error=f"the {fact} probe failed: {type(e).__name__}: {e}"))
        return unknown


def collect_snapshot(
    ps: Optional[PluginSet] = None,
    *,
    tf_timeout_s: float = tf_probe.DEFAULT_TIMEOUT_S,
    python: Optional[str] = None,
    progress: Optional[Callable[[str], None]] = None,
) -> Snapshot:
    """Run every probe. Never raises for a fact about the machine: what could not be told is None,
    and ``probe_errors`` says why."""
    say = progress or (lambda _msg: None)
    snap = Snapshot(
        oddoctor_version=__version__,
        collected_at=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        hostname=socket.gethostname(),
    )
    errs = snap.probe_errors
    # TensorFlow's import is the slow part: it runs in its child while everything else is probed here.
    say(f"importing TensorFlow in a child process (timeout {tf_timeout_s:g} s)")
    tf_errs: list[ProbeError] = []
    tf_box: dict[str, TensorFlowFacts] = {}
    cancel, finished = threading.Event(), threading.Event()

    def probe_tf() -> None:
        try:
            tf_box["facts"] = _guarded(tf_errs, "tensorflow", lambda: tf_probe.probe_tensorflow(
                timeout_s=tf_timeout_s, python=python, errors=tf_errs, cancel=cancel), TensorFlowFacts())
        finally:
            finished.set()

    tf_thread = threading.Thread(target=probe_tf, name="oddoctor-tf-probe", daemon=True)
    tf_thread.start()
    try:
        _probe_the_rest(snap, errs, say)
        if ps is not None:
            _plugin_facts(snap, ps, say)
        say("waiting for the TensorFlow probe")
        while not finished.wait(0.2):  # short waits: Ctrl-C and SIGTERM are handled in this thread
            pass
    except BaseException:
        # The probe kills its child's process group and removes its temp folder. (Not Thread.join: a join that
        # a signal interrupted returns at once ever after.)
        cancel.set()
        finished.wait(10)
        raise
    snap.tensorflow = tf_box.get("facts", TensorFlowFacts())
    errs.extend(tf_errs)
    return snap


def _probe_the_rest(snap: Snapshot, errs: list[ProbeError], say: Callable[[str], None]) -> None:
    say("probing platform and Python")
    snap.platform = _guarded(errs, "platform", lambda: system.probe_platform(errors=errs), PlatformFacts())
    snap.python = _guarded(errs, "python", system.probe_python, PythonFacts())
    snap.env = _guarded(errs, "env", system.probe_env, {})
    say("looking for NVIDIA hardware (PCI devices, /dev/nvidia*, kernel module)")
    snap.hardware = _guarded(errs, "hardware", lambda: hardware.probe_hardware(errors=errs), HardwareFacts())
    say("probing NVIDIA driver and GPUs (NVML)")
    snap.nvml = _guarded(errs, "nvml", lambda: nvml.probe_nvml(errors=errs), NvmlFacts())
    say("looking for CUDA runtime and cuDNN libraries")
    snap.cuda_libs = _guarded(errs, "cuda_libs", lambda: cudalibs.probe_cuda_libs(
        wsl=snap.platform.is_wsl if snap.platform.system == "Linux" else None, errors=errs), CudaLibsFacts())
    say("reading installed Python packages and the conda environment")
    snap.packages = _guarded(errs, "packages", lambda: packages.probe_packages(errors=errs), None)
    snap.conda = _guarded(errs, "conda", lambda: packages.probe_conda(errors=errs), None)


#: Seconds a plugin's fact probe may take before it is abandoned (recorded as a probe error).
FACT_PROBE_TIMEOUT_S = 10.0


def _plugin_facts(snap: Snapshot, ps: PluginSet, say: Callable[[str], None]) -> None:
    for plugin, fact, probe in collect_fact_probes(ps):
        say(f"collecting fact {fact!r} from plugin {plugin}")
        box: dict[str, Any] = {}

        def run(probe: Callable[[], Any] = probe, box: dict[str, Any] = box) -> None:
            try:
                box["value"] = probe()
            except (Exception, SystemExit) as e:  # noqa: BLE001 - a plugin's probe failing is recorded
                box["exc"] = e

        th = threading.Thread(target=run, name=f"oddoctor-fact-{fact}", daemon=True)
        th.start()
        th.join(FACT_PROBE_TIMEOUT_S)
        why = None
        if th.is_alive():
            why = f"did not finish within {FACT_PROBE_TIMEOUT_S:g} s"
        elif "exc" in box:
            why = f"{type(box['exc']).__name__}: {box['exc']}"
        else:
            try:
                json.dumps(box.get("value"), allow_nan=False)
            except (TypeError, ValueError) as e:
                why = f"not JSON-serialisable ({e})"
        if why is not None:
            snap.probe_errors.append(ProbeError(fact=f"extra.{fact}",
                                                error=f"could not collect {fact} (plugin {plugin}): {why}"))
            continue
        snap.extra[fact] = box.get("value")
    for err in ps.errors:
        if err.stage == "oddoctor_facts":
            snap.probe_errors.append(ProbeError(
                fact="extra", error=f"plugin {err.plugin} failed in oddoctor_facts: {err.message}"))
