"""What a lint rule plugin returns (``LintRule``, ``Hit``) and what the engine reports (``Finding``)."""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Optional

if TYPE_CHECKING:
    from oddoctor.lint.project import ModuleView


@dataclass(frozen=True)
class Hit:
    """One place a rule found: the node, and the one-line why for this place."""

    node: ast.AST
    why: str
    fix: Optional[str] = None  # None: the rule's own fix


@dataclass
class LintRule:
    """A lint rule: an id ``lint.<kebab-slug>``, its docs, and ``check(module) -> hits``.

    ``bad`` and ``good`` are short code examples (docs/lint.md is generated from them, and the tests lint
    them: ``bad`` must hit, ``good`` must not).
    """

    id: str
    title: str
    why: str
    fix: str
    bad: str
    good: str
    check: Callable[[ModuleView], Iterable[Hit]]
    plugin: str = ""
    #: True: the rule can only fire in code that mentions TensorFlow (or calls into such code), so files
    #: that do neither need not be parsed for it. A third-party rule sees every file unless it says so.
    tensorflow_only: bool = False


def lint_rule(*, id: str, title: str, why: str, fix: str, bad: str, good: str, tensorflow_only: bool = False
              ) -> Callable[[Callable[[ModuleView], Iterable[Hit]]], LintRule]:
    """Decorator: turn ``check(module) -> hits`` into a :class:`LintRule`."""

    def wrap(func: Callable[[ModuleView], Iterable[Hit]]) -> LintRule:
        return LintRule(id=id, title=title, why=why, fix=fix, bad=bad, good=good, check=func,
                        tensorflow_only=tensorflow_only)

    return wrap


@dataclass
class Finding:
    """One finding: where (1-based line and column; ``cell`` for a notebook), which rule, why, the fix."""

    file: str
    line: int
    col: int
    rule: str
    plugin: str
    message: str
    fix: str
    source_line: str = ""
    cell: Optional[int] = None

    def location(self) -> str:
        where = f"{self.file}[cell {self.cell}]" if self.cell is not None else self.file
        return f"{where}:{self.line}:{self.col}"

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "cell": self.cell, "line": self.line, "col": self.col, "rule": self.rule,
                "plugin": self.plugin, "message": self.message, "fix": self.fix, "source": self.source_line}


@dataclass
class Skipped:
    """A file or notebook cell that could not be read or parsed: reported, and the rest goes on."""

    file: str
    line: int
    message: str
    cell: Optional[int] = None

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "cell": self.cell, "line": self.line, "message": self.message}


@dataclass
class RuleError:
    """A rule (or a plugin's hook) that raised: names its plugin; the other rules still ran."""

    plugin: str
    rule: str
    message: str
    file: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"plugin": self.plugin, "rule": self.rule, "file": self.file, "message": self.message}


@dataclass
class LintReport:
    findings: list[Finding] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    errors: list[RuleError] = field(default_factory=list)
    notes: list[Skipped] = field(default_factory=list)  # fragments: names assumed (``tf`` never imported)
    files: int = 0
    rules: list[LintRule] = field(default_factory=list)

    def exit_code(self) -> int:
        """1 when anything was found or a rule errored, else 0."""
        return 1 if self.findings or self.errors else 0
