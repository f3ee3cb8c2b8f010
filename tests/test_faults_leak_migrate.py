"""The fault corpus for `leak-test` and `migrate`: signals, a TensorFlow that aborts, hangs or raises, hostile numbers,
outputs that are links or devices, and model files that are not what they claim. Each case asserts the exit code,
one clear line naming the problem, no traceback, nothing half-written or left behind, no process left running."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from oddoctor.cli.main import main
from tests.helpers import REPO, run_oddoctor


def _one_line_error(code: int, err: str, needle: str, expected: int) -> str:
    """The last stderr line is the error, and the only one that says ``oddoctor:``; return it."""
    assert code == expected, (code, err)
    assert "Traceback" not in err and "internal error" not in err, err
    lines = err.strip().splitlines()
    assert [ln for ln in lines if ln.startswith("oddoctor:")] == lines[-1:], err
    assert needle in lines[-1], err
    return lines[-1]


def _main(capsys, *args: str) -> tuple[int, str]:
    with pytest.raises(SystemExit) as info:
        main(list(args))
    return int(info.value.code), capsys.readouterr().err


def _alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


# --- numeric options ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("args", "needle"), [
    (["--timeout", "inf"], "--timeout inf: give a number from 1 to 86400"),
    (["--timeout", "nan"], "--timeout nan"),
    (["--timeout", "1e999"], "--timeout inf"),
    (["--timeout", "0"], "--timeout 0"),
    (["-n", "100000000"], "--iterations must be at most 10,000"),
    (["-w", "100000000"], "--warmup must be at most 10,000"),
    (["--seed", "-1"], "--seed must be from 0"),
    (["--memory-fraction", "nan"], "--memory-fraction must be in (0, 1]"),
    (["--memory-fraction", "inf"], "--memory-fraction must be in (0, 1]"),
])
def test_leak_test_numbers_must_be_finite_and_sane(capsys, tmp_path: Path, args: list[str], needle: str):
    t0 = time.monotonic()
    code, err = _main(capsys, "leak-test", "--demo", "--plot", str(tmp_path / "p.png"), *args)
    _one_line_error(code, err, needle, 2)
    assert time.monotonic() - t0 < 10  # refused, not started
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("args", "needle"), [
    (["--tolerance", "inf"], "--tolerance inf: give a number from 0 to 1"),
    (["--tolerance", "nan"], "--tolerance nan"),
    (["--tolerance", "-1e-4"], "--tolerance -0.0001"),
    (["--tolerance", "5"], "--tolerance 5"),
    (["--tf-timeout", "inf"], "--tf-timeout inf: give a number from 1 to 3600"),
    (["--tf-timeout", "nan"], "--tf-timeout nan"),
    (["--tf-timeout", "0"], "--tf-timeout 0"),
])
def test_migrate_numbers_must_be_finite_and_sane(capsys, tmp_path: Path, args: list[str], needle: str):
    model = tmp_path / "frozen_inference_graph.pb"
    model.write_bytes(b"not parsed: the options are refused first")
    code, err = _main(capsys, "migrate", str(model), "--out", str(tmp_path / "new" / "out"), *args)
    _one_line_error(code, err, needle, 2)
    assert [p.name for p in tmp_path.iterdir()] == ["frozen_inference_graph.pb"]


def test_the_runner_refuses_a_timeout_the_watchdog_cannot_keep():
    from oddoctor.leak.spawn import run_mode
    from oddoctor.leak.spec import LeakSpec

    for bad in (float("inf"), float("nan"), 0.0, -1.0):
        with pytest.raises(ValueError, match="finite"):
            run_mode(LeakSpec(mode="legacy", model="m.pb"), timeout_s=bad)


def test_synthetic_images_are_made_one_at_a_time():
    """-n 100000000 used to build every image before the first run (2.4 GiB in 60 s)."""
    np = pytest.importorskip("numpy")

    from oddoctor.leak.child import _images
    from oddoctor.leak.spec import LeakSpec
    from oddoctor_legacy_tf1.images import synthetic_images

    t0 = time.monotonic()
    images, distinct, sizes, skipped, _passes = _images(LeakSpec(seed=3), 10**8)
    first = [next(images) for _ in range(5)]
    assert time.monotonic() - t0 < 5
    assert distinct == 10**8 and skipped == []
    assert sizes == [(375, 500), (480, 640), (512, 512), (600, 400)]
    assert all(np.array_equal(a, b) for a, b in zip(first, synthetic_images(5, seed=3)))  # the same images


def test_a_folder_is_read_once_and_cycled(tmp_path: Path):
    Image = pytest.importorskip("PIL.Image")
    np = pytest.importorskip("numpy")

    from oddoctor.leak.child import _images
    from oddoctor.leak.spec import LeakSpec

    for i, size in enumerate([(20, 30), (40, 10)]):
        Image.fromarray(np.full((*size, 3), i * 100, np.uint8)).save(tmp_path / f"{i}.png")
    images, distinct, sizes, _, _passes = _images(LeakSpec(images=str(tmp_path)), 5)
    assert distinct == 2 and sizes == [(20, 30), (40, 10)]
    assert [int(a[0, 0, 0]) for a in images] == [0, 100, 0, 100, 0]


# --- outputs --------------------------------------------------------------------------------------------

def _fake_runs():
    from oddoctor.leak.spawn import ModeRun

    samples = [{"i": i, "warmup": i < 2, "rss_bytes": 2**20 * (100 + i), "graph_nodes": 10, "latency_ms": 5.0}
               for i in range(12)]
    runs = {"fixed": ModeRun(mode="fixed", samples=samples)}
    report = {"model": "m.pb", "cost_ratio": None, "modes": {"fixed": {"verdict": "ok", "title": "fixed"}}}
    return runs, report


def test_plot_writes_through_a_symlink_and_into_a_device(tmp_path: Path):
    pytest.importorskip("matplotlib")
    from oddoctor.cli._common import check_plot_path as _check_plot
    from oddoctor.leak.plot import save_plot

    runs, report = _fake_runs()
    target = tmp_path / "real.png"
    target.write_bytes(b"old")
    link = tmp_path / "leak.png"
    link.symlink_to(target)
    _check_plot(link)
    save_plot(runs, report, link)
    assert link.is_symlink() and target.read_bytes()[:4] == b"\x89PNG"
    _check_plot(Path("/dev/null"))  # a device needs no .png name: it is written into
    save_plot(runs, report, Path("/dev/null"))
    assert Path("/dev/null").is_char_device()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["leak.png", "real.png"]  # no temporary file left


def test_migrate_out_that_is_a_device_is_refused_and_left_alone(capsys, tmp_path: Path):
    model = tmp_path / "frozen_inference_graph.pb"
    model.write_bytes(b"x")
    for extra in ([], ["--force"]):
        code, err = _main(capsys, "migrate", str(model), "--out", "/dev/null", *extra)
        _one_line_error(code, err, "/dev/null: exists and is a device, FIFO or socket, not a directory", 2)
    assert Path("/dev/null").is_char_device()


def test_migrate_out_that_is_a_symlink_is_written_through(tmp_path: Path):
    from oddoctor.migrate.outdir import OutputDirError, StagedDir

    target = tmp_path / "runs" / "v3"
    link = tmp_path / "latest"
    link.symlink_to(target)  # dangling: the target is created
    with StagedDir(link) as staged:
        (staged.path / "a.txt").write_text("1")
        staged.commit()
    assert link.is_symlink() and (target / "a.txt").read_text() == "1"
    with pytest.raises(OutputDirError, match="already exists"), StagedDir(link):
        pass
    with StagedDir(link, force=True) as staged:
        (staged.path / "b.txt").write_text("2")
        staged.commit()
    assert link.is_symlink() and sorted(p.name for p in target.iterdir()) == ["b.txt"]
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["v3"]


def test_a_refused_output_leaves_no_parent_folder_it_created(tmp_path: Path):
    from oddoctor.migrate.outdir import StagedDir

    (tmp_path / "existing").mkdir()
    with pytest.raises(RuntimeError), StagedDir(tmp_path / "existing" / "new" / "deeper" / "out"):
        raise RuntimeError("parity failed")
    assert [p.name for p in tmp_path.iterdir()] == ["existing"]
    assert list((tmp_path / "existing").iterdir()) == []


# --- a TensorFlow that aborts, hangs or raises (migrate's pre-flight) -----------------------------------------

FAKE_TF = {
    "abort": ("import os, sys\n"
              "print('F cpu_feature_guard.cc:37] The TensorFlow library was compiled to use AVX instructions',"
              " file=sys.stderr, flush=True)\nos.abort()\n",
              "killed by SIGABRT during import (its last words: F cpu_feature_guard.cc:37] The TensorFlow library"),
    "hang": ("import time\ntime.sleep(600)\n", "hung for more than 3 s during import"),
    "raise": ("raise ImportError('libcudart.so.11.0: cannot open shared object file')\n",
              "ImportError: libcudart.so.11.0: cannot open shared object file"),
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("how", sorted(FAKE_TF))
def test_migrate_checks_tensorflow_in_a_child_before_anything_else(tmp_path: Path, how: str):
    body, needle = FAKE_TF[how]
    (tmp_path / "fake" / "tensorflow").mkdir(parents=True)
    (tmp_path / "fake" / "tensorflow" / "__init__.py").write_text(body)
    (tmp_path / "tmp").mkdir()
    model = tmp_path / "frozen_inference_graph.pb"
    model.write_bytes(b"never read: TensorFlow is checked first")
    t0 = time.monotonic()
    proc = run_oddoctor("migrate", str(model), "--out", str(tmp_path / "new" / "out"), "--tf-timeout", "3",
                        env={"PYTHONPATH": str(tmp_path / "fake"), "TMPDIR": str(tmp_path / "tmp")}, timeout=50)
    line = _one_line_error(proc.returncode, proc.stderr, needle, 1)
    assert line.startswith("oddoctor: error: TensorFlow cannot be used here: ") and "`oddoctor check`" in line
    assert "nothing was written" in line
    assert time.monotonic() - t0 < 30
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fake", "frozen_inference_graph.pb", "tmp"]
    assert list((tmp_path / "tmp").iterdir()) == []


# --- signals --------------------------------------------------------------------------------------------

FAKE_LEAKRUN = """
import json, os, subprocess, sys, time
sub = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
with open(os.environ["LEAK_PIDS"] + ".tmp", "w") as f:
    f.write(f"{os.getpid()} {sub.pid}")
os.rename(os.environ["LEAK_PIDS"] + ".tmp", os.environ["LEAK_PIDS"])
print(json.dumps({"event": "start", "mode": "legacy", "pid": os.getpid(), "model": "m.pb", "model_nodes": 1,
                  "images": 1}), flush=True)
time.sleep(600)
"""

LEAK_WRAPPER = ("import sys; from oddoctor.leak import spawn; spawn.CHILD_MODULE = 'fake_leakrun'; "
                "from oddoctor.cli.main import main; main(sys.argv[1:])")


def _expected(sig: int) -> tuple[int, str]:
    if sig == signal.SIGINT:
        return 130, "oddoctor: interrupted"
    return 128 + sig, f"oddoctor: terminated by {signal.Signals(sig).name}"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_signal_during_a_leak_mode_kills_its_process_group_and_cleans_up(tmp_path: Path, sig: int):
    fake = tmp_path / "fake"
    (fake / "tensorflow").mkdir(parents=True)  # found, never imported: the parent only checks it is there
    (fake / "tensorflow" / "__init__.py").write_text("raise ImportError('the parent must not import me')\n")
    (fake / "fake_leakrun.py").write_text(textwrap.dedent(FAKE_LEAKRUN))
    (tmp_path / "tmp").mkdir()
    model = tmp_path / "model.pb"
    model.write_bytes(b"x")
    pids_file = tmp_path / "pids"
    env = {**os.environ, "PYTHONPATH": str(fake), "TMPDIR": str(tmp_path / "tmp"), "LEAK_PIDS": str(pids_file),
           "NO_COLOR": "1"}
    proc = subprocess.Popen([sys.executable, "-c", LEAK_WRAPPER, "leak-test", str(model), "--timeout", "300"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    deadline = time.monotonic() + 30
    while not pids_file.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    assert pids_file.exists(), proc.communicate(timeout=10)
    child, grandchild = (int(p) for p in pids_file.read_text().split())
    time.sleep(0.5)  # the parent reads the start event
    proc.send_signal(sig)
    _out, err = proc.communicate(timeout=30)
    code, line = _expected(sig)
    assert proc.returncode == code, (proc.returncode, err)
    assert err.strip().splitlines()[-1] == line and "Traceback" not in err and "Aborted" not in err, err
    deadline = time.monotonic() + 5
    while (_alive(child) or _alive(grandchild)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(child) and not _alive(grandchild)
    assert list((tmp_path / "tmp").iterdir()) == []  # no oddoctor-leak-* or oddoctor-demo-* folder left


class _NotCtrlC(BaseException):
    """Like the CLI's Terminated: a BaseException that is not KeyboardInterrupt."""


@pytest.mark.timeout(60)
def test_the_leak_parent_cleans_up_on_any_base_exception(tmp_path: Path, monkeypatch):
    from oddoctor.leak import spawn
    from oddoctor.leak.spec import LeakSpec

    (tmp_path / "fake_leakrun.py").write_text(textwrap.dedent(FAKE_LEAKRUN))
    (tmp_path / "tmp").mkdir()
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    monkeypatch.setenv("LEAK_PIDS", str(tmp_path / "pids"))
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    monkeypatch.setattr("tempfile.tempdir", None)  # re-read TMPDIR
    monkeypatch.setattr(spawn, "CHILD_MODULE", "fake_leakrun")

    def on_event(event):
        raise _NotCtrlC(event["event"])

    with pytest.raises(_NotCtrlC):
        spawn.run_mode(LeakSpec(mode="legacy", model="m.pb"), timeout_s=60, on_event=on_event)
    child, grandchild = (int(p) for p in (tmp_path / "pids").read_text().split())
    deadline = time.monotonic() + 5
    while (_alive(child) or _alive(grandchild)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(child) and not _alive(grandchild)
    assert list((tmp_path / "tmp").iterdir()) == []


MIGRATE_WRAPPER = """
import sys, time
import tensorflow  # imported already: the pre-flight is skipped (it has its own tests)
from oddoctor.migrate import convert
real = getattr(convert, sys.argv[1])
def slow(*args, **kwargs):
    result = real(*args, **kwargs)
    print("TEST: stage reached", file=sys.stderr, flush=True)
    time.sleep(600)
    return result
setattr(convert, sys.argv[1], slow)
from oddoctor.cli.main import main
main(sys.argv[2:])
"""


@pytest.mark.tf
@pytest.mark.slow
@pytest.mark.timeout(90)
@pytest.mark.parametrize(("sig", "stage"), [(signal.SIGTERM, "run_migrated"), (signal.SIGHUP, "save_saved_model"),
                                            (signal.SIGINT, "run_legacy")])
def test_a_signal_while_migrating_leaves_nothing_behind(od_graphs: dict[str, Path], tmp_path: Path, sig: int,
                                                       stage: str):
    (tmp_path / "tmp").mkdir()
    out = tmp_path / "new" / "deeper" / "out"
    env = {**os.environ, "TMPDIR": str(tmp_path / "tmp"), "NO_COLOR": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.Popen([sys.executable, "-c", MIGRATE_WRAPPER, stage, "migrate", str(od_graphs["ok"]),
                             "--out", str(out)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=REPO)
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if line.startswith("TEST: stage reached"):
            break
    else:
        pytest.fail("".join(seen))
    assert any(p.name.startswith(".out.") for p in out.parent.iterdir())  # the staging folder exists now
    proc.send_signal(sig)
    _out, err = proc.communicate(timeout=30)
    code, line = _expected(sig)
    assert proc.returncode == code, (proc.returncode, err)
    assert err.strip().splitlines()[-1] == line and "Traceback" not in err, err
    assert [p.name for p in tmp_path.iterdir()] == ["tmp"]  # no out, no .out.*.tmp, no new/deeper
    assert list((tmp_path / "tmp").iterdir()) == []


# --- inputs that are not models -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def od_graphs(tmp_path_factory) -> dict[str, Path]:
    """Tiny graphs with the OD API names: a good one, one with a fixed 2x2 input, one whose input has a newline
    in its name, and the good one truncated."""
    tf = pytest.importorskip("tensorflow")
    from tensorflow.core.framework import graph_pb2

    root = tmp_path_factory.mktemp("od")

    def build(shape):
        g = tf.Graph()
        with g.as_default():
            x = tf.compat.v1.placeholder(tf.uint8, shape, name="image_tensor")
            f = tf.reduce_mean(tf.cast(x, tf.float32), axis=[1, 2])
            tf.identity(tf.tile(tf.reshape(f[:, :1] / 255.0, [-1, 1, 1]), [1, 2, 4]), name="detection_boxes")
            tf.identity(tf.tile(f[:, :1] / 255.0, [1, 2]), name="detection_scores")
            tf.identity(tf.ones([1, 2]), name="detection_classes")
            tf.constant([2.0], name="num_detections")
        return g.as_graph_def()

    paths = {name: root / f"{name}.pb" for name in ("ok", "fixed", "newline", "truncated")}
    good = build([1, None, None, 3])
    paths["ok"].write_bytes(good.SerializeToString())
    paths["fixed"].write_bytes(build([1, 2, 2, 3]).SerializeToString())
    evil = graph_pb2.GraphDef()
    evil.CopyFrom(good)
    for node in evil.node:
        node.name = node.name.replace("image_tensor", "image\ntensor")
        node.input[:] = [i.replace("image_tensor", "image\ntensor") for i in node.input]
    paths["newline"].write_bytes(evil.SerializeToString())
    data = good.SerializeToString()
    paths["truncated"].write_bytes(data[: len(data) * 2 // 3])
    return paths


def _not_a_model(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / "frozen_inference_graph.pb"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "directory":
        path.mkdir()
    else:
        path.write_bytes(b"\x00\x01garbage that is no protobuf\xff" * 40)
    return path


@pytest.mark.timeout(30)
@pytest.mark.parametrize(("kind", "needle"), [("fifo", "not a regular file (a FIFO or a device)"),
                                              ("directory", "directory holds neither")])
@pytest.mark.parametrize("command", ["leak-test", "migrate"])
def test_a_model_that_is_a_fifo_or_a_directory_is_refused_at_once(capsys, tmp_path: Path, command: str, kind: str,
                                                                 needle: str):
    model = _not_a_model(tmp_path, kind)
    args = ["--out", str(tmp_path / "new" / "out")] if command == "migrate" else ["--mode", "fixed"]
    t0 = time.monotonic()
    code, err = _main(capsys, command, str(model), *args)
    line = _one_line_error(code, err, needle, 2)
    assert str(model) in line and time.monotonic() - t0 < 10  # never read, never waited on
    assert [p.name for p in tmp_path.iterdir()] == ["frozen_inference_graph.pb"]


def _migrate(capsys, *args: str) -> tuple[int, str]:
    from oddoctor.cli.main import app

    with pytest.raises(SystemExit) as info:
        app(list(args), prog_name="oddoctor")
    return int(info.value.code), capsys.readouterr().err


@pytest.mark.tf
@pytest.mark.timeout(120)
@pytest.mark.parametrize(("name", "needle"), [
    ("truncated", "not a TensorFlow GraphDef"),
    ("junk", "not a TensorFlow GraphDef"),
    ("fixed", "input 'image_tensor:0' has a fixed image size 2x2 (shape [1, 2, 2, 3])"),
    ("newline", "inputs it has: image\\ntensor:0 (uint8)"),
])
def test_migrate_bad_models_are_one_line_exit_2_naming_the_file(capsys, od_graphs, tmp_path: Path, name: str,
                                                                needle: str):
    model = od_graphs[name] if name in od_graphs else _not_a_model(tmp_path, name)
    code, err = _migrate(capsys, "migrate", str(model), "--out", str(tmp_path / "new" / "out"))
    line = _one_line_error(code, err, needle, 2)
    assert str(model) in line
    assert not (tmp_path / "new").exists()


@pytest.mark.tf
@pytest.mark.slow
@pytest.mark.timeout(120)
def test_leak_test_bad_models_are_one_line_exit_2_naming_the_file(od_graphs):
    for name, needle in (("fixed", "input image_tensor:0 has a fixed image size 2x2"),
                         ("newline", "inputs it has: image\\ntensor:0 (uint8)")):
        proc = run_oddoctor("leak-test", str(od_graphs[name]), "--mode", "fixed", "-n", "10", "-w", "0",
                            env={"TF_CPP_MIN_LOG_LEVEL": "3"}, timeout=100)
        line = _one_line_error(proc.returncode, proc.stderr, needle, 2)
        assert str(od_graphs[name]) in line


@pytest.mark.tf
@pytest.mark.timeout(120)
def test_a_refused_migration_leaves_no_parent_folder(capsys, od_graphs, tmp_path: Path, monkeypatch):
    from oddoctor.migrate import convert

    real = convert.run_migrated

    def drifted(export_dir, images):
        outs = real(export_dir, images)
        for o in outs:
            o["detection_scores"] = o["detection_scores"] + 0.5
        return outs

    monkeypatch.setattr(convert, "run_migrated", drifted)
    code, err = _migrate(capsys, "migrate", str(od_graphs["ok"]), "--out", str(tmp_path / "new" / "deeper" / "out"),
                         "--json")
    assert code == 1 and "parity check failed" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []
