"""`oddoctor leak-test`: measure the TF1 OD API inference loop (tutorial pattern vs fixed) for leaks.

The command validates its options, calls :func:`oddoctor.leak.run_leak_test` and prints the report.
TensorFlow is never imported here: each mode runs in a fresh child process (``python -m oddoctor.leak.child``).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from oddoctor.cli._common import (
    JsonOpt,
    UsageError,
    check_plot_path,
    choice_option,
    finite_float,
    print_report,
    state,
    write_plot,
)
from oddoctor.leak.spec import MAX_ITERATIONS, MAX_SEED, MAX_TIMEOUT_S, MIN_ITERATIONS, MIN_TIMEOUT_S, REFRAMES
from oddoctor.leak.spec import MODES as _ONE_MODE
from oddoctor.render import clean

MODES = (*_ONE_MODE, "both")
DEFAULT_ITERATIONS = 30
# The demo's fixed loop: its RSS creeps for 20-25 measured images before it levels off, and a clean-clone CI run
# once ended its 30 undecided (the demo then says it did not show the fix). Its images take about 25 ms, so the
# cap costs a second at most; --until-decided stops as soon as every verdict is decided, as before.
DEMO_ITERATIONS = 60


def _validate(iterations: int, warmup: int, seed: int, timeout: float, memory_fraction: Optional[float]) -> None:
    """Every numeric option finite and in range, or one line and exit 2."""
    if iterations < MIN_ITERATIONS:
        raise UsageError(f"--iterations must be at least {MIN_ITERATIONS} for a trend, not {iterations}")
    if iterations > MAX_ITERATIONS:
        raise UsageError(f"--iterations must be at most {MAX_ITERATIONS:,} per mode (the verdicts use at most "
                         f"400 evenly spaced points), not {iterations:,}")
    if warmup < 0:
        raise UsageError(f"--warmup must be >= 0, not {warmup}")
    if warmup > MAX_ITERATIONS:
        raise UsageError(f"--warmup must be at most {MAX_ITERATIONS:,}, not {warmup:,}")
    if not 0 <= seed <= MAX_SEED:
        raise UsageError(f"--seed must be from 0 to {MAX_SEED}, not {seed}")
    if memory_fraction is not None and not 0.0 < memory_fraction <= 1.0:  # also refuses nan
        raise UsageError(f"--memory-fraction must be in (0, 1], not {memory_fraction}")
    finite_float(timeout, "--timeout", MIN_TIMEOUT_S, MAX_TIMEOUT_S)


def _check_entry(entry: str, mode: str) -> None:
    """``module:function`` or an existing ``file.py:function``, with a mode that runs it."""
    from oddoctor.leak.entry import is_file_target, split_entry

    try:
        target, _name = split_entry(entry)
    except ValueError as e:
        raise UsageError(str(e)) from None
    if is_file_target(target) and not Path(target).expanduser().is_file():
        raise UsageError(f"--entry {entry}: {target}: no such file")
    if mode == "fixed":
        raise UsageError("--entry replaces the legacy (tutorial) loop: use --mode legacy (your function only) "
                         "or --mode both (yours, then LegacyDetector as the baseline), not --mode fixed")


def _progress_printer(warmup: int, verbose: bool = False, iterations: int = 0) -> Any:
    from oddoctor.cli import live

    tty = live.enabled()  # a progress bar per mode on a terminal; a line every 10 images elsewhere
    current: dict[str, Any] = {"mode": "", "bar": None}

    def close_bar() -> None:
        if current["bar"] is not None:
            current["bar"].close()
            current["bar"] = None

    def on_event(event: dict[str, Any]) -> None:
        try:
            handle(event)
        except BaseException:
            close_bar()
            raise

    def handle(event: dict[str, Any]) -> None:
        kind = event["event"]
        if kind == "launch":
            current["mode"] = event["mode"]
            print(f"leak-test: {event['mode']}: starting a fresh process (TensorFlow import"
                  f"{' and demo model build' if event['demo_build'] else ''})...", file=sys.stderr, flush=True)
        elif kind == "finish":
            if verbose and event.get("stderr"):
                print(f"leak-test: {event['mode']}: its stderr (TensorFlow's log):\n  | "
                      + "\n  | ".join(clean(ln) for ln in event["stderr"]), file=sys.stderr, flush=True)
            error = event["error"]
            if error:
                print(f"leak-test: {event['mode']}: {clean(error.get('message'))}", file=sys.stderr, flush=True)
                if event["stderr_tail"] and error.get("kind") != "timeout" and not verbose:
                    print("  last lines of its stderr:\n    " + "\n    ".join(event["stderr_tail"][-6:]),
                          file=sys.stderr, flush=True)
        elif kind == "start":
            skipped = f" ({len(event['skipped'])} unreadable skipped)" if event.get("skipped") else ""
            print(f"leak-test: {event['mode']}: model {event['model']} ({event['model_nodes']} nodes), "
                  f"{event['images']} images{skipped}, pid {event['pid']}", file=sys.stderr, flush=True)
            if event.get("warmup_why"):
                print(f"leak-test: {event['mode']}: {event['warmup_why']}", file=sys.stderr, flush=True)
            if event.get("entry"):
                print(f"leak-test: {event['mode']}: your function {event['entry']}, called as "
                      f"{event.get('entry_call')}, replaces the tutorial loop", file=sys.stderr, flush=True)
            elif event.get("reframe"):
                why = f" ({event['reframe_why']})" if event.get("reframe_why") else ""
                print(f"leak-test: {event['mode']}: mask reframing: {event['reframe']}{why}",
                      file=sys.stderr, flush=True)
            if tty:  # after the lines above: the bar keeps the bottom line until the mode is done
                total = int(event.get("warmup") or warmup) + iterations
                current["bar"] = live.Bar(total, f"{event['mode']}: warm-up")
        elif kind == "iter":
            i = event["i"] + 1
            rss = event["rss_bytes"] / 1048576 if event.get("rss_bytes") else float("nan")
            phase = "warm-up" if event["warmup"] else "measure"
            line = (f"  {phase:7} {i:4}  {event['latency_ms']:8.1f} ms  graph {event['graph_nodes']:6} ops  "
                    f"RSS {rss:8.1f} MiB  sessions {event['sessions']}")
            if current["bar"] is not None:
                current["bar"].advance(f"{event['latency_ms']:.0f} ms, graph {event['graph_nodes']} ops, "
                                       f"RSS {rss:.0f} MiB, sessions {event['sessions']}",
                                       description=f"{current['mode']}: {phase}")
            elif i == 1 or i % 10 == 0:
                print(line, file=sys.stderr, flush=True)
        elif kind in ("done", "error"):
            close_bar()
        if kind == "done" and event.get("stopped") == "decided":
            print(f"leak-test: {current['mode']}: graph and memory verdicts decided after {event.get('images_run')} "
                  "images: stopped (--no-until-decided runs all -n)",
                  file=sys.stderr, flush=True)

    return on_event


def leak_test(
    model: Annotated[Optional[Path], typer.Argument(
        metavar="MODEL", help="frozen_inference_graph.pb, a TF1 SavedModel dir, or an OD API export dir.",
        show_default=False)] = None,
    iterations: Annotated[Optional[int], typer.Option(
        "--iterations", "-n", metavar="N", show_default=False,
        help=f"Measured images per mode (the most, with --until-decided). Default: {DEFAULT_ITERATIONS}; "
             f"{DEMO_ITERATIONS} with --demo, whose images take milliseconds.")] = None,
    warmup: Annotated[int, typer.Option(
        "--warmup", "-w", metavar="N",
        help="Images run first and left out of the verdicts (raised to one pass over the image sizes).")] = 3,
    mode: Annotated[str, choice_option("--mode", choices=MODES, help="Which loop to measure: the tutorial's "
                                       "(legacy), LegacyDetector's (fixed), or both.")] = "both",
    images: Annotated[Optional[Path], typer.Option(
        "--images", metavar="DIR",
        help="Folder of jpg/png (any size); default: seeded synthetic images of 4 sizes.")] = None,
    memory_fraction: Annotated[Optional[float], typer.Option(
        "--memory-fraction", metavar="F",
        help="per_process_gpu_memory_fraction for the sessions (0 < F <= 1).")] = None,
    allow_growth: Annotated[bool, typer.Option(
        "--allow-growth/--no-allow-growth", help="GPUOptions.allow_growth for the sessions.")] = True,
    json_out: JsonOpt = False,
    plot: Annotated[Optional[Path], typer.Option(
        "--plot", metavar="FILE.png", help="Write memory/graph/latency per image, both modes, to this PNG.")] = None,
    demo: Annotated[bool, typer.Option(
        "--demo", help="Use the built-in synthetic Mask R-CNN: see the leak and its fix in one command.")] = False,
    seed: Annotated[int, typer.Option("--seed", metavar="N", help="Seed of the demo model and synthetic images.")] = 0,
    timeout: Annotated[float, typer.Option("--timeout", metavar="SECONDS", help="Seconds allowed per mode.")] = 900.0,
    until_decided: Annotated[bool, typer.Option(
        "--until-decided/--no-until-decided",
        help="Stop a mode as soon as its graph and memory verdicts are decided (at least 6 measured images).")] = True,
    entry: Annotated[Optional[str], typer.Option(
        "--entry", metavar="MODULE:FUNCTION", help="Your per-image function, module:function or "
        "file.py:function, called as fn(image, graph) or fn(image): measured instead of the tutorial loop.",
        show_default=False)] = None,
    reframe: Annotated[str, choice_option(
        "--reframe", choices=REFRAMES, help="Mask-reframe ops of the legacy loop: auto (the OD API's when "
        "importable), od_api, oddoctor.")] = "auto",
    malloc_trim: Annotated[bool, typer.Option(
        "--malloc-trim/--no-malloc-trim",
        help="Hand the allocator's free pages back to the OS after each image, before the RSS is read "
             "(glibc), so the RSS shows what the loop holds, not what malloc keeps for later.")] = False,
    verbose: Annotated[bool, typer.Option(
        "--verbose", "-v", help="Show each child's stderr, TensorFlow's own log lines included (hidden by "
        "default; the last lines are shown when a child fails).")] = False,
) -> None:
    """Reproduce and measure the TF1 session/graph leak of OD API inference loops; exit 1 if it leaks."""
    from oddoctor.leak import LeakInputError, LeakSpec, render_text, run_leak_test

    if demo and model is not None:
        raise UsageError("give MODEL or --demo, not both")
    if not demo and model is None:
        raise UsageError("missing MODEL (a frozen_inference_graph.pb or SavedModel dir); or use --demo")
    if model is not None:
        from oddoctor_legacy_tf1.graph_io import ModelError, resolve_model

        try:  # no TensorFlow needed: a FIFO, a device or a missing file is refused before a child starts
            resolve_model(model)
        except ModelError as e:
            raise UsageError(clean(str(e))) from None
    if mode not in MODES:
        raise UsageError(f"--mode must be one of {', '.join(MODES)}, not {mode!r}")
    if reframe not in REFRAMES:
        raise UsageError(f"--reframe must be one of {', '.join(REFRAMES)}, not {reframe!r}")
    if entry is not None:
        _check_entry(entry, mode)
    if iterations is None:
        iterations = DEMO_ITERATIONS if demo else DEFAULT_ITERATIONS
    _validate(iterations, warmup, seed, timeout, memory_fraction)
    if images is not None and not images.is_dir():
        raise UsageError(f"--images {images}: " + ("not a directory" if images.exists() else "no such directory"))
    if plot is not None:
        check_plot_path(plot)
    if importlib.util.find_spec("tensorflow") is None:
        raise UsageError("leak-test needs TensorFlow in this Python: pip install 'oddoctor[tf]'")

    spec = LeakSpec(model=str(model) if model is not None else None, demo=demo, mode=mode, iterations=iterations,
                    warmup=warmup, images=str(images) if images else None, seed=seed, allow_growth=allow_growth,
                    memory_fraction=memory_fraction, timeout_s=timeout, until_decided=until_decided, entry=entry,
                    reframe=reframe, malloc_trim=malloc_trim)
    try:
        if verbose:
            os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"  # the children inherit it (they only set a default)
        report = run_leak_test(spec, on_event=_progress_printer(warmup, verbose, iterations))
    except LeakInputError as e:
        if state.debug and e.traceback:
            print("".join(e.traceback).rstrip(), file=sys.stderr, flush=True)
        raise UsageError(clean(str(e))) from None
    if plot is not None:
        from oddoctor.leak.plot import save_plot

        report.plot = write_plot(plot, lambda path: save_plot(report.runs, report, path), "leak-test")
    print_report(report, json_out, render_text)
    raise typer.Exit(report.exit_code)
