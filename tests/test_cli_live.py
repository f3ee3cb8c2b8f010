"""Live feedback on a terminal (a spinner naming the stage, a progress bar with count and time left), and none in
a pipe: CI logs keep their plain lines."""

from __future__ import annotations

import sys

import pytest

from tests.helpers import run_in_pty, run_oddoctor

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
ESC = "\x1b["
def in_pty(*args: str, timeout: float = 300) -> tuple[int, str]:
    """Run oddoctor on a pseudo-terminal, colour variables unset, a terminal that can take a spinner."""
    return run_in_pty(*args, env={"NO_COLOR": "", "FORCE_COLOR": "", "TERM": "xterm"}, timeout=timeout)


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
