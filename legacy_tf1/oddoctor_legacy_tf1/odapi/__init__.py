"""The Object Detection API's own Mask R-CNN Inception v2, built on demand with seeded random weights.

The 2022 OD API wheel (``tf-models-research-object-detection``) still builds and exports its TF1
models under a current TensorFlow, given a few in-process arrangements (:mod:`.shims`). It and what
its import chain needs are installed with ``pip --no-deps --target`` into a private folder, never
into this environment, and the model is built in a child process with that folder on PYTHONPATH.

Public API (nothing here imports TensorFlow or ``oddoctor``):

- ``site_dir() -> Path``: the private folder (``$ODDOCTOR_ODAPI_SITE``, else
  ``~/.cache/oddoctor/odapi-site``).
- ``is_installed(site=None) -> bool``: whether ``install()`` completed there with today's ``REQUIREMENTS``.
- ``install(target=None) -> Path``: ``pip install --no-deps --target`` of ``REQUIREMENTS``, atomically.
- ``child_env(site=None) -> dict``: the environment for a child that calls ``shims.prepare()``.
- ``model_dir(*, size=300, seed=0, cache_dir=None) -> Path``: where ``ensure_model`` keeps that model
  (``$ODDOCTOR_MODEL_CACHE``, else ``~/.cache/oddoctor/models``, then
  ``odapi-mask_rcnn_inception_v2-<size>-s<seed>/``).
- ``ensure_model(*, size=300, seed=0, cache_dir=None, site=None, timeout=1800) -> Path``: that
  directory, built first if missing: ``frozen_inference_graph.pb``, ``saved_model/``,
  ``pipeline.config``, ``model.json`` (size, seed, nodes, bytes, sha256, versions, build seconds,
  peak RSS) and ``build.log`` (the child's stderr).
- ``is_built(*, size=300, seed=0, cache_dir=None) -> bool``: whether that model is cached, complete.
- ``read_model_info(path) -> dict``: a built model's ``model.json``.
- ``OdapiUnavailable``: the OD API site is missing (the message says how to install it);
  ``OdapiBuildError``: pip or the build child failed (the message ends with its output's tail).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Optional, Union

ENV_SITE = "ODDOCTOR_ODAPI_SITE"
ENV_MODEL_CACHE = "ODDOCTOR_MODEL_CACHE"
MODEL_NAME = "odapi-mask_rcnn_inception_v2"
FROZEN_GRAPH = "frozen_inference_graph.pb"
MODEL_JSON = "model.json"
INSTALL_MARKER = "oddoctor-odapi.json"
INSTALL_HINT = "python -m oddoctor_legacy_tf1.odapi install"

# What `python -m oddoctor_legacy_tf1.odapi.build` imports beyond TensorFlow and its own dependencies
# (numpy, protobuf, six, absl, packaging), found by blocking imports one at a time (TF 2.21,
# Python 3.11). All installed with --no-deps: the OD API's own requirements (tf-models-official,
# tensorflow_io, pycocotools, lvis, pandas, lxml, Cython, contextlib2) are not imported on
# the path from model_builder/exporter/utils.ops to a frozen Mask R-CNN. Four pins (scipy,
# matplotlib, pillow, fonttools) require Python >= 3.11.
REQUIREMENTS: tuple[tuple[str, str], ...] = (
    ("tf-models-research-object-detection==2.8.0.post1",
     "the OD API itself, with tf-models' slim `nets` (an sdist: pip builds it)"),
    ("tf-slim==1.1.0", "every TF1 feature extractor (`import tf_slim as slim` in utils/ops.py)"),
    ("tf-keras==2.21.0",
     "TF 2.21's tf.compat.v1 layers (slim's batch_norm) load tf_keras.legacy_tf_layers; must match TF's minor"),
    ("scipy==1.17.1", "core/densepose_ops.py: `import scipy.io` (model_builder -> core/preprocessor.py)"),
    ("matplotlib==3.11.2", "utils/visualization_utils.py (model_builder -> ssd_meta_arch) imports pyplot"),
    ("pillow==13.0.0", "utils/visualization_utils.py: PIL.Image/ImageDraw/ImageFont; also matplotlib/colors.py"),
    ("cycler==0.12.1", "imported by matplotlib/rcsetup.py"),
    ("fonttools==4.68.0", "imported by matplotlib.pyplot (through textpath.py, dviread.py)"),
    ("kiwisolver==1.5.1", "imported by `import matplotlib` (its _check_versions)"),
    ("pyparsing==3.3.2", "imported by matplotlib/rcsetup.py (through _fontconfig_pattern.py)"),
    ("python-dateutil==2.9.0.post0", "imported by `import matplotlib` (its _check_versions)"),
)


class OdapiUnavailable(RuntimeError):
    """The OD API site is not installed; the message is the fix."""


class OdapiBuildError(RuntimeError):
    """pip or the model-building child failed; the message ends with the tail of its output."""


def _cache_home() -> Path:
    return Path.home() / ".cache" / "oddoctor"


def site_dir() -> Path:
    """The private ``pip --target`` folder for the OD API: ``$ODDOCTOR_ODAPI_SITE`` or the default."""
    env = os.environ.get(ENV_SITE)
    return Path(env).expanduser() if env else _cache_home() / "odapi-site"


def requirement_specs() -> list[str]:
    """The pinned requirement strings, in install order; tf-keras follows the installed TensorFlow's
    major.minor (tf-keras 2.N goes with TensorFlow 2.N only), 2.21.0 where TensorFlow is not installed."""
    return [_tf_keras_for_installed_tf(req) for req, _why in REQUIREMENTS]


def _tf_keras_for_installed_tf(req: str) -> str:
    if not req.startswith("tf-keras=="):
        return req
    import importlib.metadata

    try:
        parts = importlib.metadata.version("tensorflow").split(".")
    except importlib.metadata.PackageNotFoundError:
        return req
    if len(parts) < 2 or not (parts[0].isdigit() and parts[1].isdigit()) or req == f"tf-keras=={parts[0]}.{parts[1]}.0":
        return req
    return f"tf-keras=={parts[0]}.{parts[1]}.*"


def is_installed(site: Optional[Union[str, Path]] = None) -> bool:
    """Whether ``install()`` completed in ``site`` with the current ``REQUIREMENTS`` (no import)."""
    site = Path(site) if site is not None else site_dir()
    try:
        marker = json.loads((site / INSTALL_MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (isinstance(marker, dict) and marker.get("requirements") == requirement_specs()
            and (site / "object_detection" / "exporter.py").is_file())


def install(target: Optional[Union[str, Path]] = None, *, timeout: float = 1800) -> Path:
    """``pip install --no-deps --target`` the pinned ``REQUIREMENTS`` into ``target`` (default
    ``site_dir()``), replacing what is there; return ``target``.

    pip writes into a temporary sibling folder that is renamed into place once it succeeded, so
    ``is_installed`` never sees half an install. Raises ``OdapiBuildError`` with pip's output.
    """
    target = Path(target) if target is not None else site_dir()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        start = time.perf_counter()
        cmd = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-input", "--disable-pip-version-check",
               "--target", str(tmp), *requirement_specs()]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        if proc.returncode != 0:
            raise OdapiBuildError(f"pip failed (exit {proc.returncode}): {' '.join(cmd)}\n"
                                  f"{_tail(proc.stdout + proc.stderr)}")
        marker = {"requirements": requirement_specs(), "python": sys.version.split()[0],
                  "install_seconds": round(time.perf_counter() - start, 1)}
        (tmp / INSTALL_MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
        _replace_dir(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def child_env(site: Optional[Union[str, Path]] = None, base: Optional[dict[str, str]] = None) -> dict[str, str]:
    """Environment for a child process that imports the OD API through ``shims.prepare()``.

    The site goes first on PYTHONPATH; from a plain source checkout the folder holding
    ``oddoctor_legacy_tf1`` follows, so that ``-m`` finds it (never a site-packages folder: PYTHONPATH
    comes before the standard library). protobuf is set to its pure-Python implementation before
    anything imports it.
    """
    from oddoctor_legacy_tf1.odapi.shims import PROTOBUF_ENV

    env = dict(os.environ if base is None else base)
    site = Path(site) if site is not None else site_dir()
    paths = [str(site)]
    here = Path(__file__).resolve().parents[2]
    if here.name not in ("site-packages", "dist-packages"):
        paths.append(str(here))
    paths += [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p not in paths]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env[PROTOBUF_ENV] = "python"
    return env


def cache_root(cache_dir: Optional[Union[str, Path]] = None) -> Path:
    """Where built models live: ``cache_dir``, ``$ODDOCTOR_MODEL_CACHE`` or ``~/.cache/oddoctor/models``."""
    if cache_dir is not None:
        return Path(cache_dir)
    env = os.environ.get(ENV_MODEL_CACHE)
    return Path(env).expanduser() if env else _cache_home() / "models"


def model_dir(*, size: int = 300, seed: int = 0, cache_dir: Optional[Union[str, Path]] = None) -> Path:
    """The directory ``ensure_model`` returns for this size and seed (it may not exist yet)."""
    return cache_root(cache_dir) / f"{MODEL_NAME}-{size}-s{seed}"


def read_model_info(path: Union[str, Path]) -> dict[str, Any]:
    """The ``model.json`` of a built model directory."""
    info = json.loads((Path(path) / MODEL_JSON).read_text(encoding="utf-8"))
    if not isinstance(info, dict):
        raise ValueError(f"{path}/{MODEL_JSON} is not a JSON object")
    return info


def is_built(*, size: int = 300, seed: int = 0, cache_dir: Optional[Union[str, Path]] = None) -> bool:
    """Whether ``ensure_model`` would return this model without building it."""
    return _is_complete(model_dir(size=size, seed=seed, cache_dir=cache_dir))


def _is_complete(path: Path) -> bool:
    try:
        info = read_model_info(path)
        return (path / FROZEN_GRAPH).stat().st_size == info["bytes"]
    except (OSError, ValueError, KeyError, TypeError):
        return False


def ensure_model(*, size: int = 300, seed: int = 0, cache_dir: Optional[Union[str, Path]] = None,
                 site: Optional[Union[str, Path]] = None, timeout: float = 1800) -> Path:
    """The OD API Mask R-CNN Inception v2 export for ``size`` (resizer min dimension) and ``seed``.

    Returns the cached directory at once when it is complete; otherwise builds it in a child
    process (``python -m oddoctor_legacy_tf1.odapi.build``, about a minute and 1.5 GB RSS on CPU)
    into a temporary sibling that is renamed into place only after the child succeeded, so a
    half-built model is never returned. Raises ``OdapiUnavailable`` when the OD API site is not
    installed and ``OdapiBuildError`` when the child fails or runs past ``timeout`` seconds.
    """
    final = model_dir(size=size, seed=seed, cache_dir=cache_dir)
    if _is_complete(final):
        return final
    site = Path(site) if site is not None else site_dir()
    if not is_installed(site):
        raise OdapiUnavailable(
            f"the Object Detection API is not installed in {site}: run `{INSTALL_HINT}` "
            f"(pip --no-deps --target, about 280 MB; set {ENV_SITE} to use another folder)")
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    try:
        _run_build(tmp / "model", size=size, seed=seed, site=site, timeout=timeout)
        if not _is_complete(tmp / "model"):
            raise OdapiBuildError(f"the build child exited 0 but left no complete model in {tmp / 'model'}")
        try:
            (tmp / "model").rename(final)
        except OSError:
            if not _is_complete(final):  # not a concurrent build that finished first
                _replace_dir(tmp / "model", final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def _run_build(out: Path, *, size: int, seed: int, site: Path, timeout: float) -> None:
    env = child_env(site)
    out.mkdir()
    log = out.parent / "build.log"
    cmd = [sys.executable, "-m", "oddoctor_legacy_tf1.odapi.build", "--out", str(out), "--size", str(size),
           "--seed", str(seed), "--site", str(site)]
    with open(log, "w+", encoding="utf-8", errors="replace") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, env=env,
                                start_new_session=(os.name == "posix"))
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            raise OdapiBuildError(f"the model build ran past {timeout:.0f} s and was killed: {' '.join(cmd)}\n"
                                  f"{_tail(log.read_text(encoding='utf-8', errors='replace'))}") from None
        except BaseException:
            _kill_group(proc)
            raise
    text = log.read_text(encoding="utf-8", errors="replace")
    if rc != 0:
        raise OdapiBuildError(f"the model build failed (exit {rc}): {' '.join(cmd)}\n{_tail(text)}")
    shutil.copyfile(log, out / "build.log")


def _kill_group(proc: subprocess.Popen[Any]) -> None:
    try:
        if os.name == "posix":
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
    except OSError:
        pass
    proc.wait()


def _replace_dir(src: Path, dst: Path) -> None:
    """Move ``src`` to ``dst``, replacing an existing ``dst`` (moved aside first, then deleted)."""
    old = None
    if dst.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{dst.name}.old-", dir=dst.parent))
        dst.rename(old / dst.name)
    src.rename(dst)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _tail(text: str, lines: int = 30) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])
