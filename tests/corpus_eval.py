"""Diagnose the corpus (tests/snapshots/corpus/*.json) and score it: shared by the tests and the accuracy table.

A broken case is right when its root-cause check has the expected status and its fix contains every
expected string; a healthy case is clean when nothing fails, warns or errors. "Extra" results are the
other fail/warn results of a case: noise a user has to read past.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

CORPUS = Path(__file__).parent / "snapshots" / "corpus"


@dataclass
class Case:
    name: str
    kind: str  # "broken", "healthy" or "undiagnosable" (the report does not state enough: say so, invent nothing)
    root_cause: Optional[str]
    want: Optional[str]  # expected status of the root cause
    got: Optional[str]  # its status
    fix: Optional[str]
    missing_in_fix: list[str] = field(default_factory=list)
    extras: list[str] = field(default_factory=list)  # "id:status" of other fail/warn/error results
    message: str = ""

    @property
    def right(self) -> bool:
        if self.kind in ("healthy", "undiagnosable"):
            return not self.extras and not self.missing_in_fix
        return self.got == self.want and not self.missing_in_fix


def corpus_files() -> list[Path]:
    return sorted(CORPUS.glob("*.json"))


def raw(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


_PS = None


def _plugins():
    global _PS
    if _PS is None:
        from oddoctor.manager import make_plugin_manager

        _PS = make_plugin_manager()
    return _PS


def diagnose(snap) -> list[Any]:
    return diagnose_with(snap, None)


def diagnose_with(snap, ctx) -> list[Any]:
    from oddoctor.runner import run_checks

    return run_checks(_plugins(), snap, ctx).results


def evaluate(path: Path, *, without_log: bool = False, log: Optional[list[str]] = None) -> Case:
    """Diagnose one fixture (optionally with its user_log removed, or replaced by ``log``)."""
    from oddoctor.snapshot import Snapshot

    data = raw(path)
    snap = Snapshot.from_dict(data)
    if without_log:
        snap.user_log = []
    if log is not None:
        snap.user_log = list(log)
    return score(path.stem, data["_expect"], diagnose(snap))


def score(name: str, exp: dict[str, Any], results: list[Any]) -> Case:
    by_id = {r.id: r for r in results}
    kind = exp.get("kind", "broken")
    root = exp.get("root_cause")
    bad = [r for r in results if r.status.value in ("fail", "warn", "error")]
    also = exp.get("also", {})
    extras = [f"{r.id}:{r.status.value}" for r in bad if r.id != root and also.get(r.id) != r.status.value]
    if kind == "healthy":
        return Case(name, kind, None, None, None, None, extras=extras)
    if kind == "undiagnosable":
        # A doctor that names the wrong cause is worse than none: the checks that would own the cause must say
        # "could not tell", and nothing may fail but what the stated facts show.
        may = set(exp.get("may_fail", []))
        extras = [e for e in extras if e.split(":")[0] not in may]
        silent = [c for c in exp.get("could_not_tell", [])
                  if not (by_id.get(c) and by_id[c].status.value == "skip" and by_id[c].message.startswith(
                      "could not tell"))]
        return Case(name, kind, None, None, None, None, missing_in_fix=silent, extras=extras)
    r = by_id.get(root)
    fix = r.fix if r is not None else None
    missing = [s for s in exp.get("fix_contains", []) if s.lower() not in (fix or "").lower()]
    return Case(name, kind, root, exp.get("status", "fail"), r.status.value if r is not None else None, fix,
                missing_in_fix=missing, extras=extras, message=r.message if r is not None else "")


def table(cases: list[Case]) -> str:
    """The accuracy table as Markdown."""
    broken = [c for c in cases if c.kind == "broken"]
    healthy = [c for c in cases if c.kind == "healthy"]
    unknown = [c for c in cases if c.kind == "undiagnosable"]
    right = sum(c.right for c in broken)
    clean = sum(c.right for c in healthy)
    extra = sum(len(c.extras) for c in cases)
    lines = [
        f"- Broken machines diagnosed right (root cause with its fix): **{right}/{len(broken)}**",
        f"- Healthy machines clean (no fail, warn or error): **{clean}/{len(healthy)}**",
        f"- Reports that do not state enough to diagnose, answered \"could not tell\" with no invented cause: "
        f"**{sum(c.right for c in unknown)}/{len(unknown)}**",
        f"- Other fail/warn results: **{extra}** over {len(cases)} cases "
        f"({extra / max(len(cases), 1):.2f} per case)",
        "",
        "| case | expected | got | fix | other fail/warn |",
        "|---|---|---|---|---|",
    ]
    for c in cases:
        if c.kind == "healthy":
            exp_txt, got_txt, fix_txt = "healthy", "clean" if c.right else "not clean", ""
        elif c.kind == "undiagnosable":
            exp_txt, got_txt = "could not tell", "could not tell" if c.right else "guessed"
            fix_txt = ""
        else:
            exp_txt = f"`{c.root_cause}` {c.want}"
            got_txt = c.got or "absent"
            fix_txt = "ok" if not c.missing_in_fix else "lacks " + ", ".join(f"`{m}`" for m in c.missing_in_fix)
        mark = "✓" if c.right else "✗"
        lines.append(f"| {mark} {c.name} | {exp_txt} | {got_txt} | {fix_txt} | {', '.join(c.extras) or ''} |")
    return "\n".join(lines) + "\n"
