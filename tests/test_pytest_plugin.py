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


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["plain", "xdist"])
def test_session_gate_stops_on_a_failing_snapshot_and_says_so_once(pytester: pytest.Pytester, xdist):
    if xdist:
        pytest.importorskip("xdist")
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest_subprocess("--oddoctor-from", SEGFAULT, *xdist)
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*= oddoctor =*",
                                 "FAIL  tf.importable: `import tensorflow` was killed by SIGSEGV*",
                                 "      fix: Reinstall in a clean environment*",
                                 "oddoctor: * ok, 0 warning(s), 1 failed, 0 errored, * skipped",
                                 "oddoctor check failed: 1 check(s) stand in the way (listed above); no test was run"])
    everything = result.stdout.str() + result.stderr.str()
    assert everything.count("oddoctor check failed") == 1
    assert everything.count("was killed by SIGSEGV") == 1
    assert "passed" not in everything and "Traceback" not in everything
    assert "workers" not in everything  # the controller stopped before starting any


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


def test_summary_section_lists_warnings_with_fixes_under_q(pytester: pytest.Pytester):
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest_subprocess("-q", "--oddoctor-from", BUSY)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*= oddoctor =*",
                                 "WARN  gpu.other-processes.gpu0: GPU 0: 1 other process(es) hold 97% of its memory*",
                                 "      fix: Stop them, or run on another GPU*",
                                 "WARN  memory.allow-growth: *",
                                 "      fix: export TF_FORCE_GPU_ALLOW_GROWTH=true*",
                                 "oddoctor: * ok, 2 warning(s), 0 failed, 0 errored, * skipped",
                                 "1 passed in *"])


def test_no_summary_when_nothing_was_diagnosed(pytester: pytest.Pytester):
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest_subprocess("-q")
    result.assert_outcomes(passed=1)
    assert "oddoctor" not in result.stdout.str()


SKIP_HERE = """
import pytest


@pytest.mark.oddoctor_requires("gpu.visible")
def test_needs_gpu():
    pass
"""


def test_a_marker_skip_is_reported_at_the_test_and_names_the_pytest_option(pytester: pytest.Pytester):
    pytester.makepyfile(test_where=SKIP_HERE)
    result = pytester.runpytest_subprocess("-rs", "--oddoctor-from", NO_DRIVER)
    result.assert_outcomes(skipped=1)
    # Line 4 (makepyfile strips the leading blank line) is the decorator's: pytest's own skipif points there too.
    result.stdout.fnmatch_lines(["SKIPPED [1] test_where.py:4: oddoctor: gpu.visible: no NVIDIA GPU on this machine: "
                                 "GPU checks do not apply (pass --oddoctor-gpu if one is expected)"])
    assert "pytest_plugin.py" not in result.stdout.str()


def test_cpu_option_skips_gpu_tests_and_says_so_in_its_own_name(pytester: pytest.Pytester):
    pytester.makepyfile(test_where=SKIP_HERE)
    result = pytester.runpytest_subprocess("-rs", "--oddoctor-from", HEALTHY, "--oddoctor-cpu")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["SKIPPED [1] test_where.py:4: oddoctor: gpu.visible: --oddoctor-cpu given"])


def test_gpu_option_fails_the_gate_on_a_machine_without_one(pytester: pytest.Pytester):
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest_subprocess("--oddoctor-from", NO_DRIVER, "--oddoctor-gpu")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["FAIL  driver.present: *", "oddoctor check failed: * no test was run"])


@pytest.mark.parametrize(("text", "expected"), [
    ("--cpu given", "--oddoctor-cpu given"),
    ("pass --gpu if one is expected; warnings do not fail without --strict",
     "pass --oddoctor-gpu if one is expected; warnings do not fail without --oddoctor-strict"),
    ("give --min-vram, or --skip gpu, or --from snap.json",
     "give --oddoctor-min-vram, or --oddoctor-skip gpu, or --oddoctor-from snap.json"),
    # Not ours: docker's --gpus, apt's --purge; a quoted `oddoctor ...` command keeps its own options.
    ("docker run --gpus all; apt-get remove --purge x", "docker run --gpus all; apt-get remove --purge x"),
    ("`oddoctor check --min-vram` tells what a GPU has free", "`oddoctor check --min-vram` tells what a GPU has free"),
    ("a --tf plan", "a --tf plan"),
])
def test_fix_texts_use_the_pytest_option_names(text, expected):
    from oddoctor.pytest_plugin import _pytest_words

    assert _pytest_words(text) == expected


def test_a_marker_naming_no_check_is_a_collection_error(pytester: pytest.Pytester):
    pytester.makepyfile(test_typo="""
import pytest

@pytest.mark.oddoctor_requires("gpu.visibel", "cuda")
def test_typo():
    pass

@pytest.mark.oddoctor_requires("gpu", min_vram="lots")
def test_bad_size():
    pass

def test_fine():
    pass
""")
    result = pytester.runpytest_subprocess("--oddoctor-from", HEALTHY)
    assert result.ret == pytest.ExitCode.INTERRUPTED  # pytest's own exit for a collection error
    result.stdout.fnmatch_lines([
        "*ERROR collecting test_typo.py*",
        "test_typo.py::test_typo: oddoctor_requires('gpu.visibel'): no oddoctor check has this id or id prefix; "
        "did you mean gpu.visible*",
        "test_typo.py::test_bad_size: oddoctor_requires(min_vram='lots'): cannot read size 'lots'*",
    ])
    assert "'cuda'" not in result.stdout.str()  # an id prefix (cuda.*) is a valid name
    assert "passed" not in result.stdout.str()


@pytest.mark.parametrize(("args", "message"), [
    (["--oddoctor-requires-action", "skp"], "--oddoctor-requires-action 'skp': give skip or fail; did you mean skip?"),
    (["--oddoctor-min-vram", "lots"], "--oddoctor-min-vram: cannot read size 'lots'*"),
    (["--oddoctor-cpu", "--oddoctor-gpu"], "--oddoctor-cpu and --oddoctor-gpu contradict each other: give one"),
])
def test_bad_option_values_are_refused_at_start_up(pytester: pytest.Pytester, args, message):
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest_subprocess(*args)  # no --oddoctor: refused even before anything is probed
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{message}"])
    assert "Traceback" not in result.stderr.str()


def test_bad_ini_value_is_refused_at_start_up(pytester: pytest.Pytester):
    pytester.makepyfile("def test_x():\n    pass\n")
    pytester.makeini("[pytest]\noddoctor_requires_action = Fail\n")
    result = pytester.runpytest_subprocess()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--oddoctor-requires-action 'Fail': give skip or fail; did you mean fail?"])


def _junit(path):
    import xml.etree.ElementTree as ET

    suite = ET.parse(path).getroot().find("testsuite")
    assert suite is not None
    suite_props = {p.get("name"): p.get("value") for p in suite.findall("./properties/property")}
    case_props = {c.get("name"): {p.get("name"): p.get("value") for p in c.findall("./properties/property")}
                  for c in suite.findall("testcase")}
    return suite_props, case_props


def test_junit_xml_carries_the_check_results(pytester: pytest.Pytester):
    pytester.makepyfile(TESTS)
    result = pytester.runpytest_subprocess("--oddoctor-from", BUSY, "--junitxml=out.xml")
    result.assert_outcomes(passed=2, skipped=1)
    suite, cases = _junit(pytester.path / "out.xml")
    assert suite["oddoctor.tf.importable"] == "ok"
    assert suite["oddoctor.gpu.other-processes.gpu0"] == "warn"
    assert suite["oddoctor.platform.wsl-driver"] == "skip"
    assert cases["test_needs_8gib"] == {"oddoctor.gpu.min-vram.gpu0": "fail"}
    assert cases["test_needs_gpu"]["oddoctor.gpu.visible"] == "ok"
    assert cases["test_plain"] == {}


# The plugin's only way to the machine is oddoctor.collect.collect_snapshot: this conftest (loaded by the xdist
# controller and by every worker) replaces it with one that logs each call and returns a healthy snapshot.
COUNTING_PROBE = f"""
import os

import oddoctor.collect
from oddoctor.snapshot import load_snapshot


def counted_probe(*args, **kwargs):
    with open(os.environ["ODDOCTOR_TEST_PROBE_LOG"], "a") as log:
        log.write(f"{{os.getpid()}}\\n")
    return load_snapshot({HEALTHY!r})


oddoctor.collect.collect_snapshot = counted_probe
"""

XDIST_TESTS = "".join(f"""
@pytest.mark.oddoctor_requires("gpu.visible")
def test_gpu_{i}(oddoctor_report):
    assert oddoctor_report.results
""" for i in range(6))


@pytest.mark.timeout(240)
@pytest.mark.parametrize("gate", [True, False], ids=["gate", "markers-only"])
def test_xdist_probes_the_machine_once(pytester: pytest.Pytester, monkeypatch, gate):
    pytest.importorskip("xdist")
    log = pytester.path / "probes.log"
    monkeypatch.setenv("ODDOCTOR_TEST_PROBE_LOG", str(log))
    pytester.makeconftest(COUNTING_PROBE)
    pytester.makepyfile("import pytest\n" + XDIST_TESTS)
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider", "--junitxml=out.xml",
                                           *(["--oddoctor"] if gate else []))
    result.assert_outcomes(passed=6)
    probes = log.read_text().split()
    # Without the hand-over: 3 (controller and both workers) with the gate, 2 without.
    assert len(probes) == 1, probes
    # The controller prints the summary and writes the JUnit properties, with or without its own report.
    result.stdout.fnmatch_lines(["*= oddoctor =*", "oddoctor: * ok, 0 warning(s), 0 failed, 0 errored, * skipped"])
    suite, _ = _junit(pytester.path / "out.xml")
    assert suite["oddoctor.gpu.visible"] == "ok"


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
