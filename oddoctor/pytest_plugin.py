"""pytest plugin: gate a test session, or single tests, on `oddoctor check`.

    pytest --oddoctor                          # run oddoctor check first; stop the session if it fails
    pytest --oddoctor-from snap.json           # same, on a snapshot taken elsewhere

    @pytest.mark.oddoctor_requires("gpu.visible", "cuda", min_vram="8GiB")
    def test_train_on_gpu(): ...               # skipped (or failed) unless those checks pass here

    def test_inference_does_not_leak(oddoctor_leak):
        result = oddoctor_leak(lambda: detect(image), graph=detection_graph, iterations=30)
        result.assert_no_leak()                # same Theil-Sen verdicts as `oddoctor leak-test`

Inert unless one of its options or markers is used; top-level imports are stdlib and pytest only, so
loading it never imports TensorFlow.
"""

from __future__ import annotations

from typing import Any, NoReturn, Optional

import pytest

_OPTIONS = [
    # (option, ini name, help, is_flag)
    ("--oddoctor", "oddoctor", "run `oddoctor check` at session start and stop the session when it fails", True),
    ("--oddoctor-from", "oddoctor_from", "diagnose this snapshot file instead of the machine", False),
    ("--oddoctor-min-vram", "oddoctor_min_vram", "free GPU memory the tests need, e.g. 8GiB", False),
    ("--oddoctor-skip", "oddoctor_skip", "comma-separated check ids or prefixes to leave out", False),
    ("--oddoctor-cpu", "oddoctor_cpu", "the tests run on the CPU: GPU checks skip instead of failing", True),
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


class _State:
    """The session's diagnosis, computed once, on first use."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self._snapshot: Any = None
        self._reports: dict[Optional[int], Any] = {}

    def snapshot(self) -> Any:
        if self._snapshot is None:
            source = _get(self.config, "oddoctor_from")
            if source:
                from oddoctor.snapshot import SnapshotError, load_snapshot

                try:
                    self._snapshot = load_snapshot(source)
                except SnapshotError as e:
                    raise pytest.UsageError(f"--oddoctor-from: {e}") from None
            else:
                from oddoctor.collect import collect_snapshot
                from oddoctor.manager import make_plugin_manager

                self._snapshot = collect_snapshot(make_plugin_manager())
        return self._snapshot

    def report(self, min_vram: Optional[int] = None) -> Any:
        from oddoctor.checks import Context
        from oddoctor.manager import make_plugin_manager
        from oddoctor.runner import run_checks

        key = min_vram if min_vram is not None else self.default_min_vram()
        if key not in self._reports:
            skip = [s.strip() for s in str(_get(self.config, "oddoctor_skip") or "").split(",") if s.strip()]
            ctx = Context(min_vram_bytes=key, cpu_only=bool(_get(self.config, "oddoctor_cpu")))
            self._reports[key] = run_checks(make_plugin_manager(), self.snapshot(), ctx, skip=skip or None)
        return self._reports[key]

    def default_min_vram(self) -> Optional[int]:
        text = _get(self.config, "oddoctor_min_vram")
        return _size(text) if text else None


def _size(text: str) -> int:
    from oddoctor.units import parse_size

    try:
        return parse_size(text)
    except ValueError as e:
        raise pytest.UsageError(f"oddoctor: {e}") from None


_STATE_KEY = pytest.StashKey[_State]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "oddoctor_requires(*check_ids, min_vram=None): skip the test unless these oddoctor checks "
        "(ids or id prefixes) pass on this machine",
    )
    config.stash[_STATE_KEY] = _State(config)


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


def _describe(results: list[Any]) -> str:
    return "; ".join(f"{r.id}: {r.message}" + (f" (fix: {r.fix})" if r.fix else "") for r in results)


def pytest_sessionstart(session: pytest.Session) -> None:
    config = session.config
    if not (_get(config, "oddoctor") or _get(config, "oddoctor_from")):
        return
    report = config.stash[_STATE_KEY].report()
    problems = _problems(report, strict=bool(_get(config, "oddoctor_strict")))
    if problems:
        pytest.exit(f"oddoctor check failed: {_describe(problems)}", returncode=1)


def pytest_runtest_setup(item: pytest.Item) -> None:
    marker = item.get_closest_marker("oddoctor_requires")
    if marker is None:
        return
    config = item.config
    min_vram = marker.kwargs.get("min_vram")
    report = config.stash[_STATE_KEY].report(_size(min_vram) if min_vram else None)
    problems = _problems(report, tuple(marker.args), strict=bool(_get(config, "oddoctor_strict")),
                         require_ok=True)
    if not problems:
        return
    message = f"oddoctor: {_describe(problems)}"
    if (_get(config, "oddoctor_requires_action") or "skip") == "fail":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def pytest_report_header(config: pytest.Config) -> Optional[str]:
    if not (_get(config, "oddoctor") or _get(config, "oddoctor_from")):
        return None
    report = config.stash[_STATE_KEY].report()
    c = report.counts()
    return (f"oddoctor: {c['ok']} ok, {c['warn']} warning(s), {c['fail']} failed, {c['error']} errored, "
            f"{c['skip']} skipped")


@pytest.fixture(scope="session")
def oddoctor_report(request: pytest.FixtureRequest) -> Any:
    """The session's `oddoctor check` report (an ``oddoctor.runner.Report``)."""
    return request.config.stash[_STATE_KEY].report()


def _fail_test(message: str) -> NoReturn:
    pytest.fail(message, pytrace=False)


@pytest.fixture
def oddoctor_leak() -> Any:
    """``oddoctor_leak(fn, iterations=30, warmup=10, graph=None) -> LeakResult``: measure a callable.

    The measurement is :func:`oddoctor.leak.inprocess.measure_leak`; ``assert_no_leak()`` fails the test.
    """
    from oddoctor.leak.inprocess import LeakResult, measure_leak

    def measure(fn: Any, *, iterations: int = 30, warmup: int = 10, graph: Any = None) -> LeakResult:
        return measure_leak(fn, iterations=iterations, warmup=warmup, graph=graph, fail=_fail_test)

    return measure
