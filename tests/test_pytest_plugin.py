"""The pytest plugin gates a session, or single tests, on oddoctor's verdicts."""

from __future__ import annotations

import pytest

from tests.conftest import SNAPSHOTS

pytest_plugins = ["pytester"]

HEALTHY = str(SNAPSHOTS / "core_healthy_h100_tf221.json")
NO_DRIVER = str(SNAPSHOTS / "core_no_driver_cpu_machine.json")
BUSY = str(SNAPSHOTS / "core_gpu_held_by_other_process.json")

TESTS = """
import pytest

@pytest.mark.oddoctor_requires("gpu.visible", "driver")
def test_needs_gpu():
    pass

@pytest.mark.oddoctor_requires("gpu.min-vram", min_vram="8GiB")
def test_needs_8gib():
    pass

def test_plain(oddoctor_report):
    assert oddoctor_report.results
"""


def test_plugin_is_inert_without_options(pytester: pytest.Pytester):
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest_subprocess("--strict-markers")
    result.assert_outcomes(passed=1)
    assert "oddoctor:" not in result.stdout.str()


def test_session_gate_stops_on_a_failing_snapshot(pytester: pytest.Pytester):
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest_subprocess("--oddoctor-from", NO_DRIVER)
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*oddoctor check failed: driver.present: no NVIDIA driver found*"])
    assert "passed" not in result.stdout.str()


def test_session_gate_passes_a_healthy_snapshot_and_prints_a_header(pytester: pytest.Pytester):
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest_subprocess("--oddoctor-from", HEALTHY)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["oddoctor: * ok, 0 warning(s), 0 failed, 0 errored, * skipped"])


def test_markers_skip_with_the_reason_and_fix(pytester: pytest.Pytester):
    pytester.makepyfile(TESTS)
    pytester.makeini(f"[pytest]\noddoctor_from = {BUSY}\n")
    result = pytester.runpytest_subprocess("--strict-markers", "-rs", "--oddoctor-skip", "platform")
    result.assert_outcomes(passed=2, skipped=1)
    result.stdout.fnmatch_lines(["*gpu.min-vram.gpu0: GPU 0 (NVIDIA H100 80GB HBM3): 1.6 GiB free*8.0 GiB asked*fix:*"])


def test_markers_fail_instead_of_skip_when_asked(pytester: pytest.Pytester):
    pytester.makepyfile(TESTS)
    result = pytester.runpytest_subprocess("--oddoctor-from", NO_DRIVER, "--oddoctor-requires-action", "fail",
                                "--oddoctor-skip", "driver")
    # The session gate passes (driver.* left out); the markers then judge each test: a check that
    # skipped (no GPU here) does not satisfy a test that requires it.
    result.assert_outcomes(passed=1, errors=2)
    result.stdout.fnmatch_lines(["*ERROR at setup of test_needs_gpu*",
                                 "oddoctor: gpu.visible: no NVIDIA driver*driver: no such check was run",
                                 "*ERROR at setup of test_needs_8gib*",
                                 "oddoctor: gpu.min-vram: no GPU memory figures*"])


def test_bad_snapshot_is_a_usage_error(pytester: pytest.Pytester, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest_subprocess("--oddoctor-from", str(bad))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--oddoctor-from:*not valid JSON*"])
