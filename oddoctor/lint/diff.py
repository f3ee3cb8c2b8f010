"""``oddoctor lint --diff``: a unified patch from the tutorial's ``run_inference_for_single_image`` to LegacyDetector.

The patch keeps the function's name and signature (callers do not change) and replaces its body with one
:class:`oddoctor_legacy_tf1.detector.LegacyDetector` made on the first call and reused: one finalized graph,
one Session with allow_growth, the same ``output_dict``. The model path is the script's own
``PATH_TO_FROZEN_GRAPH`` / ``PATH_TO_CKPT`` / ``MODEL_PATH`` when it has one.
"""

from __future__ import annotations

import ast
import difflib
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Optional, Union

from oddoctor.lint.source import iter_files

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
    """The unified diff for one file, or None when it has no tutorial function that opens a Session."""
    both = patched(path)
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
    funcs = [s for s in tree.body if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef))
             and s.name == FUNCTION and _opens_session(s)]
    if not funcs:
        return None
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    new = list(lines)
    model = _model_expr(tree)
    for node in sorted(funcs, key=lambda n: n.lineno, reverse=True):
        start = min([node.lineno, *(d.lineno for d in node.decorator_list)]) - 1
        end = node.end_lineno or node.lineno
        new[start:end] = replacement(node, model)
    if IMPORT not in text:
        imports = [s for s in tree.body if isinstance(s, (ast.Import, ast.ImportFrom))]
        at = (imports[-1].end_lineno or imports[-1].lineno) if imports else 0
        new[at:at] = [IMPORT + "\n"]
    return lines, new


def tutorial_patches(paths: Iterable[str]) -> list[str]:
    """Patches for every ``.py`` under ``paths`` that holds the tutorial's leaky function."""
    out = []
    for path, _root in iter_files(paths):
        if path.suffix == ".py":
            p = patch_for(path, _relative(path))
            if p:
                out.append(p)
    return out


def _relative(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
