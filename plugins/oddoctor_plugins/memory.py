"""Memory checks: TensorFlow's GPU memory settings on a shared GPU, out-of-memory errors, TF_FORCE_GPU_ALLOW_GROWTH."""

from __future__ import annotations

from oddoctor import hookimpl
from oddoctor.checks import Check, Context, Result, check, fail, ok, skip, unknown, warn
from oddoctor.compat import logs
from oddoctor.snapshot import Snapshot
from oddoctor.units import format_bytes
from oddoctor.view import is_graphics_process
from oddoctor_plugins._advice import gpu_gate, memory_fix, view

#: Values TensorFlow accepts for TF_FORCE_GPU_ALLOW_GROWTH (exact, case-sensitive strcmp in
#: tensorflow/core/common_runtime/gpu/gpu_bfc_allocator.cc).
ALLOW_GROWTH_VALUES = ("true", "false")
#: Other compute processes holding at least this share of a selected GPU make it "shared".
SHARED_SHARE = 0.10


@check(id="memory.allow-growth", title="GPU memory settings for a shared or small GPU")
def memory_allow_growth(snap: Snapshot, ctx: Context) -> Result:
    """With other compute processes on the GPU (or cuDNN start-up failures in the log), TensorFlow should not
    grab all memory at start.

    Typical fix: export TF_FORCE_GPU_ALLOW_GROWTH=true, or a memory_limit (TF1: gpu_options.allow_growth).
    """
    v = view(snap)
    gate = gpu_gate(v, ctx)
    if gate is not None:
        return gate
    value = snap.env.get("TF_FORCE_GPU_ALLOW_GROWTH")
    selected = v.selected_gpus or []
    frees = [g.free_bytes for g in selected if g.free_bytes is not None]
    free = min(frees) if frees else None
    fix = memory_fix(v, free)
    details: dict[str, object] = {"TF_FORCE_GPU_ALLOW_GROWTH": value, "free_bytes": free}
    if value == "true":
        return ok("TF_FORCE_GPU_ALLOW_GROWTH=true: TensorFlow allocates GPU memory as needed", details=details)
    mem_lines = [ln for pat in logs.MEMORY_PATTERNS for ln in logs.find(snap, pat)]
    if mem_lines:
        # cuDNN failing to start has two causes: a cuDNN that does not fit (checked first), or no memory left.
        if logs.find_re(snap, logs.CUDNN_MISMATCH) or any(f.stem == "cudnn" for f in logs.failed_libs(snap)):
            return skip(f"{logs.short(mem_lines[0])}: the cuDNN version is the cause (see cudnn.runtime-match)")
        details["log_lines"] = mem_lines[:5]
        free_txt = f" ({format_bytes(free)} free now)" if free is not None else ""
        return fail(f"TensorFlow could not get GPU memory for cuDNN or its allocator at start{free_txt}: "
                    f"{logs.short(mem_lines[0])}", fix=fix, details=details)
    shared = []
    for g in selected:
        total = g.total_bytes or 0
        for p in g.processes or []:
            if is_graphics_process(p):
                continue
            if p.used_bytes is None or not total or p.used_bytes / total >= SHARED_SHARE:
                shared.append((g, p))
    if shared:
        who = ", ".join(f"pid {p.pid}" + (f" {p.name}" if p.name else "") for _, p in shared[:4])
        details["other_processes"] = len(shared)

        return warn(f"the GPU is shared with {len(shared)} other compute process(es) ({who}) and TensorFlow would "
                    "reserve nearly all free memory at start", fix=fix, details=details)
    listed = any(g.processes is not None for g in selected)
    if not listed and not v.log:
        return unknown("gpu.processes", v.unknown("gpu.processes") or "no process list and no TensorFlow log")
    if not listed:
        return ok("no cuDNN/allocator start-up failure in TensorFlow's log (the GPU's process list is unknown)",
                  details=details)
    return ok("GPU not shared with other compute jobs" + (" and no cuDNN/allocator start-up failure in TensorFlow's "
                                                          "log" if v.log else ""), details=details)


@check(id="memory.out-of-memory", title="TensorFlow did not run out of GPU memory")
def memory_out_of_memory(snap: Snapshot, ctx: Context) -> Result:
    """TensorFlow's log shows no out-of-memory error (its allocator could not fit the model and batch).

    Typical fix: lower the batch size or image size (Object Detection API: train_config.batch_size,
    image_resizer), stop other jobs on the GPU, or use mixed precision.
    """
    v = view(snap)
    if ctx.cpu_only:
        return skip("--cpu given")
    hits = [(ln, m) for pat in logs.OOM_PATTERNS for ln, m in v.find_re(pat)]
    if not hits:
        if not v.log:
            return unknown("tf.log", "no TensorFlow log in the snapshot (give one with --log)")
        return ok("no out-of-memory error in TensorFlow's log")
    line, _ = hits[0]
    selected = v.selected_gpus or []
    busy = [(g, p) for g in selected for p in g.processes or [] if not is_graphics_process(p)]
    free = [g for g in selected if g.free_bytes is not None]
    facts = "; ".join(f"{g.label}: {format_bytes(g.free_bytes)} free of {format_bytes(g.total_bytes)}" for g in free)
    others = ""
    if busy:
        others = "stop the other jobs on the GPU (" + ", ".join(f"pid {p.pid}" for _, p in busy[:3]) + "), or "
    tf1 = v.tf_version is not None and v.tf_version.major == 1
    precision = "" if tf1 else ", or use mixed precision (tf.keras.mixed_precision.set_global_policy('mixed_float16'))"
    return fail(f"TensorFlow ran out of GPU memory: {logs.short(line)}" + (f" ({facts})" if facts else ""),
                fix=f"{others}lower the batch size (Object Detection API: train_config.batch_size in the pipeline "
                    f"config) or the input size (image_resizer){precision}; `oddoctor check --min-vram` tells what a "
                    "GPU has free", details={"log_line": line})


@check(id="memory.allow-growth-value", title="TF_FORCE_GPU_ALLOW_GROWTH is a value TensorFlow accepts")
def memory_allow_growth_value(snap: Snapshot, ctx: Context) -> Result:
    """TF_FORCE_GPU_ALLOW_GROWTH is unset, "true" or "false": TensorFlow ignores anything else (even "True").

    Typical fix: export TF_FORCE_GPU_ALLOW_GROWTH=true
    """
    if ctx.cpu_only:
        return skip("--cpu given: TensorFlow's GPU allocator is not used")
    if "TF_FORCE_GPU_ALLOW_GROWTH" not in snap.env:
        return unknown("env.TF_FORCE_GPU_ALLOW_GROWTH", "the snapshot does not say whether it was set")
    value = snap.env.get("TF_FORCE_GPU_ALLOW_GROWTH")
    if value is None:
        return skip("TF_FORCE_GPU_ALLOW_GROWTH not set")
    if value in ALLOW_GROWTH_VALUES:
        return ok(f"TF_FORCE_GPU_ALLOW_GROWTH={value}")
    quoted = logs.find(snap, logs.ALLOW_GROWTH_UNPARSED)
    tail = f": {logs.short(quoted[0])}" if quoted else ""
    return fail(f"TF_FORCE_GPU_ALLOW_GROWTH={value!r} is ignored: TensorFlow accepts exactly 'true' or 'false' "
                f"(lower case){tail}", fix="export TF_FORCE_GPU_ALLOW_GROWTH=true",
                details={"value": value})


CHECKS: list[Check] = [memory_allow_growth, memory_out_of_memory, memory_allow_growth_value]


@hookimpl
def oddoctor_checks() -> list[Check]:
    return list(CHECKS)
