"""Run checks against a snapshot: one at a time, each with a time budget, failures attributed."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Optional, Protocol, TypeVar

from oddoctor.checks import Check, Context, Result, Status
from oddoctor.manager import PluginSet, collect_checks
from oddoctor.snapshot import Snapshot


@dataclass
class Report:
    snapshot: Snapshot
    results: list[Result] = field(default_factory=list)
    #: True when a check was abandoned while still running: the CLI exits with os._exit.
    hung: bool = False
    #: ``check --tf``: the TensorFlow release the machine was judged for, instead of the installed one.
    target_tf: Optional[str] = None

    def counts(self) -> dict[str, int]:
        out = {s.value: 0 for s in Status}
        for r in self.results:
            out[r.status.value] += 1
        return out

    def problems(self, *, strict: bool = False, skipped_too: bool = False) -> list[Result]:
        """Results that stand in the way: fail and error; with ``strict`` warn too; with ``skipped_too`` skip too
        (a test that needs the GPU cannot run where the GPU checks skip)."""
        bad = {Status.FAIL, Status.ERROR} | ({Status.WARN} if strict else set())
        if skipped_too:
            bad.add(Status.SKIP)
        return [r for r in self.results if r.status in bad]

    def exit_code(self, *, strict: bool = False) -> int:
        """0: nothing stands in the way; 1: something does (:meth:`problems`)."""
        return 1 if self.problems(strict=strict) else 0


def _error(check_id: str, title: str, plugin: str, message: str, **details: Any) -> Result:
    return Result(Status.ERROR, message, None, details, id=check_id, title=title, plugin=plugin)


def _missing(chk: Check, snap: Snapshot) -> Optional[Result]:
    """A skip naming the first required fact that is unknown, and why; None when all are known."""
    from oddoctor.checks import unknown
    from oddoctor.view import view

    v = view(snap)
    for fact in chk.requires:
        why = v.unknown(fact)
        if why is not None:
            r = unknown(fact.replace("|", " or "), why)
            r.id, r.title, r.plugin = chk.id, chk.title, chk.plugin
            return r
    return None


def _run_one(chk: Check, snap: Snapshot, ctx: Context) -> tuple[list[Result], bool]:
    box: dict[str, Any] = {}
    try:
        missing = _missing(chk, snap)
    except Exception as e:  # noqa: BLE001 - a bad requires name is the check's bug: an error result
        return [_error(chk.id, chk.title, chk.plugin, f"check {chk.id} (plugin {chk.plugin}) declares "
                       f"requires it cannot have: {type(e).__name__}: {e}")], False
    if missing is not None:
        return [missing], False

    def target() -> None:
        try:
            box["value"] = chk(snap, ctx)
        except BaseException as e:  # noqa: BLE001 - a check that raises is broken, reported as error
            import traceback  # only here: it costs more to import than most checks take to run

            box["exc"] = e
            box["tb"] = traceback.format_exc(limit=-3)

    t0 = time.monotonic()
    th = threading.Thread(target=target, name=f"oddoctor-check-{chk.id}", daemon=True)
    th.start()
    th.join(chk.timeout_s)
    elapsed = time.monotonic() - t0
    where = f"check {chk.id} (plugin {chk.plugin})"
    if th.is_alive():
        return [_error(chk.id, chk.title, chk.plugin,
                       f"{where} did not finish within its {chk.timeout_s:g} s budget")], True
    if "exc" in box:
        exc = box["exc"]
        return [_error(chk.id, chk.title, chk.plugin, f"{where} raised {type(exc).__name__}: {exc}",
                       traceback=box["tb"])], False
    value = box.get("value")
    items = value if isinstance(value, list) else [value]
    results: list[Result] = []
    for item in items:
        if not isinstance(item, Result):
            results.append(_error(chk.id, chk.title, chk.plugin,
                                  f"{where} returned {type(item).__name__}, not a Result"))
            continue
        if item.id and item.id != chk.id and not item.id.startswith(chk.id + "."):
            item.id = f"{chk.id}.{item.id}"
        item.id = item.id or chk.id
        item.title = item.title or chk.title
        item.plugin = chk.plugin
        item.duration_s = elapsed / max(len(items), 1)
        results.append(item)
    return results, False


#: Report order: the foundations first, so that a reader meets the cause before its consequences.
AREA_ORDER = ("platform", "python", "packages", "driver", "tf", "cuda", "cudnn", "gpu", "memory")


def area_rank(check_id: str) -> int:
    area = check_id.split(".", 1)[0]
    return AREA_ORDER.index(area) if area in AREA_ORDER else len(AREA_ORDER)


class _HasId(Protocol):
    id: str


S = TypeVar("S", bound=_HasId)


def select(checks: list[S], only: Optional[list[str]] = None, skip: Optional[list[str]] = None) -> list[S]:
    """Filter by id; an entry matches an id exactly or as a prefix (``gpu`` selects ``gpu.*``)."""
    def hit(cid: str, pats: list[str]) -> bool:
        return any(cid == p or cid.startswith(p.rstrip(".") + ".") for p in pats)

    out = [c for c in checks if not only or hit(c.id, only)]
    return [c for c in out if not skip or not hit(c.id, skip)]


def run_checks(ps: PluginSet, snap: Snapshot, ctx: Optional[Context] = None, *,
               only: Optional[list[str]] = None, skip: Optional[list[str]] = None,
               isolate: bool = False) -> Report:
    """Every selected check against ``snap``; plugin load/hook failures become ``error`` results.

    ``isolate`` (the CLI sets it on Linux): the checks run in forked children, so that one that kills or
    freezes the process is reported by the parent and the others still run.
    """
    ctx = ctx or Context()
    checks = collect_checks(ps)
    report = Report(snapshot=snap, target_tf=ctx.target_tf)
    for err in ps.errors:
        cid = f"plugin.{_slug(err.plugin)}"
        if select([Check(id=cid, title="", func=lambda s: None)], only, skip):
            report.results.append(_error(cid, f"Plugin {err.plugin}", err.plugin,
                                         f"plugin {err.plugin} failed in {err.stage}: {err.message}"))
    # Foundations first; within an area, registration order (each built-in plugin lists its basic check first).
    from oddoctor.view import computed_once

    ordered = sorted(select(checks, only, skip), key=lambda c: area_rank(c.id))
    with computed_once(snap, ctx.target_tf):
        if isolate and _can_fork():
            report.results.extend(_run_in_children(ordered, snap, ctx))
        else:
            for chk in ordered:
                results, hung = _run_one(chk, snap, ctx)
                report.results.extend(results)
                report.hung = report.hung or hung
    return report


def _can_fork() -> bool:
    import sys

    return sys.platform.startswith("linux") and hasattr(os, "fork")


#: Seconds past a check's own budget before its child process is killed (it may be stuck in C code).
KILL_GRACE_S = 2.0


def _run_in_children(checks: list[Check], snap: Snapshot, ctx: Context) -> list[Result]:
    """Run the checks in forked children that stream their results back: a check that ends the process
    (``os._exit``, a segfault in a C extension) or is stuck in C code holding the GIL is reported as an
    ``error`` naming it, by the parent that is left standing, and the checks after it still run."""
    import json
    import signal

    out: list[Result] = []
    i = 0
    while i < len(checks):
        r_fd, w_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: run checks from i on, one JSON line per event
            os.close(r_fd)
            try:
                with os.fdopen(w_fd, "w", encoding="utf-8") as pipe:
                    for j in range(i, len(checks)):
                        pipe.write(json.dumps({"start": j}) + "\n")
                        pipe.flush()
                        results, _hung = _run_one(checks[j], snap, ctx)
                        pipe.write(json.dumps({"done": j, "results": [r.to_dict() for r in results]},
                                              default=str) + "\n")
                        pipe.flush()
            finally:
                os._exit(0)  # never run the parent's clean-up or atexit handlers twice
        os.close(w_fd)
        try:
            finished_all, current, killed = _follow_child(pid, r_fd, checks, out)
        except BaseException:  # Ctrl-C or SIGTERM here: the child goes with us
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise
        _pid, status = os.waitpid(pid, 0)
        if finished_all:
            break
        if current is None:  # the child died between two checks: nothing to blame, stop here
            break
        chk = checks[current]
        how = ("did not finish within its " f"{chk.timeout_s:g} s budget and was killed" if killed else
               f"ended the process ({_status_text(status)})")
        out.append(_error(chk.id, chk.title, chk.plugin, f"check {chk.id} (plugin {chk.plugin}) {how}"))
        i = current + 1
    return out


def _follow_child(pid: int, r_fd: int, checks: list[Check], out: list[Result]) -> tuple[bool, Optional[int], bool]:
    """Read a child's events into ``out``: (whether it finished every check, the check it was in, killed)."""
    import json
    import select as _select
    import signal

    current: Optional[int] = None
    started = time.monotonic()
    buf = b""
    finished_all = killed = False
    with os.fdopen(r_fd, "rb") as pipe:
        while True:
            budget = (checks[current].timeout_s + KILL_GRACE_S) if current is not None else 30.0
            left = started + budget - time.monotonic()
            ready, _, _ = _select.select([pipe], [], [], max(left, 0))
            if not ready:  # stuck past its budget, maybe in C code that holds the GIL
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                killed = True
                break
            chunk = os.read(pipe.fileno(), 65536)
            if not chunk:
                break
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                event = json.loads(line)
                if "start" in event:
                    current, started = int(event["start"]), time.monotonic()
                else:
                    out.extend(_result_from_dict(d) for d in event["results"])
                    if int(event["done"]) == len(checks) - 1:
                        finished_all = True
                    current = None
                    started = time.monotonic()
    return finished_all, current, killed


def _status_text(status: int) -> str:
    import signal

    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            return f"killed by {signal.Signals(sig).name}"
        except ValueError:
            return f"killed by signal {sig}"
    return f"exit status {os.WEXITSTATUS(status)}"


def _result_from_dict(d: dict[str, Any]) -> Result:
    return Result(Status(d["status"]), d["message"], d.get("fix"), d.get("details") or {}, id=d["id"],
                  title=d.get("title", ""), plugin=d.get("plugin", ""), duration_s=float(d.get("duration_s", 0.0)))


def _slug(name: str) -> str:
    s = "".join(ch if ch.isalnum() else "-" for ch in name.lower()).strip("-")
    return "-".join(p for p in s.split("-") if p) or "unknown"
