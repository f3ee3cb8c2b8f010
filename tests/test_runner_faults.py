"""The emitted run_inference.py under faults: bad outputs, bad options, foreign models, full disks,
signals. Each ends in one line on stderr and a documented exit status, with nothing half-written.

The first half needs no TensorFlow: options and outputs are checked before the runner imports it.
The second half runs the real runner of a migrated model in a child process (slow, tf).
"""

from __future__ import annotations

import errno
import json
import os
import re
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from oddoctor.migrate.emit import render_runner
from tests.test_migrate_e2e import migrated, run_runner, wait_for_progress
from tests.test_migrate_emit import hostile_spec, runner_module

__all__ = ["migrated", "runner_module"]  # fixtures shared with the e2e and emit tests


def runner_errors(stderr: str) -> list[str]:
    """The runner's own lines (TensorFlow's C++ log lines may come around them)."""
    return [line for line in stderr.splitlines() if line.startswith("run_inference.py:")]


def leftovers(folder: Path) -> list[str]:
    """Temporary files (hidden ones included) that a failed run must not leave."""
    return sorted(n for n in os.listdir(folder) if n.endswith(".tmp") or ".tmp" in n)


@pytest.fixture
def script(tmp_path):
    """An emitted runner and one input file; output checks happen before anything reads the image."""
    path = tmp_path / "run_inference.py"
    path.write_text(render_runner(hostile_spec("m")), encoding="utf-8")
    image = tmp_path / "a.png"
    image.write_bytes(b"never decoded: the options are refused first")
    return path, image


def run_script(path: Path, *args, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(path), *map(str, args)], capture_output=True, text=True,
                          timeout=60, cwd=cwd)


def assert_one_line_exit_2(proc: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert proc.returncode == 2, proc.stderr
    [line] = proc.stderr.splitlines()
    assert line.startswith("run_inference.py: error: ") and "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in line, line
    return line


# --- outputs that cannot be used: found before TensorFlow is imported --------------------------

@pytest.mark.parametrize(("args", "needles"), [
    (["--out", "no/such/dir/det.jsonl"], ["--out no/such/dir/det.jsonl", "no/such/dir does not exist"]),
    (["--out", "sub"], ["--out sub", "is a folder"]),
    (["--out", "sub/"], ["--out 'sub/'", "give a file name"]),
    (["--out", "det.jsonl", "--summary-json", "missing/summary.json"],
     ["--summary-json missing/summary.json", "missing does not exist"]),
    (["--out", "det.jsonl", "--summary-json", "det.jsonl"], ["--summary-json det.jsonl", "same file as --out"]),
])
def test_unusable_output_is_one_line_and_exit_2(script, tmp_path, args, needles):
    path, image = script
    (tmp_path / "sub").mkdir()
    before = sorted(os.listdir(tmp_path))
    proc = run_script(path, image, *args, cwd=tmp_path)
    assert_one_line_exit_2(proc, *needles)
    assert sorted(os.listdir(tmp_path)) == before  # nothing created, not even det.jsonl of a valid --out
    assert os.listdir(tmp_path / "sub") == []


def test_read_only_location_is_exit_2(script, tmp_path):
    path, image = script
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        (locked / "probe").touch()
    except PermissionError:
        out = locked / "det.jsonl"
    else:
        # root ignores the mode bits; sysfs refuses new files to everyone, root included.
        (locked / "probe").unlink()
        if not Path("/sys/kernel").is_dir():
            pytest.skip("running as root (mode 0555 does not stop root) and no /sys to write into")
        out = Path("/sys/det.jsonl")
    try:
        proc = run_script(path, image, "--out", out)
        assert_one_line_exit_2(proc, f"--out {out}", "cannot create a file in", "(EACCES)")
        assert not out.exists()
        assert os.listdir(locked) == []
    finally:
        locked.chmod(0o755)


# --- numeric options -------------------------------------------------------------------------

@pytest.mark.parametrize(("option", "value"), [
    ("--batch-size", "0"), ("--batch-size", "4097"), ("--batch-size", "1e3"), ("--batch-size", "-1"),
    ("--threads", "-1"), ("--threads", "1025"), ("--threads", "99999999999999999999"),
    ("--score-threshold", "nan"), ("--score-threshold", "inf"), ("--score-threshold", "-0.1"),
    ("--score-threshold", "1.5"), ("--mask-threshold", "nan"), ("--mask-threshold", "2"),
    ("--max-side", "-1"), ("--max-side", "65537"), ("--max-side", "inf"),
    ("--memory-limit-mb", "0"), ("--memory-limit-mb", str(1 << 40)), ("--gpu", "-2"), ("--gpu", "1024"),
    ("--parallel-decode", "-2"), ("--parallel-decode", "1025"), ("--prefetch", "-2"), ("--prefetch", "1025"),
    ("--post-nice", "-1"), ("--post-nice", "20"),
])
def test_numeric_option_out_of_bounds_is_one_line_and_exit_2(script, option, value):
    path, image = script
    assert_one_line_exit_2(run_script(path, image, option, value), f"argument {option}:", "from")


def test_unknown_jpeg_dct_is_one_line_and_exit_2(script):
    path, image = script
    assert_one_line_exit_2(run_script(path, image, "--jpeg-dct", "islow"), "argument --jpeg-dct:",
                           "'islow'", "choose from 'accurate', 'fast'")


def test_numeric_option_bounds_and_documented_sentinels_are_accepted(runner_module):
    args = runner_module.parse_args(["x", "--batch-size", "4096", "--threads", "0", "--score-threshold", "1",
                                     "--mask-threshold", "0", "--max-side", "0", "--gpu", "-1",
                                     "--parallel-decode", "-1", "--prefetch", "0", "--post-nice", "19",
                                     "--memory-limit-mb", "1"])
    assert (args.batch_size, args.threads, args.score_threshold, args.max_side, args.gpu) == (4096, 0, 1.0, 0, -1)
    assert (args.parallel_decode, args.prefetch, args.post_nice, args.memory_limit_mb) == (-1, 0, 19, 1)
    args = runner_module.parse_args(["x", "--threads", "1024", "--max-side", "65536", "--prefetch", "-1"])
    assert (args.threads, args.max_side, args.prefetch) == (1024, 65536, -1)


def test_batch_size_auto_is_the_default_and_case_blind(runner_module):
    assert runner_module.parse_args(["x"]).batch_size == "auto"
    assert runner_module.parse_args(["x"]).threads is None  # unset: the auto rule may choose
    assert runner_module.parse_args(["x", "--batch-size", "AUTO"]).batch_size == "auto"
    assert runner_module.parse_args(["x", "--batch-size", "3"]).batch_size == 3


@pytest.mark.parametrize(("size_mib", "cores", "threads", "expected"), [
    (1, 2, None, (4, 1)),  # small model: 4 concurrent images share 2 cores, one thread each
    (1, 16, None, (4, 4)),
    (1, 16, 0, (4, 0)),  # --threads 0 given: one per core, as asked
    (1, 2, 3, (4, 3)),
    (1, 1, None, (1, 0)),  # one core: nothing idle to fill
    (16, 2, None, (1, 0)),  # at the limit: a real model's ops fill the cores alone
    (63, 16, None, (1, 0)),
    (63, 2, 1, (1, 1)),
])
def test_batch_size_auto_rule(runner_module, size_mib, cores, threads, expected):
    batch, chosen_threads, why = runner_module.choose_batch(size_mib << 20, cores, threads)
    assert (batch, chosen_threads) == expected
    assert f"{cores} core" in why and "\n" not in why


def test_batch_size_auto_reads_the_model_size_and_keeps_an_explicit_size(runner_module, tmp_path):
    (tmp_path / "variables").mkdir()
    (tmp_path / "saved_model.pb").write_bytes(b"x" * 1000)
    (tmp_path / "variables" / "variables.data-00000-of-00001").write_bytes(b"x" * 24)
    assert runner_module.model_bytes(str(tmp_path)) == 1024
    assert runner_module.model_bytes(str(tmp_path / "missing")) == 0
    args = runner_module.parse_args(["x", "--model", str(tmp_path)])
    why = runner_module.resolve_batch(args)
    cores = runner_module.usable_cores()
    assert (args.batch_size, why is not None) == ((4, True) if cores > 1 else (1, True))
    assert "0.0 MiB < 16 MiB" in why or cores == 1
    args = runner_module.parse_args(["x", "--model", str(tmp_path), "--batch-size", "2"])
    assert runner_module.resolve_batch(args) is None and (args.batch_size, args.threads) == (2, 0)


# --- the Output writer: atomic files, streams, full disks -------------------------------------

class DiskFull:
    """A file whose writes (or only its final flush) fail as on a full disk."""

    def __init__(self, file, on_close_only=False):
        self.file = file
        self.on_close_only = on_close_only

    def write(self, text):
        if not self.on_close_only:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return self.file.write(text)

    def flush(self):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def close(self):
        self.file.close()
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    @property
    def closed(self):
        return self.file.closed


def test_output_file_is_a_hidden_temporary_until_commit(runner_module, tmp_path):
    target = tmp_path / "det.jsonl"
    target.write_text("old\n")
    target.chmod(0o640)
    out = runner_module.Output(str(target), "--out")
    [tmp] = leftovers(tmp_path)
    assert tmp.startswith(".det.jsonl.")  # same folder: the rename stays on one filesystem
    out.write('{"a": 1}\n')
    assert target.read_text() == "old\n"
    out.commit()
    out.discard()  # what main() always does: a no-op after commit
    assert target.read_text() == '{"a": 1}\n' and out.kept() == f"{target} written"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640  # the replaced file's mode, not mkstemp's 0600
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("on_close_only", [False, True], ids=["write", "final-flush"])
def test_output_full_disk_is_an_output_error_and_leaves_the_target(runner_module, tmp_path, on_close_only):
    target = tmp_path / "det.jsonl"
    target.write_text("old\n")
    out = runner_module.Output(str(target), "--out")
    out.file = DiskFull(out.file, on_close_only)

    def write_all():
        out.write('{"a": 1}\n')
        out.commit()

    with pytest.raises(runner_module.OutputError, match=r"^--out .*det\.jsonl: cannot write: No space left on "
                                                        r"device \(ENOSPC\)$"):
        write_all()
    out.discard()
    assert target.read_text() == "old\n" and leftovers(tmp_path) == []
    assert out.kept() == f"{target} not written"
    msg = runner_module.stop_message(None, runner_module.OutputError("--out x: cannot write: full"), None, 8,
                                     out.kept())
    assert msg == f"--out x: cannot write: full after 8 images; {target} not written"


def test_output_through_a_symlink_replaces_the_target_and_keeps_the_link(runner_module, tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (real / "det.jsonl").write_text("old\n")
    link = tmp_path / "link.jsonl"
    link.symlink_to(real / "det.jsonl")
    dangling = tmp_path / "new.jsonl"
    dangling.symlink_to(real / "new.jsonl")
    for path in (link, dangling):
        out = runner_module.Output(str(path), "--out")
        assert Path(out.tmp).parent == real
        out.write("new\n")
        out.commit()
        assert path.is_symlink() and path.read_text() == "new\n"
    assert sorted(os.listdir(real)) == ["det.jsonl", "new.jsonl"] and leftovers(tmp_path) == []


def test_output_into_a_device_or_fifo_is_written_straight(runner_module, tmp_path):
    null = os.stat("/dev/null")
    out = runner_module.Output("/dev/null", "--out")
    assert out.kind == "stream" and out.tmp is None
    out.write("x\n")
    out.commit()
    after = os.stat("/dev/null")
    assert stat.S_ISCHR(after.st_mode) and (after.st_rdev, after.st_ino) == (null.st_rdev, null.st_ino)
    assert runner_module.Output("/dev/stdout", "--out").kind == "stream"  # a link into /proc/self/fd

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_text()))
    reader.start()
    out = runner_module.Output(str(fifo), "--out")
    out.write('{"a": 1}\n')
    out.commit()
    out.discard()
    reader.join(timeout=10)
    assert got == ['{"a": 1}\n'] and stat.S_ISFIFO(fifo.lstat().st_mode)
    assert sorted(os.listdir(tmp_path)) == ["fifo"]


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full on this system")
def test_output_into_dev_full_fails_with_enospc(runner_module):
    out = runner_module.Output("/dev/full", "--out")
    out.write("x\n")  # buffered: the device refuses at the flush
    with pytest.raises(runner_module.OutputError, match=r"cannot write: No space left on device \(ENOSPC\)"):
        out.commit()
    out.discard()
    assert out.kept() == "what reached /dev/full may end with part of a line"
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)


# --- signals ---------------------------------------------------------------------------------

def send_and_wait(sig):
    os.kill(os.getpid(), sig)
    time.sleep(0.2)  # the handler runs in this thread between two bytecodes: it has run by now


def test_signals_become_a_flag_then_exit_128_plus_n(runner_module):
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)  # as under nohup
    term = signal.getsignal(signal.SIGTERM)
    if term is not signal.SIG_DFL:
        signal.signal(signal.SIGHUP, previous)
        pytest.skip("SIGTERM already has a handler in this process")
    signals = runner_module.Signals()
    try:
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN  # ignored stays ignored
        signals.flag()
        send_and_wait(signal.SIGTERM)  # only noted
        with pytest.raises(runner_module.Interrupted) as caught:
            signals.check()
        assert runner_module.exit_status(caught.value) == 143
        assert isinstance(caught.value, KeyboardInterrupt)  # every Ctrl-C path handles it too
        with pytest.raises(runner_module.Interrupted):
            send_and_wait(signal.SIGTERM)  # a second signal raises at once
    finally:
        signals.restore()
        signal.signal(signal.SIGHUP, previous)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    args = type("Args", (), {"out": "det.jsonl"})()
    msg = runner_module.stop_message(None, runner_module.Interrupted(signal.SIGTERM), args, 12)
    assert msg == "interrupted by SIGTERM after 12 images; det.jsonl not written"
    assert runner_module.stop_message(None, KeyboardInterrupt(), args, 3).startswith("interrupted after 3 images")
    assert runner_module.exit_status(runner_module.Interrupted(signal.SIGHUP)) == 129


# --- the real runner of a migrated model (TensorFlow in a child process) ----------------------

@pytest.fixture
def many_images(migrated, tmp_path):
    """400 links to the e2e images: long enough that a signal lands inside the image loop."""
    files = migrated[3]
    many = tmp_path / "many"
    many.mkdir()
    for i in range(400):
        (many / f"{i:04d}.png").symlink_to(files[i % len(files)])
    return many


def start_runner(migrated_dir: Path, *args) -> subprocess.Popen[str]:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.Popen([sys.executable, str(migrated_dir / "run_inference.py"), *map(str, args)],
                            stderr=subprocess.PIPE, text=True, env=env, cwd=migrated_dir)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
@pytest.mark.slow
@pytest.mark.tf
@pytest.mark.timeout(400)
def test_signal_mid_run_exits_128_plus_n_and_writes_nothing(migrated, many_images, tmp_path, sig):
    out, summary = tmp_path / "det.jsonl", tmp_path / "summary.json"
    proc = start_runner(migrated[1], many_images, "--out", out, "--summary-json", summary)
    wait_for_progress(proc)
    proc.send_signal(sig)
    rest = proc.stderr.read()
    assert proc.wait(timeout=60) == 128 + sig, rest
    assert "Traceback" not in rest
    name = signal.Signals(sig).name
    [line] = runner_errors(rest)
    assert re.fullmatch(rf"run_inference\.py: error: interrupted by {name} after \d+ images; .*det\.jsonl "
                        "not written", line), line
    assert sorted(os.listdir(tmp_path)) == ["many"]  # no det.jsonl, no summary, no temporary file


@pytest.mark.parametrize("delay", [0.0, 1.5], ids=["creating-outputs", "importing-tensorflow"])
@pytest.mark.slow
@pytest.mark.tf
@pytest.mark.timeout(400)
def test_signal_before_the_images_removes_the_temporary_file(migrated, many_images, tmp_path, delay):
    out = tmp_path / "det.jsonl"
    proc = start_runner(migrated[1], many_images, "--out", out, "--quiet")
    deadline = time.monotonic() + 60
    while not leftovers(tmp_path) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.01)  # the temporary file exists once the handlers are in place
    assert leftovers(tmp_path), "the runner never created its temporary output"
    time.sleep(delay)  # 0: the outputs are still being set up; 1.5 s: TensorFlow is being imported
    proc.send_signal(signal.SIGTERM)
    rest = proc.stderr.read()
    assert proc.wait(timeout=60) == 143, rest
    assert "Traceback" not in rest
    [line] = runner_errors(rest)
    assert re.fullmatch(r"run_inference\.py: error: interrupted by SIGTERM after \d+ images; .*det\.jsonl "
                        "not written", line), line
    assert sorted(os.listdir(tmp_path)) == ["many"]


@pytest.mark.slow
@pytest.mark.tf
@pytest.mark.timeout(400)
def test_foreign_saved_models_are_named_not_a_type_error(migrated, tf, tmp_path):
    from oddoctor_legacy_tf1.model import build_model

    _, out_dir, _, files = migrated
    tf1 = build_model(tmp_path / "tf1_saved_model", seed=0, saved_model=True)

    class Other(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="x")], autograph=False)
        def serve(self, x):
            return {"y": x * 2.0}

    other = Other()
    tf.saved_model.save(other, str(tmp_path / "other"), signatures=other.serve)
    for model, has in ((tf1, "takes 'inputs' (uint8"), (tmp_path / "other", "takes 'x' (float32")):
        proc = run_runner(out_dir, files[0], "--model", model, "--out", tmp_path / "det.jsonl")
        assert proc.returncode == 2, proc.stderr
        assert "Traceback" not in proc.stderr
        [line] = runner_errors(proc.stderr)
        assert f"--model {model}: not a SavedModel migrated by oddoctor" in line and has in line
        assert "expected signature 'serving_default' with the one input 'input_tensor'" in line
        assert not (tmp_path / "det.jsonl").exists() and leftovers(tmp_path) == []


@pytest.mark.slow
@pytest.mark.tf
@pytest.mark.timeout(400)
@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full on this system")
def test_dev_full_is_exit_1_and_dev_null_stays_a_device(migrated):
    _, out_dir, _, files = migrated
    proc = run_runner(out_dir, files[0], "--out", "/dev/full", "--no-masks")
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    [line] = runner_errors(proc.stderr)
    assert line.startswith("run_inference.py: error: --out /dev/full: cannot write: No space left on device")
    null = os.stat("/dev/null")
    proc = run_runner(out_dir, files[0], "--out", "/dev/null", "--no-masks")
    assert proc.returncode == 0, proc.stderr
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode) and os.stat("/dev/null").st_ino == null.st_ino
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)


INJECT = """
import errno, importlib.util, os, sys

spec = importlib.util.spec_from_file_location("run_inference", sys.argv[1])
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
failing = sys.argv[2]


class DiskFull:
    def __init__(self, file):
        self.file = file

    def write(self, text):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def close(self):
        self.file.close()

    @property
    def closed(self):
        return self.file.closed


class FullOutput(mod.Output):
    def __init__(self, path, option, **kw):
        super().__init__(path, option, **kw)
        if option == failing:
            self.file = DiskFull(self.file)


mod.Output = FullOutput
sys.exit(mod.main(sys.argv[3:]))
"""


@pytest.mark.parametrize("failing", ["--out", "--summary-json"])
@pytest.mark.slow
@pytest.mark.tf
@pytest.mark.timeout(400)
def test_full_disk_mid_run_is_exit_1_and_commits_nothing(migrated, tmp_path, failing):
    _, out_dir, images, _ = migrated
    out, summary = tmp_path / "det.jsonl", tmp_path / "summary.json"
    out.write_text("old\n")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run([sys.executable, "-c", INJECT, str(out_dir / "run_inference.py"), failing, str(images),
                           "--out", str(out), "--summary-json", str(summary), "--quiet"],
                          capture_output=True, text=True, timeout=300, env=env, cwd=out_dir)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    [line] = runner_errors(proc.stderr)
    assert re.fullmatch(rf"run_inference\.py: error: {failing} \S+: cannot write: No space left on device "
                        r"\(ENOSPC\) after \d+ images; \S*det\.jsonl not written", line), line
    assert out.read_text() == "old\n"  # the previous result is still there, whole
    assert sorted(os.listdir(tmp_path)) == ["det.jsonl"]  # no summary, no temporary file


@pytest.mark.slow
@pytest.mark.tf
@pytest.mark.timeout(400)
def test_out_through_a_symlink_lands_in_its_target(migrated, tmp_path):
    _, out_dir, _, files = migrated
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "det.jsonl"
    target.write_text("old\n")
    link = tmp_path / "det.jsonl"
    link.symlink_to(target)
    proc = run_runner(out_dir, files[0], "--out", link, "--no-masks")
    assert proc.returncode == 0, proc.stderr
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert '"detections"' in target.read_text() and len(target.read_text().splitlines()) == 1
    assert leftovers(tmp_path) == [] and leftovers(tmp_path / "real") == []


# --- a TensorFlow that cannot be imported: found by a child process, not by this script dying ----------

@pytest.mark.parametrize(("body", "args", "needle"), [
    ("import os\nos.abort()\n", [], "`import tensorflow` was killed by SIGABRT"),
    ("import time\ntime.sleep(600)\n", ["--tf-timeout", "2"], "`import tensorflow` hung for more than 2 s"),
    ("raise ImportError('libcudart.so.12: cannot open shared object file')\n", [],
     "ImportError: libcudart.so.12: cannot open shared object file"),
], ids=["abort", "hang", "import-error"])
def test_a_tensorflow_that_crashes_or_hangs_on_import_is_one_line_exit_1(script, tmp_path, body, args, needle):
    path, image = script
    fake = tmp_path / "fake" / "tensorflow"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text(body)
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "fake")}
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, str(path), str(image), "--out", str(tmp_path / "det.jsonl"), *args],
                          capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path)
    assert time.monotonic() - t0 < 30
    assert proc.returncode == 1, proc.stderr
    [line] = runner_errors(proc.stderr)
    assert "TensorFlow cannot be used here" in line and needle in line and "oddoctor check" in line
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "det.jsonl").exists() and leftovers(tmp_path) == []


@pytest.mark.slow
@pytest.mark.tf
@pytest.mark.timeout(400)
def test_a_jpeg_gives_the_detections_of_pils_pixels(migrated, tf, tmp_path):
    """Issue #10: by default the runner sees a JPEG (whatever its name) as PIL does, as the TF1 tutorial
    pipeline did; with --jpeg-dct fast, as tf.io.decode_image does."""
    np = pytest.importorskip("numpy")
    from PIL import Image

    _, out_dir, _, files = migrated
    folder = tmp_path / "images"
    folder.mkdir()
    with Image.open(files[0]) as im:
        im.convert("RGB").save(folder / "a.jpg", quality=90)
    data = (folder / "a.jpg").read_bytes()
    (folder / "b_jpeg_named.png").write_bytes(data)
    with Image.open(folder / "a.jpg") as im:
        pil = np.asarray(im.convert("RGB"))
    fast = tf.io.decode_image(data, channels=3, expand_animations=False).numpy()
    assert (fast != pil).any()
    Image.fromarray(pil).save(folder / "c_pil_pixels.png")
    Image.fromarray(fast).save(folder / "d_fast_pixels.png")

    def detections(*args) -> dict[str, list]:
        out = tmp_path / "det.jsonl"
        proc = run_runner(out_dir, *args, "--out", out, "--score-threshold", 0.3, "--quiet")
        assert proc.returncode == 0, proc.stderr
        records = [json.loads(line) for line in out.read_text().splitlines()]
        return {os.path.basename(r["file"]): r["detections"] for r in records}

    default = detections(folder)
    assert default["a.jpg"] and default["a.jpg"] == default["b_jpeg_named.png"] == default["c_pil_pixels.png"]
    assert default["a.jpg"] != default["d_fast_pixels.png"]  # the pixels moved the detections
    assert detections(folder / "a.jpg", "--jpeg-dct", "fast")["a.jpg"] == default["d_fast_pixels.png"]
