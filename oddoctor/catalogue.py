"""Generate docs/checks.md, the check catalogue, from the registered checks.

    python -m oddoctor.catalogue            # rewrite docs/checks.md
    python -m oddoctor.catalogue --check    # exit 1 when docs/checks.md is out of date

Only oddoctor's own checks are listed (their functions live in ``oddoctor*`` packages), so a
third-party plugin installed in the same environment does not change the document. A check's
"typical fix" is the ``Typical fix:`` line of its function's docstring (or a ``typical_fix``
attribute on the :class:`~oddoctor.checks.Check`, where one exists).
"""

from __future__ import annotations

import argparse
import inspect
import sys
from pathlib import Path
from typing import Optional

from oddoctor.checks import Check

DEFAULT_PATH = Path(__file__).resolve().parent.parent / "docs" / "checks.md"
OWN_PACKAGES = ("oddoctor", "oddoctor_plugins", "oddoctor_legacy_tf1")

HEADER = """# Check catalogue

Every check `oddoctor check` runs, generated from the registered checks by
`python -m oddoctor.catalogue` (do not edit by hand: a test fails when this file is out of date).
Select checks with `--only` / `--skip` (an id or an id prefix such as `gpu`); list them with
`oddoctor checks`. The compatibility rules behind the `compat` checks are described in
[compat.md](compat.md).

| id | plugin | what it checks | typical fix |
|---|---|---|---|
"""


def typical_fix(chk: Check) -> str:
    """The ``Typical fix:`` line of a check's docstring, or its ``typical_fix`` attribute."""
    attr = getattr(chk, "typical_fix", None)
    if isinstance(attr, str) and attr.strip():
        return attr.strip()
    doc = inspect.getdoc(chk.func) or ""
    lines = doc.splitlines()
    for i, line in enumerate(lines):
        if line.strip().lower().startswith("typical fix:"):
            text = [line.split(":", 1)[1].strip()]
            for cont in lines[i + 1:]:  # a fix may wrap onto indented continuation lines
                if not cont.strip() or cont.strip().endswith(":"):
                    break
                text.append(cont.strip())
            return " ".join(t for t in text if t)
    return ""


def own_checks(checks: list[Check]) -> list[Check]:
    return [c for c in checks if (getattr(c.func, "__module__", "") or "").split(".")[0] in OWN_PACKAGES]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ").strip() or "—"


def render(checks: list[Check]) -> str:
    """The catalogue as Markdown: one table row per check, in registration order."""
    # In report order: foundations first, then each area in registration order (sorted() is stable).
    from oddoctor.runner import area_rank

    ordered = sorted(own_checks(checks), key=lambda c: area_rank(c.id))
    rows = [f"| `{c.id}` | {c.plugin} | {_cell(c.description)} | {_cell(typical_fix(c))} |" for c in ordered]
    return HEADER + "\n".join(rows) + "\n"


def generate() -> str:
    """Render the catalogue from the checks registered through the ``oddoctor`` entry points."""
    from oddoctor.manager import collect_checks, make_plugin_manager

    return render(collect_checks(make_plugin_manager()))


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m oddoctor.catalogue", description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, default=DEFAULT_PATH, help="where to write (docs/checks.md)")
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is out of date; write nothing")
    args = parser.parse_args(argv)
    return write_or_check(args.output, generate(), check=args.check, regenerate="python -m oddoctor.catalogue")


def write_or_check(path: Path, text: str, *, check: bool, regenerate: str) -> int:
    """Write a generated doc atomically; with ``check``, write nothing and return 1 when ``path`` differs
    from ``text`` (saying which command regenerates it). Shared by docs/checks.md and docs/lint.md."""
    if check:
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        if current != text:
            print(f"{path} is out of date: run {regenerate}", file=sys.stderr)
            return 1
        return 0
    from oddoctor.fsutil import atomic_write_text

    atomic_write_text(path, text)
    print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
