"""The one child-process seam: how a child ended, in words, and nothing left running."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

import pytest

from oddoctor import childproc
from oddoctor.childproc import Cancelled, run_child

PY = sys.executable
posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and process groups")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_lines_exit_code_and_stderr() -> None:
    r = run_child([PY, "-c", "import sys; print('a'); print('b'); print('oops', file=sys.stderr); sys.exit(3)"],
                  timeout_s=30)
    assert r.stdout_lines == ["a", "b"]
    assert r.stderr_lines == ["oops"] and r.stderr_tail == ["oops"]
    assert r.returncode == 3 and r.signal is None and not r.timed_out
    assert r.how() == "exited with status 3"


def test_on_line_gets_lines_as_they_come() -> None:
    seen: list[tuple[str, float]] = []
    code = "import time\nfor i in range(3):\n    print(i, flush=True); time.sleep(0.3)"
    t0 = time.monotonic()
    r = run_child([PY, "-c", code], timeout_s=30, on_line=lambda ln: seen.append((ln, time.monotonic() - t0)))
    assert [ln for ln, _ in seen] == ["0", "1", "2"] and r.stdout_lines == []
    assert seen[0][1] < seen[-1][1] - 0.4  # the first line arrived before the child ended


@posix_only
def test_crash_is_named_by_its_signal() -> None:
    r = run_child([PY, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGABRT)"], timeout_s=30)
    assert r.signal == "SIGABRT" and r.how() == "killed by signal SIGABRT"


@posix_only
def test_timeout_kills_the_whole_group(tmp_path) -> None:
    pidfile = tmp_path / "grandchild.pid"
    code = (f"import subprocess, sys, time\n"
            f"p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
            f"open({str(pidfile)!r}, 'w').write(str(p.pid))\n"
            f"print('started', flush=True)\ntime.sleep(60)")
    t0 = time.monotonic()
    r = run_child([PY, "-c", code], timeout_s=2)
    assert r.timed_out and time.monotonic() - t0 < 20
    assert r.stdout_lines == ["started"] and r.how().startswith("timed out after")
    grandchild = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while _alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(grandchild), "the grandchild outlived the timeout"


def test_cancel_kills_and_raises() -> None:
    cancel = threading.Event()
    threading.Timer(0.5, cancel.set).start()
    t0 = time.monotonic()
    with pytest.raises(Cancelled):
        run_child([PY, "-c", "import time; time.sleep(60)"], timeout_s=60, cancel=cancel)
    assert time.monotonic() - t0 < 15


def test_cancel_after_a_normal_end_is_not_a_cancel() -> None:
    cancel = threading.Event()
    r = run_child([PY, "-c", "pass"], timeout_s=30, cancel=cancel)
    cancel.set()
    assert r.returncode == 0


@posix_only
def test_an_error_in_the_callback_kills_the_child_then_propagates(tmp_path) -> None:
    pidfile = tmp_path / "child.pid"
    code = (f"import os, time\nopen({str(pidfile)!r}, 'w').write(str(os.getpid()))\n"
            "print('x', flush=True)\ntime.sleep(60)")

    def boom(_line: str) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_child([PY, "-c", code], timeout_s=60, on_line=boom)
    assert not _alive(int(pidfile.read_text()))


def test_merge_stderr_keeps_order_in_stderr_lines() -> None:
    code = "import sys\nprint('out1', flush=True)\nprint('err', file=sys.stderr, flush=True)\nprint('out2', flush=True)"
    r = run_child([PY, "-c", code], timeout_s=30, merge_stderr=True)
    assert r.stderr_lines == ["out1", "err", "out2"] and r.stdout_lines == []


def test_a_child_that_cannot_start_is_a_result() -> None:
    r = run_child(["/nonexistent/oddoctor-no-such-program"], timeout_s=5)
    assert r.returncode is None and r.start_error and r.how().startswith("could not start")


@pytest.mark.parametrize("bad", [0, -1, float("inf"), float("nan")])
def test_timeout_must_be_finite_and_positive(bad: float) -> None:
    with pytest.raises(ValueError, match="timeout_s"):
        run_child([PY, "-c", "pass"], timeout_s=bad)


def test_endless_stderr_is_capped(monkeypatch) -> None:
    monkeypatch.setattr(childproc, "STDERR_KEEP_BYTES", 1000)
    r = run_child([PY, "-c", "import sys\nfor i in range(2000): print('line', i, file=sys.stderr)"], timeout_s=30)
    text = "\n".join(r.stderr_lines)
    assert "bytes left out" in text and len(text) < 2600
    assert r.stderr_lines[0] == "line 0" and r.stderr_lines[-1] == "line 1999"


def test_signal_name() -> None:
    assert childproc.signal_name(-int(signal.SIGSEGV)) == "SIGSEGV"
    assert childproc.signal_name(0) is None and childproc.signal_name(None) is None
