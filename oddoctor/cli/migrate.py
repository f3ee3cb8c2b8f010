"""`oddoctor migrate`: a TF1 frozen graph or SavedModel to a TF2 SavedModel, proven equal.

TensorFlow is imported only when the command runs (inside ``oddoctor.migrate.pipeline``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from oddoctor.cli._common import EXIT_FAIL, EXIT_OK, JsonOpt, UsageError, die, emit_json, finite_float, progress

MAX_TF_TIMEOUT_S = 3600.0  # as `oddoctor check --tf-timeout`


def _human(report: dict[str, Any], out: Path) -> None:
    from oddoctor.migrate.emit import BEAM_FILE, RUNNER_FILE

    parity = report["parity"]
    print(f"migrated {report['source']['path']} -> {out}/")
    print(f"  saved_model/      TF2 SavedModel, signature serving_default({report['input']['key']}: uint8)")
    print(f"  {RUNNER_FILE}  standalone runner: python {out / RUNNER_FILE} IMAGES_DIR")
    print(f"  {BEAM_FILE}  the same on Apache Beam: python {out / BEAM_FILE} 'IMAGES_DIR/*' --output PREFIX")
    print("  README.md, migration.json")
    print(f"parity on {parity['images']} image(s), tolerance {parity['tolerance']:g}: "
          + ", ".join(f"{k} {v:.2g}" for k, v in parity["max_abs_diff"].items()))


def migrate(
    model: Annotated[Path, typer.Argument(
        metavar="MODEL", help="TF1 Object Detection export: frozen_inference_graph.pb, a TF1 SavedModel directory, "
             "or the export directory holding either.", show_default=False)],
    out: Annotated[Path, typer.Option(
        "--out", "-o", metavar="DIR", help="Directory to write (saved_model/, run_inference.py, README.md, "
                            "migration.json). Built next to it and renamed into place.",
        show_default=False)],
    force: Annotated[bool, typer.Option("--force", help="Replace --out if it already exists.")] = False,
    inputs: Annotated[Optional[str], typer.Option(
        "--inputs", metavar="TENSOR", help="Image input tensor of the legacy graph (default image_tensor).")] = None,
    outputs: Annotated[Optional[list[str]], typer.Option(
        "--outputs", metavar="KEY=TENSOR,...", help="Outputs as KEY=TENSOR (comma-separated or repeated), e.g. "
                          "detection_boxes=boxes:0. Default: the Object Detection API names.")] = None,
    images: Annotated[Optional[Path], typer.Option(
        "--images", metavar="DIR", help="Folder of jpg/png images for the parity check (default: 4 seeded "
                         "synthetic images).")] = None,
    tolerance: Annotated[float, typer.Option(
        "--tolerance", metavar="DIFF", help="Largest absolute difference allowed per output between the legacy "
                            "Session and the SavedModel.")] = 1e-4,
    tf_timeout: Annotated[float, typer.Option(
        "--tf-timeout", metavar="SECONDS", help="Seconds a child process may take to import TensorFlow, checked before "
                             "anything else (a TensorFlow that hangs or crashes fails here, with a message).")] = 60.0,
    json_out: JsonOpt = False,
    verbose: Annotated[bool, typer.Option(
        "--verbose", "-v", help="Let TensorFlow's own C++ log lines through to the terminal (hidden by default: "
        "TF_CPP_MIN_LOG_LEVEL=2, or 3 on a Linux machine without an NVIDIA device).")] = False,
) -> None:
    """Migrate a TF1 frozen graph to a TF2 SavedModel, prove it equal, emit a fixed TF2 runner."""
    from oddoctor.migrate import (
        MigrateInputError,
        OutputDirError,
        ParityError,
        TensorFlowUnusable,
        parse_outputs,
    )
    from oddoctor.migrate import migrate as run_migration
    from oddoctor.migrate.pipeline import MAX_TOLERANCE
    from oddoctor.render import clean

    if verbose:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"  # before TensorFlow is imported (the pipeline only sets a default)
    from oddoctor.cli import live

    try:
        finite_float(tolerance, "--tolerance", 0.0, MAX_TOLERANCE)
        finite_float(tf_timeout, "--tf-timeout", 1.0, MAX_TF_TIMEOUT_S)
        with live.spinner(f"migrating {model}") as stage:
            def say(message: str) -> None:  # on a terminal each line stays and the spinner names the stage
                if stage is None:
                    progress(message)
                else:
                    stage.log(message)
                    stage.update(message.strip())

            report = run_migration(
                model, out, force=force, input_name=inputs, outputs=parse_outputs(outputs),
                images_dir=images, tolerance=tolerance, progress=say, tf_timeout=tf_timeout, quiet_tf=not verbose,
            )
    except (MigrateInputError, OutputDirError, UsageError) as e:
        die(clean(str(e)))  # names from the model are data: a newline in one must not split the line
    except TensorFlowUnusable as e:
        die(clean(str(e)), EXIT_FAIL)
    except ParityError as e:
        progress(f"oddoctor: parity failed: {clean(str(e))}")
        if json_out:
            emit_json({**e.report, "ok": False, "error": str(e)})
        raise typer.Exit(EXIT_FAIL) from None
    if json_out:
        emit_json({**report, "ok": True})
    else:
        _human(report, out)
    raise typer.Exit(EXIT_OK)
