"""`oddoctor check`, `oddoctor collect` and `oddoctor checks`.

Importing this module does not import Typer (``main._fast_check`` runs ``check`` without it): option
annotations are strings that Typer reads when it builds the app, and ``typer`` here imports on first use.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

from oddoctor.cli import _common
from oddoctor.cli._common import UsageError, check_choice, emit_json, finite_float, parse_size, use_color

if TYPE_CHECKING:
    import typer

    from oddoctor.collect import TfProbe
    from oddoctor.manager import PluginSet
    from oddoctor.snapshot import Snapshot
else:
    from oddoctor.cli._common import typer_on_demand as typer


#: ``check --format`` and ``collect --format``.
CHECK_FORMATS = ("human", "json", "markdown")
COLLECT_FORMATS = ("json", "markdown")


def _output_format(json_out: bool, output_format: Optional[str], choices: tuple[str, ...]) -> str:
    """The format that ``--json`` / ``--format`` ask for; both naming different ones is a usage error."""
    if output_format is None:
        return "json" if json_out else choices[0]
    output_format = check_choice("--format", output_format, choices)
    if json_out and output_format != "json":
        raise UsageError(f"--json and --format {output_format} contradict each other: give one")
    return output_format


def _split(values: Optional[list[str]]) -> Optional[list[str]]:
    if not values:
        return None
    return [v.strip() for item in values for v in item.split(",") if v.strip()]


def _known_ids(ps: PluginSet, ids: Optional[list[str]], option: str) -> None:
    """Every --only/--skip entry must name a check (or an id prefix): a CI gate must never pass because a typo
    selected nothing."""
    if not ids:
        return
    from oddoctor.manager import collect_checks
    from oddoctor.runner import select

    registered = collect_checks(ps)
    plugin_ids = [f"plugin.{e.plugin}" for e in ps.errors]
    for entry in ids:
        if not select(registered, only=[entry]) and not any(p == entry or p.startswith(entry.rstrip(".") + ".")
                                                             for p in plugin_ids):
            raise UsageError(f"{option} {entry}: no check has this id or id prefix (oddoctor checks lists them)")


def _progress_fn():
    if sys.stderr.isatty():
        return lambda msg: print(f"oddoctor: {msg} ...", file=sys.stderr, flush=True)
    return None


def check(
    from_file: Annotated[
        Optional[Path],
        typer.Option("--from", metavar="FILE",
                     help="Diagnose a snapshot file written by `oddoctor collect` (- for stdin) "
                          "instead of this machine.", dir_okay=False),
    ] = None,
    json_out: _common.JsonOpt = False,
    output_format: Annotated[
        Optional[str],
        _common.choice_option("--format", choices=CHECK_FORMATS, show_default=False,
                              help="human (default), json (as --json) or markdown: a redacted report to paste into "
                                   "a bug, the facts with the diagnosis under them."),
    ] = None,
    color: _common.ColorOpt = None,
    verbose: _common.VerboseOpt = False,
    strict: _common.StrictOpt = False,
    only: _common.IdsOpt = None,
    skip: _common.IdsOpt = None,
    plugin: _common.PluginOpt = None,
    min_vram: Annotated[
        Optional[str], typer.Option("--min-vram", metavar="SIZE",
                                    help="Free GPU memory the job needs, e.g. 8GiB or 500MB.")
    ] = None,
    cpu: Annotated[
        bool, typer.Option("--cpu", help="Diagnose for CPU-only use: GPU checks are skipped, not failed.")
    ] = False,
    gpu: Annotated[
        bool, typer.Option("--gpu", help="A GPU is expected here: a machine without one fails instead of being "
                           "judged a CPU machine.")
    ] = False,
    log: Annotated[
        Optional[Path], typer.Option("--log", metavar="FILE",
                                     help="A training/inference log or traceback you saw (- for stdin): "
                                          "TensorFlow's own words, added to the facts as evidence.")
    ] = None,
    tf: Annotated[
        Optional[str], typer.Option("--tf", metavar="VERSION",
                                    help="Judge the machine for this TensorFlow release (e.g. 2.15) instead of the "
                                         "installed one: before an install or an upgrade.")
    ] = None,
    tf_timeout: _common.TfTimeoutOpt = 60.0,
    model: Annotated[
        Optional[Path], typer.Option("--model", metavar="MODEL",
                                     help="Judge free GPU memory against this model's need at --batch "
                                          "and --image-size (measured now with `oddoctor budget`'s method).")
    ] = None,
    batch: Annotated[Optional[int], typer.Option("--batch", metavar="N",
                                                 help="Batch size for --model / --budget-from.")] = None,
    image_size: Annotated[
        Optional[str], typer.Option("--image-size", metavar="WxH",
                                    help="Image size WIDTHxHEIGHT for --model / --budget-from.")
    ] = None,
    budget_from: Annotated[
        Optional[Path], typer.Option("--budget-from", metavar="FILE",
                                     help="Use the figures of `oddoctor budget --json` output "
                                          "instead of measuring --model.", dir_okay=False)
    ] = None,
    active: _common.ActiveOpt = False,
) -> None:
    """Diagnose this machine (or a snapshot) before training or serving.

    Exit 0: nothing failed. 1: a check failed or errored (--strict: or warned). 2: bad usage or input.
    """
    from oddoctor.checks import Context

    finite_float(tf_timeout, "--tf-timeout", 1.0, 3600.0)
    fmt = _output_format(json_out, output_format, CHECK_FORMATS)
    if color is not None:
        color = check_choice("--color", color, _common.COLOR_CHOICES)
    if cpu and gpu:
        raise UsageError("--cpu and --gpu contradict each other: give one")
    if active and from_file is not None:
        raise UsageError("--active runs kernels on this machine: it does not go with --from (collect the snapshot "
                         "with `oddoctor collect --active`)")
    if log is not None and str(log) == "-" and from_file is not None and str(from_file) == "-":
        raise UsageError("--from - and --log - both want stdin: give one of them as a file")
    ctx = Context(min_vram_bytes=parse_size(min_vram) if min_vram else None, cpu_only=cpu, expect_gpu=gpu,
                  target_tf=_tf_release(tf) if tf else None)
    user_log = read_log(log) if log is not None else None
    model_budget = _model_budget(model, batch, image_size, budget_from, tf_timeout)
    tf_run = None
    if from_file is None:  # TensorFlow's import is the slow part: its child starts before anything else loads
        from oddoctor.cli import live
        from oddoctor.collect import start_tf_probe

        # On a terminal a spinner names the stage (below); elsewhere the plain progress lines, as before.
        tf_run = start_tf_probe(timeout_s=tf_timeout, progress=None if live.enabled() else _progress_fn(),
                                kernels=active)
    try:
        from oddoctor.manager import make_plugin_manager
        from oddoctor.render import render_human, render_json
        from oddoctor.runner import run_checks

        ps = make_plugin_manager(modules=plugin)
    except BaseException:
        if tf_run is not None:
            tf_run.cancel()
        raise
    if from_file is not None:
        from oddoctor.snapshot import SnapshotError, load_snapshot

        try:
            snap = load_snapshot(from_file)
        except SnapshotError as e:
            raise UsageError(str(e)) from None
        origin = f"snapshot {from_file}"
    else:
        snap = _collect_live(ps, tf_timeout, active, tf_run)
        origin = "this machine"
    if user_log is not None:
        snap.user_log = [*snap.user_log, *user_log]
        origin += f" with log {log}"
    if model_budget is not None:
        from oddoctor.budget.facts import FACT

        snap.extra[FACT] = model_budget
    if ctx.target_tf:
        origin += f", judged for TensorFlow {ctx.target_tf} (--tf)"
    only_ids, skip_ids = _split(only), _split(skip)
    _known_ids(ps, only_ids, "--only")
    _known_ids(ps, skip_ids, "--skip")
    report = run_checks(ps, snap, ctx, only=only_ids, skip=skip_ids, isolate=True)
    if fmt == "json":
        render_json(report, strict=strict, origin=origin)
    elif fmt == "markdown":
        from oddoctor.report_md import render_markdown

        sys.stdout.write(render_markdown(report, origin=origin, strict=strict))
        sys.stdout.flush()
    else:
        render_human(report, verbose=verbose, strict=strict, color=use_color(sys.stdout, color), origin=origin,
                     grouped=not only_ids)  # the checks asked for by name get a line each
    code = report.exit_code(strict=strict)
    if report.hung:  # a check thread is stuck: do not let it block interpreter exit
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    raise SystemExit(code)  # not typer.Exit: the fast path runs without Typer, and Typer passes this on as is


def _collect_live(ps: PluginSet, tf_timeout: float, active: bool, tf_run: Optional[TfProbe] = None) -> Snapshot:
    """This machine's snapshot, with a spinner naming the stage on a terminal (plain progress lines elsewhere)."""
    from oddoctor.cli import live
    from oddoctor.collect import collect_snapshot

    what = "importing TensorFlow" + (" and running kernels on each device" if active else "")
    with live.spinner(f"{what} in a child process (timeout {tf_timeout:g} s)") as stage:
        return collect_snapshot(ps, tf_timeout_s=tf_timeout, progress=live.say_with(stage, _progress_fn()),
                                tf=tf_run, kernels=active)


def _model_budget(model: Optional[Path], batch: Optional[int], image_size: Optional[str],
                  budget_from: Optional[Path], timeout: float) -> Optional[dict]:
    """The ``model_budget`` fact for ``--model``/``--budget-from`` (measured or read), or None without them."""
    if model is None and budget_from is None:
        if batch is not None or image_size is not None:
            raise UsageError("--batch and --image-size go with --model or --budget-from")
        return None
    if batch is None or image_size is None:
        raise UsageError("--model / --budget-from need --batch N and --image-size WIDTHxHEIGHT")
    from oddoctor.budget import facts
    from oddoctor.budget.spec import MAX_BATCH, parse_image_sizes

    if not 1 <= batch <= MAX_BATCH:
        raise UsageError(f"--batch must be from 1 to {MAX_BATCH}, not {batch}")
    try:
        sizes = parse_image_sizes(image_size)
    except ValueError as e:
        raise UsageError(str(e)) from None
    if len(sizes) != 1:
        raise UsageError(f"--image-size {image_size}: give one size")
    (height, width), = sizes
    if budget_from is not None:
        try:
            fact = facts.read_budget_file(budget_from)
        except facts.BudgetFactError as e:
            raise UsageError(str(e)) from None
    else:
        from oddoctor.cli.budget import parse_model

        path = parse_model(model)  # type: ignore[arg-type]
        progress = _progress_fn()
        if progress is not None:
            progress(f"measuring {path} at batches 1, 2, 4 ({width}x{height}), one fresh process each")
        from oddoctor.budget.api import BudgetInputError

        try:
            fact = facts.measure_fact(path, height, width, timeout_s=max(timeout, 120.0))
        except BudgetInputError as e:
            raise UsageError(f"--model {model}: {e}") from None
    return facts.with_request(fact, batch, height, width)


def _tf_release(text: str) -> str:
    """``--tf``: a TensorFlow release of the tested-build tables (2.15, 2.15.1, 1.15); else a usage error."""
    from oddoctor import compat
    from oddoctor.versions import parse_version

    v = parse_version(text)
    rows = [b for os_ in compat.OSES for b in compat.builds(os_)]
    if v is None or text.strip().count(".") < 1 or not any(compat.tf_build_for(v, os_) for os_ in compat.OSES):
        series = sorted({b.series for b in rows}, key=lambda s: tuple(int(x) for x in s.split(".")))
        raise UsageError(f"--tf {text}: not a TensorFlow release in the tested-build tables "
                         f"({series[0]} to {series[-1]}); give e.g. --tf 2.15")
    return str(v)


#: A log longer than this keeps its last lines: the error a user pastes is at the end.
LOG_MAX_LINES = 20000


#: A log larger than this is refused rather than read into memory (keep the part with the error).
LOG_MAX_BYTES = 64 * 2**20


def read_log(path: Path) -> list[str]:
    """The lines of a log file (``-``: stdin), decoded leniently; a bad path is a usage error."""
    from oddoctor.fsutil import InputError, read_input

    try:
        text = read_input(path, what="a log file", max_bytes=LOG_MAX_BYTES).decode("utf-8", errors="replace")
    except InputError as e:
        raise UsageError(f"--log {e}") from None
    lines = [ln.rstrip("\r") for ln in text.split("\n")]
    lines = [ln for ln in lines if ln.strip()]
    if not lines:
        raise UsageError(f"--log {path}: the log is empty")
    return lines[-LOG_MAX_LINES:]


def collect(
    output: Annotated[
        Optional[Path], typer.Option("--output", "-o", metavar="FILE",
                                     help="Write the snapshot here (default: stdout).",
                                     dir_okay=False)
    ] = None,
    plugin: _common.PluginOpt = None,
    tf_timeout: _common.TfTimeoutOpt = 60.0,
    active: _common.ActiveOpt = False,
    output_format: Annotated[
        str,
        _common.choice_option("--format", choices=COLLECT_FORMATS,
                              help="json: the snapshot, for `check --from`; markdown: a redacted report to paste "
                                   "into a bug (the facts, then the checks' diagnosis)."),
    ] = "json",
) -> None:
    """Write a JSON snapshot of this machine's facts, to diagnose here or elsewhere with `check --from`.

    With --format markdown, a report to paste into a bug instead: the facts, redacted, and the diagnosis.
    """
    from oddoctor.manager import make_plugin_manager

    finite_float(tf_timeout, "--tf-timeout", 1.0, 3600.0)
    fmt = _output_format(False, output_format, COLLECT_FORMATS)
    ps = make_plugin_manager(modules=plugin)
    snap = _collect_live(ps, tf_timeout, active)
    if fmt == "markdown":
        from oddoctor.checks import Context
        from oddoctor.report_md import render_markdown
        from oddoctor.runner import run_checks

        report = run_checks(ps, snap, Context(), isolate=True)
        text = render_markdown(report, origin="this machine")
    else:
        report, text = None, snap.to_json()
    if output is None:
        sys.stdout.write(text)
    else:
        from oddoctor.fsutil import atomic_write_text

        try:
            atomic_write_text(output, text)
        except OSError as e:
            raise UsageError(f"cannot write {output}: {e.strerror or e}") from None
        print(f"oddoctor: {'report' if fmt == 'markdown' else 'snapshot'} written to {output}", file=sys.stderr)
    if report is not None and report.hung:  # a check thread is stuck: do not let it block interpreter exit
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


def list_checks(json_out: _common.JsonOpt = False, plugin: _common.PluginOpt = None) -> None:
    """List every registered check: id, plugin, description."""
    from oddoctor.manager import collect_checks, make_plugin_manager

    ps = make_plugin_manager(modules=plugin)
    checks = collect_checks(ps)
    if json_out:
        emit_json({
            "schema_version": 1,
            "kind": "oddoctor.checks",
            "checks": [{"id": c.id, "plugin": c.plugin, "title": c.title, "description": c.description,
                        "timeout_s": c.timeout_s} for c in checks],
            "plugin_errors": [{"plugin": e.plugin, "stage": e.stage, "message": e.message} for e in ps.errors],
        })
    else:
        width = max([len(c.id) for c in checks] + [8])
        pw = max([len(c.plugin) for c in checks] + [6])
        from oddoctor.render import clean

        for c in checks:
            print(f"{clean(c.id).ljust(width)}  {clean(c.plugin).ljust(pw)}  {clean(c.description)}")
        for e in ps.errors:
            print(f"oddoctor: plugin {clean(e.plugin)} failed in {e.stage}: {clean(e.message)}", file=sys.stderr)
    if ps.errors:
        raise typer.Exit(1)


