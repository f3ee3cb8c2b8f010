"""Which package may import which: read from the source with ``ast`` (every import, also inside functions).

- ``oddoctor_legacy_tf1`` is a leaf: it imports nothing from ``oddoctor`` (``oddoctor`` imports it).
- ``oddoctor.leak`` and ``oddoctor.compat`` are libraries under the CLI: they never import ``oddoctor.cli``.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import NamedTuple

import pytest

from tests.helpers import REPO


class Import(NamedTuple):
    file: Path
    line: int
    module: str  # absolute dotted name imported (for ``from X import y``: X and X.y)

    def __str__(self) -> str:
        return f"{self.file.relative_to(REPO) if self.file.is_absolute() else self.file}:{self.line}: {self.module}"


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(source: str, file: Path, module: str, *, is_package: bool = False) -> list[Import]:
    """Every module ``source`` imports, anywhere in it, as absolute names (relative imports resolved)."""
    found: list[Import] = []
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source, filename=str(file))):
        if isinstance(node, ast.Import):
            found.extend(Import(file, node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            found.append(Import(file, node.lineno, target))
            # `from oddoctor import cli` imports oddoctor.cli
            found.extend(Import(file, node.lineno, f"{target}.{alias.name}") for alias in node.names
                         if alias.name != "*")
    return found


def package_imports(root: Path, package: str) -> list[Import]:
    """The imports of every .py file of ``package`` (found under source root ``root``)."""
    folder = root / package.replace(".", "/")
    files = sorted(folder.rglob("*.py"))
    assert files, f"no Python files under {folder}"
    result: list[Import] = []
    for f in files:
        result.extend(imports_of(f.read_text(encoding="utf-8"), f, _module_name(f, root),
                                 is_package=f.name == "__init__.py"))
    return result


def within(name: str, package: str) -> bool:
    """``name`` is ``package`` or one of its submodules (``oddoctor_legacy_tf1`` is not within ``oddoctor``)."""
    return name == package or name.startswith(package + ".")


def offending(imports: list[Import], forbidden: str) -> list[str]:
    return [str(i) for i in imports if within(i.module, forbidden)]


def test_legacy_tf1_imports_nothing_from_oddoctor():
    bad = offending(package_imports(REPO / "legacy_tf1", "oddoctor_legacy_tf1"), "oddoctor")
    assert not bad, "oddoctor_legacy_tf1 is a leaf package; it imports oddoctor at:\n" + "\n".join(bad)


@pytest.mark.parametrize("package", ["oddoctor.leak", "oddoctor.compat"])
def test_libraries_do_not_import_the_cli(package):
    bad = offending(package_imports(REPO, package), "oddoctor.cli")
    assert not bad, f"{package} must not import oddoctor.cli; it does at:\n" + "\n".join(bad)


# The checker itself must be able to fail: each of these is an import it has to see.
@pytest.mark.parametrize(("source", "module", "forbidden", "line"), [
    ("import os\nimport oddoctor\n", "oddoctor_legacy_tf1.x", "oddoctor", 2),
    ("def f():\n    from oddoctor.fsutil import atomic_write_bytes\n", "oddoctor_legacy_tf1.x", "oddoctor", 2),
    ("import json\nif True:\n    import oddoctor.leak.sampling as s\n", "oddoctor_legacy_tf1.x", "oddoctor", 3),
    ("from oddoctor import cli\n", "oddoctor.leak.api", "oddoctor.cli", 1),
    ("def f():\n    from ..cli._common import UsageError\n", "oddoctor.leak.api", "oddoctor.cli", 2),
    ("from .. import cli\n", "oddoctor.compat.rules", "oddoctor.cli", 1),
])
def test_the_check_finds_an_offending_import_and_its_line(source, module, forbidden, line):
    bad = offending(imports_of(source, Path("x.py"), module), forbidden)
    assert bad and bad[0].startswith(f"x.py:{line}: ")


@pytest.mark.parametrize(("source", "module", "forbidden"), [
    ("import oddoctor_legacy_tf1.names\nfrom oddoctor_legacy_tf1 import graph_io\n", "oddoctor_legacy_tf1.x",
     "oddoctor"),
    ("from . import stats\nfrom .spawn import run_mode\n", "oddoctor.leak.api", "oddoctor.cli"),
    ("from oddoctor.client import x\nimport oddoctor.clinic\n", "oddoctor.leak.api", "oddoctor.cli"),
])
def test_the_check_leaves_allowed_imports_alone(source, module, forbidden):
    assert offending(imports_of(source, Path("x.py"), module), forbidden) == []
