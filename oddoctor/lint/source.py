"""Files, folders and notebooks as parsed modules. Nothing is imported or run; parse errors are facts."""

from __future__ import annotations

import ast
import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from oddoctor.lint.api import Skipped

SKIP_DIRS = frozenset({".git", ".hg", ".svn", "__pycache__", ".tox", ".nox", ".venv", "venv", "node_modules",
                       ".mypy_cache", ".ruff_cache", ".pytest_cache", ".ipynb_checkpoints"})
MAX_BYTES = 8 * 1024 * 1024  # a generated 50 MB .py is not inference code


class LintInputError(Exception):
    """A path that does not exist or cannot be read at all: a usage error."""


@dataclass
class Cell:
    """Where one notebook code cell landed in the module made from all cells."""

    index: int  # 1-based position in the notebook, as Jupyter counts cells (markdown included)
    first_line: int  # line in the joined module where the cell's line 1 is
    lines: list[str]


@dataclass
class SourceFile:
    path: Path
    display: str
    module: str  # dotted name relative to the linted root ("pkg.detector")
    tree: Optional[ast.Module]
    lines: list[str]  # of the joined module
    cells: list[Cell] = field(default_factory=list)  # notebooks only
    skipped: list[Skipped] = field(default_factory=list)

    def place(self, line: int) -> tuple[Optional[int], int]:
        """(cell number or None, line within it) for a line of the module."""
        for cell in reversed(self.cells):
            if line >= cell.first_line:
                return cell.index, line - cell.first_line + 1
        return None, line

    def text_of(self, line: int) -> str:
        return self.lines[line - 1] if 0 < line <= len(self.lines) else ""


def iter_files(paths: Iterable[str]) -> Iterator[tuple[Path, Path]]:
    """(file, root it was found under) for each ``.py`` / ``.ipynb``; a missing path is a LintInputError."""
    for raw in paths:
        p = Path(raw)
        if not p.exists():
            raise LintInputError(f"{raw}: no such file or directory")
        if p.is_file():
            yield p, p.parent
            continue
        if not p.is_dir():
            raise LintInputError(f"{raw}: not a file or directory")
        for dirpath, dirnames, filenames in os.walk(p):
            dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.startswith("."))
            for name in sorted(filenames):
                if name.endswith((".py", ".ipynb")):
                    yield Path(dirpath) / name, p


def module_name(path: Path, root: Path) -> str:
    try:
        rel = path.relative_to(root)
    except ValueError:
        rel = Path(path.name)
    parts = list(rel.with_suffix("").parts)
    if parts and parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts) or path.stem


def _display(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def read_source(path: Path, root: Path) -> SourceFile:
    """Parse one ``.py`` or ``.ipynb``; anything unreadable becomes a ``Skipped`` entry, never an exception."""
    display, mod = _display(path), module_name(path, root)
    try:
        if path.stat().st_size > MAX_BYTES:
            return SourceFile(path, display, mod, None, [], skipped=[Skipped(display, 0, "skipped: larger than 8 MiB")])
        data = path.read_bytes()
    except OSError as e:
        return SourceFile(path, display, mod, None, [], skipped=[Skipped(display, 0, f"cannot read: {e.strerror}")])
    if path.suffix == ".ipynb":
        return _read_notebook(path, display, mod, data)
    text = data.decode("utf-8", errors="replace")
    lines = text.splitlines()
    try:
        tree = ast.parse(data, filename=display)
    except (SyntaxError, ValueError) as e:
        line = getattr(e, "lineno", 0) or 0
        msg = getattr(e, "msg", str(e))
        return SourceFile(path, display, mod, None, lines, skipped=[Skipped(display, line, f"cannot parse: {msg}")])
    return SourceFile(path, display, mod, tree, lines)


_MAGIC = re.compile(r"^\s*[%!]|^\s*\w+\s*=\s*!")


def blank_magics(lines: list[str]) -> str:
    """A notebook cell's code with IPython magics and shell escapes blanked (they are not Python), lines kept."""
    return "\n".join("" if _MAGIC.match(ln) else ln for ln in lines)


def _read_notebook(path: Path, display: str, mod: str, data: bytes) -> SourceFile:
    try:
        nb = json.loads(data)
        cells_raw = [(i, c) for i, c in enumerate(nb.get("cells", []), start=1) if c.get("cell_type") == "code"]
    except (ValueError, AttributeError, TypeError) as e:
        return SourceFile(path, display, mod, None, [], skipped=[Skipped(display, 0, f"not a notebook: {e}")])
    body: list[ast.stmt] = []
    all_lines: list[str] = []
    cells: list[Cell] = []
    skipped: list[Skipped] = []
    for index, cell in cells_raw:
        src = cell.get("source", "")
        text = "".join(src) if isinstance(src, list) else str(src)
        lines = text.splitlines()
        # IPython magics and shell escapes are not Python: blank them, keeping line numbers.
        code = blank_magics(lines)
        first = len(all_lines) + 1
        cells.append(Cell(index, first, lines))
        all_lines.extend(lines)
        try:
            tree = ast.parse(code, filename=f"{display}[cell {index}]")
        except (SyntaxError, ValueError) as e:
            line = getattr(e, "lineno", 0) or 0
            skipped.append(Skipped(display, line, f"cannot parse: {getattr(e, 'msg', e)}", cell=index))
            continue
        ast.increment_lineno(tree, first - 1)
        body.extend(tree.body)
    module = ast.Module(body=body, type_ignores=[])
    return SourceFile(path, display, mod, module, all_lines, cells=cells, skipped=skipped)
