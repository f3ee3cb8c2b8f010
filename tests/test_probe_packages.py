"""Installed distributions and conda packages, read from fake metadata folders."""

from __future__ import annotations

import json
from pathlib import Path

from oddoctor.probes import tensorflow as tf_probe
from oddoctor.probes.packages import TF_DISTRIBUTIONS, probe_conda, probe_packages, tf_distributions
from oddoctor.snapshot import Distribution, ProbeError


def _dist(site: Path, name: str, version: str) -> None:
    d = site / f"{name.replace('-', '_')}-{version}.dist-info"
    d.mkdir(parents=True)
    (d / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")


def test_relevant_packages_normalised_and_only_installed_ones(tmp_path: Path):
    for name, version in [("tensorflow", "2.15.1"), ("tensorflow-intel", "2.15.1"), ("numpy", "1.26.4"),
                          ("Tf_Keras", "2.15.0"), ("nvidia-cudnn-cu12", "8.9.7.29"), ("tensorrt-cu12-libs", "10.0"),
                          ("object-detection", "0.1"), ("requests", "2.31.0")]:
        _dist(tmp_path, name, version)
    pkgs = probe_packages(path=[str(tmp_path)])
    assert pkgs == {"numpy": "1.26.4", "nvidia-cudnn-cu12": "8.9.7.29", "object-detection": "0.1",
                    "tensorflow": "2.15.1", "tensorflow-intel": "2.15.1", "tensorrt-cu12-libs": "10.0",
                    "tf-keras": "2.15.0"}


def test_every_installed_tf_distribution_in_report_order(tmp_path: Path):
    _dist(tmp_path, "tensorflow-gpu", "2.4.0")
    _dist(tmp_path, "tensorflow", "2.15.1")
    _dist(tmp_path, "tensorflow-metal", "1.1.0")  # a plugin, not a TensorFlow
    assert tf_distributions(path=[str(tmp_path)]) == [Distribution("tensorflow", "2.15.1"),
                                                      Distribution("tensorflow-gpu", "2.4.0")]
    assert "tensorflow-metal" not in TF_DISTRIBUTIONS and "nvidia-tensorflow" in TF_DISTRIBUTIONS
    assert probe_packages(path=[str(tmp_path)])["tensorflow-metal"] == "1.1.0"
    assert tf_distributions(path=[str(tmp_path / "empty")]) == []
    assert tf_probe.TF_DISTRIBUTIONS is TF_DISTRIBUTIONS  # one list, imported back


def test_first_on_the_path_wins(tmp_path: Path):
    _dist(tmp_path / "user", "numpy", "2.0.0")
    _dist(tmp_path / "system", "numpy", "1.24.0")
    assert probe_packages(path=[str(tmp_path / "user"), str(tmp_path / "system")]) == {"numpy": "2.0.0"}


def test_no_conda_environment_is_none():
    errors: list[ProbeError] = []
    assert probe_conda({}, errors=errors) is None and errors == []


def _record(meta: Path, name: str, version: str, build: str = "h0_0", body: str | None = None) -> None:
    meta.mkdir(parents=True, exist_ok=True)
    text = json.dumps({"name": name, "version": version, "build": build, "files": []}) if body is None else body
    (meta / f"{name}-{version}-{build}.json").write_text(text)


def test_conda_cuda_packages_from_conda_meta(tmp_path: Path):
    meta = tmp_path / "conda-meta"
    _record(meta, "cudatoolkit", "11.2.2", "hbe64b41_10")
    _record(meta, "cudnn", "8.1.0.77", "h90431f1_0")
    _record(meta, "tensorflow-gpu", "2.4.1", "h30adc30_0")
    _record(meta, "cuda-version", "11.2", "hb11dac2_3", body="{ not json")  # read from the file name
    _record(meta, "python", "3.9.18", "h955ad1f_0")
    _record(meta, "cudatoolkit-dev", "11.7.0", "h1de0b5d_6")  # a different package sharing a prefix
    (meta / "history").write_text("")
    facts = probe_conda({"CONDA_PREFIX": str(tmp_path)})
    assert facts is not None and facts.prefix == str(tmp_path)
    assert facts.packages == {"cuda-version": "11.2", "cudatoolkit": "11.2.2", "cudnn": "8.1.0.77",
                              "tensorflow-gpu": "2.4.1"}


def test_conda_environment_without_cuda_packages_is_empty(tmp_path: Path):
    _record(tmp_path / "conda-meta", "python", "3.11.7")
    assert probe_conda({"CONDA_PREFIX": str(tmp_path)}).packages == {}


def test_unreadable_conda_meta_is_unknown_with_a_reason(tmp_path: Path):
    errors: list[ProbeError] = []
    facts = probe_conda({"CONDA_PREFIX": str(tmp_path / "gone")}, errors=errors)
    assert facts is not None and facts.prefix == str(tmp_path / "gone") and facts.packages is None
    [e] = errors
    assert e.fact == "conda.packages" and "conda-meta" in e.error
