"""Recognise TensorFlow's own words (lines the TF probe captured, or a log the user gave with ``--log``)
that name a compatibility problem. Every pattern here maps to the check that owns its diagnosis."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

from oddoctor.snapshot import Snapshot

DSO_FAIL = re.compile(r"Could not load dynamic library ['‘’\"]([^'‘’\";]+)['‘’\"]")
#: TF 1.x links CUDA at import time: a missing library fails `import tensorflow` itself.
IMPORT_FAIL = re.compile(r"ImportError: (lib[\w+-]+\.so[.\d]*): cannot open shared object file")
#: Libraries that ship with the CUDA toolkit (their sonames do not always carry the CUDA major).
CUDA_TOOLKIT_LIBS = frozenset({"cudart", "cublas", "cublaslt", "cufft", "curand", "cusolver", "cusparse"})
DLOPEN_FAIL = "Cannot dlopen some GPU libraries"
#: Windows: TensorFlow names the DLL it could not load ("cudart64_110.dll not found").
WIN_DLL_FAIL = re.compile(r"Could not load dynamic library '?([\w.]+\.dll)'?|'?([\w]+64_\d+\.dll)'? not found")
#: TF >= 1.13 prints "9.1.0 ... compiled with: 9.3.0"; TF 1.x before that "7103 (compatibility version 7100)
#: ... compiled with 7005" (cuDNN's integer version: major * 1000 + minor * 100 + patch).
CUDNN_MISMATCH = re.compile(
    r"Loaded runtime CuDNN library:? (\d+(?:\.\d+)*)(?: \(compatibility version \d+\))? but source was compiled "
    r"with:? (\d+(?:\.\d+)*)")
IGNORING_GPU = re.compile(
    r"Ignoring visible gpu device \((.*?)\) with Cuda compute capability (\d+\.\d+)\. "
    r"The minimum required Cuda capability is (\d+\.\d+)")
DRIVER_INSUFFICIENT = "CUDA driver version is insufficient for CUDA runtime version"
#: cuDNN's own hint that the driver is too old (TF 1.x cuda_dnn.cc).
DRIVER_POSSIBLY_INSUFFICIENT = "Possibly insufficient driver version"
#: The NVIDIA Container Toolkit refuses a CUDA image whose CUDA is newer than the host driver supports.
CONTAINER_CUDA_REQUIREMENT = re.compile(r"unsatisfied condition: cuda>=(\d+\.\d+)")
#: Docker has no GPU runtime: the NVIDIA Container Toolkit is not installed (or Docker not restarted).
DOCKER_NO_GPU_RUNTIME = ('could not select device driver "" with capabilities: [[gpu]]',
                         "could not select device driver \"\" with capabilities",
                         "Unknown runtime specified nvidia")
#: The device node is missing: no driver loaded, or a container started without the GPU.
NO_DEVICE_NODE = ("/dev/nvidia0 does not exist", "no NVIDIA GPU device is present")
#: nvidia-smi is not on PATH (WSL2 keeps it in /usr/lib/wsl/lib).
NVIDIA_SMI_MISSING = re.compile(r"command not found: nvidia-smi|nvidia-smi: command not found|nvidia-smi: not found|"
                                r"'nvidia-smi' is not recognized")
UNSUPPORTED_PTX = "CUDA_ERROR_UNSUPPORTED_PTX_VERSION"
#: The wheel has no usable code for this GPU: PTX JIT failed or there was nothing to JIT
#: (tensorflow/docs pip.md: "device kernel image is invalid" means no PTX for the architecture).
KERNEL_IMAGE_PATTERNS = ("CUDA_ERROR_INVALID_PTX", "device kernel image is invalid",
                         "no kernel image is available for execution on the device")
NOT_BUILT_FOR_CC = re.compile(
    r"TensorFlow was not built with CUDA kernel binaries compatible with compute capability (\d+\.\d+)")
ALLOW_GROWTH_UNPARSED = "TF_FORCE_GPU_ALLOW_GROWTH environment variable is set but could"
#: cuDNN itself could not be found or initialised by name (TF >= 2.x: "DNN library is not found").
DNN_NOT_FOUND = ("DNN library is not found", "Could not load library libcudnn", "Unable to load cuDNN",
                 "cuDNN library not found")
#: TensorFlow's cuInit() failed: (needle, what it means) in the order checks test them.
CUINIT_FAIL = re.compile(r"failed call to cuInit: (?:CUDA_ERROR_)?(\w+)(?: \((\d+)\))?")
NO_DEVICE = ("CUDA_ERROR_NO_DEVICE", "no CUDA-capable device is detected")
CUINIT_UNKNOWN = ("CUDA_ERROR_UNKNOWN", "UNKNOWN ERROR (303)", "UNKNOWN ERROR (999)", "unknown error (999)")
COMPAT_NOT_SUPPORTED = ("CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE", "forward compatibility was attempted on non "
                        "supported HW", "UNKNOWN ERROR (804)")
#: The kernel module and the user-space driver differ (updated without a reboot).
DRIVER_MISMATCH = re.compile(r"kernel version (\S+) does not match DSO version (\S+)|"
                             r"Driver/library version mismatch|API mismatch: the NVIDIA kernel module|"
                             r"system has unsupported display driver / cuda driver combination")
#: TensorFlow's allocator ran out of GPU memory (the model or batch does not fit).
OOM_PATTERNS = (re.compile(r"Allocator \((GPU_\d+_bfc|gpu_async_\d+)\) ran out of memory trying to allocate "
                           r"([\d.]+\s*[KMGT]i?B)"),
                re.compile(r"OOM when allocating tensor with shape\s*\[?([\d, ]*)\]?"),
                re.compile(r"ResourceExhaustedError|RESOURCE_EXHAUSTED: .*memory"))
#: libcuda (the driver API) could not be loaded: no driver, or WSL2 without /usr/lib/wsl/lib.
LIBCUDA_MISSING = ("libcuda.so.1: cannot open shared object file", "Could not load dynamic library 'libcuda.so.1'",
                   "could not find cuda drivers on your machine, GPU will not be used",
                   "Could not find cuda drivers on your machine")
#: numpy 2 under a TensorFlow built against numpy 1.
NUMPY_ABI = ("compiled using NumPy 1.x cannot be run in", "_ARRAY_API not found",
             "numpy.core.multiarray failed to import", "numpy.dtype size changed, may indicate binary incompatibility")
#: protobuf 4+ with code generated by an old protoc (TF 1.x / 2.x < 2.12, the OD API's protos).
PROTOBUF_TOO_NEW = ("Descriptors cannot be created directly", "Descriptors cannot not be created directly",
                    "If this call came from a _pb2.py file, your generated code is out of date")
#: Keras 3 (TF >= 2.16) where tf.keras 2 code, such as the Object Detection API, expects Keras 2.
KERAS3 = ("Keras 3", "keras.src", "requires tf-keras package", "pip install tf-keras",
          "A KerasTensor cannot be used as input to a TensorFlow function", "tf_keras", "TF_USE_LEGACY_KERAS",
          "module 'keras' has no attribute",
          "`keras.layers.Layer`", "has no attribute 'Layer'", "object has no attribute '_keras_mask'",
          "You are using Keras 3", "from tensorflow.python.keras", "cannot import name 'keras'")
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
    """Every captured line of TensorFlow's output (log lines, the probe's stderr tail and error) and the
    user's ``--log``, each once."""
    from oddoctor.view import view

    return view(snap).log


def find_any(snap: Snapshot, needles: tuple[str, ...]) -> list[str]:
    """Captured lines that contain any of ``needles``."""
    return [ln for ln in log_text(snap) if any(n in ln for n in needles)]


def find(snap: Snapshot, needle: str) -> list[str]:
    """Captured lines that contain ``needle``."""
    return [ln for ln in log_text(snap) if needle in ln]


def find_re(snap: Snapshot, pattern: re.Pattern[str]) -> list[tuple[str, re.Match[str]]]:
    """Captured lines that ``pattern`` matches, each with its match (:meth:`oddoctor.view.View.find_re`)."""
    from oddoctor.view import view

    return view(snap).find_re(pattern)


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
    out: list[FailedLib] = []
    for pattern in (DSO_FAIL, IMPORT_FAIL, WIN_DLL_FAIL):
        for line, m in find_re(snap, pattern):
            name = next(g for g in m.groups() if g)
            stem = lib_stem(name)
            if any(f.soname == name for f in out):
                continue
            out.append(FailedLib(name, stem, LIB_COMPONENTS.get(stem, "CUDA"), line))
    return out


def cudnn_version(text: str) -> str:
    """cuDNN's integer version as TF 1.x prints it ("7103") in dotted form ("7.1.3"); dotted text unchanged."""
    if "." in text or len(text) < 4:
        return text
    n = int(text)
    return f"{n // 1000}.{n % 1000 // 100}.{n % 100}"


def soname_major(soname: str) -> Optional[int]:
    """The CUDA major a runtime soname asks for: ``libcudart.so.11.0`` -> 11, ``cudart64_110.dll`` -> 11."""
    m = re.search(r"\.so\.(\d+)", soname) or re.search(r"64_(\d+?)\d?\.dll", soname)
    return int(m.group(1)) if m else None


def short(line: str, limit: int = 240) -> str:
    """One log line without its timestamp prefix, cut to ``limit`` characters for a message."""
    s = re.sub(r"^\S*\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+:\s*", "", line.strip())
    s = re.sub(r"^[EWIF]\d{4} [\d:.]+\s+\d+\s+", "", s)
    return s if len(s) <= limit else s[: limit - 1] + "…"
