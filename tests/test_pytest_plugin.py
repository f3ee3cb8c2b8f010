"""The pytest plugin gates a session, or single tests, on oddoctor's verdicts."""

from __future__ import annotations

import pytest

from tests.helpers import SNAPSHOTS

pytest_plugins = ["pytester"]

HEALTHY = str(SNAPSHOTS / "core_healthy_h100_tf221.json")
NO_DRIVER = str(SNAPSHOTS / "core_no_driver_cpu_machine.json")  # collected on a CPU-only machine
SEGFAULT = str(SNAPSHOTS / "core_tf_import_segfault.json")
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
    result = pytester.runpytest_subprocess("--oddoctor-from", SEGFAULT)
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*oddoctor check failed: tf.importable: `import tensorflow` was killed by SIGSEGV*"])
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
    # The session gate passes (a CPU machine is healthy); the markers then judge each test: a check that
    # skipped (no GPU here) does not satisfy a test that requires it.
    result.assert_outcomes(passed=1, errors=2)
    result.stdout.fnmatch_lines(["*ERROR at setup of test_needs_gpu*",
                                 "oddoctor: gpu.visible: no NVIDIA GPU on this machine*driver: no such check was run",
                                 "*ERROR at setup of test_needs_8gib*",
                                 "oddoctor: gpu.min-vram: no NVIDIA GPU on this machine*"])


def test_bad_snapshot_is_a_usage_error(pytester: pytest.Pytester, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest_subprocess("--oddoctor-from", str(bad))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--oddoctor-from:*not valid JSON*"])


LEAK_TESTS = """
import pytest
tf = pytest.importorskip("tensorflow")

def _graph_and_session():
    g = tf.Graph()
    with g.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None])
        y = x * 2.0
    return g, x, y

def test_ops_added_per_call_leak(oddoctor_leak):
    g, x, y = _graph_and_session()
    sess = tf.compat.v1.Session(graph=g)
    def leaky():
        with g.as_default():
            z = tf.identity(y) + 1.0     # a new op on every call: the TF1 tutorial's mistake
        sess.run(z, {x: [1.0]})
    result = oddoctor_leak(leaky, graph=g, iterations=12, warmup=3)
    result.assert_no_leak()

def test_finalized_graph_does_not_leak(oddoctor_leak):
    g, x, y = _graph_and_session()
    g.finalize()
    sess = tf.compat.v1.Session(graph=g)
    result = oddoctor_leak(lambda: sess.run(y, {x: [1.0]}), graph=g, iterations=12, warmup=3)
    result.assert_no_leak()
    assert result.trends["graph_ops"].status == "ok"
"""


@pytest.mark.tf
@pytest.mark.timeout(180)
def test_leak_fixture_flags_ops_added_per_call_and_passes_a_finalized_graph(pytester: pytest.Pytester):
    pytest.importorskip("tensorflow")
    pytester.makepyfile(LEAK_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*oddoctor: leak measured: rss: *graph_ops: leak (+3.000 ops/call*"])
