"""GPU checks: which GPUs CUDA selects, whether TensorFlow sees them, their compute capability and free memory.

Only the GPUs CUDA_VISIBLE_DEVICES selects are judged: a busy GPU the job will not use is not its problem,
and a selection that names no GPU is a failure of its own.
"""

from __future__ import annotations

from typing import Optional

from packaging.version import Version

from oddoctor import compat, hookimpl
from oddoctor.checks import Check, Context, Result, check, fail, ok, skip, unknown, warn
from oddoctor.compat import logs
from oddoctor.snapshot import Snapshot
from oddoctor.units import format_bytes
from oddoctor.view import GpuView, is_graphics_process
from oddoctor_plugins._advice import (
    JIT_CACHE,
    LINUX,
    View,
    cc_fix,
    gpu_expected,
    gpu_gate,
    installed_tf_gate,
    newest_for_this_machine,
    no_wheel_fix,
    selected_gpus,
    tf_for_cc,
    view,
)

#: Another process holding more than this share of a GPU's memory is worth a warning.
OTHER_PROCESS_SHARE = 0.5


def _index_list(gpus: list[GpuView]) -> str:
    return ", ".join(str(g.index) for g in gpus)


@check(id="gpu.cuda-visible-devices", title="CUDA_VISIBLE_DEVICES names GPUs that exist",
       requires=("env.CUDA_VISIBLE_DEVICES",))
def gpu_cuda_visible_devices(snap: Snapshot, ctx: Context) -> Result:
    """Every entry of CUDA_VISIBLE_DEVICES names a GPU of this machine (index or UUID); none hides them all.

    Typical fix: export CUDA_VISIBLE_DEVICES=0 (an index nvidia-smi lists), or unset it.
    """
    v = view(snap)
    value = snap.env.get("CUDA_VISIBLE_DEVICES")
    if value is None:
        return skip("CUDA_VISIBLE_DEVICES is not set: CUDA programs see every GPU")
    if ctx.cpu_only:
        return skip("--cpu given")
    vis = v.visibility
    gpus = v.gpus
    details: dict[str, object] = {"CUDA_VISIBLE_DEVICES": value, "CUDA_DEVICE_ORDER": snap.env.get("CUDA_DEVICE_ORDER")}
    stripped = value.strip()
    if stripped in ("", "-1") or stripped.startswith("-1,"):
        if not gpu_expected(v, ctx):
            return ok(f"CUDA_VISIBLE_DEVICES={value!r} hides every GPU (CPU use)", details=details)
        listed = f" ({_index_list(gpus)})" if gpus else ""
        first = gpus[0].index if gpus else 0
        return fail(f"CUDA_VISIBLE_DEVICES={value!r} hides every GPU from TensorFlow{listed}",
                    fix=f"unset CUDA_VISIBLE_DEVICES, or export CUDA_VISIBLE_DEVICES={first} (an index nvidia-smi "
                        "lists)", details=details)
    no_dev = [ln for ln, _ in logs.find_re(snap, logs.CUINIT_FAIL) if any(k in ln for k in logs.NO_DEVICE)]
    if gpus is None or vis is None:
        if no_dev:
            details["log_line"] = no_dev[0]
            return fail(f"CUDA_VISIBLE_DEVICES={value!r} and CUDA found no device: {logs.short(no_dev[0])}; the "
                        "variable names a GPU this machine does not have",
                        fix="export CUDA_VISIBLE_DEVICES=0 (an index nvidia-smi lists; GPUs are numbered from 0), or "
                            "unset it", details=details)
        return unknown("gpus", v.unknown("gpus") or "")
    if gpus and gpus[0].source == "tensorflow":
        return ok(f"CUDA_VISIBLE_DEVICES={value!r}: TensorFlow sees {len(gpus)} GPU(s) through it (the machine's "
                  "full GPU list is unknown)", details=details)
    if not gpus:
        return skip("the driver lists no GPU (see gpu.visible)")
    details["gpus"] = [{"index": g.index, "name": g.name, "uuid": g.uuid} for g in gpus]
    if vis.invalid:
        kept = [e for e in value.split(",") if e.strip() and e.strip() not in vis.invalid]
        bad = vis.invalid[0]
        what = (f"there is no GPU {bad}: this machine has {len(gpus)} GPU(s), numbered {_index_list(gpus)}"
                if bad.isdigit() else f"{bad!r} names no GPU of this machine")
        if kept:
            msg = (f"CUDA_VISIBLE_DEVICES={value!r}: {what}; CUDA stops there, so only GPU(s) {', '.join(kept)} "
                   "are used")
            return warn(msg, fix=f"export CUDA_VISIBLE_DEVICES={','.join(e.strip() for e in kept)}", details=details)
        free = [g for g in gpus if g.free_bytes is not None]
        best = max(free, key=lambda g: g.free_bytes or 0) if free else gpus[0]
        return fail(f"CUDA_VISIBLE_DEVICES={value!r}: {what}; CUDA programs see no GPU at all",
                    fix=f"export CUDA_VISIBLE_DEVICES={best.index} (or unset it to use every GPU)", details=details)
    if vis.selected is None:
        return warn(f"CUDA_VISIBLE_DEVICES={value!r}: {vis.note}",
                    fix="export CUDA_DEVICE_ORDER=PCI_BUS_ID so CUDA numbers GPUs as nvidia-smi does, or select "
                        "GPUs by UUID (nvidia-smi -L)", details=details)
    names = ", ".join(g.label for g in vis.selected)
    return ok(f"CUDA_VISIBLE_DEVICES={value!r} selects {names}", details=details)


@check(id="gpu.visible", title="GPUs visible to the driver and to TensorFlow")
def gpu_visible(snap: Snapshot, ctx: Context) -> Result:
    """The driver lists a GPU, and TensorFlow sees the GPUs CUDA_VISIBLE_DEVICES selects.

    Typical fix: pass the GPU through to the container (docker run --gpus all); install the CUDA/cuDNN
    TensorFlow could not load.
    """
    v = view(snap)
    gate = installed_tf_gate(v, ctx, "it cannot list GPUs")
    if gate is not None:
        return gate
    tf = snap.tensorflow
    details: dict[str, object] = {"gpus": len(v.gpus) if v.gpus is not None else None,
                                  "tf_gpus": len(tf.gpus) if tf.gpus is not None else None}
    if snap.nvml.gpus == [] and snap.nvml.available:
        return fail("the driver answers but lists no GPU", fix="Check `nvidia-smi`; reseat/enable the GPU or pass it "
                    "through to the VM or container (docker run --gpus all)", details=details)
    if v.gpus is None:
        return unknown("gpus", v.unknown("gpus") or "")
    if v.tf_imports is False:
        return skip(f"{len(v.gpus)} GPU(s) listed; TensorFlow does not import (see tf.importable)")
    selected = v.selected_gpus
    if selected is not None and not selected:
        return skip("CUDA_VISIBLE_DEVICES selects no GPU (see gpu.cuda-visible-devices)")
    if tf.gpus is None:
        return unknown("tf.gpus", "TensorFlow's GPU list is not in the snapshot")
    want = len(selected) if selected is not None else len(v.gpus)
    if len(tf.gpus) >= want:
        return ok(f"TensorFlow sees {len(tf.gpus)} of {len(v.gpus)} GPU(s)", details=details)
    # Why it sees fewer is tf.gpu-libs-loaded's (and its owners') to say: one root cause, one failure.
    return skip(f"TensorFlow sees {len(tf.gpus)} of {want} GPU(s) (see tf.gpu-libs-loaded)", details=details)


@check(id="gpu.min-vram", title="Free GPU memory for the job")
def gpu_min_vram(snap: Snapshot, ctx: Context) -> Result | list[Result]:
    """Each GPU CUDA selects has at least --min-vram free (without --min-vram: reports free memory).

    Typical fix: stop the processes holding the GPU, pick another with CUDA_VISIBLE_DEVICES, or lower the batch.
    """
    v = view(snap)
    selected = selected_gpus(v, ctx)
    if isinstance(selected, Result):
        return selected
    gpus = [g for g in selected if g.free_bytes is not None]
    if not gpus:
        return unknown("gpu.memory", v.unknown("gpu.memory") or "NVML gave no memory figures")
    need = ctx.min_vram_bytes
    results: list[Result] = []
    for g in gpus:
        rid = f"gpu.min-vram.gpu{g.index}"
        free, total = g.free_bytes or 0, g.total_bytes
        what = f"{g.label}: {format_bytes(free)} free of {format_bytes(total)}"
        details = {"gpu": g.index, "free_bytes": free, "total_bytes": total, "required_bytes": need}
        if need is None:
            results.append(ok(what, details=details, id=rid))
        elif free >= need:
            results.append(ok(f"{what} >= {format_bytes(need)} asked", details=details, id=rid))
        elif total and total < need:
            results.append(fail(f"{what}: the card has less than the {format_bytes(need)} asked",
                                fix="Use a GPU with more memory, a smaller batch size, or mixed precision "
                                    "(tf.keras.mixed_precision.set_global_policy('mixed_float16'))",
                                details=details, id=rid))
        else:
            holders = ", ".join(f"pid {p.pid} {p.name or ''}".strip() for p in g.processes or []) or "none listed"
            roomy = sorted((o for o in v.gpus or [] if o is not g and (o.free_bytes or 0) >= need),
                           key=lambda o: -(o.free_bytes or 0))
            pick = (f"export CUDA_VISIBLE_DEVICES={roomy[0].index} ({format_bytes(roomy[0].free_bytes)} free)"
                    if roomy else "pick another GPU with CUDA_VISIBLE_DEVICES")
            results.append(fail(f"{what}, {format_bytes(need)} asked (processes: {holders})",
                                fix=f"Free memory on GPU {g.index} (stop the processes above), or {pick}; "
                                    "or lower the batch size", details=details, id=rid))
    return results


@check(id="gpu.other-processes", title="GPU memory held by other processes")
def gpu_other_processes(snap: Snapshot, ctx: Context) -> Result | list[Result]:
    """No other compute process holds most of a selected GPU's memory (TensorFlow would fail to allocate).

    A display server or desktop holding a little memory is not counted. Typical fix: stop them or use
    another GPU; export TF_FORCE_GPU_ALLOW_GROWTH=true to share.
    """
    v = view(snap)
    selected = selected_gpus(v, ctx)
    if isinstance(selected, Result):
        return selected
    gpus = [g for g in selected if g.total_bytes and g.processes is not None]
    if not gpus:
        return unknown("gpu.processes", v.unknown("gpu.processes") or "NVML gave no process list")
    import os

    me = os.getpid() if snap.source == "collected" else -1
    results: list[Result] = []
    for g in gpus:
        rid = f"gpu.other-processes.gpu{g.index}"
        total = g.total_bytes or 1
        others = [p for p in g.processes or [] if p.pid != me and not is_graphics_process(p)]
        held = sum(p.used_bytes or 0 for p in others)
        if others and not any(p.used_bytes is not None for p in others):
            graphics = sum(p.used_bytes or 0 for p in g.processes or [] if is_graphics_process(p))
            held = max(0, (g.used_bytes or 0) - graphics)
        share = held / total
        details = {"gpu": g.index, "held_bytes": held, "total_bytes": total,
                   "processes": [{"pid": p.pid, "name": p.name, "used_bytes": p.used_bytes} for p in others]}
        if others and share >= OTHER_PROCESS_SHARE:
            who = ", ".join(f"pid {p.pid}" + (f" ({p.name})" if p.name else "")
                            + (f" {format_bytes(p.used_bytes)}" if p.used_bytes else "") for p in others)
            results.append(warn(
                f"GPU {g.index}: {len(others)} other process(es) hold {share:.0%} of its memory: {who}",
                fix="Stop them, or run on another GPU (CUDA_VISIBLE_DEVICES=<index>), and share with "
                    "TF_FORCE_GPU_ALLOW_GROWTH=true so TensorFlow does not try to take the whole card",
                details=details, id=rid))
        else:
            results.append(ok(f"GPU {g.index}: other compute processes hold {share:.0%} of its memory",
                              details=details, id=rid))
    return results


@check(id="gpu.compute-capability", title="GPU compute capability compiled into the TensorFlow wheel")
def gpu_compute_capability(snap: Snapshot, ctx: Context) -> Result:
    """Each GPU's compute capability has SASS in the wheel (PTX only: slow first start; none: unusable).

    Typical fix: install the newest TensorFlow whose wheel has code for the GPU; for PTX-only, export
    CUDA_CACHE_MAXSIZE=4294967296.
    """
    v = view(snap)
    ignored = logs.find_re(snap, logs.IGNORING_GPU)
    if ignored:
        line, m = ignored[0]
        cc, minimum = m.group(2), m.group(3)
        return fail(f"TensorFlow ignores a GPU of compute capability {cc} (its minimum is {minimum}): "
                    f"{logs.short(line)}", fix=cc_fix(v, cc),
                    details={"compute_capability": cc, "minimum": minimum, "log_line": line})
    gate = gpu_gate(v, ctx)
    if gate is not None:
        return gate
    kernel_lines = [ln for pat in logs.KERNEL_IMAGE_PATTERNS for ln in logs.find(snap, pat)]
    if v.is_cuda_build is False:
        return skip("TensorFlow is not a CUDA build")
    bi = v.build_info
    listed = bi.get("cuda_compute_capabilities")
    tf_v = v.tf_version
    os_ = v.tf_os or LINUX
    archs = None
    source = confidence = ""
    if listed:
        try:
            items = listed if isinstance(listed, (list, str)) else [str(listed)]
            archs = compat.parse_archs([str(x) for x in items] if isinstance(items, list) else items) or None
        except (ValueError, TypeError):  # build info in a shape no TensorFlow writes: judge from the table
            archs = None
        source, confidence = "tf.sysconfig.get_build_info()", "reported by the wheel"
    if archs is None:
        row = compat.wheel_caps(tf_v) if tf_v else None
        if row is not None:
            archs = compat.parse_archs(row.archs_listed)
            source, confidence = "official wheel table", row.confidence
    gpus = [g for g in (v.gpus or []) if g.compute_capability]
    if archs is None or not gpus:
        return _without_coverage(v, tf_v, kernel_lines, archs is None, bool(gpus))
    archs_text = ",".join(str(a) for a in archs)
    details: dict[str, object] = {"archs": archs_text, "archs_from": source, "confidence": confidence, "gpus": {}}
    worst: Optional[Result] = None
    lines = []
    for g in gpus:
        cc = g.compute_capability or ""
        cov = compat.cc_coverage(cc, archs)
        details["gpus"][str(g.index)] = {"name": g.name, "cc": cc, "coverage": cov}  # type: ignore[index]
        lines.append(f"{g.label}, cc {cc}: " + {"sass": "native code", "ptx": "PTX only", "none": "no code"}[cov])
        hedge = "" if confidence != "probable" else " (wheel list for this release not verified upstream)"
        if cov == "none":
            worst = fail(f"{g.label} has compute capability {cc}; TensorFlow {tf_v} is compiled "
                         f"for {archs_text} only{hedge}", fix=cc_fix(v, cc), details=details)
        elif cov == "ptx" and (worst is None or worst.status.value != "fail"):
            b, note = tf_for_cc(v, cc, native=True)
            newer = b is not None and tf_v is not None and b.version > tf_v
            if kernel_lines:
                details["log_lines"] = kernel_lines[:3]
                fix = (f"{compat.pip_install(b, os_)} (its wheel has code for {cc}{note})" if newer and b
                       else no_wheel_fix(cc))
                worst = fail(f"{g.label}, cc {cc}, has only PTX in TensorFlow {tf_v} ({archs_text}) and "
                             f"the JIT failed: {logs.short(kernel_lines[0])}", fix=fix, details=details)
                continue
            upgrade = f", or {compat.pip_install(b, os_)} (its wheel has code for {cc}{note})" if newer and b else ""
            worst = warn(f"{g.label}, cc {cc}, runs TensorFlow {tf_v} only through PTX JIT "
                         f"({archs_text}): the first start compiles kernels and can take many minutes{hedge}",
                         fix=f"export {JIT_CACHE} so the JIT runs once{upgrade}", details=details)
    if worst is not None:
        return worst
    return ok("; ".join(lines) + f" (compiled: {archs_text})", details=details)


def _without_coverage(v: View, tf_v: Optional[Version], kernel_lines: list[str], archs_unknown: bool,
                      cc_known: bool) -> Result:
    """Judge from TensorFlow's own words when the compiled list or the GPU's compute capability is unknown."""
    jit = v.find_re(logs.NOT_BUILT_FOR_CC)
    if kernel_lines:
        cc = next((g.compute_capability for g in v.gpus or [] if g.compute_capability), None)
        if cc is not None:
            fix = cc_fix(v, cc)
        else:
            b = newest_for_this_machine(v, _CTX_GPU)
            fix = (f"Install a TensorFlow whose wheel has code for your GPU's compute capability (nvidia-smi "
                   f"--query-gpu=compute_cap --format=csv): {compat.pip_install(b, v.tf_os or LINUX)} is the newest"
                   if b else "Install a TensorFlow whose wheel has code for your GPU's compute capability")
        return fail(f"TensorFlow {tf_v or ''} has no usable kernel for this GPU: {logs.short(kernel_lines[0])}",
                    fix=fix, details={"log_lines": kernel_lines[:3]})
    if jit:  # TF itself says it will JIT: enough to warn without knowing the compiled list
        return warn(f"TensorFlow {tf_v or ''} JIT-compiles its kernels for this GPU: {logs.short(jit[0][0])}",
                    fix=f"export {JIT_CACHE} so the JIT runs once", details={"log_line": jit[0][0]})
    if archs_unknown:
        return unknown("tf.version", f"compiled compute capabilities of TensorFlow {tf_v or '(version unknown)'} "
                                     "unknown")
    return unknown("gpu.compute_capability", v.unknown("gpu.compute_capability") or "")


_CTX_GPU = Context(expect_gpu=True)

CHECKS: list[Check] = [gpu_cuda_visible_devices, gpu_visible, gpu_min_vram, gpu_other_processes,
                       gpu_compute_capability]


@hookimpl
def oddoctor_checks() -> list[Check]:
    return list(CHECKS)
