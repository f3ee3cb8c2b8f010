"""The plugin manager façade: the only module that touches ``pm.hook``.

Built-in checks (``oddoctor_plugins.*``) and third-party plugins load the same way, through the ``oddoctor``
entry-point group; whatever goes wrong while loading one plugin (an import error, a bad hook signature, a
hook name oddoctor does not define) is recorded against that plugin and the others still load.
"""

from __future__ import annotations

import functools
import importlib
import os
import re
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Optional, TypeVar

import pluggy

from oddoctor import hookspecs
from oddoctor.checks import Check
from oddoctor.interrupts import reraise_signal

if TYPE_CHECKING:
    from oddoctor.lint.api import LintRule

ENTRY_POINT_GROUP = "oddoctor"
T = TypeVar("T")


@dataclass
class PluginError:
    plugin: str
    message: str  # "RuntimeError: boom"
    stage: str  # "load", "oddoctor_checks", "oddoctor_facts"


@dataclass
class PluginSet:
    """A plugin manager plus whatever went wrong while loading plugins into it."""

    pm: pluggy.PluginManager
    errors: list[PluginError] = field(default_factory=list)
    #: The checks, once collected: each hook is called once per plugin set (a second call would record a
    #: failing plugin twice).
    checks: Optional[list[Check]] = None


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _failed(ps: PluginSet, plugin: str, error: BaseException, stage: str) -> None:
    """Record ``plugin``'s failure at ``stage``; unless it is a signal that Python wrapped on its way out of the
    plugin's code (a Ctrl-C in a ``__set_name__`` during its import): that one is raised, not the plugin's fault."""
    reraise_signal(error)
    ps.errors.append(PluginError(plugin, _describe(error), stage))


def make_plugin_manager(*, entry_points: bool = True, modules: list[str] | None = None) -> PluginSet:
    """A fresh plugin manager with the ``oddoctor`` entry points and ``modules`` (dotted names).

    Every entry point is loaded on its own: one that fails to import is recorded, not raised.
    """
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    ps = PluginSet(pm)
    if entry_points:
        seen: set[str] = set()
        for name, value in read_entry_points(ENTRY_POINT_GROUP):
            if name in seen:  # the same distribution seen twice on sys.path
                continue
            seen.add(name)
            try:
                plugin = _load(value)
            except (Exception, SystemExit) as e:  # noqa: BLE001 - a plugin failure (even sys.exit) is a result
                _failed(ps, name, e, "load")
                continue
            _register(ps, plugin, name)
    for name in modules or []:
        try:
            plugin = importlib.import_module(name)
        except (Exception, SystemExit) as e:  # noqa: BLE001 - a plugin failure (even sys.exit) is a result
            _failed(ps, name, e, "load")
            continue
        _register(ps, plugin, name)
    return ps


def read_entry_points(group: str) -> list[tuple[str, str]]:
    """``(name, value)`` of the entry points in ``group``, in the order ``importlib.metadata.entry_points(group=)``
    lists them (the first distribution of a name on ``sys.path`` wins), read from the ``*.dist-info`` and
    ``*.egg-info`` folders on ``sys.path`` without importing ``importlib.metadata``, which costs more than the
    rest of ``oddoctor check --from``'s start-up. Where distributions may come from elsewhere (a zip or an egg
    on ``sys.path``, an import hook with distributions of its own), ``importlib.metadata`` answers."""
    import importlib.machinery

    if any(getattr(f, "find_distributions", None) is not None and f is not importlib.machinery.PathFinder
           for f in sys.meta_path):
        return _entry_points_from_metadata(group)
    seen: set[str] = set()
    out: list[tuple[str, str]] = []
    for entry in sys.path:
        root = entry or "."
        try:
            children = os.listdir(root)
        except OSError:
            if os.path.isfile(root):  # a zip on sys.path
                return _entry_points_from_metadata(group)
            continue
        if root.lower().endswith(".egg"):
            return _entry_points_from_metadata(group)
        infos: dict[str, list[str]] = {}  # importlib.metadata's order: by name, each name where first listed
        for child in children:
            low = child.lower()
            if low.endswith((".dist-info", ".egg-info")):
                infos.setdefault(_dist_key(low.rpartition(".")[0].partition("-")[0]), []).append(child)
        for key, folders in infos.items():
            if key in seen:
                continue
            seen.add(key)
            out.extend(_group_in(os.path.join(root, folders[0], "entry_points.txt"), group))
    return out


def _dist_key(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def _group_in(path: str, group: str) -> list[tuple[str, str]]:
    """The ``name = value`` lines of section ``[group]`` of an ``entry_points.txt`` (none if unreadable)."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError):
        return []
    out: list[tuple[str, str]] = []
    section = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line.strip("[]")
        elif section == group and "=" in line:
            name, value = line.split("=", 1)
            out.append((name.strip(), value.strip()))
    return out


def _entry_points_from_metadata(group: str) -> list[tuple[str, str]]:
    import importlib.metadata

    return [(ep.name, ep.value) for ep in importlib.metadata.entry_points(group=group)]


_EP_VALUE = re.compile(r"(?P<module>[\w.]+)\s*(:\s*(?P<attr>[\w.]+)\s*)?((?P<extras>\[.*\])\s*)?$")


def _load(value: str) -> object:
    """What an entry point's ``module[:attr.attr]`` names (``importlib.metadata.EntryPoint.load``)."""
    match = _EP_VALUE.match(value)
    if match is None:
        raise ValueError(f"entry point {value!r} is not 'module' or 'module:attribute'")
    __import__(match.group("module"))  # not importlib.import_module: `python -X importtime` sees this one
    module = sys.modules[match.group("module")]
    return functools.reduce(getattr, filter(None, (match.group("attr") or "").split(".")), module)


def _register(ps: PluginSet, plugin: object, name: str) -> None:
    if ps.pm.get_plugin(name) is not None or ps.pm.is_registered(plugin):
        return
    try:
        ps.pm.register(plugin, name=name)
    except (Exception, SystemExit) as e:  # noqa: BLE001 - pluggy validates hook signatures at registration
        ps.errors.append(PluginError(name, _describe(e), "load"))
        return
    try:  # a misspelled hook (oddoctor_check for oddoctor_checks) is never called: say so, not nothing
        ps.pm.check_pending()
    except pluggy.PluginValidationError as e:
        ps.pm.unregister(plugin)
        ps.errors.append(PluginError(name, f"{_describe(e)} (oddoctor's hooks: {_hook_names()})", "load"))


def _hook_names() -> str:
    return ", ".join(sorted(n for n in vars(hookspecs) if n.startswith("oddoctor_")))


def _call_each(ps: PluginSet, hook_name: str) -> list[tuple[str, Any]]:
    """Call ``hook_name`` on each plugin by itself, so a failure is attributable."""
    out: list[tuple[str, Any]] = []
    hook = getattr(ps.pm.hook, hook_name)
    for impl in hook.get_hookimpls():
        name = ps.pm.get_name(impl.plugin) or repr(impl.plugin)
        try:
            out.append((name, impl.function()))
        except (Exception, SystemExit) as e:  # noqa: BLE001 - a plugin failure (even sys.exit) is a result
            _failed(ps, name, e, hook_name)
    return out


def _collect(ps: PluginSet, hook_name: str, cls: type[T], what: str) -> list[T]:
    """Every ``cls`` item the plugins return from ``hook_name``, in registration order, each tagged with its
    plugin's name; a hook that raises, an item of another type and a duplicate id are errors in ``ps.errors``."""
    items_out: list[T] = []
    seen: dict[str, str] = {}
    for plugin, returned in _call_each(ps, hook_name):
        try:
            items = list(returned or [])
        except (Exception, SystemExit) as e:  # noqa: BLE001 - a plugin failure (even sys.exit) is a result
            _failed(ps, plugin, e, hook_name)
            continue
        for item in items:
            if not isinstance(item, cls):
                ps.errors.append(PluginError(
                    plugin, f"returned {type(item).__name__}, not an oddoctor {cls.__name__}", hook_name))
                continue
            item_id = item.id  # type: ignore[attr-defined]
            if item_id in seen:
                ps.errors.append(PluginError(
                    plugin, f"{what} id {item_id!r} is already registered by {seen[item_id]}", hook_name))
                continue
            seen[item_id] = plugin
            item.plugin = plugin  # type: ignore[attr-defined]
            items_out.append(item)
    return items_out


def collect_checks(ps: PluginSet) -> list[Check]:
    """Every registered check, in registration order, each tagged with its plugin's name (collected once)."""
    if ps.checks is None:
        ps.checks = _collect(ps, "oddoctor_checks", Check, "check")
    return list(ps.checks)


def collect_fact_probes(ps: PluginSet) -> list[tuple[str, str, Callable[[], Any]]]:
    """``(plugin, fact_name, probe)`` for every fact probe plugins contribute."""
    probes: list[tuple[str, str, Callable[[], Any]]] = []
    for plugin, returned in _call_each(ps, "oddoctor_facts"):
        if not isinstance(returned, dict):
            ps.errors.append(PluginError(plugin, "oddoctor_facts must return a dict", "oddoctor_facts"))
            continue
        for fact, probe in returned.items():
            probes.append((plugin, str(fact), probe))
    return probes


def collect_lint_rules(ps: PluginSet) -> list[LintRule]:
    """Every registered lint rule, each tagged with its plugin's name; failures are in ``ps.errors``."""
    from oddoctor.lint.api import LintRule

    return _collect(ps, "oddoctor_lint_rules", LintRule, "lint rule")
