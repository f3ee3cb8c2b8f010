"""Platform, Python and environment probes: what cannot be told stays None, with a ProbeError saying why.

The other probes have their own files: tests/test_probe_{nvml,cudalibs,hardware,packages,tf}.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from oddoctor.collect import collect_snapshot
from oddoctor.probes import system
from oddoctor.probes import tensorflow as tf_probe
from oddoctor.probes.system import in_container, is_wsl, os_release_name, probe_env, probe_platform
from oddoctor.snapshot import RELEVANT_ENV_VARS, ProbeError, Snapshot

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads Linux files")


def test_wsl_detection():
    assert is_wsl("Linux version 5.15.153.1-microsoft-standard-WSL2", {})
    assert is_wsl("Linux version 6.1.0", {"WSL_DISTRO_NAME": "Ubuntu"})
    assert is_wsl("Linux version 6.1.0-18-amd64 (debian-kernel@lists.debian.org)", {}) is False


def test_wsl_is_unknown_when_the_kernel_version_is_unreadable():
    assert is_wsl(None, {}) is None
    assert is_wsl(None, {"WSL_DISTRO_NAME": "Ubuntu"}) is True


def test_os_release_name():
    assert os_release_name('NAME="Ubuntu"\nPRETTY_NAME="Ubuntu 22.04.4 LTS"\n') == "Ubuntu 22.04.4 LTS"
    assert os_release_name("NAME=Alpine Linux\nVERSION_ID=3.19.1\n") == "Alpine Linux 3.19.1"
    assert os_release_name("# nothing useful\n") is None


def test_container_detection_from_a_fake_root(tmp_path: Path):
    (tmp_path / "proc" / "1").mkdir(parents=True)
    (tmp_path / "proc" / "1" / "cgroup").write_text("0::/\n")
    assert in_container(str(tmp_path), environ={}) == (False, None)
    (tmp_path / "proc" / "1" / "cgroup").write_text("12:memory:/kubepods/burstable/pod1234/abcd\n")
    assert in_container(str(tmp_path), environ={}) == (True, None)
    (tmp_path / "proc" / "1" / "cgroup").write_text("0::/\n")
    (tmp_path / ".dockerenv").write_text("")
    assert in_container(str(tmp_path), environ={}) == (True, None)
    assert in_container(str(tmp_path / "empty"), environ={"container": "podman"}) == (True, None)


def test_container_is_unknown_when_nothing_is_readable(tmp_path: Path):
    answer, why = in_container(str(tmp_path), environ={})
    assert answer is None and "proc/1/cgroup" in str(why)


@linux_only
def test_unreadable_os_release_leaves_distro_unknown_with_a_reason(tmp_path: Path):
    errors: list[ProbeError] = []
    facts = probe_platform(errors=errors, root=str(tmp_path))
    assert facts.system == "Linux" and facts.distro is None
    [why] = [e.error for e in errors if e.fact == "platform.distro"]
    assert "os-release" in why
    # /proc/version is missing too: is_wsl is unknown unless the environment says so
    if facts.is_wsl is None:
        assert any(e.fact == "platform.is_wsl" for e in errors)


@linux_only
def test_platform_facts_from_a_fake_root(tmp_path: Path, monkeypatch):
    monkeypatch.delenv("WSL_DISTRO_NAME", raising=False)
    monkeypatch.delenv("WSL_INTEROP", raising=False)
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "os-release").write_text('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n')
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc" / "version").write_text("Linux version 5.15.153.1-microsoft-standard-WSL2\n")
    errors: list[ProbeError] = []
    facts = probe_platform(errors=errors, root=str(tmp_path))
    assert facts.distro == "Debian GNU/Linux 12 (bookworm)" and facts.is_wsl is True
    assert not [e for e in errors if e.fact in ("platform.distro", "platform.is_wsl")]


def test_env_names_every_relevant_variable_and_unset_is_none(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setenv("TF_FORCE_GPU_ALLOW_GROWTH", "true")
    env = probe_env()
    assert list(env) == list(RELEVANT_ENV_VARS)
    assert env["CUDA_VISIBLE_DEVICES"] is None and env["TF_FORCE_GPU_ALLOW_GROWTH"] == "true"
    assert probe_env({"CUDA_VISIBLE_DEVICES": ""})["CUDA_VISIBLE_DEVICES"] == ""  # set but empty is not unset


def test_collect_turns_a_probe_that_raises_into_a_probe_error(monkeypatch):
    def boom(**kw):
        raise RuntimeError("bug in a probe")

    monkeypatch.setattr(tf_probe, "probe_tensorflow", lambda **kw: tf_probe.TensorFlowFacts())
    monkeypatch.setattr(system, "probe_platform", boom)
    snap = collect_snapshot()
    assert snap.platform.system is None
    assert ProbeError("platform", "the platform probe failed: RuntimeError: bug in a probe") in snap.probe_errors
    assert snap.hardware is not None and snap.cuda_libs.searched is not None
    # a snapshot with structured probe errors round-trips
    again = Snapshot.from_dict(snap.to_dict())
    assert again.probe_errors == snap.probe_errors
