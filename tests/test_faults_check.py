"""The fault corpus for the doctor itself (`check`, `collect`, `checks`): hostile inputs, hostile plugins, hostile
TensorFlows and signals. Each case asserts the exit code, one clear line naming the problem, no traceback, nothing
half-written or left behind, and an end within its time limit."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.helpers import REPO, SNAPSHOTS, cmdline_of, run_oddoctor

HEALTHY = SNAPSHOTS / "core_healthy_h100_tf221.json"


def _one_line_error(proc: subprocess.CompletedProcess[str], code: int, needle: str) -> None:
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    err = proc.stderr.strip()
    assert needle in err, err
    assert "Traceback" not in err and "internal error" not in err
    assert len(err.splitlines()) == 1, err


def _snapshot(tmp_path: Path, text: str) -> Path:
    f = tmp_path / "snap.json"
    f.write_text(text, encoding="utf-8")
    return f


# --- inputs ---------------------------------------------------------------------------------------------

@pytest.mark.timeout(60)
def test_from_a_fifo_is_refused_at_once(tmp_path: Path):
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)
    t0 = time.monotonic()
    _one_line_error(run_oddoctor("check", "--from", str(fifo), timeout=30), 2, "not a regular file")
    assert time.monotonic() - t0 < 20


@pytest.mark.timeout(60)
def test_from_a_device_is_refused_without_reading_it():
    _one_line_error(run_oddoctor("check", "--from", "/dev/zero", timeout=30), 2, "not a regular file")


@pytest.mark.parametrize(("text", "needle"), [
    ('{"schema_version": 2, "python": {"bits": 1' + "0" * 5000 + "}}", "not a usable JSON document"),
    ("[" * 100000 + "]" * 100000, "not a usable JSON document"),
    ('{"schema_version": 2, "nvml": ' + '{"a": ' * 5000 + "1" + "}" * 5001 + "}", "snapshot"),
    ("\xff\xfe not utf-8", "not UTF-8"),
], ids=["huge-integer", "deep-list", "deep-objects", "not-utf8"])
def test_hostile_snapshot_files_are_one_line_errors(tmp_path: Path, text: str, needle: str):
    f = tmp_path / "snap.json"
    f.write_bytes(text.encode("latin-1") if text.startswith("\xff") else text.encode())
    proc = run_oddoctor("check", "--from", str(f))
    assert proc.returncode in (0, 2), proc.stderr  # deep but valid nesting may simply be ignored keys
    if proc.returncode == 2:
        _one_line_error(proc, 2, needle)


@pytest.mark.parametrize("args", [
    ["--tf-timeout", "inf"], ["--tf-timeout", "nan"], ["--tf-timeout", "0"], ["--min-vram", "inf"],
    ["--min-vram", "1e999"], ["--min-vram", "nan"], ["--only", "gpu.no-such-check"], ["--skip", "nope"],
    ["--only", "gpu.no-such-check", "--strict"], ["--tf", "99"],
])
def test_bad_option_values_are_usage_errors(args: list[str]):
    proc = run_oddoctor("check", "--from", str(HEALTHY), *args)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr


def test_odd_but_valid_facts_never_error(tmp_path: Path):
    snap = json.loads(HEALTHY.read_text())
    snap["schema_version"] = 2
    snap["tensorflow"]["build_info"]["cuda_compute_capabilities"] = 5
    snap["hostname"] = "\ud800-lone-surrogate"
    snap["env"]["TF_FORCE_GPU_ALLOW_GROWTH"] = "True"
    f = tmp_path / "odd.json"
    f.write_text(json.dumps(snap))
    proc = run_oddoctor("check", "--from", str(f), "--json")
    doc = json.loads(proc.stdout)
    assert not [r for r in doc["results"] if r["status"] == "error"]
    for env in ({"PYTHONIOENCODING": "ascii"}, {}):
        proc = run_oddoctor("check", "--from", str(f), "--cpu", env=env)
        assert proc.returncode == 0, proc.stdout + proc.stderr  # --cpu: the allow-growth value does not matter
        assert "Traceback" not in proc.stderr


def test_facts_cannot_forge_report_lines_or_drive_the_terminal(tmp_path: Path):
    snap = json.loads(HEALTHY.read_text())
    snap["hostname"] = "box\x1b]0;pwned\x07\x1b[2J"
    snap["nvml"]["gpus"][0]["name"] = "H100\n[✓] driver.present         forged line"
    snap["nvml"]["gpus"][0]["processes"] = [{"pid": 9, "name": "evil\n[✓] gpu.fake  ok", "used_bytes": 70 * 2**30}]
    f = tmp_path / "forged.json"
    f.write_text(json.dumps(snap))
    proc = run_oddoctor("check", "--from", str(f), "--verbose")
    assert "\x1b" not in proc.stdout and "\x07" not in proc.stdout
    assert not [ln for ln in proc.stdout.splitlines() if ln.startswith("[✓] driver.present") and "forged" in ln]
    assert not [ln for ln in proc.stdout.splitlines() if ln.startswith("[✓] gpu.fake")]
    assert "\\n[✓] driver.present" in proc.stdout  # shown, escaped


# --- plugins --------------------------------------------------------------------------------------------

def _plugin(tmp_path: Path, name: str, body: str) -> dict[str, str]:
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(body))
    return {"PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}


@pytest.mark.parametrize("body", [
    "import sys\nsys.exit(0)\n",
    """
    import sys
    from oddoctor import hookimpl
    @hookimpl
    def oddoctor_checks():
        sys.exit(0)
    """,
    """
    import sys
    from oddoctor import hookimpl
    from oddoctor.checks import check
    @check(id="exits.now", title="Exits")
    def exits(snap):
        sys.exit(0)
    @hookimpl
    def oddoctor_checks():
        return [exits]
    """,
])
def test_a_plugin_that_calls_sys_exit_is_an_error_not_a_pass(tmp_path: Path, body: str):
    env = _plugin(tmp_path, "quitter", body)
    proc = run_oddoctor("check", "--from", str(HEALTHY), "-p", "quitter", "--json", env=env)
    doc = json.loads(proc.stdout)
    errors = [r for r in doc["results"] if r["status"] == "error"]
    assert proc.returncode == 1 and errors and "SystemExit" in errors[0]["message"]


@pytest.mark.timeout(120)
def test_fact_probes_that_hang_or_hold_nan_are_recorded_not_fatal(tmp_path: Path, monkeypatch):
    env = _plugin(tmp_path, "slowfacts", """
        import time
        from oddoctor import hookimpl
        @hookimpl
        def oddoctor_facts():
            return {"slow": lambda: time.sleep(600), "nan": lambda: float("nan"), "fine": lambda: 42}
        """)
    from oddoctor import collect

    monkeypatch.setattr(collect, "FACT_PROBE_TIMEOUT_S", 1.0)
    monkeypatch.syspath_prepend(str(tmp_path))
    from oddoctor.manager import make_plugin_manager
    from oddoctor.snapshot import Snapshot

    snap = Snapshot()
    t0 = time.monotonic()
    collect._plugin_facts(snap, make_plugin_manager(entry_points=False, modules=["slowfacts"]), lambda _m: None)
    assert time.monotonic() - t0 < 10
    assert snap.extra == {"fine": 42}
    why = {e.fact: e.error for e in snap.probe_errors}
    assert "did not finish" in why["extra.slow"] and "not JSON" in why["extra.nan"]
    json.loads(snap.to_json())  # strict JSON: no bare NaN
    del env


# --- outputs --------------------------------------------------------------------------------------------

def test_collect_writes_through_a_symlink_and_into_a_device(tmp_path: Path):
    from oddoctor.fsutil import atomic_write_text

    target = tmp_path / "real.json"
    link = tmp_path / "link.json"
    target.write_text("old")
    link.symlink_to(target)
    atomic_write_text(link, "new")
    assert link.is_symlink() and target.read_text() == "new"
    atomic_write_text("/dev/null", "into the void")
    assert Path("/dev/null").is_char_device()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.json", "real.json"]


# --- a TensorFlow that hangs, and signals -----------------------------------------------------------------

def _hanging_tf(tmp_path: Path) -> dict[str, str]:
    pkg = tmp_path / "fake" / "tensorflow"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("import time\ntime.sleep(600)\n")
    return {"PYTHONPATH": str(tmp_path / "fake"), "TMPDIR": str(tmp_path / "tmp")}


def _children_of(pid: int) -> list[int]:
    import psutil

    try:
        return [c.pid for c in psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


@pytest.mark.slow
@pytest.mark.timeout(120)
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_signal_during_the_tensorflow_probe_cleans_up_and_exits_128_plus_n(tmp_path: Path, sig: int):
    import psutil

    env = {**os.environ, **_hanging_tf(tmp_path), "NO_COLOR": "1"}
    (tmp_path / "tmp").mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "oddoctor", "check", "--tf-timeout", "300"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    deadline = time.monotonic() + 60
    probe: list[int] = []
    while time.monotonic() < deadline and not probe:  # wait until the TensorFlow child runs
        probe = [c for c in _children_of(proc.pid) if "probe_tf" in cmdline_of(c)]
        time.sleep(0.2)
    assert probe, "the TensorFlow probe child never started"
    proc.send_signal(sig)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == (130 if sig == signal.SIGINT else 128 + sig), (proc.returncode, err)
    assert ("interrupted" if sig == signal.SIGINT else f"terminated by {signal.Signals(sig).name}") in err
    assert "Traceback" not in err
    time.sleep(0.5)
    assert not [p for p in probe if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    assert list((tmp_path / "tmp").iterdir()) == []  # no oddoctor-tf-* folder left behind


_CTRL_C_IN_EXEC = """
import os, signal, sys
{install}
try:
    # Ctrl-C lands while code made from a string runs (dataclasses and namedtuple exec() their methods while a
    # module is imported): CPython marks a plain KeyboardInterrupt "unhandled" there, even when it is caught.
    exec("import os, signal\\nos.kill(os.getpid(), signal.SIGINT)\\nfor _ in range(10**6): pass")
except KeyboardInterrupt:
    sys.exit(130)
"""


@pytest.mark.timeout(60)
@pytest.mark.parametrize("ours", [False, True])
def test_ctrl_c_inside_exec_still_exits_130_under_python_m(tmp_path: Path, ours: bool):
    """`python -m oddoctor` exited by SIGINT (-2) instead of 130 in 4 of 30 Ctrl-C's (CI failed once on it): the
    interpreter re-raised a Ctrl-C that oddoctor had caught. The handler oddoctor installs raises a subclass,
    which CPython never marks; the plain handler is the control, showing the mechanism is real."""
    install = "from oddoctor.interrupts import install_signal_handlers; install_signal_handlers()" if ours else ""
    (tmp_path / "ctrlc_in_exec.py").write_text(_CTRL_C_IN_EXEC.format(install=install))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO)])}
    proc = subprocess.run([sys.executable, "-m", "ctrlc_in_exec"], env=env, capture_output=True, text=True,
                          timeout=50)
    if ours:
        assert proc.returncode == 130, proc.stderr
    else:
        assert proc.returncode in (130, -signal.SIGINT), proc.stderr  # -2 on CPython 3.11 and 3.12
        if sys.version_info[:2] in ((3, 11), (3, 12)):
            assert proc.returncode == -signal.SIGINT, proc.stderr


_SIGNAL_IN_SET_NAME = """
import os, signal


class Field:
    def __set_name__(self, owner, name):  # dataclasses.field runs here while a module is imported
        os.kill(os.getpid(), signal.{sig})
        for _ in range(10**6):  # the handler runs in here
            pass


class Options:
    x = Field()
"""


@pytest.mark.timeout(120)
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_while_a_plugin_is_imported_stops_check(tmp_path: Path, sig: int):
    """A Ctrl-C that landed in a ``__set_name__`` while a plugin was imported came out as a RuntimeError on Python
    3.11, recorded as "plugin failed to load": check then ran on until the TensorFlow probe's timeout (1 of 60
    Ctrl-C's here). Now the signal still ends it, at once, with its own exit code and the probe child killed."""
    import psutil

    env = {**os.environ, **_hanging_tf(tmp_path), "NO_COLOR": "1"}
    (tmp_path / "fake" / "signal_in_set_name.py").write_text(_SIGNAL_IN_SET_NAME.format(sig=signal.Signals(sig).name))
    (tmp_path / "tmp").mkdir()
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "oddoctor", "check", "--tf-timeout", "100",
                             "-p", "signal_in_set_name"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=REPO)
    children: list[int] = []
    while proc.poll() is None and time.monotonic() - t0 < 90:
        children = sorted(set(children) | set(_children_of(proc.pid)))
        time.sleep(0.05)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == (130 if sig == signal.SIGINT else 128 + sig), (proc.returncode, err)
    assert time.monotonic() - t0 < 60, "check ran on after the signal"
    assert ("oddoctor: interrupted" if sig == signal.SIGINT else "terminated by SIGTERM") in err, err
    assert "Traceback" not in err and "failed to load" not in err, err
    time.sleep(0.5)
    assert not [p for p in children if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]


_LEAVE_WITHOUT_CANCEL = """
import atexit, os, time
import psutil
from oddoctor.collect import start_tf_probe

start_tf_probe(timeout_s=300)  # and never cancelled nor waited for: as when a signal lands between two lines
deadline = time.monotonic() + 60
probes = []
while not probes and time.monotonic() < deadline:
    probes = [c for c in psutil.Process().children(recursive=True) if "probe_tf" in " ".join(c.cmdline())]
    time.sleep(0.05)
time.sleep(1)  # into the import that hangs (the temp folder that the exit functions remove is written before)
atexit._run_exitfuncs()  # what the interpreter runs at exit (this process stays, to look at its child)
gone, alive = psutil.wait_procs(probes, timeout=5)
print(len(probes), len(alive), flush=True)
for p in alive:
    p.kill()
os._exit(3)
"""


@pytest.mark.timeout(120)
def test_the_tensorflow_probe_is_cancelled_at_exit_if_nobody_else_did(tmp_path: Path):
    """A SIGTERM or SIGHUP between start_tf_probe() and the code that cancels it on the way out left the probe
    child running (6 of 160 signals here): the probe cancels itself at interpreter exit, whoever forgot to."""
    env = {**os.environ, **_hanging_tf(tmp_path)}
    env["PYTHONPATH"] = os.pathsep.join([env["PYTHONPATH"], str(REPO)])
    (tmp_path / "tmp").mkdir()
    proc = subprocess.run([sys.executable, "-c", _LEAVE_WITHOUT_CANCEL], env=env, capture_output=True, text=True,
                          timeout=100)
    assert proc.returncode == 3, proc.stderr
    assert proc.stdout.split() == ["1", "0"], "the probe child outlived the process's exit functions"
    assert list((tmp_path / "tmp").iterdir()) == []  # its oddoctor-tf-* folder removed too


def test_a_signal_that_something_swallowed_is_raised_again_where_oddoctor_waits():
    """The handler remembers the signal: raise_pending (TfProbe.wait calls it) raises it after a bare
    ``except BaseException: pass`` in someone else's code ate it; restoring the handlers forgets it."""
    from oddoctor.interrupts import Interrupted, install_signal_handlers, raise_pending, reraise_signal

    restore = install_signal_handlers()
    try:
        try:
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(10**6):
                pass
        except BaseException:  # noqa: BLE001 - the swallowing code this test plays
            pass
        with pytest.raises(Interrupted):
            raise_pending()
        wrapped = RuntimeError("Error calling __set_name__")
        wrapped.__cause__ = Interrupted()
        with pytest.raises(Interrupted):
            reraise_signal(wrapped)
        reraise_signal(RuntimeError("a plugin's own failure"))  # no signal in it: returns
    finally:
        restore()
    raise_pending()  # forgotten: returns
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_the_tensorflow_probe_runs_while_the_rest_is_probed(tmp_path: Path):
    """A hanging TensorFlow costs --tf-timeout, not --tf-timeout plus the other probes' own limits."""
    env = _hanging_tf(tmp_path)
    (tmp_path / "tmp").mkdir()
    t0 = time.monotonic()
    proc = run_oddoctor("check", "--tf-timeout", "5", "--json", env=env, timeout=100)
    elapsed = time.monotonic() - t0
    doc = json.loads(proc.stdout)
    r = {r["id"]: r for r in doc["results"]}["tf.importable"]
    assert r["status"] == "fail" and "hung for more than 5 s" in r["message"]
    assert elapsed < 5 + 25, elapsed


# --- a library on LD_LIBRARY_PATH that aborts whoever loads it ---------------------------------------------

def _aborting_cudart(folder: Path) -> Path:
    import shutil

    if shutil.which("cc") is None:
        pytest.skip("no C compiler to build the aborting library")
    folder.mkdir(parents=True, exist_ok=True)
    src = folder / "abort.c"
    src.write_text("#include <stdlib.h>\n__attribute__((constructor)) static void boom(void) { abort(); }\n"
                   "int cudaRuntimeGetVersion(int *v) { *v = 12000; return 0; }\n")
    lib = folder / "libcudart.so.12"
    subprocess.run(["cc", "-shared", "-fPIC", "-o", str(lib), str(src)], check=True, capture_output=True)
    return lib


def test_the_library_whose_loading_crashes_is_named_and_the_rest_still_read(tmp_path: Path):
    from oddoctor.probes.cudalibs import read_versions
    from oddoctor.snapshot import LibFacts

    bad = _aborting_cudart(tmp_path / "bad")
    libs = [LibFacts(name="cudart", path=str(bad), source="ld_library_path"),
            LibFacts(name="cudart", path="/nonexistent/libcudart.so.11.0", source="system")]
    read_versions(libs, timeout_s=30)
    assert libs[0].loadable is False and "crashed the process (SIGABRT)" in libs[0].error
    assert libs[1].error and "crashed" not in libs[1].error  # read by a fresh child after the crash


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_an_aborting_library_on_ld_library_path_is_named_in_the_diagnosis(tmp_path: Path):
    bad = _aborting_cudart(tmp_path / "bad")
    pkg = tmp_path / "fake" / "tensorflow"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("import ctypes\nctypes.CDLL('libcudart.so.12')\n")  # as TF's loader would
    env = {"PYTHONPATH": str(tmp_path / "fake"), "LD_LIBRARY_PATH": str(bad.parent)}
    proc = run_oddoctor("check", "--json", "--only", "tf.importable", env=env, timeout=100)
    r = json.loads(proc.stdout)["results"][0]
    assert proc.returncode == 1 and r["status"] == "fail" and "SIGABRT" in r["message"]
    assert str(bad) in r["message"] and r["fix"].startswith(f"Remove {bad.parent} from LD_LIBRARY_PATH")


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_check_that_kills_or_freezes_the_process_is_reported_and_the_rest_still_run(tmp_path: Path):
    env = _plugin(tmp_path, "wrecker", """
        import ctypes, os, re
        from oddoctor import hookimpl
        from oddoctor.checks import check, ok

        @check(id="wreck.exit", title="Calls os._exit(0)")
        def exits(snap):
            os._exit(0)

        @check(id="wreck.segfault", title="Crashes in C")
        def segfault(snap):
            ctypes.string_at(0)

        @check(id="wreck.gil", title="Stuck in C holding the GIL", timeout_s=1)
        def gil(snap):
            re.match(r"(a+)+$", "a" * 64 + "b")  # catastrophic backtracking: never returns, never yields the GIL

        @check(id="wreck.after", title="Runs after them")
        def after(snap):
            return ok("still standing")

        @hookimpl
        def oddoctor_checks():
            return [exits, segfault, gil, after]
        """)
    t0 = time.monotonic()
    proc = run_oddoctor("check", "--from", str(HEALTHY), "-p", "wrecker", "--json", env=env, timeout=100)
    assert time.monotonic() - t0 < 60
    res = {r["id"]: r for r in json.loads(proc.stdout)["results"]}
    assert proc.returncode == 1
    assert res["wreck.exit"]["status"] == "error"
    assert "ended the process (exit status 0)" in res["wreck.exit"]["message"]
    assert "killed by SIGSEGV" in res["wreck.segfault"]["message"]
    assert "budget and was killed" in res["wreck.gil"]["message"]
    assert res["wreck.after"]["status"] == "ok" and res["driver.present"]["status"] == "ok"
