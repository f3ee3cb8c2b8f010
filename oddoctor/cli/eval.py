"""`oddoctor eval`: COCO mAP of a migrated model and of its legacy TF1 Session on the user's annotated images.

TensorFlow is imported only when the command runs (the legacy Session, inside ``oddoctor.migrate.evaluate``);
the migrated model runs in a child process through its own emitted ``run_inference.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from oddoctor.cli._common import EXIT_FAIL, EXIT_OK, JsonOpt, UsageError, die, emit_json, finite_float, progress

SHOWN = ("AP", "AP50", "AP75", "AR100")


def _fmt(value: Optional[float]) -> str:
    if value is None:
        return "-"
    return "n/a" if value < 0 else f"{value:.3f}"


def _human(report: dict[str, Any]) -> None:
    legacy = "legacy" in report
    print(f"COCO mAP on {report['images']} image(s) of {report['coco_gt']} "
          f"(score >= {report['score_threshold']:g}, full-size images)")
    head = f"  {'':<12}{'migrated':>10}" + (f"{'legacy TF1':>12}{'diff':>9}" if legacy else "")
    print(head)
    for iou_type in report["iou_types"]:
        for stat in SHOWN:
            mig = report["migrated"][iou_type][stat]
            line = f"  {iou_type + ' ' + stat:<12}{_fmt(mig):>10}"
            if legacy and iou_type in report["legacy"]:
                old = report["legacy"][iou_type][stat]
                line += f"{_fmt(old):>12}{_fmt(abs(mig - old)) if min(mig, old) >= 0 else '-':>9}"
            print(line)
    if "segm" not in report["iou_types"]:
        print("  (no segm: the ground truth or the model has no masks)")
    if report["skipped"]:
        print(f"  skipped (unreadable): {', '.join(report['skipped'])}")
    if legacy:
        verdict = "same accuracy" if report["passed"] else "ACCURACY CHANGED"
        print(f"{verdict}: largest difference {report['max_abs_diff']:.4f} (tolerance {report['tolerance']:g})")


def eval_command(
    migrated: Annotated[Path, typer.Argument(
        metavar="DIR", help="Folder written by `oddoctor migrate` (saved_model/, run_inference.py, migration.json).",
        show_default=False)],
    images: Annotated[Path, typer.Option(
        "--images", metavar="DIR", help="Folder of the annotated images (matched to --coco-gt by file name).",
        show_default=False)],
    coco_gt: Annotated[Path, typer.Option(
        "--coco-gt", metavar="FILE", help="COCO annotations JSON of those images (instances_*.json format).",
        show_default=False)],
    legacy: Annotated[Optional[Path], typer.Option(
        "--legacy", metavar="MODEL",
        help="The legacy TF1 model to compare with (default: the one migration.json names).")] = None,
    no_legacy: Annotated[bool, typer.Option("--no-legacy", help="Only the migrated model's mAP.")] = False,
    score_threshold: Annotated[float, typer.Option(
        "--score-threshold", metavar="SCORE",
        help="Detections scoring below this are left out (default 0: all of them, "
                                  "as the OD API's COCO evaluation).")] = 0.0,
    mask_threshold: Annotated[float, typer.Option(
        "--mask-threshold", metavar="PROB", help="Mask probability above which a pixel belongs to the object.")] = 0.5,
    recursive: Annotated[bool, typer.Option("--recursive", help="Also look in sub-folders of --images.")] = False,
    tolerance: Annotated[float, typer.Option(
        "--tolerance", metavar="DIFF", help="Largest difference of any COCO number between migrated and legacy that "
                            "still passes (exit 1 above it).")] = 0.01,
    timeout: Annotated[float, typer.Option(
        "--timeout", metavar="SECONDS", help="Seconds the migrated runner may take.")] = 3600.0,
    json_out: JsonOpt = False,
) -> None:
    """COCO mAP (bbox, segm) of a migrated model and of its legacy TF1 Session, side by side."""
    from oddoctor.migrate import MigrateInputError, TensorFlowUnusable
    from oddoctor.migrate.evaluate import EvalInputError, EvalRunError, evaluate
    from oddoctor.render import clean

    try:
        finite_float(score_threshold, "--score-threshold", 0.0, 1.0)
        finite_float(mask_threshold, "--mask-threshold", 0.0, 1.0)
        finite_float(tolerance, "--tolerance", 0.0, 1.0)
        finite_float(timeout, "--timeout", 1.0, 7 * 24 * 3600.0)
        report = evaluate(migrated, images, coco_gt, legacy=legacy, use_legacy=not no_legacy,
                          score_threshold=score_threshold, mask_threshold=mask_threshold, recursive=recursive,
                          tolerance=tolerance, timeout_s=timeout, progress=progress)
    except (EvalInputError, MigrateInputError, UsageError) as e:
        die(clean(str(e)))
    except (EvalRunError, TensorFlowUnusable) as e:
        die(clean(str(e)), EXIT_FAIL)
    if json_out:
        emit_json(report)
    else:
        _human(report)
    raise typer.Exit(EXIT_OK if report.get("passed", True) else EXIT_FAIL)
