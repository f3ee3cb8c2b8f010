"""The lint report as text: human (grouped by file, source line and caret), JSON, and SARIF 2.1.0."""

from __future__ import annotations

from itertools import groupby
from pathlib import Path
from typing import Any

from oddoctor import __version__
from oddoctor.lint.api import LintReport

SCHEMA_VERSION = 1
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
INFO_URI = "https://github.com/oddoctor/oddoctor/blob/main/docs/lint.md"


def _clean(text: str) -> str:
    return "".join(c if c.isprintable() or c == "\t" else repr(c)[1:-1] for c in text)


def render_human(report: LintReport) -> str:
    """One block per file: ``line:col  rule  why``, the source line with a caret, and the fix."""
    out: list[str] = []
    for file, group in groupby(report.findings, key=lambda f: f.file):
        out.append(_clean(file))
        for f in group:
            where = f"[cell {f.cell}] " if f.cell is not None else ""
            out.append(f"  {where}{f.line}:{f.col}  {f.rule}  {_clean(f.message)}")
            src = f.source_line.expandtabs(1)
            if src.strip():
                indent = len(src) - len(src.lstrip())
                out.append(f"      {_clean(src.strip())}")
                out.append("      " + " " * max(f.col - 1 - indent, 0) + "^")
            out.append(f"      fix: {_clean(f.fix)}")
        out.append("")
    for s in report.skipped:
        where = f"[cell {s.cell}]" if s.cell is not None else ""
        out.append(f"{_clean(s.file)}{where}:{s.line}: {_clean(s.message)} (the rest was linted)")
    for note in report.notes:
        out.append(f"{_clean(note.file)}: note: {_clean(note.message)}")
    for e in report.errors:
        where = f" on {e.file}" if e.file else ""
        out.append(f"error: rule {e.rule or '?'} of plugin {e.plugin} failed{where}: {_clean(e.message)}")
    n = len(report.findings)
    files = len({f.file for f in report.findings})
    summary = (f"{n} finding{'s' if n != 1 else ''} in {files} file{'s' if files != 1 else ''}" if n
               else "no findings")
    out.append(f"{summary} ({report.files} file{'s' if report.files != 1 else ''} linted, "
               f"{len(report.rules)} rules)")
    return "\n".join(out) + "\n"


def to_json(report: LintReport) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "oddoctor lint", "version": __version__},
        "files_linted": report.files,
        "rules": [{"id": r.id, "plugin": r.plugin, "title": r.title} for r in report.rules],
        "findings": [f.to_dict() for f in report.findings],
        "skipped": [s.to_dict() for s in report.skipped],
        "notes": [s.to_dict() for s in report.notes],
        "errors": [e.to_dict() for e in report.errors],
        "exit_code": report.exit_code(),
    }


def _uri(file: str) -> str:
    """A relative path as a relative URI reference (resolved against the checkout), an absolute one as file://."""
    p = Path(file)
    return p.as_uri() if p.is_absolute() else p.as_posix()


def to_sarif(report: LintReport) -> dict[str, Any]:
    """A SARIF 2.1.0 log (one run) that GitHub code scanning accepts."""
    index = {r.id: i for i, r in enumerate(report.rules)}
    rules = [{
        "id": r.id,
        "name": r.title,
        "shortDescription": {"text": r.title},
        "fullDescription": {"text": r.why},
        "help": {"text": f"Fix: {r.fix}", "markdown": f"**Fix:** {r.fix}\n\nBad:\n```python\n{r.bad}```\n\n"
                                                      f"Good:\n```python\n{r.good}```"},
        "helpUri": f"{INFO_URI}#{r.id.replace('.', '')}",
        "defaultConfiguration": {"level": "warning"},
        "properties": {"plugin": r.plugin},
    } for r in report.rules]
    results = []
    for f in report.findings:
        result: dict[str, Any] = {
            "ruleId": f.rule,
            "level": "warning",
            "message": {"text": f"{f.message}. Fix: {f.fix}"},
            "locations": [{"physicalLocation": {
                "artifactLocation": {"uri": _uri(f.file)},
                "region": {"startLine": f.line, "startColumn": f.col},
            }}],
        }
        if f.rule in index:
            result["ruleIndex"] = index[f.rule]
        if f.cell is not None:
            result["properties"] = {"notebookCell": f.cell}
        results.append(result)
    notifications = [{"level": "error", "message": {"text": f"rule {e.rule} of plugin {e.plugin}: {e.message}"}}
                     for e in report.errors]
    notifications += [{"level": "note", "message": {"text": f"{s.file}:{s.line}: {s.message}"}}
                      for s in report.skipped]
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "oddoctor-lint", "version": __version__, "informationUri": INFO_URI,
                                "rules": rules}},
            "results": results,
            "invocations": [{"executionSuccessful": not report.errors,
                             "toolExecutionNotifications": notifications}],
        }],
    }
