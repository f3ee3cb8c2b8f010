"""The GPUs a budget predicts for: each GPU CUDA_VISIBLE_DEVICES selects, with NVML's free memory."""

from __future__ import annotations

import os
from typing import Any, Optional


def visible_gpu_free() -> tuple[Optional[list[dict[str, Any]]], str]:
    """``([{"label", "index", "free_bytes"}], "")`` for the selected GPUs (``free_bytes`` None where NVML gave no
    figure: unknown, not zero), or ``(None, why)`` when there is no GPU to predict for (no NVML, none selected,
    or a selection that cannot be told)."""
    from oddoctor.probes.nvml import probe_nvml
    from oddoctor.snapshot import Snapshot
    from oddoctor.view import view

    facts = probe_nvml()
    if not facts.available or not facts.gpus:
        return None, f"no GPU found through NVML ({facts.error or 'none listed'})"
    snap = Snapshot()
    snap.nvml = facts
    snap.env = {k: os.environ[k] for k in ("CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER") if k in os.environ}
    # Stated explicitly: an unset variable means every GPU, not "unknown".
    snap.env.setdefault("CUDA_VISIBLE_DEVICES", None)
    v = view(snap)
    selected = v.selected_gpus
    if selected is None:
        return None, v.visibility.note if v.visibility else "the GPU selection is unknown"
    if not selected:
        return None, "CUDA_VISIBLE_DEVICES selects no GPU"
    return [{"label": g.label, "index": g.index, "free_bytes": g.free_bytes} for g in selected], ""
