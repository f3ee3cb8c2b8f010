"""pytest plugin: gate a test session, or single tests, on `oddoctor check`.

    pytest --oddoctor                          # run oddoctor check first; stop the session if it fails
    pytest --oddoctor-from snap.json           # same, on a snapshot taken elsewhere

    @pytest.mark.oddoctor_requires("gpu.visible", "cuda", min_vram="8GiB")
    def test_train_on_gpu(): ...               # skipped (or failed) unless those checks pass here

    def test_inference_does_not_leak(oddoctor_leak):
        result = oddoctor_leak(lambda: detect(image), graph=detection_graph, iterations=30)
        result.assert_no_leak()                # same Theil-Sen verdicts as `oddoctor leak-test`

Inert unless one of its options or markers is used; top-level imports are stdlib and pytest only, so
loading it never imports TensorFlow. Under pytest-xdist the machine is probed once per session: by the
controller when the gate is on (the workers get the snapshot in ``workerinput``), else by the first worker
that needs it, the others reading its snapshot.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, NoReturn, Optional

import pytest

_OPTIONS = [
    # (option, ini name, help, is_flag)
    ("--oddoctor", "oddoctor", "run `oddoctor check` at session start and stop the session when it fails", True),
    ("--oddoctor-from", "oddoctor_from", "diagnose this snapshot file instead of the machine", False),
    ("--oddoctor-min-vram", "oddoctor_min_vram", "free GPU memory the tests need, e.g. 8GiB", False),
    ("--oddoctor-skip", "oddoctor_skip", "comma-separated check ids or prefixes to leave out", False),
    ("--oddoctor-cpu", "oddoctor_cpu", "the tests run on the CPU: GPU checks skip instead of failing", True),
    ("--oddoctor-gpu", "oddoctor_gpu", "a GPU is expected here: a machine without one fails instead of being a "
     "CPU machine", True),
    ("--oddoctor-strict", "oddoctor_strict", "warnings fail too", True),
    ("--oddoctor-requires-action", "oddoctor_requires_action",
     "what oddoctor_requires does when a check does not pass: skip (default) or fail", False),
]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("oddoctor", "oddoctor: gate tests on the TensorFlow/GPU environment")
    for opt, ini, help_text, flag in _OPTIONS:
        if flag:
            group.addoption(opt, action="store_true", default=None, dest=ini, help=help_text)
            parser.addini(ini, help_text, type="bool", default=False)
        else:
            group.addoption(opt, default=None, dest=ini, help=help_text)
            parser.addini(ini, help_text, default="")


def _get(config: pytest.Config, name: str) -> Any:
    value = config.getoption(name)
    return value if value is not None else config.getini(name)


def _gate_on(config: pytest.Config) -> bool:
    return bool(_get(config, "oddoctor") or _get(config, "oddoctor_from"))


# workerinput / workeroutput keys (xdist): the snapshot itself, or a folder where the first worker leaves it;
# the session report's results sent back for the controller's summary and JUnit properties.
_SNAPSHOT_KEY, _SHARED_KEY, _RESULTS_KEY = "oddoctor_snapshot", "oddoctor_shared_dir", "oddoctor_results"


class _State:
    """The session's diagnosis, computed once, on first use."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self._snapshot: Any = None
        self._reports: dict[Optional[int], Any] = {}
        self._check_ids: Optional[list[str]] = None
        #: xdist controller: the folder its workers share the snapshot through (removed at the end).
        self.shared_dir: Optional[str] = None
        #: xdist controller: the session report's results as a worker sent them (``Result.to_dict()``).
        self.worker_results: Optional[list[dict[str, Any]]] = None

    def snapshot(self) -> Any:
        if self._snapshot is None:
            self._snapshot = self._load()
        return self._snapshot

    def _load(self) -> Any:
        from oddoctor.snapshot import Snapshot, SnapshotError, load_snapshot

        given = getattr(self.config, "workerinput", {})
        if _SNAPSHOT_KEY in given:  # the xdist controller probed (or read) it already
            return Snapshot.from_dict(json.loads(given[_SNAPSHOT_KEY]))
        source = _get(self.config, "oddoctor_from")
        if source:
            try:
                return load_snapshot(source)
            except SnapshotError as e:
                raise pytest.UsageError(f"--oddoctor-from: {e}") from None
        if given.get(_SHARED_KEY):
            return _probe_shared(Path(given[_SHARED_KEY]))
        return _probe()

    def report(self, min_vram: Optional[int] = None) -> Any:
        from oddoctor.checks import Context
        from oddoctor.manager import make_plugin_manager
        from oddoctor.runner import run_checks

        key = min_vram if min_vram is not None else self.default_min_vram()
        if key not in self._reports:
            skip = [s.strip() for s in str(_get(self.config, "oddoctor_skip") or "").split(",") if s.strip()]
            ctx = Context(min_vram_bytes=key, cpu_only=bool(_get(self.config, "oddoctor_cpu")),
                          expect_gpu=bool(_get(self.config, "oddoctor_gpu")))
            self._reports[key] = run_checks(make_plugin_manager(), self.snapshot(), ctx, skip=skip or None)
        return self._reports[key]

    def default_min_vram(self) -> Optional[int]:
        text = _get(self.config, "oddoctor_min_vram")
        return _size(text) if text else None

    def session_results(self) -> Optional[list[dict[str, Any]]]:
        """The session report's results, if this session diagnosed anything (here or on an xdist worker)."""
        if self._snapshot is not None:
            return [r.to_dict() for r in self.report().results]
        return self.worker_results

    def check_ids(self) -> list[str]:
        """Ids of every registered check (for telling a misspelt marker id at collection)."""
        if self._check_ids is None:
            from oddoctor.manager import collect_checks, make_plugin_manager

            self._check_ids = [c.id for c in collect_checks(make_plugin_manager())]
        return self._check_ids

    def for_worker(self) -> dict[str, str]:
        """What an xdist worker needs so that the machine is probed once: the snapshot, or where to share it."""
        if self._snapshot is not None:
            return {_SNAPSHOT_KEY: self._snapshot.to_json()}
        if self.shared_dir is None:  # named here, made by the first worker that probes: inert runs leave nothing
            name = f"oddoctor-pytest-{os.getpid()}-{os.urandom(6).hex()}"
            self.shared_dir = os.path.join(tempfile.gettempdir(), name)
        return {_SHARED_KEY: self.shared_dir}


def _probe() -> Any:
    from oddoctor.collect import collect_snapshot
    from oddoctor.manager import make_plugin_manager

    return collect_snapshot(make_plugin_manager())


def _probe_shared(folder: Path) -> Any:
    """An xdist worker's probe: the first worker to get the lock probes and leaves the snapshot for the others."""
    from oddoctor.snapshot import load_snapshot

    try:
        import fcntl
    except ImportError:  # Windows has no flock: each worker probes for itself
        return _probe()
    folder.mkdir(mode=0o700, exist_ok=True)
    path = folder / "snapshot.json"
    with open(folder / "lock", "a") as lock:  # flock is released if this worker dies, so no stale lock
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if path.exists():
                return load_snapshot(path)
            snap = _probe()
            snap.write(path)  # atomic: a reader never sees half a snapshot
            return snap
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _size(text: str, where: str = "oddoctor") -> int:
    from oddoctor.units import parse_size

    try:
        return parse_size(text)
    except ValueError as e:
        raise pytest.UsageError(f"{where}: {e}") from None


def _did_you_mean(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=3, cutoff=0.6)
    return f"; did you mean {' or '.join(close)}?" if close else ""


_STATE_KEY = pytest.StashKey[_State]()
#: Set on an item that oddoctor_requires skipped, so that its report points at the test, not at this file.
_SKIPPED_HERE = pytest.StashKey[bool]()
_ACTIONS = ["skip", "fail"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "oddoctor_requires(*check_ids, min_vram=None): skip the test unless these oddoctor checks "
        "(ids or id prefixes) pass on this machine",
    )
    _validate_options(config)
    config.stash[_STATE_KEY] = _State(config)


def _validate_options(config: pytest.Config) -> None:
    """Option values are refused at start-up (pytest's usage error, exit 4), not when the first test needs them."""
    action = str(_get(config, "oddoctor_requires_action") or "").strip()
    if action and action not in _ACTIONS:
        raise pytest.UsageError(f"--oddoctor-requires-action {action!r}: give skip or fail"
                                + _did_you_mean(action.lower(), _ACTIONS))
    min_vram = _get(config, "oddoctor_min_vram")
    if min_vram:
        _size(min_vram, "--oddoctor-min-vram")
    if _get(config, "oddoctor_cpu") and _get(config, "oddoctor_gpu"):
        raise pytest.UsageError("--oddoctor-cpu and --oddoctor-gpu contradict each other: give one")


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(_STATE_KEY, None)
    if state is not None and state.shared_dir is not None:
        shutil.rmtree(state.shared_dir, ignore_errors=True)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist controller: each worker gets the snapshot (or where the first worker leaves it): one probe."""
    node.workerinput.update(node.config.stash[_STATE_KEY].for_worker())


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """xdist controller: keep the results a worker diagnosed, for the summary and the JUnit properties."""
    state = node.config.stash[_STATE_KEY]
    sent = getattr(node, "workeroutput", {}).get(_RESULTS_KEY)
    if sent and state.worker_results is None:
        state.worker_results = json.loads(sent)


def _problems(report: Any, ids: tuple[str, ...] = (), strict: bool = False, *,
              require_ok: bool = False) -> list[Any]:
    """Results that stand in the way: fail/error (and warn with strict); with ``require_ok`` a skipped
    check does not pass either (a test that needs the GPU cannot run where the GPU checks skip)."""
    from oddoctor.checks import Result, Status
    from oddoctor.runner import select

    # select() filters by id or id prefix; results share the checks' id scheme.
    problems = report.problems(strict=strict, skipped_too=require_ok)
    chosen = select(problems, list(ids)) if ids else problems
    missing = [i for i in ids if not select(report.results, [i])]
    return chosen + [Result(Status.ERROR, "no such check was run", id=i) for i in missing]


#: The command line's options named in check messages and fixes, and their twins here.
_CLI_TO_PYTEST = {"--cpu": "--oddoctor-cpu", "--gpu": "--oddoctor-gpu", "--min-vram": "--oddoctor-min-vram",
                  "--skip": "--oddoctor-skip", "--strict": "--oddoctor-strict", "--from": "--oddoctor-from"}
# A quoted `oddoctor ...` command keeps its own option names; any other option is matched whole (--gpus is
# docker's, not --gpu).
_OPTION_WORD = re.compile(r"`oddoctor [^`]*`|(?<![\w-])(--[a-z][a-z-]*)(?![\w-])")


def _pytest_words(text: str) -> str:
    """A check's message or fix with the command line's option names given as this plugin's (--oddoctor-cpu)."""
    return _OPTION_WORD.sub(lambda m: _CLI_TO_PYTEST.get(m.group(1), m.group(0)) if m.group(1) else m.group(0),
                            text)


def _describe(results: list[Any]) -> str:
    return "; ".join(f"{r.id}: {_pytest_words(r.message)}" + (f" (fix: {_pytest_words(r.fix)})" if r.fix else "")
                     for r in results)


def _tally(results: list[dict[str, Any]]) -> str:
    c = {s: sum(r["status"] == s for r in results) for s in ("ok", "warn", "fail", "error", "skip")}
    return (f"oddoctor: {c['ok']} ok, {c['warn']} warning(s), {c['fail']} failed, {c['error']} errored, "
            f"{c['skip']} skipped")


def _section(results: list[dict[str, Any]]) -> list[str]:
    """The "oddoctor" summary: each failed, errored or warning check with its fix, then the tally."""
    lines = []
    for r in results:
        if r["status"] in ("fail", "error", "warn"):
            lines.append(f"{r['status'].upper():5} {r['id']}: {_pytest_words(r['message'])}")
            if r.get("fix"):
                lines.append(f"      fix: {_pytest_words(r['fix'])}")
    return [*lines, _tally(results)]


def _write_section(config: pytest.Config, lines: list[str], last: Optional[str] = None) -> None:
    tr = config.pluginmanager.get_plugin("terminalreporter")
    if tr is None:  # -p no:terminal: a failing gate still says why
        if last is not None:
            sys.stderr.write("\n".join([*lines, last]) + "\n")
        return
    tr.write_sep("=", "oddoctor", red=last is not None)
    for line in lines:
        tr.write_line(line)
    if last is not None:
        tr.write_line(last, red=True, bold=True)


def pytest_sessionstart(session: pytest.Session) -> None:
    config = session.config
    if hasattr(config, "workerinput") or not _gate_on(config):  # an xdist worker: the controller gated already
        return
    report = config.stash[_STATE_KEY].report()
    problems = _problems(report, strict=bool(_get(config, "oddoctor_strict")))
    if problems:
        # Said once, in the oddoctor section (pytest.exit would print its message on stdout and stderr), and
        # before any worker starts or any test module is imported (one may import the TensorFlow that crashes).
        message = (f"oddoctor check failed: {len(problems)} check(s) stand in the way (listed above); "
                   "no test was run")
        _write_section(config, _section([r.to_dict() for r in report.results]), message)
        raise session.Failed(message)


def pytest_runtest_setup(item: pytest.Item) -> None:
    marker = item.get_closest_marker("oddoctor_requires")
    if marker is None:
        return
    from oddoctor.runner import select

    config = item.config
    min_vram = marker.kwargs.get("min_vram")
    report = config.stash[_STATE_KEY].report(_size(str(min_vram)) if min_vram else None)
    problems = _problems(report, tuple(marker.args), strict=bool(_get(config, "oddoctor_strict")),
                         require_ok=True)
    for r in select(report.results, list(marker.args)):  # JUnit XML: each required check's status
        item.user_properties.append((f"oddoctor.{r.id}", r.status.value))
    if not problems:
        return
    message = f"oddoctor: {_describe(problems)}"
    if str(_get(config, "oddoctor_requires_action") or "skip").strip() == "fail":
        pytest.fail(message, pytrace=False)
    item.stash[_SKIPPED_HERE] = True
    pytest.skip(message)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    outcome = yield
    rep = outcome.get_result()
    # pytest reports a skip at the line that raised it; a marker's skip belongs to the test (as skipif's does).
    if call.when == "setup" and rep.skipped and item.stash.get(_SKIPPED_HERE, False) \
            and isinstance(rep.longrepr, tuple):
        path, line = item.reportinfo()[:2]
        rep.longrepr = (os.fspath(path), (line or 0) + 1, rep.longrepr[2])


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Any:
    """An ``oddoctor_requires`` that names no check (or a size that is not one) is a collection error."""
    outcome = yield
    rep = outcome.get_result()
    if not rep.passed:
        return
    errors = [e for node in rep.result if isinstance(node, pytest.Item) for e in _marker_errors(node)]
    if errors:
        rep.outcome, rep.longrepr, rep.result = "failed", "\n".join(errors), []


def _marker_errors(item: pytest.Item) -> list[str]:
    errors: list[str] = []
    for marker in item.iter_markers("oddoctor_requires"):
        where = f"{item.nodeid}: oddoctor_requires"
        ids = item.config.stash[_STATE_KEY].check_ids() if marker.args else []
        areas = sorted({i.split(".")[0] for i in ids})
        for cid in marker.args:
            if not isinstance(cid, str) or not any(c == cid or c.startswith(cid.rstrip(".") + ".")
                                                   or cid.startswith(c + ".") for c in ids):
                errors.append(f"{where}({cid!r}): no oddoctor check has this id or id prefix"
                              + _did_you_mean(str(cid), areas + ids))
        for key, value in marker.kwargs.items():
            if key != "min_vram":
                errors.append(f"{where}({key}=...): unknown argument; it takes check ids and min_vram=")
            else:
                try:
                    _size(str(value))
                except pytest.UsageError as e:
                    errors.append(f"{where}(min_vram={value!r}): {str(e).split(': ', 1)[-1]}")
    return errors


def pytest_report_header(config: pytest.Config) -> Optional[str]:
    if not _gate_on(config):
        return None
    return _tally([r.to_dict() for r in config.stash[_STATE_KEY].report().results])


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """The "oddoctor" section (under -q too): what failed or warned, with its fix, whenever tests were gated."""
    results = config.stash[_STATE_KEY].session_results()
    if results is not None and not hasattr(config, "workerinput"):
        _write_section(config, _section(results))


@pytest.hookimpl(tryfirst=True)  # before junitxml's sessionfinish writes the file
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    results = config.stash[_STATE_KEY].session_results()
    if results is None:
        return
    if hasattr(config, "workeroutput"):  # an xdist worker: the controller summarises
        config.workeroutput[_RESULTS_KEY] = json.dumps(results, default=str)
        return
    # JUnit XML: one suite property per check (oddoctor.<id> = ok/warn/fail/error/skip), for CI dashboards.
    # junitxml's LogXML has no public handle outside a fixture: find it by the method it offers.
    for plugin in config.pluginmanager.get_plugins():
        add = getattr(plugin, "add_global_property", None)
        if callable(add):
            for r in results:
                add(f"oddoctor.{r['id']}", r["status"])


@pytest.fixture(scope="session")
def oddoctor_report(request: pytest.FixtureRequest) -> Any:
    """The session's `oddoctor check` report (an ``oddoctor.runner.Report``)."""
    return request.config.stash[_STATE_KEY].report()


def _fail_test(message: str) -> NoReturn:
    pytest.fail(message, pytrace=False)


@pytest.fixture
def oddoctor_leak() -> Any:
    """``oddoctor_leak(fn, iterations=30, warmup=10, graph=None, until_decided=True, malloc_trim=False)
    -> LeakResult``.

    The measurement is :func:`oddoctor.leak.inprocess.measure_leak` (the verdicts of ``oddoctor leak-test``);
    ``assert_no_leak()`` fails the test.
    """
    from oddoctor.leak.inprocess import LeakResult, measure_leak

    def measure(fn: Any, *, iterations: int = 30, warmup: int = 10, graph: Any = None,
                until_decided: bool = True, malloc_trim: bool = False) -> LeakResult:
        return measure_leak(fn, iterations=iterations, warmup=warmup, graph=graph, fail=_fail_test,
                            until_decided=until_decided, malloc_trim=malloc_trim)

    return measure
