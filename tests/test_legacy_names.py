"""legacy_tf1's layout: one module for the OD API tensor names, the loops in their own modules, old imports kept."""

from __future__ import annotations

import subprocess
import sys

import pytest


def test_names_are_spelled_once_and_agree():
    from oddoctor_legacy_tf1 import names

    assert (*names.REQUIRED_OUTPUT_NAMES, names.MASKS) == names.OUTPUT_NAMES
    assert tuple(f"{n}:0" for n in names.OUTPUT_NAMES) == names.ALL_OUTPUTS
    assert names.INPUT_TENSOR == "image_tensor:0" and names.MASK_OUTPUT == "detection_masks:0"


def test_the_model_and_the_loader_use_those_names():
    from oddoctor_legacy_tf1 import graph_io, model, names

    assert model.OUTPUT_NAMES is names.OUTPUT_NAMES and model.INPUT_NAME is names.INPUT_NAME
    assert graph_io.ALL_OUTPUTS is names.ALL_OUTPUTS and graph_io.INPUT_TENSOR is names.INPUT_TENSOR


def test_patterns_re_exports_the_split_modules():
    from oddoctor_legacy_tf1 import LegacyDetector, detector, patterns, reframe, tutorial

    assert patterns.LegacyDetector is detector.LegacyDetector is LegacyDetector
    assert patterns.session_config is detector.session_config
    assert patterns.run_inference_for_single_image is tutorial.run_inference_for_single_image
    assert patterns.load_detection_graph is tutorial.load_detection_graph
    assert patterns.reframe_box_masks_to_image_masks is reframe.reframe_box_masks_to_image_masks


def test_a_missing_package_attribute_is_an_attribute_error():
    import oddoctor_legacy_tf1

    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        _ = oddoctor_legacy_tf1.Nope  # type: ignore[attr-defined]


def test_the_names_and_the_loader_import_neither_numpy_nor_tensorflow():
    code = ("import sys, oddoctor_legacy_tf1.names, oddoctor_legacy_tf1.graph_io; "
            "sys.exit(1 if {'numpy', 'tensorflow'} & {m.split('.')[0] for m in sys.modules} else 0)")
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_the_model_file_is_written_atomically(tf, tmp_path):
    from oddoctor_legacy_tf1.model import build_model

    target = tmp_path / "real" / "frozen_inference_graph.pb"
    target.parent.mkdir()
    target.write_bytes(b"old")
    link = tmp_path / "link.pb"
    link.symlink_to(target)
    build_model(link, max_proposals=8, max_detections=4)  # written through the link, onto its target
    assert link.is_symlink() and target.read_bytes() != b"old" and len(target.read_bytes()) > 1000
    assert sorted(p.name for p in target.parent.iterdir()) == ["frozen_inference_graph.pb"]  # no temp file
    fresh = build_model(tmp_path / "new" / "deeper" / "m.pb", max_proposals=8, max_detections=4)
    assert fresh.read_bytes() == target.read_bytes()
