from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import SNAPSHOTS


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
