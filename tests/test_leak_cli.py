"""`oddoctor leak-test` end to end: usage errors, bad models and images, the demo and its stability."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

np = pytest.importorskip("numpy")  # the legacy models and images are numpy arrays

from oddoctor.cli.main import main  # noqa: E402


def run_cli(args: list[str], timeout: float = 170, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "oddoctor", "leak-test", *args], capture_output=True,
                          text=True, timeout=timeout, check=False, env=env)


@pytest.mark.parametrize(("args", "text"), [
    ([], "missing MODEL"),
    (["--demo", "x.pb"], "not both"),
    (["nope.pb"], "nope.pb: no such file"),
    (["--demo", "--mode", "sideways"], "--mode 'sideways' is not one of legacy, fixed, both"),
    (["--demo", "-n", "9"], "--iterations must be at least 10"),
    (["--demo", "--warmup", "-1"], "--warmup must be >= 0"),
    (["--demo", "--memory-fraction", "1.5"], "--memory-fraction must be in (0, 1]"),
    (["--demo", "--images", "no/such/dir"], "no such directory"),
    (["--demo", "--plot", "out.jpg"], "must end in .png"),
])
def test_usage_errors_are_one_line_exit_2(capsys, args, text):
    with pytest.raises(SystemExit) as info:
        main(["leak-test", *args])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert text in err[0]
    assert "Traceback" not in err[0]


@pytest.mark.tf
@pytest.mark.timeout(200)
def test_bad_models_and_images_exit_2_naming_the_problem(tmp_path):
    tf = pytest.importorskip("tensorflow")
    junk = tmp_path / "junk.pb"
    junk.write_bytes(b"this is a jpeg, honest" * 50)
    g = tf.Graph()
    with g.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None, 224, 224, 3], name="input_image")
        tf.identity(tf.reduce_mean(x, axis=[1, 2]), name="logits")
    other = tmp_path / "classifier.pb"
    other.write_bytes(g.as_graph_def().SerializeToString())
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "a.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    (broken / "b.png").write_bytes(b"not a png")
    cases = [
        ([str(junk)], "not a TensorFlow GraphDef"),
        ([str(other)], "missing image_tensor:0, detection_boxes:0"),
        (["--demo", "--mode", "fixed", "--images", str(broken)], "no readable jpg/png images (2 skipped)"),
    ]
    errors = []
    for args, text in cases:
        proc = run_cli([*args, "-n", "10", "-w", "0"])
        assert proc.returncode == 2, proc.stderr
        last = proc.stderr.strip().splitlines()[-1]
        assert text in last
        assert "Traceback" not in proc.stderr
        errors.append(last)
    assert "inputs it has: input_image:0 (float32)" in errors[1]
    assert "outputs it has: logits:0" in errors[1]


@pytest.mark.tf
@pytest.mark.timeout(200)
def test_odd_images_are_converted_or_skipped_and_counted(tmp_path):
    pytest.importorskip("tensorflow")
    Image = pytest.importorskip("PIL.Image")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (120, 90), dtype=np.uint8)).save(tmp_path / "gray.png")
    Image.fromarray(rng.integers(0, 255, (100, 140, 4), dtype=np.uint8)).save(tmp_path / "rgba.png")
    Image.fromarray(rng.integers(0, 65535, (80, 60), dtype=np.uint16)).save(tmp_path / "deep.png")
    (tmp_path / "cut.jpg").write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF")
    proc = run_cli(["--demo", "--mode", "fixed", "--images", str(tmp_path), "-n", "10", "-w", "3", "--json",
                    "--malloc-trim"], env={**os.environ, "MALLOC_ARENA_MAX": "2"})
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    start = report["modes"]["fixed"]["start"]
    assert start["images"] == 3
    assert [Path(f).name for f, _ in start["skipped"]] == ["cut.jpg"]
    assert start["rss_read"] == "after malloc_trim(0)"  # glibc: the allocator's free pages handed back first
    assert start["malloc_env"]["MALLOC_ARENA_MAX"] == "2"  # the child ran under the caller's allocator setting
    if start["heap_in_use"] == "mallinfo2":  # glibc 2.33 or later: what malloc handed out, next to the RSS
        assert all(s["heap_in_use_bytes"] > 0 for s in report["modes"]["fixed"]["samples"])
    else:  # another C library: unknown in every sample, and why
        assert "mallinfo2" in start["heap_in_use"]
        assert all(s["heap_in_use_bytes"] is None for s in report["modes"]["fixed"]["samples"])
    assert report["modes"]["fixed"]["verdict"] == "ok"


@pytest.mark.tf
@pytest.mark.slow
@pytest.mark.timeout(400)
def test_demo_flags_legacy_passes_fixed_and_never_flips(tmp_path):
    pytest.importorskip("tensorflow")
    pytest.importorskip("matplotlib")
    # First run: the command exactly as documented (defaults), with --json and --plot.
    plot = tmp_path / "leak.png"
    proc = run_cli(["--demo", "--json", "--plot", str(plot)])  # its time: bench/leak_bench.py, not asserted here
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["demo_as_expected"]
    legacy, fixed = report["modes"]["legacy"], report["modes"]["fixed"]
    assert legacy["metrics"]["graph_nodes"]["status"] == "leak"
    assert legacy["metrics"]["graph_nodes"]["slope_per_image"] > 5
    assert legacy["sessions_created"] == legacy["images_run"]
    assert fixed["sessions_created"] == 1
    assert fixed["metrics"]["graph_nodes"]["slope_per_image"] == 0
    assert fixed["leaking_metrics"] == []
    assert report["cost_ratio"]["median"] > 3  # several times the fixed loop's cost per image
    assert plot.read_bytes()[:4] == b"\x89PNG"
    assert "leak-test: legacy:" in proc.stderr  # live progress on stderr
    # Decided within the default run (4 warm-up + 60 for the demo): the demo's RSS steps up once per pass over its 4
    # image sizes, so its legacy memory verdict can take many images (median 16 in bench/leak_bench.py, 34 seen once),
    # and its fixed RSS creeps for 20-25 images (once still undecided after 30).
    assert legacy["stopped"]["reason"] == "decided" and legacy["images_run"] <= 64
    assert fixed["stopped"]["reason"] == "decided" and fixed["images_run"] <= 64
    # Repeats, cheaper: the verdicts must not flip; --no-until-decided runs all -n.
    for until in ("--until-decided", "--no-until-decided"):
        proc = run_cli(["--demo", "--json", "-n", "16", "-w", "10", until])
        again = json.loads(proc.stdout)
        assert proc.returncode == (0 if again["demo_as_expected"] else 1), proc.stderr
        if until == "--no-until-decided":
            assert again["modes"]["fixed"]["images_run"] == again["modes"]["legacy"]["images_run"] == 26
        assert again["modes"]["legacy"]["verdict"] == "leak"
        assert again["modes"]["legacy"]["metrics"]["graph_nodes"]["status"] == "leak"
        # 16 images may be too few for the demo's fixed RSS, which creeps for ~20-25 images: then it is
        # inconclusive (and the demo says it did not show the fix), never a leak.
        fixed = again["modes"]["fixed"]
        assert fixed["verdict"] in ("ok", "inconclusive") and fixed["leaking_metrics"] == []
        assert again["demo_as_expected"] == (fixed["verdict"] == "ok")
        if fixed["verdict"] == "inconclusive":
            assert fixed["smallest_run"]["iterations"] > 16


@pytest.mark.tf
@pytest.mark.timeout(200)
def test_measured_leak_exits_1_for_ci(tmp_path):
    tf = pytest.importorskip("tensorflow")
    del tf
    from oddoctor_legacy_tf1.model import build_model

    pb = build_model(tmp_path / "frozen_inference_graph.pb")
    proc = run_cli([str(pb), "--mode", "legacy", "-n", "10", "-w", "2", "--reframe", "oddoctor", "--malloc-trim"])
    assert proc.returncode == 1, proc.stderr
    assert "LEAKS" in proc.stdout
    assert "host RSS read after malloc_trim(0) after each image" in proc.stdout
    assert "the graph grows by 31 ops per image" in proc.stdout


@pytest.mark.slow
def test_tensorflow_log_lines_reach_the_terminal_only_with_verbose():
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}  # the user set no floor of their own
    args = [sys.executable, "-m", "oddoctor", "leak-test", "--demo", "--mode", "fixed", "-n", "10", "-w", "1",
            "--no-until-decided"]
    quiet = subprocess.run(args, capture_output=True, text=True, env=env, timeout=600)
    loud = subprocess.run([*args, "-v"], capture_output=True, text=True, env=env, timeout=600)
    assert "its stderr (TensorFlow's log)" not in quiet.stderr and "\n  | " not in quiet.stderr, quiet.stderr
    assert "fixed: its stderr (TensorFlow's log):" in loud.stderr, loud.stderr
    assert any(ln.startswith("  | ") and "oneDNN" in ln for ln in loud.stderr.splitlines()), loud.stderr
