"""``--entry``: the user's own per-image function, loaded in the legacy mode's child instead of the tutorial loop.

The calling convention is the TF1 tutorial's ``run_inference_for_single_image(image, graph)``, so a copy of
that function can be pointed at unchanged:

- ``image``: one uint8 ``numpy`` array ``[height, width, 3]`` (the same images as the built-in loops);
- ``graph``: the model (``MODEL``) imported into a new ``tf.Graph``, as the tutorial's ``detection_graph``
  (one graph for the whole run, like the tutorial's global);
- a function that takes one positional parameter is called as ``fn(image)``; two or more, ``fn(image, graph)``.

The return value is not needed; a dict with ``num_detections`` / ``detection_masks`` is described in the
samples. ``spec`` is ``module:function`` (imported from the current directory, as ``python -m`` would) or
``path/to/file.py:function`` (the file's folder goes first on ``sys.path`` so its own imports work).
Nothing here imports TensorFlow.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional


class EntryError(Exception):
    """The entry cannot be used: one line, plus the user's traceback tail for ``--debug``."""

    def __init__(self, message: str, tb: Optional[list[str]] = None) -> None:
        super().__init__(message)
        self.traceback = tb or []


def split_entry(spec: str) -> tuple[str, str]:
    """``"pkg.mod:fn"`` or ``"dir/file.py:fn"`` -> (target, function name); ValueError names what is wrong."""
    target, sep, name = spec.rpartition(":")
    if not sep or not target or not name:
        raise ValueError(f"--entry {spec}: expected module:function or path/to/file.py:function")
    if not name.isidentifier():
        raise ValueError(f"--entry {spec}: {name!r} is not a Python function name")
    return target, name


def is_file_target(target: str) -> bool:
    """A path to a ``.py`` file (as opposed to a dotted module name)."""
    return target.endswith(".py") or "/" in target or "\\" in target


class UserFunction:
    """The user's function, called with the tutorial's arguments; ``call_form`` says which."""

    def __init__(self, fn: Callable[..., Any], spec: str) -> None:
        self.fn = fn
        self.spec = spec
        self.takes_graph = _takes_graph(fn, spec)
        self.call_form = "fn(image, graph)" if self.takes_graph else "fn(image)"

    def __call__(self, image: Any, graph: Any) -> Any:
        return self.fn(image, graph) if self.takes_graph else self.fn(image)


def _takes_graph(fn: Callable[..., Any], spec: str) -> bool:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return True  # a builtin or C function: the tutorial's convention
    try:
        sig.bind(None, None)
        return True
    except TypeError:
        pass
    try:
        sig.bind(None)
        return False
    except TypeError:
        raise EntryError(f"--entry {spec}: the function must take (image) or (image, graph), "
                         f"its signature is {sig}") from None


def _user_tail(exc: BaseException) -> list[str]:
    return traceback.format_exception(type(exc), exc, exc.__traceback__)[-8:]


def load_entry(spec: str) -> UserFunction:
    """Import the module or file of ``spec`` and return its function; :class:`EntryError` says what failed."""
    try:
        target, name = split_entry(spec)
    except ValueError as e:
        raise EntryError(str(e)) from None
    try:
        if is_file_target(target):
            path = Path(target).expanduser().resolve()
            if not path.is_file():
                raise EntryError(f"--entry {spec}: {target}: no such file")
            folder = str(path.parent)
            if folder not in sys.path:
                sys.path.insert(0, folder)
            mod_spec = importlib.util.spec_from_file_location(f"_oddoctor_entry_{path.stem}", path)
            if mod_spec is None or mod_spec.loader is None:
                raise EntryError(f"--entry {spec}: {target}: not a Python file")
            module = importlib.util.module_from_spec(mod_spec)
            sys.modules[mod_spec.name] = module
            mod_spec.loader.exec_module(module)
        else:
            if "" not in sys.path and str(Path.cwd()) not in sys.path:
                sys.path.insert(0, str(Path.cwd()))
            module = importlib.import_module(target)
    except EntryError:
        raise
    except BaseException as e:  # noqa: BLE001 - anything the user's import does (SystemExit too) is bad input
        raise EntryError(f"--entry {spec}: cannot import {target}: {type(e).__name__}: {_one_line(e)}",
                         _user_tail(e)) from None
    fn = getattr(module, name, None)
    if fn is None:
        public = sorted(k for k, v in vars(module).items() if callable(v) and not k.startswith("_")
                        and getattr(v, "__module__", None) == module.__name__)
        have = f"; it has: {', '.join(public[:8])}" if public else ""
        raise EntryError(f"--entry {spec}: {target} has no function {name!r}{have}")
    if not callable(fn):
        raise EntryError(f"--entry {spec}: {name} is a {type(fn).__name__}, not a function")
    return UserFunction(fn, spec)


def describe_failure(spec: str, exc: BaseException) -> tuple[str, list[str]]:
    """The one line for a user's function that raised on the first image, and its traceback tail."""
    return (f"--entry {spec}: raised on the first image: {type(exc).__name__}: {_one_line(exc)}",
            _user_tail(exc))


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 300 else text[:297] + "..."
