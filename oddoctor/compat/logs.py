"""Recognise TensorFlow's own log lines (captured by the TF probe) that name a compatibility problem."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

from oddoctor.snapshot import Snapshot

DSO_FAIL = re.compile(r"Could not load dynamic library '([^']+)'")
#: TF 1.x links CUDA at import time: a missing library fails `import tensorflow` itself.
IMPORT_FAIL = re.compile(r"ImportError: (lib[\w+-]+\.so[.\d]*): cannot open shared object file")
#: Libraries that ship with the CUDA toolkit (their sonames do not always carry the CUDA major).
CUDA_TOOLKIT_LIBS = frozenset({"cudart", "cublas", "cublaslt", "cufft", "curand", "cusolver", "cusparse"})
DLOPEN_FAIL = "Cannot dlopen some GPU libraries"
CUDNN_MISMATCH = re.compile(
    r"Loaded runtime CuDNN library: (\d+(?:\.\d+)*) but source was compiled with: (\d+(?:\.\d+)*)")
IGNORING_GPU = re.compile(
    r"Ignoring visible gpu device \((.*?)\) with Cuda compute capability (\d+\.\d+)\. "
    r"The minimum required Cuda capability is (\d+\.\d+)")
DRIVER_INSUFFICIENT = "CUDA driver version is insufficient for CUDA runtime version"
UNSUPPORTED_PTX = "CUDA_ERROR_UNSUPPORTED_PTX_VERSION"
#: The wheel has no usable code for this GPU: PTX JIT failed or there was nothing to JIT
#: (tensorflow/docs pip.md: "device kernel image is invalid" means no PTX for the architecture).
KERNEL_IMAGE_PATTERNS = ("CUDA_ERROR_INVALID_PTX", "device kernel image is invalid",
                         "no kernel image is available for execution on the device")
NOT_BUILT_FOR_CC = re.compile(
    r"TensorFlow was not built with CUDA kernel binaries compatible with compute capability (\d+\.\d+)")
ALLOW_GROWTH_UNPARSED = "TF_FORCE_GPU_ALLOW_GROWTH environment variable is set but could"
#: Lines that mean cuDNN or the allocator could not get GPU memory.
MEMORY_PATTERNS = (
    "CUDA_ERROR_OUT_OF_MEMORY",
    "CUDNN_STATUS_NOT_INITIALIZED",
    "CUDNN_STATUS_INTERNAL_ERROR",
    "CUDNN_STATUS_ALLOC_FAILED",
    "Failed to get convolution algorithm",
    "could not create cudnn handle",
)

#: Library name stem -> what it is part of.
LIB_COMPONENTS = {
    "cudart": "CUDA runtime", "cublas": "CUDA (cuBLAS)", "cublaslt": "CUDA (cuBLAS)",
    "cufft": "CUDA (cuFFT)", "curand": "CUDA (cuRAND)", "cusolver": "CUDA (cuSOLVER)",
    "cusparse": "CUDA (cuSPARSE)", "cudnn": "cuDNN", "nvinfer": "TensorRT",
    "nvinfer_plugin": "TensorRT", "cupti": "CUDA (CUPTI)", "nvjitlink": "CUDA (nvJitLink)",
    "cuda": "NVIDIA driver (libcuda)", "nccl": "NCCL",
}


def log_text(snap: Snapshot) -> list[str]:
    """Every captured line of TensorFlow output: its log lines, the probe's stderr tail and error."""
    tf = snap.tensorflow
    lines = list(tf.log_lines) + list(tf.probe.stderr_tail)
    if tf.probe.error:
        lines.extend(tf.probe.error.splitlines())
    seen: set[str] = set()
    out = []
    for line in lines:
        if line not in seen:
            seen.add(line)
            out.append(line)
    return out


def find(snap: Snapshot, needle: str) -> list[str]:
    """Captured lines that contain ``needle``."""
    return [ln for ln in log_text(snap) if needle in ln]


def find_re(snap: Snapshot, pattern: re.Pattern[str]) -> list[tuple[str, re.Match[str]]]:
    out = []
    for ln in log_text(snap):
        m = pattern.search(ln)
        if m:
            out.append((ln, m))
    return out


@dataclass(frozen=True)
class FailedLib:
    soname: str  # "libcudart.so.11.0", "cudnn64_8.dll"
    stem: str  # "cudart", "cudnn"
    component: str  # "CUDA runtime", "cuDNN"
    line: str


def lib_stem(soname: str) -> str:
    """``libcudart.so.11.0`` -> ``cudart``; ``cudart64_110.dll`` -> ``cudart``; ``cudnn64_8.dll`` -> ``cudnn``."""
    base = soname.rsplit("/", 1)[-1].lower()
    base = re.sub(r"^lib", "", base)
    base = re.split(r"\.(so|dll|dylib)", base)[0]
    return re.sub(r"64_\d+$|_\d+$", "", base)


def failed_libs(snap: Snapshot) -> list[FailedLib]:
    """The libraries TensorFlow could not load: ``dso_loader`` lines, and TF 1.x import errors, in order."""
    out = []
    for pattern in (DSO_FAIL, IMPORT_FAIL):
        for line, m in find_re(snap, pattern):
            stem = lib_stem(m.group(1))
            out.append(FailedLib(m.group(1), stem, LIB_COMPONENTS.get(stem, "CUDA"), line))
    return out


def soname_major(soname: str) -> Optional[int]:
    """The CUDA major a runtime soname asks for: ``libcudart.so.11.0`` -> 11, ``cudart64_110.dll`` -> 11."""
    m = re.search(r"\.so\.(\d+)", soname) or re.search(r"64_(\d+?)\d?\.dll", soname)
    return int(m.group(1)) if m else None


def short(line: str, limit: int = 240) -> str:
    """One log line without its timestamp prefix, cut to ``limit`` characters for a message."""
    s = re.sub(r"^\S*\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+:\s*", "", line.strip())
    s = re.sub(r"^[EWIF]\d{4} [\d:.]+\s+\d+\s+", "", s)
    return s if len(s) <= limit else s[: limit - 1] + "…"
