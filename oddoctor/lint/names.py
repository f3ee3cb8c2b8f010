"""Canonical names: every spelling of a TensorFlow API becomes one ``tf.``-rooted dotted name.

``tensorflow.compat.v1.Session``, ``tensorflow.Session`` and ``tf.compat.v1.Session`` are all
``tf.Session``; ``keras.models.load_model`` is ``tf.keras.models.load_model``; ``tensorflow_hub.load`` is
``hub.load``. Names outside TensorFlow keep their dotted form.
"""

from __future__ import annotations

import ast
from typing import Optional

# Undefined roots a fragment (a notebook cell, a pasted snippet) uses by convention.
CONVENTIONAL_ROOTS = {"tf": "tensorflow", "hub": "tensorflow_hub", "keras": "keras"}

_PREFIXES = (
    ("tensorflow.compat.v1.", "tf."),
    ("tensorflow.compat.v2.", "tf."),
    ("tensorflow.python.keras.", "tf.keras."),
    ("tensorflow.", "tf."),
    ("tf.compat.v1.", "tf."),
    ("tf.compat.v2.", "tf."),
    ("keras.", "tf.keras."),
    ("tensorflow_hub.", "hub."),
)


def canonical(dotted: str) -> str:
    """The one spelling rules compare against (``tensorflow.compat.v1.Session`` -> ``tf.Session``)."""
    for old, new in _PREFIXES:
        if dotted.startswith(old):
            return canonical(new + dotted[len(old):]) if new == "tf." and old != "tf." else new + dotted[len(old):]
    if dotted in ("tensorflow", "tensorflow.compat.v1", "tensorflow.compat.v2"):
        return "tf"
    return dotted


def dotted(node: ast.AST) -> Optional[str]:
    """``a.b.c`` for a Name/Attribute chain, else None."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def terminal(node: ast.AST) -> Optional[str]:
    """The last name of a call target (``x.y.ParseFromString`` -> ``ParseFromString``)."""
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    return None
