"""`oddoctor leak-test --entry`: the user's own per-image function, measured like the built-in loops."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from oddoctor.leak.entry import EntryError, is_file_target, load_entry, split_entry

# The TF1 tutorial's function as users copied it (tensorflow/models r1.13 object_detection_tutorial.ipynb),
# with `tf` the TF1 API and the reframe op taken from oddoctor (the OD API is not needed for this file).
TUTORIAL_COPY = '''
import numpy as np
import tensorflow.compat.v1 as tf

from oddoctor_legacy_tf1.reframe import reframe_box_masks_to_image_masks


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
        detection_masks_reframed = reframe_box_masks_to_image_masks(
            detection_masks, detection_boxes, image.shape[0], image.shape[1])
        detection_masks_reframed = tf.cast(tf.greater(detection_masks_reframed, 0.5), tf.uint8)
        tensor_dict['detection_masks'] = tf.expand_dims(detection_masks_reframed, 0)
      image_tensor = tf.get_default_graph().get_tensor_by_name('image_tensor:0')
      output_dict = sess.run(tensor_dict, feed_dict={image_tensor: np.expand_dims(image, 0)})
      output_dict['num_detections'] = int(output_dict['num_detections'][0])
      return output_dict
'''


def run_cli(args: list[str], timeout: float = 170, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "oddoctor", *args], capture_output=True, text=True,
                          timeout=timeout, check=False, cwd=cwd)


# --- loading (no TensorFlow) -------------------------------------------------------------------------------

def test_entry_spellings():
    assert split_entry("pkg.mod:infer") == ("pkg.mod", "infer")
    assert split_entry("C:/work/loop.py:infer") == ("C:/work/loop.py", "infer")
    assert is_file_target("loop.py") and is_file_target("dir/loop") and not is_file_target("pkg.mod")
    for bad in ("loop.py", "loop.py:", ":infer", "loop.py:not-a-name"):
        with pytest.raises(ValueError, match="--entry"):
            split_entry(bad)


def test_calling_convention_follows_the_signature(tmp_path):
    (tmp_path / "loops.py").write_text(textwrap.dedent("""
        def two(image, graph):
            return ("two", image, graph)
        def one(image):
            return ("one", image)
        def extra(image, graph, config=None):
            return ("extra", image, graph)
        def none():
            return None
        NOT_A_FUNCTION = 3
    """))
    path = tmp_path / "loops.py"
    assert load_entry(f"{path}:two")("img", "g") == ("two", "img", "g")
    one = load_entry(f"{path}:one")
    assert one.call_form == "fn(image)" and one("img", "g") == ("one", "img")
    assert load_entry(f"{path}:extra").call_form == "fn(image, graph)"
    with pytest.raises(EntryError, match=r"must take \(image\) or \(image, graph\)"):
        load_entry(f"{path}:none")
    with pytest.raises(EntryError, match="NOT_A_FUNCTION is a int, not a function"):
        load_entry(f"{path}:NOT_A_FUNCTION")
    with pytest.raises(EntryError, match="has no function 'infer'; it has: extra, none, one, two"):
        load_entry(f"{path}:infer")


def test_import_errors_name_the_entry_and_keep_the_traceback(tmp_path):
    (tmp_path / "broken.py").write_text("import no_such_module_here\n")
    with pytest.raises(EntryError, match=r"cannot import .*broken.py: ModuleNotFoundError: No module named "
                                         r"'no_such_module_here'") as info:
        load_entry(f"{tmp_path / 'broken.py'}:infer")
    assert any("no_such_module_here" in line for line in info.value.traceback)
    with pytest.raises(EntryError, match="no such file"):
        load_entry(f"{tmp_path / 'missing.py'}:infer")


# --- the CLI ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("args", "text"), [
    (["--entry", "no_colon"], "expected module:function"),
    (["--entry", "missing_file.py:infer"], "missing_file.py: no such file"),
    (["--entry", "mod:infer", "--mode", "fixed"], "--entry replaces the legacy (tutorial) loop"),
    (["--reframe", "tf2"], "--reframe 'tf2' is not one of auto, od_api, oddoctor"),
])
def test_entry_usage_errors_are_one_line(capsys, args, text):
    from oddoctor.cli.main import main

    with pytest.raises(SystemExit) as info:
        main(["leak-test", "--demo", *args])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and text in err[0]


@pytest.mark.tf
@pytest.mark.timeout(300)
def test_user_code_errors_exit_2_in_one_line(tmp_path):
    pytest.importorskip("tensorflow")
    (tmp_path / "broken.py").write_text("import no_such_module_here\n")
    (tmp_path / "raises.py").write_text("def infer(image, graph):\n    raise ValueError('bad image')\n")
    cases = [(f"{tmp_path / 'broken.py'}:infer", "cannot import"),
             (f"{tmp_path / 'raises.py'}:nope", "has no function 'nope'; it has: infer"),
             (f"{tmp_path / 'raises.py'}:infer", "raised on the first image: ValueError: bad image")]
    for entry, text in cases:
        proc = run_cli(["leak-test", "--demo", "--mode", "legacy", "--entry", entry, "-n", "10", "-w", "0"])
        assert proc.returncode == 2, proc.stderr
        assert text in proc.stderr.strip().splitlines()[-1]
        assert "Traceback" not in proc.stderr
    proc = run_cli(["--debug", "leak-test", "--demo", "--mode", "legacy", "--entry", f"{tmp_path / 'raises.py'}:infer",
                    "-n", "10", "-w", "0"])
    assert proc.returncode == 2 and "Traceback" in proc.stderr and "raise ValueError('bad image')" in proc.stderr


@pytest.mark.tf
@pytest.mark.timeout(300)
def test_a_tutorial_copy_leaks_and_the_fixed_baseline_does_not(tmp_path):
    pytest.importorskip("tensorflow")
    (tmp_path / "my_inference.py").write_text(TUTORIAL_COPY)
    proc = run_cli(["leak-test", "--demo", "--entry", "my_inference:run_inference_for_single_image", "--json",
                    "--reframe", "oddoctor"], cwd=tmp_path)  # a module name, found from the current directory
    assert proc.returncode == 0, proc.stderr  # --demo: legacy (here: the user's loop) leaks, fixed passes
    report = json.loads(proc.stdout)
    mine, fixed = report["modes"]["legacy"], report["modes"]["fixed"]
    assert mine["entry"] == "my_inference:run_inference_for_single_image"
    assert mine["title"].startswith("your loop (my_inference:")
    assert mine["start"]["entry_call"] == "fn(image, graph)"
    assert mine["metrics"]["graph_nodes"]["status"] == "leak" and mine["metrics"]["graph_nodes"]["rule"] == "exact"
    assert mine["metrics"]["graph_nodes"]["slope_per_image"] > 5
    assert mine["sessions_created"] == mine["images_run"]  # one Session per image, counted in the user's code
    assert mine["samples"][-1]["default_graph_nodes"] == 0  # the tutorial adds to the graph passed in
    assert fixed["verdict"] == "ok" and fixed["sessions_created"] == 1
    assert "your function my_inference:run_inference_for_single_image" in proc.stderr
