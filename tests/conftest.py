from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import SNAPSHOTS


def pytest_configure(config: pytest.Config) -> None:
    """The Ctrl-C tests play a user at a terminal. A suite started where SIGINT is ignored (an asynchronous command
    of a shell without job control, e.g. ``(pytest &)`` or ``nohup``) hands that on to every child it starts, which
    then never sees the Ctrl-C those tests send (5 of them failed so). Children start with SIGINT as a terminal
    gives it: the default handler here (reset to SIG_DFL in each child at exec)."""
    import signal

    if hasattr(signal, "SIGINT") and signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


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
