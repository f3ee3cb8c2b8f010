"""Build a :class:`Snapshot` of this machine: every probe, plus the plugins' fact probes.

TensorFlow's import in its child process is the slow part of ``oddoctor check``: :func:`start_tf_probe`
starts it before anything else is imported or probed, and everything else runs while it imports.
"""

from __future__ import annotations

import atexit
import threading
from typing import TYPE_CHECKING, Any, Callable, Optional, TypeVar

from oddoctor import __version__
from oddoctor.interrupts import raise_pending, reraise_signal
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

if TYPE_CHECKING:
    from oddoctor.manager import PluginSet

T = TypeVar("T")


def _guarded(errors: list[ProbeError], fact: str, probe: Callable[[], T], unknown: T) -> T:
    """``probe()``; if it raises after all (a bug: probes never raise), ``unknown`` and a ProbeError for ``fact``."""
    try:
        return probe()
    except Exception as e:  # noqa: BLE001 - one broken probe must not cost the whole snapshot
        reraise_signal(e)  # a Ctrl-C that Python wrapped on its way out of the probe is not the probe's fault
        errors.append(ProbeError(fact=fact, error=f"the {fact} probe failed: {type(e).__name__}: {e}"))
        return unknown


class TfProbe:
    """TensorFlow's probe (its child process), running in a thread of its own from the moment it is made."""

    def __init__(self, *, timeout_s: float = tf_probe.DEFAULT_TIMEOUT_S, python: Optional[str] = None,
                 progress: Optional[Callable[[str], None]] = None, kernels: bool = False) -> None:
        (progress or (lambda _msg: None))(f"importing TensorFlow in a child process (timeout {timeout_s:g} s)"
                                          + (", then running kernels on each device" if kernels else ""))
        self.errors: list[ProbeError] = []
        self._box: dict[str, TensorFlowFacts] = {}
        self._cancel, self._finished = threading.Event(), threading.Event()

        def probe_tf() -> None:
            try:
                self._box["facts"] = _guarded(self.errors, "tensorflow", lambda: tf_probe.probe_tensorflow(
                    timeout_s=timeout_s, python=python, errors=self.errors, cancel=self._cancel, kernels=kernels),
                    TensorFlowFacts())
            finally:
                self._finished.set()
                atexit.unregister(self.cancel)

        # Whoever started the probe cancels it on the way out, but a signal can land between two of their lines
        # (1 SIGTERM or SIGHUP in 20 left the child running): at exit it is cancelled in any case.
        atexit.register(self.cancel)
        threading.Thread(target=probe_tf, name="oddoctor-tf-probe", daemon=True).start()

    def wait(self) -> TensorFlowFacts:
        """The facts, once the probe is done (its errors are in ``errors``); on Ctrl-C or SIGTERM, :meth:`cancel`."""
        try:
            while not self._finished.wait(0.2):  # short waits: Ctrl-C and SIGTERM are handled in this thread
                raise_pending()  # one that something swallowed earlier (oddoctor.interrupts) still stops us
        except BaseException:
            self.cancel()
            raise
        return self._box.get("facts", TensorFlowFacts())

    def cancel(self) -> None:
        """Stop the probe: it kills its child's process group and removes its temp folder. (Not Thread.join: a
        join that a signal interrupted returns at once ever after.)"""
        self._cancel.set()
        self._finished.wait(10)


def start_tf_probe(*, timeout_s: float = tf_probe.DEFAULT_TIMEOUT_S, python: Optional[str] = None,
                   progress: Optional[Callable[[str], None]] = None, kernels: bool = False) -> TfProbe:
    """Start importing TensorFlow in its child process now (``kernels``: then run small kernels on each device,
    ``check --active``); hand the result to :func:`collect_snapshot`."""
    return TfProbe(timeout_s=timeout_s, python=python, progress=progress, kernels=kernels)


def collect_snapshot(
    ps: Optional[PluginSet] = None,
    *,
    tf_timeout_s: float = tf_probe.DEFAULT_TIMEOUT_S,
    python: Optional[str] = None,
    progress: Optional[Callable[[str], None]] = None,
    tf: Optional[TfProbe] = None,
    kernels: bool = False,
) -> Snapshot:
    """Run every probe (``tf``: TensorFlow's, started earlier by :func:`start_tf_probe`; ``kernels``: with small
    real kernels on each device). Never raises for a fact about the machine: what could not be told is None,
    and ``probe_errors`` says why."""
    import datetime
    import socket

    say = progress or (lambda _msg: None)
    # TensorFlow's import is the slow part: it runs in its child while everything else is probed here.
    tf = tf or start_tf_probe(timeout_s=tf_timeout_s, python=python, progress=progress, kernels=kernels)
    try:
        snap = Snapshot(
            oddoctor_version=__version__,
            collected_at=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            hostname=socket.gethostname(),
        )
        errs = snap.probe_errors
        _probe_the_rest(snap, errs, say)
        if ps is not None:
            _plugin_facts(snap, ps, say)
        say("waiting for the TensorFlow probe")
    except BaseException:
        tf.cancel()
        raise
    snap.tensorflow = tf.wait()
    errs.extend(tf.errors)
    return snap


def _probe_the_rest(snap: Snapshot, errs: list[ProbeError], say: Callable[[str], None]) -> None:
    from oddoctor.probes import cudalibs, hardware, nvml, packages, system

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
    import json

    from oddoctor.manager import collect_fact_probes

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
