"""Run checks against a snapshot: one at a time, each with a time budget, failures attributed."""

from __future__ import annotations

import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Optional, Protocol, TypeVar

from oddoctor.checks import Check, Context, Result, Status
from oddoctor.plugins import PluginSet, collect_checks
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

    def exit_code(self, *, strict: bool = False) -> int:
        bad = {Status.FAIL, Status.ERROR} | ({Status.WARN} if strict else set())
        return 1 if any(r.status in bad for r in self.results) else 0


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
               only: Optional[list[str]] = None, skip: Optional[list[str]] = None) -> Report:
    """Every selected check against ``snap``; plugin load/hook failures become ``error`` results."""
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

    with computed_once(snap, ctx.target_tf):
        for chk in sorted(select(checks, only, skip), key=lambda c: area_rank(c.id)):
            results, hung = _run_one(chk, snap, ctx)
            report.results.extend(results)
            report.hung = report.hung or hung
    return report


def _slug(name: str) -> str:
    s = "".join(ch if ch.isalnum() else "-" for ch in name.lower()).strip("-")
    return "-".join(p for p in s.split("-") if p) or "unknown"
