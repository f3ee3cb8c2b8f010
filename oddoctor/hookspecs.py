"""The hooks an oddoctor plugin may implement.

A plugin is a module (or object) registered under the ``oddoctor`` entry-point group::

    [project.entry-points.oddoctor]
    myplugin = "my_package.oddoctor_plugin"

and implements one or more hooks with :data:`oddoctor.hookimpl`. Built-in checks are plugins of
exactly this kind (``oddoctor_plugins.*``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Callable

import pluggy

if TYPE_CHECKING:
    from oddoctor.checks import Check
    from oddoctor.lint.api import LintRule

PROJECT = "oddoctor"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def oddoctor_checks() -> Iterable[Check]:  # type: ignore[empty-body]
    """Return the checks this plugin contributes.

    Cheap: no framework imports and no I/O. The checks themselves are pure functions of the
    snapshot (see :mod:`oddoctor.checks`); the runner calls them one at a time, each with a time
    budget, so that a check that raises or hangs becomes an ``error`` result naming this plugin.
    """


@hookspec
def oddoctor_facts() -> dict[str, Callable[[], Any]]:  # type: ignore[empty-body]
    """Return extra fact probes: ``{fact_name: probe}``.

    Each probe is called once by ``oddoctor collect`` / ``oddoctor check`` (never by
    ``check --from``) and returns a JSON-serialisable value, stored in ``snapshot.extra[fact_name]``
    for checks to read. A probe that raises is recorded in ``snapshot.probe_errors``; it never stops
    the collection.
    """


@hookspec
def oddoctor_lint_rules() -> Iterable[LintRule]:  # type: ignore[empty-body]
    """Return the lint rules this plugin contributes to ``oddoctor lint``.

    Each is an :class:`oddoctor.lint.api.LintRule` (made with ``@lint_rule``): an id ``lint.<kebab-slug>``, a
    bad and a good example, and ``check(module) -> hits``, a pure function of one parsed module of the linted
    tree (never importing or running it). Cheap: no framework imports. A rule that raises becomes an error
    naming this plugin; the other rules still run.
    """
