"""Build a :class:`Snapshot` of this machine: every probe, plus the plugins' fact probes."""

from __future__ import annotations

import datetime
import json
import socket
from typing import Any, Callable, Optional, TypeVar

from oddoctor import __version__
from oddoctor.plugins import PluginSet, collect_fact_probes
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
    say(f"importing TensorFlow in a child process (timeout {tf_timeout_s:g} s)")
    snap.tensorflow = _guarded(errs, "tensorflow", lambda: tf_probe.probe_tensorflow(
        timeout_s=tf_timeout_s, python=python, errors=errs), TensorFlowFacts())
    if ps is not None:
        _plugin_facts(snap, ps, say)
    return snap


def _plugin_facts(snap: Snapshot, ps: PluginSet, say: Callable[[str], None]) -> None:
    for plugin, fact, probe in collect_fact_probes(ps):
        say(f"collecting fact {fact!r} from plugin {plugin}")
        try:
            value: Any = probe()
            json.dumps(value)
        except Exception as e:  # noqa: BLE001 - a plugin's probe failing is recorded, not raised
            snap.probe_errors.append(ProbeError(
                fact=f"extra.{fact}",
                error=f"could not collect {fact} (plugin {plugin}): {type(e).__name__}: {e}"))
            continue
        snap.extra[fact] = value
    for err in ps.errors:
        if err.stage == "oddoctor_facts":
            snap.probe_errors.append(ProbeError(
                fact="extra", error=f"plugin {err.plugin} failed in oddoctor_facts: {err.message}"))
