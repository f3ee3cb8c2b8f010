"""`oddoctor lint PATH...`: find per-item Sessions, graph ops and model loads in Python code, without running it.

The work is done by :mod:`oddoctor.lint`; this module only parses options, prints and exits
(0 clean, 1 findings or a rule error, 2 usage error).
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Optional

import typer

from oddoctor.cli._common import EXIT_OK, JsonOpt, PluginOpt, choice_option, die

PathsArg = Annotated[Optional[list[str]], typer.Argument(metavar="PATH...",
                                                         help="Files, folders or .ipynb notebooks to lint.",
                                                         show_default=False)]
FormatOpt = Annotated[Optional[str], choice_option("--format", choices=("human", "json", "sarif"), show_default=False,
                                                   help="Output format: human (default), json or sarif.")]
DiffOpt = Annotated[bool, typer.Option("--diff", help="Print a patch from the tutorial's "
                                                      "run_inference_for_single_image to the LegacyDetector pattern.")]
JobsOpt = Annotated[Optional[int], typer.Option("--jobs", "-j", metavar="N",
                                                help="Processes for a big tree (default: the CPUs "
                                                     "this process may use; 1: one process). "
                                                     "The report is the same.", min=1)]
SelectOpt = Annotated[Optional[list[str]], typer.Option("--select", metavar="RULE",
                                                        help="Only these rule ids (or id prefixes). "
                                                             "Repeatable.")]


def lint(paths: PathsArg = None, json_out: JsonOpt = False, fmt: FormatOpt = None, diff: DiffOpt = False,
         select: SelectOpt = None, plugin: PluginOpt = None, jobs: JobsOpt = None) -> None:
    """Find per-item Sessions, graph ops and model loads in inference code (reads it, never runs it)."""
    from oddoctor.lint.engine import lint_paths
    from oddoctor.lint.source import LintInputError
    from oddoctor.manager import collect_lint_rules, make_plugin_manager

    if not paths:
        die("give at least one file or folder to lint")
    chosen = fmt or ("json" if json_out else "human")
    if chosen not in ("human", "json", "sarif"):
        die(f"--format {chosen}: use human, json or sarif")
    if json_out and chosen != "json":
        die("--json and --format sarif exclude each other")
    ps = make_plugin_manager(modules=plugin)
    rules = collect_lint_rules(ps)
    if select:
        rules = [r for r in rules if any(r.id == s or r.id.startswith(s.rstrip(".") + ".") or
                                         r.id.startswith(s) for s in select)]
        if not rules:
            die(f"--select {', '.join(select)}: no such rule")
    from oddoctor.lint.api import RuleError

    errors = [RuleError(e.plugin, "", e.message) for e in ps.errors]
    try:
        report = lint_paths(paths, rules, errors, workers=jobs)
    except LintInputError as e:
        die(str(e))
    if diff:
        from oddoctor.lint.diff import tutorial_patches

        patches = tutorial_patches(paths)
        sys.stdout.write("".join(patches))
        raise typer.Exit(1 if patches else EXIT_OK)
    from oddoctor.lint import render

    if chosen == "json":
        sys.stdout.write(json.dumps(render.to_json(report), indent=2) + "\n")
    elif chosen == "sarif":
        sys.stdout.write(json.dumps(render.to_sarif(report), indent=2) + "\n")
    else:
        sys.stdout.write(render.render_human(report))
    raise typer.Exit(report.exit_code())
