"""`oddoctor leak-test` on the OD API's own Mask R-CNN Inception v2 (size 300), with its own utils_ops.

Slow (each mode imports TensorFlow and runs a 65 MB Mask R-CNN at 3-10 s an image on 2 CPU cores); needs the
private OD API site: `python -m oddoctor_legacy_tf1.odapi install` (the model is built on first use and cached).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from oddoctor_legacy_tf1 import odapi

MAX_IMAGES = 4 + 30  # per mode, warm-up (3, raised to one pass over the 4 sizes) included: the cap; a mode
# stops earlier (median 10 images on this model; issue #10's target of at most 12 held in 10 of 10 legacy and
# 9 of 10 fixed runs, so it is measured by bench/leak_bench.py, not asserted here)
SKIP_REASON = f"OD API site not installed in {odapi.site_dir()}; run: {odapi.INSTALL_HINT}"

# The tutorial's per-image graph building (tensorflow/models r1.13 object_detection_tutorial.ipynb), verbatim
# but for the Session and sess.run, which add no ops: counted directly, two image sizes, three calls.
DIRECT_COUNT = textwrap.dedent("""
    import json, sys
    from oddoctor_legacy_tf1.odapi import shims
    shims.prepare()
    import numpy as np
    import tensorflow.compat.v1 as tf
    from object_detection.utils import ops as utils_ops

    graph = tf.Graph()
    with graph.as_default():
        tf.import_graph_def(tf.GraphDef.FromString(open(sys.argv[1], "rb").read()), name="")

    def build_tensor_dict(image, graph):
        with graph.as_default():
            ops = tf.get_default_graph().get_operations()
            all_tensor_names = {output.name for op in ops for output in op.outputs}
            tensor_dict = {}
            for key in ['num_detections', 'detection_boxes', 'detection_scores',
                        'detection_classes', 'detection_masks']:
                tensor_name = key + ':0'
                if tensor_name in all_tensor_names:
                    tensor_dict[key] = tf.get_default_graph().get_tensor_by_name(tensor_name)
            if 'detection_masks' in tensor_dict:
                detection_boxes = tf.squeeze(tensor_dict['detection_boxes'], [0])
                detection_masks = tf.squeeze(tensor_dict['detection_masks'], [0])
                real_num_detection = tf.cast(tensor_dict['num_detections'][0], tf.int32)
                detection_boxes = tf.slice(detection_boxes, [0, 0], [real_num_detection, -1])
                detection_masks = tf.slice(detection_masks, [0, 0, 0], [real_num_detection, -1, -1])
                detection_masks_reframed = utils_ops.reframe_box_masks_to_image_masks(
                    detection_masks, detection_boxes, image.shape[0], image.shape[1])
                detection_masks_reframed = tf.cast(tf.greater(detection_masks_reframed, 0.5), tf.uint8)
                tensor_dict['detection_masks'] = tf.expand_dims(detection_masks_reframed, 0)
        return tensor_dict

    counts = [len(graph.get_operations())]
    for shape in [(480, 640, 3), (375, 500, 3), (480, 640, 3)]:
        build_tensor_dict(np.zeros(shape, np.uint8), graph)
        counts.append(len(graph.get_operations()))
    print(json.dumps([b - a for a, b in zip(counts, counts[1:])]))
""")

# A user's copy of the tutorial's function, as found in issues: TF1 API, the OD API's utils_ops, a Session
# per call. leak-test runs it in a child that has the OD API on its path.
USER_FILE = textwrap.dedent('''
    import numpy as np
    import tensorflow.compat.v1 as tf
    from object_detection.utils import ops as utils_ops


    def run_inference_for_single_image(image, graph):
      with graph.as_default():
        with tf.Session() as sess:
          ops = tf.get_default_graph().get_operations()
          all_tensor_names = {output.name for op in ops for output in op.outputs}
          tensor_dict = {}
          for key in ['num_detections', 'detection_boxes', 'detection_scores',
                      'detection_classes', 'detection_masks']:
            tensor_name = key + ':0'
            if tensor_name in all_tensor_names:
              tensor_dict[key] = tf.get_default_graph().get_tensor_by_name(tensor_name)
          if 'detection_masks' in tensor_dict:
            detection_boxes = tf.squeeze(tensor_dict['detection_boxes'], [0])
            detection_masks = tf.squeeze(tensor_dict['detection_masks'], [0])
            real_num_detection = tf.cast(tensor_dict['num_detections'][0], tf.int32)
            detection_boxes = tf.slice(detection_boxes, [0, 0], [real_num_detection, -1])
            detection_masks = tf.slice(detection_masks, [0, 0, 0], [real_num_detection, -1, -1])
            detection_masks_reframed = utils_ops.reframe_box_masks_to_image_masks(
                detection_masks, detection_boxes, image.shape[0], image.shape[1])
            detection_masks_reframed = tf.cast(tf.greater(detection_masks_reframed, 0.5), tf.uint8)
            tensor_dict['detection_masks'] = tf.expand_dims(detection_masks_reframed, 0)
          image_tensor = tf.get_default_graph().get_tensor_by_name('image_tensor:0')
          output_dict = sess.run(tensor_dict, feed_dict={image_tensor: np.expand_dims(image, 0)})
          output_dict['num_detections'] = int(output_dict['num_detections'][0])
          return output_dict
''')


@pytest.fixture(scope="module")
def odapi_model() -> Path:
    pytest.importorskip("tensorflow")
    if not odapi.is_installed():
        pytest.skip(SKIP_REASON)
    return odapi.ensure_model(size=300, seed=0) / odapi.FROZEN_GRAPH


@pytest.fixture(scope="module")
def direct_ops_per_image(odapi_model) -> int:
    proc = subprocess.run([sys.executable, "-c", DIRECT_COUNT, str(odapi_model)], capture_output=True, text=True,
                          timeout=300, env=odapi.child_env(), check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    per_call = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(set(per_call)) == 1, per_call  # the same ops every call, whatever the image size
    return int(per_call[0])


def leak_test(*args: str, cwd: Path | None = None) -> tuple[dict, subprocess.CompletedProcess]:
    proc = subprocess.run([sys.executable, "-m", "oddoctor", "leak-test", *args, "--json"], capture_output=True,
                          text=True, timeout=840, check=False, cwd=cwd)
    assert proc.stdout.strip(), proc.stderr[-3000:]
    return json.loads(proc.stdout), proc


@pytest.mark.slow
@pytest.mark.tf
@pytest.mark.timeout(900)
def test_legacy_adds_what_the_tutorial_adds_and_fixed_adds_nothing(odapi_model, direct_ops_per_image):
    report, proc = leak_test(str(odapi_model))
    assert proc.returncode == 1, proc.stderr[-3000:]  # the legacy loop leaks
    legacy, fixed = report["modes"]["legacy"], report["modes"]["fixed"]
    assert legacy["reframe"] == "od_api" and legacy["start"]["reframe"] == "od_api"
    graph = legacy["metrics"]["graph_nodes"]
    assert (graph["status"], graph["rule"]) == ("leak", "exact")
    assert graph["slope_per_image"] == direct_ops_per_image > 0
    assert legacy["verdict"] == "leak" and legacy["sessions_created"] == legacy["images_run"]
    assert fixed["verdict"] == "ok" and fixed["leaking_metrics"] == []
    assert fixed["metrics"]["graph_nodes"]["status"] == "ok" and fixed["metrics"]["graph_nodes"]["slope_per_image"] == 0
    assert fixed["sessions_created"] == 1
    for mode in (legacy, fixed):
        assert mode["images_run"] <= MAX_IMAGES, mode["stopped"]
        assert mode["stopped"]["reason"] == "decided", mode["stopped"]
        assert mode["metrics"]["rss"]["decided"], mode["metrics"]["rss"]


@pytest.mark.slow
@pytest.mark.tf
@pytest.mark.timeout(900)
def test_a_users_tutorial_copy_is_measured_with_the_od_api(odapi_model, direct_ops_per_image, tmp_path):
    (tmp_path / "object_detection_tutorial.py").write_text(USER_FILE)
    entry = f"{tmp_path / 'object_detection_tutorial.py'}:run_inference_for_single_image"
    # The graph's growth is exact after 3 images, and this test asserts nothing of memory: the fewest images
    # leak-test allows (-n 10, plus the warm-up raised to one pass over the 4 image sizes), not until decided
    # (the legacy RSS on this model has taken up to 31 images; measured in bench/leak_bench.py).
    report, proc = leak_test(str(odapi_model), "--entry", entry, "--mode", "legacy", "-w", "1", "-n", "10",
                             "--no-until-decided")
    assert proc.returncode == 1, proc.stderr[-3000:]
    mine = report["modes"]["legacy"]
    assert mine["entry"] == entry and mine["start"]["entry_call"] == "fn(image, graph)"
    assert mine["verdict"] == "leak" and "graph_nodes" in mine["leaking_metrics"]
    assert mine["metrics"]["graph_nodes"]["slope_per_image"] == direct_ops_per_image
    assert mine["sessions_created"] == mine["images_run"] == 4 + 10
    assert "fixed" not in report["modes"]
