"""Run every rule on every module of the tree: one rule that raises is an error naming its plugin, the rest run."""

from __future__ import annotations

import ast
import gc
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Optional

from oddoctor.lint.api import Finding, LintReport, LintRule, RuleError, Skipped
from oddoctor.lint.project import ModuleInfo, Project
from oddoctor.lint.source import SourceFile, iter_files, read_source

_IGNORE = re.compile(r"#\s*oddoctor:\s*ignore(?:\[([^\]]*)\])?")


def ignored(line_text: str, rule_id: str) -> bool:
    """``# oddoctor: ignore[ID, ID2]`` silences those rules on its line; a bare ``# oddoctor: ignore`` all."""
    for m in _IGNORE.finditer(line_text):
        if m.group(1) is None:
            return True
        if rule_id in {x.strip() for x in m.group(1).split(",")}:
            return True
    return False


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


# Text that TensorFlow code, or a call into it, cannot do without (checked on bytes, before parsing).
_TF_TEXT = re.compile(rb"tensorflow|keras|\btf\.|\bhub\.|Session\b|import_graph_def|ParseFromString|"
                      rb"reframe_box_masks|gpu_memory_fraction|load_model|saved_model")
_IMPORT_LINE = re.compile(rb"^[ \t]*(?:from[ \t]+[.\w]+[ \t]+import|import)[ \t]+[^\n]*", re.M)
_WORD = re.compile(rb"\w+")


def _stem(path: Path) -> bytes:
    return (path.parent.name if path.name == "__init__.py" else path.stem).encode()


def read_tree(paths: Iterable[str], *, tensorflow_only: bool = False) -> tuple[list[SourceFile], int]:
    """Every ``.py`` / ``.ipynb`` under ``paths``, parsed once each, and how many files there were.

    With ``tensorflow_only`` (every rule says so), a file that neither mentions TensorFlow nor imports a module
    of the tree that does (directly or through other such modules) is read but not parsed: no rule could fire
    in it, and no per-item flow passes through it. A missing path is a LintInputError.
    """
    kept, total = select_files(paths, tensorflow_only=tensorflow_only)
    return [read_source(path, root) for path, root in kept], total


def select_files(paths: Iterable[str], *, tensorflow_only: bool = False) -> tuple[list[tuple[Path, Path]], int]:
    """The (file, root) pairs :func:`read_tree` parses, in order, and how many files there were."""
    seen: set[Path] = set()
    found: list[tuple[Path, Path]] = []
    for path, root in iter_files(paths):
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            found.append((path, root))
    if not tensorflow_only:
        return found, len(found)
    keep: list[bool] = []
    importers: dict[bytes, list[int]] = {}  # an imported name -> the files that import it
    for i, (path, _root) in enumerate(found):
        try:
            data = path.read_bytes()
        except OSError:
            data = b"\0"  # unreadable: parse it, so that read_source reports why
        relevant = path.suffix == ".ipynb" or bool(_TF_TEXT.search(data)) or b"\0" in data[:1]
        keep.append(relevant)
        if not relevant:
            for word in {w for line in _IMPORT_LINE.findall(data) for w in _WORD.findall(line)}:
                importers.setdefault(word, []).append(i)
    queue = [_stem(found[i][0]) for i, k in enumerate(keep) if k]
    seen_stems = set(queue)
    while queue:  # a module that imports a kept one is kept too: a handler may call into TensorFlow code
        for i in importers.get(queue.pop(), ()):
            if not keep[i]:
                keep[i] = True
                stem = _stem(found[i][0])
                if stem not in seen_stems:
                    seen_stems.add(stem)
                    queue.append(stem)
    return [pair for pair, k in zip(found, keep) if k], len(found)


def lint_sources(sources: list[SourceFile], rules: Sequence[LintRule],
                 rule_errors: Sequence[RuleError] = (), files: Optional[int] = None,
                 analysed: Optional[dict[int, tuple[ModuleInfo, Any]]] = None) -> LintReport:
    """Lint parsed sources with ``rules``; ``rule_errors`` are the plugins' own load/hook errors."""
    report = LintReport(files=len(sources) if files is None else files, rules=list(rules), errors=list(rule_errors))
    for src in sources:
        report.skipped.extend(src.skipped)
    project = Project(sources, analysed)
    report.skipped.extend(Skipped(src.display, 0, why) for src, why in project.failed)
    failed: set[str] = set()
    for mod in project.modules:
        seen: set[tuple[int, int, str]] = set()
        for rule in rules:
            if rule.id in failed:
                continue
            try:
                hits = list(rule.check(mod))
            except (Exception, RecursionError) as e:  # noqa: BLE001 - a broken rule is a result, not a crash
                failed.add(rule.id)
                report.errors.append(RuleError(rule.plugin, rule.id, _describe(e), mod.src.display))
                continue
            for hit in hits:
                finding = _finding(mod, rule, hit.node, hit.why, hit.fix)
                key = (finding.line + 100000 * (finding.cell or 0), finding.col, rule.id)
                if key in seen or ignored(finding.source_line, rule.id):
                    continue
                seen.add(key)
                report.findings.append(finding)
        if mod.assumed:
            names = ", ".join(f"`{n}`" for n in sorted(mod.assumed))
            report.notes.append(Skipped(mod.src.display, 0, f"fragment: {names} never imported; read as the "
                                        "conventional module (tensorflow, tensorflow_hub, keras)"))
    report.findings.sort(key=lambda f: (f.file, f.cell or 0, f.line, f.col, f.rule))
    return report


def _finding(mod: ModuleInfo, rule: LintRule, node: ast.AST, why: str, fix: str | None) -> Finding:
    line = getattr(node, "lineno", 1)
    col = getattr(node, "col_offset", 0) + 1
    text = mod.src.text_of(line)
    cell, cell_line = mod.src.place(line)
    return Finding(file=mod.src.display, line=cell_line, col=col, rule=rule.id, plugin=rule.plugin,
                   message=why, fix=fix or rule.fix, source_line=text, cell=cell)


def lint_paths(paths: Iterable[str], rules: Sequence[LintRule], rule_errors: Sequence[RuleError] = (), *,
               workers: Optional[int] = None) -> LintReport:
    """Read, parse and lint ``paths`` (files, folders, notebooks); ignore comments applied.

    ``workers``: processes to spread a big tree over (None: the CPUs this process may use, for trees large
    enough to gain; 1: this process only). The report is the same either way."""
    # Thousands of live ASTs make every cyclic-GC pass walk all of them: parsing 10,000 files then costs 5x
    # more. Nothing here makes cycles worth collecting before the end, so collection waits until we are done.
    enabled = gc.isenabled()
    gc.disable()
    try:
        kept, files = select_files(paths, tensorflow_only=bool(rules) and all(r.tensorflow_only for r in rules))
        if workers is None or workers > 1:
            from oddoctor.lint.parallel import lint_in_parallel

            report = lint_in_parallel(kept, files, rules, rule_errors, workers=workers)
            if report is not None:
                return report
        sources = [read_source(path, root) for path, root in kept]
        return lint_sources(sources, rules, rule_errors, files)
    finally:
        if enabled:
            gc.enable()
