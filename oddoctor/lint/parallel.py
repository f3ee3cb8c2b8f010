"""Lint a big tree on several cores, with exactly the report one process would give.

The tree is one program only where its modules can reach each other: every cross-module question the
analysis asks (:meth:`Project.find_module`) starts from a name the asking module imports, assigns from a
dotted name, star-imports or is itself. So:

1. each worker (a forked process) parses and analyses a contiguous share of the files, and sends back, per
   module, those names (its *anchors*);
2. the parent answers, for every anchor, every prefix of it and every longer module name under it, which
   module ``find_module`` would pick (the same rules: exact name, same package, first by suffix), and joins the
   asker with it: the connected groups are independent programs;
3. each group goes to one worker, preferably the one that already parsed its files, which lints it as a
   whole, and the parent merges the reports in file order.

Anything unusual (no ``fork``, a worker that dies, a module too deeply nested to analyse, a rule that raises,
a third-party rule, which may look at the whole tree) returns None, and the caller lints in one process.
"""

from __future__ import annotations

import contextlib
import os
import sys
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from oddoctor.lint.api import LintReport, LintRule, RuleError
from oddoctor.lint.names import CONVENTIONAL_ROOTS

#: Below this many files to parse, starting workers costs more than it saves.
MIN_FILES = 1500
#: The own packages whose rules are known to ask only through ``find_module`` / ``find_func``.
_OWN = ("oddoctor", "oddoctor_plugins", "oddoctor_legacy_tf1")


@dataclass
class _Summary:
    index: int
    name: str  # dotted module name, as the Project knows it
    package: str
    anchors: list[str]
    parsed: bool  # has a tree (a file that does not parse is no module)
    deep: bool  # analysis hit the recursion limit


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))  # type: ignore[attr-defined,unused-ignore]
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def lint_in_parallel(kept: list[tuple[Path, Path]], files: int, rules: Sequence[LintRule],
                     rule_errors: Sequence[RuleError], *, workers: Optional[int] = None,
                     min_files: int = MIN_FILES) -> Optional[LintReport]:
    """The report for ``kept`` (see :func:`oddoctor.lint.engine.select_files`), or None to lint serially."""
    n = min(workers or usable_cpus(), 8)
    if n < 2 or len(kept) < min_files or not hasattr(os, "fork") or sys.platform == "win32":
        return None
    if any((getattr(r.check, "__module__", "") or "").split(".")[0] not in _OWN for r in rules):
        return None
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    chunks = _chunks(kept, n)
    conns, procs = [], []
    try:
        for k, (lo, hi) in enumerate(chunks):
            parent_end, child_end = ctx.Pipe()
            proc = ctx.Process(target=_worker, args=(kept, lo, hi, rules, child_end), daemon=True,
                               name=f"oddoctor-lint-{k}")
            proc.start()
            child_end.close()
            conns.append(parent_end)
            procs.append(proc)
        summaries: list[_Summary] = []
        for conn in conns:
            kind, payload = conn.recv()
            if kind != "summary":
                return None
            summaries.extend(payload)
        if any(s.deep for s in summaries):
            return None
        groups = _groups(summaries, len(kept))
        plan = _assign(groups, chunks)
        for conn, indices in zip(conns, plan):
            conn.send(indices)
        parts = []
        for conn in conns:
            kind, payload = conn.recv()
            if kind != "report":
                return None
            parts.append(payload)
    except (EOFError, OSError, ConnectionError):
        return None
    finally:
        for conn in conns:
            conn.close()
        for proc in procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
                proc.join()
    if any(p["errors"] for p in parts):
        return None  # a rule raised: one process reports it once, and stops running it
    report = LintReport(files=files, rules=list(rules), errors=list(rule_errors))

    def order(items: list[tuple[int, Any]]) -> list[Any]:
        return [item for _i, item in sorted(items, key=lambda t: t[0])]

    report.skipped = order([x for p in parts for x in p["read_skipped"]]) + order(
        [x for p in parts for x in p["failed"]])
    report.notes = order([x for p in parts for x in p["notes"]])
    report.findings = sorted((f for p in parts for f in p["findings"]),
                             key=lambda f: (f.file, f.cell or 0, f.line, f.col, f.rule))
    return report


def _chunks(kept: list[tuple[Path, Path]], n: int) -> list[tuple[int, int]]:
    """Contiguous shares of about equal bytes (parse time follows size), so a folder stays with one worker."""
    sizes = []
    for path, _root in kept:
        try:
            sizes.append(path.stat().st_size + 512)
        except OSError:
            sizes.append(512)
    out: list[tuple[int, int]] = []
    total, lo, acc = sum(sizes), 0, 0
    for i, size in enumerate(sizes):
        acc += size
        if acc >= total * (len(out) + 1) / n and len(out) < n - 1:
            out.append((lo, i + 1))
            lo = i + 1
    out.append((lo, len(kept)))
    return [c for c in out if c[0] < c[1]]


def _worker(kept: list[tuple[Path, Path]], lo: int, hi: int, rules: Sequence[LintRule], conn: Any) -> None:
    """A forked worker: parse and analyse files lo..hi, send anchors; lint the group it is given; send the report."""
    from oddoctor.lint.engine import lint_sources
    from oddoctor.lint.project import analyse_module
    from oddoctor.lint.source import read_source

    try:
        own: dict[int, Any] = {}
        summaries = []
        for i in range(lo, hi):
            src = read_source(*kept[i])
            analysed, deep, anchors = None, False, []
            if src.tree is not None:
                try:
                    analysed = analyse_module(src)
                    anchors = _anchors(analysed[0])
                except RecursionError:
                    deep = True
            own[i] = (src, analysed)
            mod_name = src.module
            package = mod_name if src.path.name == "__init__.py" else mod_name.rpartition(".")[0]
            summaries.append(_Summary(i, mod_name, package, anchors, src.tree is not None, deep))
        conn.send(("summary", summaries))
        indices: list[int] = conn.recv()
        sources, done = [], {}
        for i in indices:
            src, analysed = own.get(i) or (read_source(*kept[i]), None)
            if analysed is not None:
                done[id(src)] = analysed
            sources.append(src)
        report = lint_sources(sources, rules, (), len(sources), analysed=done)
        where = {src.display: i for i, src in zip(indices, sources)}
        read_skipped = [(where.get(s.file, -1), s) for src in sources for s in src.skipped]
        n_read = len(read_skipped)
        failed = [(where.get(s.file, -1), s) for s in report.skipped[n_read:]]
        conn.send(("report", {
            "findings": report.findings,
            "read_skipped": read_skipped,
            "failed": failed,
            "notes": [(where.get(s.file, -1), s) for s in report.notes],
            "errors": report.errors,
        }))
    except BaseException:  # noqa: BLE001 - the parent falls back to one process
        with contextlib.suppress(Exception):
            conn.send(("failed", traceback.format_exc(limit=5)))
    finally:
        conn.close()


def _anchors(mod: Any) -> list[str]:
    """The dotted names ``mod`` can start a cross-module lookup from (see the module docstring)."""
    out = set(mod.aliases.values()) | set(mod.stars) | set(CONVENTIONAL_ROOTS.values())
    return sorted(a for a in out if a)


def _groups(summaries: list[_Summary], count: int) -> list[list[int]]:
    """File indices in connected groups: modules that can reach each other by name are linted together."""
    parent = list(range(count))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(a: int, b: int) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    mods = sorted((s for s in summaries if s.parsed), key=lambda s: s.index)
    by_name: dict[str, int] = {}
    same_name: dict[str, list[int]] = {}
    by_suffix: dict[str, list[_Summary]] = {}
    for s in mods:
        by_name.setdefault(s.name, s.index)
        same_name.setdefault(s.name, []).append(s.index)
        parts = s.name.split(".")
        for i in range(1, len(parts)):
            by_suffix.setdefault(".".join(parts[i:]), []).append(s)
    under: dict[str, list[str]] = {}  # "pkg" -> every known module key that starts with "pkg."
    for key in [*by_name, *by_suffix]:
        parts = key.split(".")
        for i in range(1, len(parts)):
            under.setdefault(".".join(parts[:i]), []).append(key)
    for indices in same_name.values():  # by_name keeps the first of them: lookups of the name reach it
        for i in indices[1:]:
            union(indices[0], i)

    def pick(name: str, near: _Summary) -> Optional[int]:  # Project.find_module, on names only
        if name in by_name:
            return by_name[name]
        cands = by_suffix.get(name)
        if not cands:
            return None
        if near.package:
            for m in cands:
                if m.name == f"{near.package}.{name}":
                    return m.index
        return cands[0].index

    for s in mods:
        names: set[str] = set()
        for anchor in s.anchors:
            parts = anchor.split(".")
            names.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
            names.update(under.get(anchor, ()))
        for name in names:
            target = pick(name, s)
            if target is not None:
                union(s.index, target)
    groups: dict[int, list[int]] = {}
    for i in range(count):
        groups.setdefault(find(i), []).append(i)
    return list(groups.values())


def _assign(groups: list[list[int]], chunks: list[tuple[int, int]]) -> list[list[int]]:
    """Each group to one worker: the one that parsed most of it, unless that would unbalance the load."""
    n = len(chunks)
    total = sum(len(g) for g in groups)
    cap = total / n * 1.1
    load = [0] * n
    plan: list[list[int]] = [[] for _ in range(n)]

    def owner(i: int) -> int:
        return next(k for k, (lo, hi) in enumerate(chunks) if lo <= i < hi)

    for g in sorted(groups, key=len, reverse=True):
        votes = [0] * n
        for i in g:
            votes[owner(i)] += 1
        best = max(range(n), key=lambda k: votes[k])
        k = best if load[best] + len(g) <= cap else min(range(n), key=lambda k: load[k])
        plan[k].extend(g)
        load[k] += len(g)
    return [sorted(p) for p in plan]
