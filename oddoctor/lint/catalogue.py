"""Generate docs/lint.md, the lint rule catalogue, from the registered lint rules.

    python -m oddoctor.lint.catalogue --write    # rewrite docs/lint.md
    python -m oddoctor.lint.catalogue --check    # exit 1 when docs/lint.md is out of date

Only oddoctor's own rules are listed (their check functions live in ``oddoctor*`` packages), so a third-party
plugin installed in the same environment does not change the document.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional

from oddoctor.lint.api import LintRule

DEFAULT_PATH = Path(__file__).resolve().parent.parent.parent / "docs" / "lint.md"
OWN_PACKAGES = ("oddoctor", "oddoctor_plugins", "oddoctor_legacy_tf1")

HEADER = """# `oddoctor lint`: the rules

Generated from the registered lint rules by `python -m oddoctor.lint.catalogue --write` (do not edit by hand:
a test fails when this file is out of date).

`oddoctor lint PATH...` reads Python files, folders and the code cells of `.ipynb` notebooks with `ast` (it never
imports or runs them) and reports, for each finding, `file:line:col`, the rule id, why it matters there and the fix.
The linted paths are one program: a Flask/FastAPI/Django/aiohttp/Socket.IO handler, a registered callback
(`camera.set_frame_callback(f)`, `picam2.pre_callback = f`) or a loop that calls a function in another file makes
that function run *per item* too. Names resolve through imports, aliases (`import tensorflow.compat.v1 as tf`, `v1 =
tf.compat.v1`, `from tensorflow import Session`) and star imports from modules of the tree. A file or notebook cell
that does not parse is reported and the rest is linted; a fragment that never imports `tf` is read as if it did (and
says so). A file that neither mentions TensorFlow nor imports (through any chain) a module of the tree that does is
read but not parsed: no built-in rule can fire there (a third-party rule sees every file unless it sets
`tensorflow_only=True`).

```
oddoctor lint app/ notebooks/demo.ipynb          # human: grouped by file, source line, caret, fix
oddoctor lint --json src/ > lint.json            # one JSON document (schema_version 1)
oddoctor lint --format sarif src/ > lint.sarif   # SARIF 2.1.0, for GitHub code scanning
oddoctor lint --select lint.session-per-item .   # only some rules (ids or prefixes)
oddoctor lint --diff my_tutorial_copy.py         # a patch from run_inference_for_single_image to LegacyDetector
oddoctor lint --diff notebooks/ | patch -p1      # notebooks too: the patch is against the .ipynb file itself
```

Exit codes: **0** no finding, **1** findings (or a rule that raised: reported as an error naming its plugin, the
other rules still run), **2** usage error (a missing path, an unknown format or rule). Silence one line with
`# oddoctor: ignore[RULE-ID]` (several ids separated by commas; a bare `# oddoctor: ignore` silences all).
Rules are plugins: a package adds its own through the `oddoctor_lint_rules` hook ([plugins.md](plugins.md)).

| id | plugin | what it finds |
|---|---|---|
"""


def own_rules(rules: list[LintRule]) -> list[LintRule]:
    return [r for r in rules if (getattr(r.check, "__module__", "") or "").split(".")[0] in OWN_PACKAGES]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ").strip() or "—"


def render(rules: list[LintRule]) -> str:
    """The catalogue as Markdown: a table, then each rule with its why, fix, and a bad and a good example."""
    own = own_rules(rules)
    out = [HEADER + "\n".join(f"| [`{r.id}`](#{r.id.replace('.', '')}) | {r.plugin} | {_cell(r.title)} |"
                              for r in own) + "\n"]
    for r in own:
        out.append(f"\n## {r.id}\n\n**{r.title}.** {r.why}.\n\n**Fix:** {r.fix}.\n\n"
                   f"Bad:\n\n```python\n{r.bad.rstrip()}\n```\n\nGood:\n\n```python\n{r.good.rstrip()}\n```\n")
    return "".join(out)


def generate() -> str:
    """Render the catalogue from the rules registered through the ``oddoctor`` entry points."""
    from oddoctor.manager import collect_lint_rules, make_plugin_manager

    return render(collect_lint_rules(make_plugin_manager()))


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m oddoctor.lint.catalogue", description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, default=DEFAULT_PATH, help="where to write (docs/lint.md)")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="rewrite the file")
    mode.add_argument("--check", action="store_true", help="exit 1 if the file is out of date; write nothing")
    args = parser.parse_args(argv)
    from oddoctor.catalogue import write_or_check

    return write_or_check(args.output, generate(), check=args.check,
                          regenerate="python -m oddoctor.lint.catalogue --write")


if __name__ == "__main__":
    sys.exit(main())
