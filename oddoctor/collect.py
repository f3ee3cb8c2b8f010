"""Build a :class:`Snapshot` of this machine: every probe, plus the plugins' fact probes."""

from __future__ import annotations

import datetime
import json
import socket
from typing import Callable, Optional

from oddoctor import __version__
from oddoctor.plugins import PluginSet, collect_fact_probes
from oddoctor.probes import cudalibs, nvml, system
from oddoctor.probes import tensorflow as tf_probe
from oddoctor.snapshot import Snapshot


def collect_snapshot(
    ps: Optional[PluginSet] = None,
    *,
    tf_timeout_s: float = tf_probe.DEFAULT_TIMEOUT_S,
    python: Optional[str] = None,
    progress: Optional[Callable[[str], None]] = None,
) -> Snapshot:
    """Run every probe. Never raises for a fact about the machine; failures become fields."""
    say = progress or (lambda _msg: None)
    snap = Snapshot(
        oddoctor_version=__version__,
        collected_at=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        hostname=socket.gethostname(),
    )
    say("probing platform and Python")
    snap.platform = system.probe_platform()
    snap.python = system.probe_python()
    snap.env = system.probe_env()
    say("probing NVIDIA driver and GPUs (NVML)")
    snap.nvml = nvml.probe_nvml()
    say("looking for CUDA runtime and cuDNN libraries")
    snap.cuda_libs = cudalibs.probe_cuda_libs()
    say(f"importing TensorFlow in a child process (timeout {tf_timeout_s:g} s)")
    snap.tensorflow = tf_probe.probe_tensorflow(timeout_s=tf_timeout_s, python=python)
    if ps is not None:
        for plugin, fact, probe in collect_fact_probes(ps):
            say(f"collecting fact {fact!r} from plugin {plugin}")
            try:
                value = probe()
                json.dumps(value)
            except Exception as e:  # noqa: BLE001 - a plugin's probe failing is recorded, not raised
                snap.probe_errors.append(f"could not collect {fact} (plugin {plugin}): {type(e).__name__}: {e}")
                continue
            snap.extra[fact] = value
        for err in ps.errors:
            if err.stage == "oddoctor_facts":
                snap.probe_errors.append(f"plugin {err.plugin} failed in oddoctor_facts: {err.message}")
    return snap
