"""`oddoctor budget`: measure a model's peak memory at a few batch and image sizes, fit, predict the largest batch.

The command validates its options, calls :func:`oddoctor.budget.run_budget` and prints the report. TensorFlow is
never imported here: each configuration runs in a fresh child process (``python -m oddoctor.budget.child``).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from oddoctor.cli._common import (
    JsonOpt,
    UsageError,
    check_plot_path,
    finite_float,
    parse_size,
    print_report,
    write_plot,
)
from oddoctor.render import clean


def _progress(event: dict[str, Any]) -> None:
    if event["event"] == "start":
        size = "from --images" if event["height"] == 0 else f"at {event['width']}x{event['height']}"
        print(f"budget: {event['point']}/{event['of']}: batch {event['batch']} {size} in a fresh process ...",
              file=sys.stderr, flush=True)
    elif event["event"] == "point" and event["status"] != "ok":
        print(f"budget:   {event['status']}: {clean(event.get('error') or '')}", file=sys.stderr, flush=True)


def parse_model(model: Path) -> str:
    """MODEL must be something the loader can read (checked without TensorFlow); else a usage error."""
    from oddoctor_legacy_tf1.graph_io import ModelError, resolve_model

    try:
        resolve_model(model)
    except ModelError as e:
        raise UsageError(clean(str(e))) from None
    return str(model)


def parse_grid(batch: str, image_size: Optional[str]) -> tuple[tuple[int, ...], Optional[tuple[tuple[int, int], ...]]]:
    """``--batch`` and ``--image-size`` as the spec takes them, or a usage error naming the bad item."""
    from oddoctor.budget.spec import parse_batches, parse_image_sizes

    try:
        return parse_batches(batch), parse_image_sizes(image_size) if image_size is not None else None
    except ValueError as e:
        raise UsageError(str(e)) from None


def budget(
    model: Annotated[Path, typer.Argument(
        metavar="MODEL",
        help="A TF1 frozen graph (.pb), a TF1 SavedModel, or a TF2 SavedModel (e.g. what `oddoctor migrate` "
             "wrote).", show_default=False)],
    batch: Annotated[str, typer.Option("--batch", metavar="N,...",
                                       help="Batch sizes to measure, comma-separated.")] = "1,2,4",
    image_size: Annotated[Optional[str], typer.Option(
        "--image-size", metavar="WxH,...",
        help="Image sizes WIDTHxHEIGHT to measure, comma-separated [default: 640x480,1024x768].",
        show_default=False)] = None,
    images: Annotated[Optional[Path], typer.Option(
        "--images", metavar="DIR", help="Measure with the images of this folder (each batch: its first N) instead of "
        "--image-size.")] = None,
    vram: Annotated[Optional[str], typer.Option(
        "--vram", metavar="SIZE",
        help="Memory to fit into, e.g. 8GiB [default: the free memory of each visible GPU].")] = None,
    margin: Annotated[float, typer.Option("--margin", metavar="M",
                                          help="Share of the memory kept free (0 <= M < 1).")] = 0.10,
    timeout: Annotated[float, typer.Option("--timeout", metavar="SECONDS",
                                           help="Seconds allowed per configuration.")] = 300.0,
    repeats: Annotated[int, typer.Option("--repeats", metavar="N",
                                         help="Measured calls per configuration (the peak of them).")] = 3,
    memory_limit: Annotated[Optional[str], typer.Option(
        "--memory-limit", metavar="SIZE",
        help="Cap what each child may allocate after loading the model (RLIMIT_AS, Linux), "
        "e.g. 200MB: configurations past it are measured as 'does not fit'.")] = None,
    cpu: Annotated[bool, typer.Option("--cpu", help="Measure on the CPU even where a GPU is visible.")] = False,
    json_out: JsonOpt = False,
    plot: Annotated[Optional[Path], typer.Option("--plot", metavar="FILE.png",
                                                 help="Write memory vs batch (points and fit) to this "
                                                 "PNG.")] = None,
) -> None:
    """Measure how much memory a model needs per batch and image size, and the largest batch that fits."""
    from oddoctor.budget.spec import MAX_REPEATS, MAX_TIMEOUT_S, MIN_TIMEOUT_S

    model_path = parse_model(model)
    batches, sizes = parse_grid(batch, image_size)
    if images is not None and image_size is not None:
        raise UsageError("give --image-size or --images, not both")
    if images is not None and not images.is_dir():
        raise UsageError(f"--images {images}: " + ("not a directory" if images.exists() else "no such directory"))
    finite_float(margin, "--margin", 0.0, 0.99)
    finite_float(timeout, "--timeout", MIN_TIMEOUT_S, MAX_TIMEOUT_S)
    if not 1 <= repeats <= MAX_REPEATS:
        raise UsageError(f"--repeats must be from 1 to {MAX_REPEATS}, not {repeats}")
    budget_bytes = parse_size(vram) if vram is not None else None
    if budget_bytes is not None and budget_bytes <= 0:
        raise UsageError(f"--vram {vram}: give a size above zero")
    limit = parse_size(memory_limit) if memory_limit is not None else None
    if limit is not None and limit <= 0:
        raise UsageError(f"--memory-limit {memory_limit}: give a size above zero")
    if plot is not None:
        check_plot_path(plot)
    if importlib.util.find_spec("tensorflow") is None:
        raise UsageError("budget needs TensorFlow in this Python: pip install 'oddoctor[tf]'")
    from oddoctor.budget import BudgetInputError, BudgetSpec, render_text, run_budget

    spec = BudgetSpec(model=model_path, batches=batches, images=str(images) if images else None,
                      timeout_s=timeout, repeats=repeats, memory_limit=limit, budget=budget_bytes, margin=margin,
                      cpu=cpu)
    if sizes:
        spec = dataclasses.replace(spec, sizes=sizes)
    gpu_free, why = None, ""
    if budget_bytes is None and not cpu:
        from oddoctor.budget.gpus import visible_gpu_free

        gpu_free, why = visible_gpu_free()
    try:
        report = run_budget(spec, on_event=_progress, gpu_free=gpu_free, no_gpu_why=why)
    except BudgetInputError as e:
        raise UsageError(clean(str(e))) from None
    if plot is not None:
        from oddoctor.budget.plot import save_plot

        report.plot = write_plot(plot, lambda path: save_plot(report, path), "budget")
    print_report(report, json_out, render_text)
    raise typer.Exit(report.exit_code)
