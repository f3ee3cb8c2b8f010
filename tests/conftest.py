from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import SNAPSHOTS


def pytest_configure(config: pytest.Config) -> None:
    """The Ctrl-C and hang-up tests play a user at a terminal. A suite started where SIGINT is ignored (an
    asynchronous command of a shell without job control, e.g. ``(pytest &)``) or SIGHUP is (``nohup``) hands that
    on to every child it starts, which then never sees the signal those tests send (5 Ctrl-C tests failed so, and
    4 SIGHUP tests under nohup). Children start with the signals as a terminal gives them: the default handlers
    here (SIGINT's reset to SIG_DFL in each child at exec)."""
    import signal

    if hasattr(signal, "SIGINT") and signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if hasattr(signal, "SIGHUP") and signal.getsignal(signal.SIGHUP) == signal.SIG_IGN:
        signal.signal(signal.SIGHUP, signal.SIG_DFL)


#: ``-n auto`` (README's test command) runs at most this many workers: the real-model tests hold about 3 GiB
#: each, and each TensorFlow test already uses every core for its ops.
MAX_AUTO_WORKERS = 4


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """pytest-xdist's ``-n auto``: one worker per CPU this process may use, at most :data:`MAX_AUTO_WORKERS`."""
    from oddoctor.lint.parallel import usable_cpus

    return max(1, min(usable_cpus(), MAX_AUTO_WORKERS))


@pytest.fixture
def snapshots_dir() -> Path:
    return SNAPSHOTS


@pytest.fixture(scope="module")
def tf():
    """TensorFlow, or a clean skip where it is not installed."""
    return pytest.importorskip("tensorflow")


@pytest.fixture(scope="module")
def model_pb(tf, tmp_path_factory) -> Path:
    """The built-in seeded legacy Mask R-CNN, as a frozen graph."""
    from oddoctor_legacy_tf1.model import build_model

    return build_model(tmp_path_factory.mktemp("m") / "frozen_inference_graph.pb", seed=0)
