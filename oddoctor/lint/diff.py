"""``oddoctor lint --diff``: a unified patch from the tutorial's ``run_inference_for_single_image`` to LegacyDetector.

The patch keeps the function's name and signature (callers do not change) and replaces its body with one
:class:`oddoctor_legacy_tf1.detector.LegacyDetector` made on the first call and reused: one finalized graph,
one Session with allow_growth, the same ``output_dict``. The model path is the script's own
``PATH_TO_FROZEN_GRAPH`` / ``PATH_TO_CKPT`` / ``MODEL_PATH`` when it has one.

In a notebook the cell holding the function is rewritten the same way (the import goes at the top of that cell),
and the patch is against the ``.ipynb`` file itself, re-written as Jupyter writes it (one-space indented JSON), so
``patch -p1`` / ``git apply`` apply it.
"""

from __future__ import annotations

import ast
import difflib
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Optional, Union

from oddoctor.lint.source import blank_magics, iter_files

FUNCTION = "run_inference_for_single_image"
IMPORT = "from oddoctor_legacy_tf1 import LegacyDetector"
_MODEL_VAR = re.compile(r"^(PATH_TO_FROZEN_GRAPH|PATH_TO_CKPT|PATH_TO_MODEL|MODEL_PATH|FROZEN_GRAPH|GRAPH_PATH|"
                        r"MODEL_FILE|PATH_TO_GRAPH)$")
FuncDef = Union[ast.FunctionDef, ast.AsyncFunctionDef]


def _opens_session(node: FuncDef) -> bool:
    for n in ast.walk(node):
        if isinstance(n, ast.Call):
            f = n.func
            name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
            if name in ("Session", "InteractiveSession"):
                return True
    return False


def _model_expr(tree: ast.Module) -> str:
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign):
            for t in stmt.targets:
                if isinstance(t, ast.Name) and _MODEL_VAR.match(t.id):
                    return t.id
    return "'frozen_inference_graph.pb'"


def replacement(node: FuncDef, model: str) -> list[str]:
    """The new function: same name and signature, body delegated to one LegacyDetector."""
    params = ast.unparse(node.args)
    returns = f" -> {ast.unparse(node.returns)}" if node.returns is not None else ""
    first = node.args.posonlyargs[0].arg if node.args.posonlyargs else (node.args.args[0].arg if node.args.args
                                                                          else "image")
    return [
        "_detector = None  # one graph, one Session, made on the first call (oddoctor lint --diff)\n",
        "\n",
        "\n",
        f"def {node.name}({params}){returns}:\n",
        '    """The tutorial\'s output_dict, from one finalized graph and one reused Session (no per-image leak)."""\n',
        "    global _detector\n",
        "    if _detector is None:\n",
        *(["        # TODO: the frozen graph (or SavedModel) this function's graph was loaded from\n"]
          if model.startswith("'") else []),
        f"        _detector = LegacyDetector({model})\n",
        f"    return _detector({first})\n",
    ]


def patch_for(path: Path, display: Optional[str] = None) -> Optional[str]:
    """The unified diff for one file or notebook, or None when it has no tutorial function that opens a Session."""
    both = patched_notebook(path) if path.suffix == ".ipynb" else patched(path)
    if both is None:
        return None
    name = display or str(path)
    return "".join(difflib.unified_diff(both[0], both[1], fromfile=f"a/{name}", tofile=f"b/{name}"))


def patched(path: Path) -> Optional[tuple[list[str], list[str]]]:
    """(old lines, new lines) of a file holding the tutorial's function, else None."""
    try:
        text = path.read_text(encoding="utf-8")
        tree = ast.parse(text)
    except (OSError, SyntaxError, ValueError, UnicodeDecodeError):
        return None
    new = _rewrite(text, tree, _model_expr(tree), with_import=IMPORT not in text)
    return None if new is None else (_lines(text), new)


def _lines(text: str) -> list[str]:
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    return lines


def _rewrite(text: str, tree: ast.Module, model: str, *, with_import: bool) -> Optional[list[str]]:
    """``text``'s lines with each tutorial function replaced (and the import added), or None when it has none."""
    funcs = [s for s in tree.body if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef))
             and s.name == FUNCTION and _opens_session(s)]
    if not funcs:
        return None
    new = _lines(text)
    for node in sorted(funcs, key=lambda n: n.lineno, reverse=True):
        start = min([node.lineno, *(d.lineno for d in node.decorator_list)]) - 1
        end = node.end_lineno or node.lineno
        new[start:end] = replacement(node, model)
    if with_import:
        imports = [s for s in tree.body if isinstance(s, (ast.Import, ast.ImportFrom))]
        at = (imports[-1].end_lineno or imports[-1].lineno) if imports else 0
        new[at:at] = [IMPORT + "\n"]
    return new


def patched_notebook(path: Path) -> Optional[tuple[list[str], list[str]]]:
    """(old lines, new lines) of an ``.ipynb`` whose code cells hold the tutorial's function, else None.

    Cells that do not parse (a magic we do not know, Python 2) are left as they are."""
    try:
        raw = path.read_text(encoding="utf-8")
        nb = json.loads(raw)
        cells = [c for c in nb.get("cells", []) if isinstance(c, dict) and c.get("cell_type") == "code"]
    except (OSError, ValueError, UnicodeDecodeError, AttributeError):
        return None
    parsed: list[tuple[dict, str, ast.Module]] = []
    for cell in cells:
        src = cell.get("source", "")
        text = "".join(src) if isinstance(src, list) else str(src)
        try:
            parsed.append((cell, text, ast.parse(blank_magics(text.splitlines()))))
        except (SyntaxError, ValueError):
            continue
    models = [m for m in (_model_expr(tree) for _c, _t, tree in parsed) if not m.startswith("'")]
    model = models[0] if models else _model_expr(ast.Module(body=[], type_ignores=[]))
    needs_import = not any(IMPORT in text for _c, text, _t in parsed)
    changed = False
    for cell, text, tree in parsed:
        new = _rewrite(text, tree, model, with_import=needs_import)
        if new is None:
            continue
        needs_import, changed = False, True
        joined = "".join(new)
        if not text.endswith("\n"):  # Jupyter keeps a cell's last line without its newline
            joined = joined[:-1] if joined.endswith("\n") else joined
        cell["source"] = joined.splitlines(keepends=True)
    if not changed:
        return None
    indent = len(raw.split("\n", 2)[1]) - len(raw.split("\n", 2)[1].lstrip(" ")) if raw.count("\n") > 1 else 1
    out = json.dumps(nb, indent=indent or None, ensure_ascii=False) + ("\n" if raw.endswith("\n") else "")
    return _lines(raw), _lines(out)


def tutorial_patches(paths: Iterable[str]) -> list[str]:
    """Patches for every ``.py`` and ``.ipynb`` under ``paths`` that holds the tutorial's leaky function."""
    out = []
    for path, _root in iter_files(paths):
        if path.suffix in (".py", ".ipynb"):
            p = patch_for(path, _relative(path))
            if p:
                out.append(p)
    return out


def _relative(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
