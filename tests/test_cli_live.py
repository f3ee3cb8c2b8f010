"""Live feedback on a terminal (a spinner naming the stage, a progress bar with count and time left), and none in
a pipe: CI logs keep their plain lines."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from tests.helpers import REPO, run_oddoctor

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
ESC = "\x1b["
PTY_RUN = textwrap.dedent("""
    import os, pty, sys
    pid, fd = pty.fork()
    if pid == 0:
        os.execvpe(sys.executable, [sys.executable, "-m", "oddoctor", *sys.argv[1:]], os.environ)
    chunks = []
    while True:
        try:
            data = os.read(fd, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    _, status = os.waitpid(pid, 0)
    sys.stdout.buffer.write(b"".join(chunks))
    sys.exit(os.waitstatus_to_exitcode(status))
""")


def in_pty(*args: str, timeout: float = 300) -> tuple[int, str]:
    """Run oddoctor with stdout and stderr on one pseudo-terminal; its exit code and everything it wrote."""
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    env["TERM"] = "xterm"
    proc = subprocess.run([sys.executable, "-c", PTY_RUN, *args], capture_output=True, timeout=timeout, env=env,
                          cwd=REPO)
    return proc.returncode, proc.stdout.decode("utf-8", "replace")


def test_check_shows_a_spinner_with_the_stage_on_a_terminal_and_plain_output_in_a_pipe():
    code, text = in_pty("check", "--only", "tf.importable")
    assert code == 0
    assert "waiting for the TensorFlow probe" in text and "\x1b[?25l" in text  # the spinner hid the cursor
    assert "tf.importable" in text and "No problems found" in text
    proc = run_oddoctor("check", "--only", "tf.importable")
    assert proc.returncode == 0 and ESC not in proc.stderr and "waiting for the TensorFlow probe" not in proc.stderr


@pytest.mark.slow
def test_leak_test_shows_a_progress_bar_with_the_count_on_a_terminal():
    args = ("leak-test", "--demo", "--mode", "fixed", "-n", "10", "-w", "1", "--no-until-decided")
    _code, text = in_pty(*args)
    assert "fixed: measure" in text and "14/14" in text  # 4 warm-up (one pass over the sizes) + 10 measured
    assert "sessions 1" in text  # each image's figures beside the bar
    proc = run_oddoctor(*args, timeout=300)
    assert ESC not in proc.stderr and "14/14" not in proc.stderr
    assert "  measure   10 " in proc.stderr  # the plain line every 10 images, as before
