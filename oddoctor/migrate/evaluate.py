"""``oddoctor eval``: COCO mAP (bbox, segm) of a migrated model and of its legacy TF1 Session, side by side.

The migrated model runs through its own emitted ``run_inference.py --format coco`` (in a child process,
as a user runs it); the legacy graph through :class:`oddoctor_legacy_tf1.detector.LegacyDetector` (one
finalized graph, one Session) on the same files, with the same score threshold and full-size images.
Both result lists are scored with pycocotools' ``COCOeval`` (the optional extra ``oddoctor[coco]``):
the metric is COCO's own, not a re-implementation.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Optional

from oddoctor.migrate import run_inference as ri

#: COCOeval.stats, in its order (summarize()'s 12 lines).
STAT_NAMES = ("AP", "AP50", "AP75", "AP_small", "AP_medium", "AP_large",
              "AR1", "AR10", "AR100", "AR_small", "AR_medium", "AR_large")
IOU_TYPES = ("bbox", "segm")
DEFAULT_SCORE_THRESHOLD = 0.0  # every detection the model returns, as the OD API's own COCO evaluation
DEFAULT_TOLERANCE = 0.01  # largest |migrated AP - legacy AP| (any stat) that still passes
DEFAULT_RUNNER_TIMEOUT_S = 3600.0
SCHEMA_VERSION = 1


class EvalInputError(Exception):
    """Bad input (annotations, images, folder, missing pycocotools): one line, exit 2."""


class EvalRunError(Exception):
    """The migrated runner or the legacy Session failed: one line, exit 1."""


def require_pycocotools() -> None:
    try:
        import pycocotools.cocoeval  # noqa: F401
    except ImportError:
        raise EvalInputError("computing COCO mAP needs pycocotools: pip install 'oddoctor[coco]' "
                             "(or pip install pycocotools)") from None


def segm_ready(gt: Mapping[str, Any]) -> bool:
    """Whether every ground-truth annotation has a segmentation (COCOeval's segm needs one each)."""
    anns = gt.get("annotations") or []
    return bool(anns) and all(a.get("segmentation") for a in anns)


def coco_map(gt: Mapping[str, Any], results: Sequence[Mapping[str, Any]], iou_type: str,
             image_ids: Optional[Sequence[Any]] = None) -> dict[str, float]:
    """COCOeval's 12 summary numbers (AP, AP50, ... AR_large) of ``results`` against ``gt`` on
    ``image_ids`` (default: every image of ``gt``). No results: every number 0. pycocotools' prints
    are swallowed; neither argument is changed."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    if not results:
        return dict.fromkeys(STAT_NAMES, 0.0)
    with contextlib.redirect_stdout(io.StringIO()):
        truth = COCO()
        truth.dataset = copy.deepcopy(dict(gt))
        truth.createIndex()
        detections = truth.loadRes(copy.deepcopy(list(results)))  # loadRes adds ids and areas in place
        evaluation = COCOeval(truth, detections, iou_type)
        if image_ids is not None:
            evaluation.params.imgIds = sorted(image_ids)
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    # -1 is COCOeval's "no ground truth in this area range": kept, it means "not measured".
    return {name: round(float(v), 6) for name, v in zip(STAT_NAMES, evaluation.stats)}


def legacy_record(file: str, height: int, width: int, output: Mapping[str, Any],
                  score_threshold: float) -> dict[str, Any]:
    """LegacyDetector's ``output_dict`` (image-sized binary masks) -> the runner's record for the image:
    the same boxes, scores, classes and filter (``run_inference.image_record``), masks as COCO RLE."""
    import numpy as np

    outputs = {"boxes": output["detection_boxes"], "scores": output["detection_scores"],
               "classes": output["detection_classes"], "num": np.asarray([output["num_detections"]])}
    record = ri.image_record(file, height, width, outputs, score_threshold)
    if "detection_masks" in output:
        scores = np.asarray(output["detection_scores"])
        n = min(max(int(output["num_detections"]), 0), len(scores))
        keep = np.flatnonzero(scores[:n] >= score_threshold)
        for det, k in zip(record["detections"], keep.tolist()):
            det["mask"] = ri.rle_encode(np.asarray(output["detection_masks"][k], np.uint8))
    return record


def legacy_results(model: Path, files: Sequence[str], image_ids: Mapping[str, Any], score_threshold: float,
                   mask_threshold: float) -> tuple[list[dict[str, Any]], list[str]]:
    """The legacy Session's COCO results on ``files`` and the files it could not read."""
    from oddoctor_legacy_tf1.detector import LegacyDetector
    from oddoctor_legacy_tf1.images import read_image

    results: list[dict[str, Any]] = []
    skipped: list[str] = []
    with LegacyDetector(model, mask_threshold=mask_threshold) as detect:
        for file in files:
            try:
                image = read_image(file)
            except Exception:  # noqa: BLE001 - any unreadable file is skipped, as the runner skips it
                skipped.append(file)
                continue
            record = legacy_record(file, image.shape[0], image.shape[1], detect(image), score_threshold)
            results += ri.coco_results(record, image_ids[os.path.basename(file)])
    return results, skipped


def migrated_results(migrated: Path, images: Path, gt_path: Path, score_threshold: float, mask_threshold: float,
                     recursive: bool, timeout_s: float) -> tuple[list[dict[str, Any]], list[str]]:
    """The emitted runner's ``--format coco`` results (full-size images) and the files it skipped."""
    from oddoctor.childproc import run_child

    with tempfile.TemporaryDirectory(prefix="oddoctor-eval-") as tmp:
        out, summary = Path(tmp) / "results.json", Path(tmp) / "summary.json"
        argv = [sys.executable, str(migrated / ri.PROG), str(images), "--format", "coco", "--coco-gt", str(gt_path),
                "--score-threshold", repr(score_threshold), "--mask-threshold", repr(mask_threshold),
                "--max-side", "0", "--out", str(out), "--summary-json", str(summary), "--quiet"]
        if recursive:
            argv.append("--recursive")
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")}
        child = run_child(argv, timeout_s=timeout_s, env=env)
        if child.start_error or child.timed_out or child.returncode != 0:
            tail = " / ".join(child.stderr_tail[-2:]) or child.start_error or ""
            raise EvalRunError(f"{migrated / ri.PROG} {child.how()}: {tail}")
        results = json.loads(out.read_text(encoding="utf-8"))
        skipped = json.loads(summary.read_text(encoding="utf-8"))["skipped"]
    return results, skipped


def read_gt(path: Path) -> dict[str, Any]:
    try:
        gt = json.loads(path.read_text(encoding="utf-8"))
        ri.coco_image_ids(gt)
    except OSError as e:
        raise EvalInputError(f"--coco-gt {path}: cannot read: {e.strerror or e}") from None
    except (TypeError, ValueError) as e:
        raise EvalInputError(f"--coco-gt {path}: not COCO annotations: {ri.first_line(e)}") from None
    if not isinstance(gt.get("annotations"), list) or not isinstance(gt.get("categories"), list):
        raise EvalInputError(f"--coco-gt {path}: not COCO annotations: needs \"annotations\" and \"categories\"")
    return dict(gt)


def legacy_source(migrated: Path) -> Path:
    """The legacy model a migration came from (migration.json's ``source.resolved``)."""
    try:
        doc = json.loads((migrated / "migration.json").read_text(encoding="utf-8"))
        return Path(doc["source"]["resolved"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise EvalInputError(f"{migrated}/migration.json: cannot read the legacy model's path ({e}); "
                             "give --legacy MODEL, or --no-legacy") from None


def evaluate(migrated: Path, images: Path, gt_path: Path, *, legacy: Optional[Path] = None,
             use_legacy: bool = True, score_threshold: float = DEFAULT_SCORE_THRESHOLD,
             mask_threshold: float = 0.5, recursive: bool = False, tolerance: float = DEFAULT_TOLERANCE,
             timeout_s: float = DEFAULT_RUNNER_TIMEOUT_S,
             progress: Callable[[str], None] = lambda _m: None) -> dict[str, Any]:
    """mAP of the migrated model (and of the legacy Session) on the annotated images: the report."""
    require_pycocotools()
    if not (migrated / ri.PROG).is_file() or not (migrated / "saved_model").is_dir():
        raise EvalInputError(f"{migrated}: not a folder written by `oddoctor migrate` "
                             f"(no {ri.PROG} and saved_model/ in it)")
    gt = read_gt(gt_path)
    ids = ri.coco_image_ids(gt)
    if not images.is_dir():
        raise EvalInputError(f"--images {images}: not a folder")
    files = [f for f in ri.list_images([str(images)], recursive) if os.path.basename(f) in ids]
    if not files:
        raise EvalInputError(f"--images {images}: none of its images is listed in --coco-gt {gt_path}")
    legacy_model = (legacy or legacy_source(migrated)) if use_legacy else None
    if legacy_model is not None and not legacy_model.exists():
        raise EvalInputError(f"legacy model {legacy_model} not found: give --legacy MODEL, or --no-legacy")
    with_segm = segm_ready(gt)

    progress(f"eval: migrated model on {len(files)} image(s) ({migrated / ri.PROG} --format coco)")
    runs: dict[str, tuple[list[dict[str, Any]], list[str]]] = {
        "migrated": migrated_results(migrated, images, gt_path, score_threshold, mask_threshold, recursive,
                                     timeout_s)}
    if legacy_model is not None:
        from oddoctor.migrate import tensorflow_preflight

        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", ri.tf_log_floor())  # the runner's log floor, here too
        tensorflow_preflight(progress=progress)
        progress(f"eval: legacy TF1 Session ({legacy_model}) on the same images")
        try:
            runs["legacy"] = legacy_results(legacy_model, files, ids, score_threshold, mask_threshold)
        except Exception as e:  # noqa: BLE001 - whatever TF1 raises, one line
            raise EvalRunError(f"the legacy model {legacy_model} failed: {ri.first_line(e)}") from None
    skipped = sorted({os.path.basename(f) for _, s in runs.values() for f in s})
    image_ids = sorted(ids[os.path.basename(f)] for f in files if os.path.basename(f) not in skipped)
    report: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "migrated_dir": str(migrated),
                              "legacy_model": str(legacy_model) if legacy_model else None,
                              "coco_gt": str(gt_path), "images": len(image_ids), "skipped": skipped,
                              "score_threshold": score_threshold, "iou_types": [], "tolerance": tolerance}
    for name, (results, _) in runs.items():
        kept = [r for r in results if r["image_id"] in set(image_ids)]
        report[name] = {"detections": len(kept)}
        for iou_type in IOU_TYPES:
            if iou_type == "segm" and not (with_segm and kept and all("segmentation" in r for r in kept)):
                continue
            report[name][iou_type] = coco_map(gt, kept, iou_type, image_ids)
    report["iou_types"] = [t for t in IOU_TYPES if t in report["migrated"]]
    if "legacy" in report:
        diffs = [abs(report["migrated"][t][s] - report["legacy"][t][s])
                 for t in report["iou_types"] if t in report["legacy"] for s in STAT_NAMES]
        report["max_abs_diff"] = max(diffs, default=0.0)
        report["passed"] = report["max_abs_diff"] <= tolerance
    return report
