"""The one way oddoctor runs a child process it does not trust.

The TensorFlow probe, the CUDA library-version probe and the leak-test parent all start a Python child
that may crash, abort, hang or print without end. :func:`run_child` starts it in its own process group
(its own session on POSIX, a new process group on Windows), feeds its stdout lines to a callback as they
come, keeps its stderr in a file (a pipe nobody reads would block the child), and kills the whole group on
the deadline, on ``cancel``, or on any exception in this process (Ctrl-C, the CLI's SIGTERM exception, an
error in the callback) before that propagates. The result says how the child ended, in words.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Optional

STDERR_TAIL_LINES = 15
STDERR_KEEP_BYTES = 4 << 20  # of a child that never stops printing, its first and last 4 MiB are kept


class Cancelled(Exception):
    """The caller gave up (``cancel`` was set, e.g. by Ctrl-C or SIGTERM in another thread): the child was killed."""


@dataclass
class ChildResult:
    """How a child ended. ``returncode`` is None only when it could not be started (``start_error``)."""

    returncode: Optional[int] = None
    timed_out: bool = False
    elapsed_s: float = 0.0
    stdout_lines: list[str] = field(default_factory=list)  # only without ``on_line``
    stderr_lines: list[str] = field(default_factory=list)
    start_error: Optional[str] = None

    @property
    def signal(self) -> Optional[str]:
        """The name of the signal that ended the child (``"SIGSEGV"``), None if it exited."""
        return signal_name(self.returncode)

    @property
    def stderr_tail(self) -> list[str]:
        return [ln.rstrip() for ln in self.stderr_lines[-STDERR_TAIL_LINES:]]

    def how(self) -> str:
        """``"killed by signal SIGABRT"``, ``"exited with status 3"``, ``"timed out after 30 s"``."""
        if self.start_error:
            return f"could not start: {self.start_error}"
        if self.timed_out:
            return f"timed out after {self.elapsed_s:.0f} s"
        sig = self.signal
        return f"killed by signal {sig}" if sig else f"exited with status {self.returncode}"


def signal_name(code: Optional[int]) -> Optional[str]:
    """``-11`` -> ``"SIGSEGV"``; None for a normal exit (code >= 0) or no code."""
    if code is None or code >= 0:
        return None
    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"


def kill_group(proc: subprocess.Popen) -> None:
    """Kill ``proc`` and everything it started (its process group; the process tree on Windows)."""
    if sys.platform == "win32":
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run(["taskkill", "/T", "/F", "/PID", str(proc.pid)], capture_output=True, timeout=10)
        with contextlib.suppress(OSError):
            proc.kill()
        return
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass  # already gone (and reaped by nobody yet: wait() still works)
    except OSError:
        with contextlib.suppress(OSError):
            proc.kill()


def _group_kwargs() -> dict[str, object]:
    if sys.platform == "win32":
        return {"creationflags": getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)}
    return {"start_new_session": True}  # also: a Ctrl-C at the terminal reaches us, not the child


def _read_capped(f: typing.IO[bytes]) -> bytes:
    size = f.seek(0, os.SEEK_END)
    f.seek(0)
    if size <= 2 * STDERR_KEEP_BYTES:
        return f.read()
    head = f.read(STDERR_KEEP_BYTES)
    f.seek(size - STDERR_KEEP_BYTES)
    return head + f"\n[... {size - 2 * STDERR_KEEP_BYTES} bytes left out ...]\n".encode() + f.read()


def run_child(argv: Sequence[str], *, timeout_s: float, env: Optional[Mapping[str, str]] = None,
              on_line: Optional[Callable[[str], None]] = None, cancel: Optional[threading.Event] = None,
              merge_stderr: bool = False) -> ChildResult:
    """Run ``argv`` to its end or to ``timeout_s``; never raises for the child's failures.

    ``on_line`` gets each stdout line (decoded, without the newline) as it comes; without it the lines are
    kept in ``stdout_lines``. With ``merge_stderr`` stdout goes where stderr goes, into ``stderr_lines``, in
    the order written (the TensorFlow probe's logs).
    Raises :class:`Cancelled` once ``cancel`` is set (the child killed and reaped first); any exception here
    while the child runs kills it too, then propagates.
    """
    import math

    if not (math.isfinite(timeout_s) and timeout_s > 0):
        raise ValueError(f"timeout_s must be a finite number of seconds > 0, not {timeout_s!r}")
    result = ChildResult()
    t0 = time.monotonic()
    with tempfile.TemporaryFile(prefix="oddoctor-child-") as err:
        try:
            proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL,
                                    stdout=err if merge_stderr else subprocess.PIPE, stderr=err,
                                    env=None if env is None else dict(env), **_group_kwargs())  # type: ignore[call-overload]
        except OSError as e:
            result.start_error = str(e)
            return result
        timed_out, cancelled, stop = threading.Event(), threading.Event(), threading.Event()

        def _watchdog() -> None:
            deadline = t0 + timeout_s
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    timed_out.set()
                    break
                if stop.wait(min(left, 0.1) if cancel is not None else left):
                    return  # the child ended on its own
                if cancel is not None and cancel.is_set():
                    cancelled.set()
                    break
            kill_group(proc)

        dog = threading.Thread(target=_watchdog, name="oddoctor-child-watchdog", daemon=True)
        dog.start()
        try:
            if proc.stdout is not None:
                for raw in proc.stdout:
                    line = raw.decode("utf-8", "replace").rstrip("\r\n")
                    if on_line is not None:
                        on_line(line)
                    else:
                        result.stdout_lines.append(line)
            result.returncode = proc.wait()
        except BaseException:
            kill_group(proc)
            proc.wait()
            raise
        finally:
            stop.set()
            if proc.stdout is not None:
                proc.stdout.close()
        result.elapsed_s = round(time.monotonic() - t0, 3)
        result.timed_out = timed_out.is_set()
        result.stderr_lines = _read_capped(err).decode("utf-8", "replace").splitlines()
    if cancelled.is_set():
        raise Cancelled("the child process was cancelled")
    return result


def exit_now(code: int) -> typing.NoReturn:
    """End a child without the interpreter's teardown, once everything its parent reads has been written.

    For the children that import TensorFlow: its teardown at exit (modules, thread pools, allocators) took about
    half a second per child on a CPU machine and tells the parent nothing. Python's own buffers are flushed
    first; files must already be closed (the children write theirs with ``with`` or atomically)."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a closed pipe: nothing more to say anyway
            stream.flush()
    os._exit(code)
