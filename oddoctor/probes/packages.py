"""Installed Python distributions and conda packages that matter to a TensorFlow set-up.

Read from metadata only (``importlib.metadata``, ``conda-meta/*.json``): nothing is imported.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Optional

from oddoctor.snapshot import CondaFacts, Distribution, ProbeError

#: Distributions that provide the ``tensorflow`` module, in the order we report them.
TF_DISTRIBUTIONS = ("tensorflow", "tensorflow-gpu", "tensorflow-cpu", "tensorflow-intel",
                    "tensorflow-macos", "tensorflow-aarch64", "tensorflow-cpu-aws", "tf-nightly",
                    "tf-nightly-gpu", "tf-nightly-cpu", "intel-tensorflow", "nvidia-tensorflow")

#: Distributions whose versions a diagnosis may quote, besides the TensorFlow ones and ``nvidia-*``.
RELEVANT_PACKAGES = ("numpy", "protobuf", "keras", "tf-keras", "tf-slim", "object-detection",
                     "tensorflow-io", "tensorflow-io-gcs-filesystem", "tensorflow-addons",
                     "tensorflow-metal", "tensorflow-estimator", "tensorflow-text", "tensorflow-hub",
                     "tensorflow-probability", "tensorboard", "ml-dtypes", "h5py", "tensorrt", "jax",
                     "jaxlib", "torch")

#: Name prefixes of relevant families: CUDA wheels (``nvidia-cudnn-cu12``), TensorRT's split wheels.
RELEVANT_PREFIXES = ("nvidia-", "tensorrt-")

#: conda packages that say which CUDA, cuDNN or TensorFlow a conda environment holds.
CONDA_PACKAGES = ("cudatoolkit", "cuda-toolkit", "cuda-cudart", "cuda-runtime", "cuda-compat", "cudnn",
                  "libcudnn", "libcublas", "cuda-version", "tensorflow", "tensorflow-base", "tensorflow-gpu")


def normalise(name: str) -> str:
    """PEP 503 normal form: ``Tensorflow_GPU`` -> ``tensorflow-gpu``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def installed(path: Optional[list[str]] = None) -> dict[str, str]:
    """Every installed distribution, normalised name -> version; the first on ``path`` (``sys.path``) wins."""
    import importlib.metadata  # here, not at the top: `check` starts TensorFlow's child before it needs this

    found: dict[str, str] = {}
    dists = importlib.metadata.distributions() if path is None else importlib.metadata.distributions(path=path)
    for dist in dists:
        try:
            name = dist.metadata["Name"]
            version = dist.version
        except Exception:  # noqa: BLE001 - one broken METADATA file must not hide the others
            continue
        if name and version:
            found.setdefault(normalise(name), str(version))
    return found


def is_relevant(name: str) -> bool:
    return name in TF_DISTRIBUTIONS or name in RELEVANT_PACKAGES or name.startswith(RELEVANT_PREFIXES)


def probe_packages(path: Optional[list[str]] = None,
                   errors: Optional[list[ProbeError]] = None) -> Optional[dict[str, str]]:
    """Relevant installed distributions (TensorFlow's, numpy, protobuf, keras, ``nvidia-*``...), name -> version.

    A name absent from the result is not installed; None (and a :class:`ProbeError`) when the metadata
    could not be read at all.
    """
    try:
        every = installed(path)
    except Exception as e:  # noqa: BLE001 - a probe never raises
        if errors is not None:
            errors.append(ProbeError("packages", f"could not read installed distributions: {type(e).__name__}: {e}"))
        return None
    return {name: every[name] for name in sorted(every) if is_relevant(name)}


def tf_distributions(path: Optional[list[str]] = None) -> list[Distribution]:
    """Every installed distribution that provides the ``tensorflow`` module, in :data:`TF_DISTRIBUTIONS` order."""
    every = installed(path)
    return [Distribution(name=n, version=every[n]) for n in TF_DISTRIBUTIONS if n in every]


def probe_conda(environ: Optional[Mapping[str, str]] = None,
                errors: Optional[list[ProbeError]] = None) -> Optional[CondaFacts]:
    """The active conda environment's CUDA/cuDNN/TensorFlow packages; None outside a conda environment."""
    env = os.environ if environ is None else environ
    prefix = env.get("CONDA_PREFIX")
    if not prefix:
        return None
    facts = CondaFacts(prefix=prefix)
    meta = Path(prefix) / "conda-meta"
    try:
        names = sorted(os.listdir(meta))
    except OSError as e:
        if errors is not None:
            errors.append(ProbeError("conda.packages", f"cannot list {meta}: {e}"))
        return facts
    packages: dict[str, str] = {}
    for fname in names:
        if not fname.endswith(".json") or not fname.startswith(tuple(f"{n}-" for n in CONDA_PACKAGES)):
            continue
        name, version = _conda_record(meta / fname)
        if name in CONDA_PACKAGES and version:
            packages.setdefault(name, version)
    facts.packages = dict(sorted(packages.items()))
    return facts


def _conda_record(path: Path) -> tuple[Optional[str], Optional[str]]:
    """``(name, version)`` of one ``conda-meta`` record; from its file name when the JSON is unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(data, dict) and isinstance(data.get("name"), str) and data.get("version"):
            return data["name"], str(data["version"])
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        pass
    # <name>-<version>-<build>.json: the name may hold dashes, version and build do not
    parts = path.name[: -len(".json")].rsplit("-", 2)
    return (parts[0], parts[1]) if len(parts) == 3 else (None, None)
