"""TensorFlow's own words as evidence: every message users arrive with maps to the check that owns its cause,
with the fix. Each case is the user's log alone (``check --log``) on a machine that says little else."""

from __future__ import annotations

import pytest

from oddoctor.checks import Context, Status
from oddoctor.manager import make_plugin_manager
from oddoctor.runner import run_checks
from oddoctor.snapshot import Snapshot

PS = make_plugin_manager()

#: (log lines, facts beyond "Linux, TensorFlow <tf>, a GPU is meant", check id, status, fix needle)
CASES = [
    (["E tensorflow/stream_executor/cuda/cuda_driver.cc:351] failed call to cuInit: CUDA_ERROR_NO_DEVICE: no "
      "CUDA-capable device is detected"], {}, "driver.cuda-init", "fail", "nvidia-smi"),
    (["failed call to cuInit: CUDA_ERROR_UNKNOWN: unknown error"], {}, "driver.cuda-init", "fail", "nvidia_uvm"),
    (["E external/local_xla/xla/stream_executor/cuda/cuda_driver.cc:282] failed call to cuInit: UNKNOWN ERROR (303)"],
     {}, "driver.cuda-init", "fail", "nvidia_uvm"),
    (["failed call to cuInit: CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE: forward compatibility was attempted on non "
      "supported HW"], {}, "driver.cuda-init", "fail", "cuda-compat"),
    (["cudaGetDevice() failed. Status: CUDA driver version is insufficient for CUDA runtime version"],
     {"driver": "450.51.05"}, "driver.cuda-floor", "fail", ">= 525.60.13"),
    (["kernel version 535.54.3 does not match DSO version 550.90.7 -- cannot find working devices in this "
      "configuration"], {}, "driver.present", "fail", "Reboot"),
    (["W tensorflow/stream_executor/platform/default/dso_loader.cc:64] Could not load dynamic library "
      "'libcublas.so.11'; dlerror: libcublas.so.11: cannot open shared object file: No such file or directory"],
     {"tf": "2.6.0"}, "cuda.runtime-match", "fail", "CUDA 11.2"),
    (["Could not load dynamic library 'libcublasLt.so.11'; dlerror: libcublasLt.so.11: cannot open shared object"],
     {"tf": "2.6.0"}, "cuda.runtime-match", "fail", "CUDA 11.2"),
    (["Could not load dynamic library 'libcufft.so.10'; dlerror: libcufft.so.10: cannot open shared object file"],
     {"tf": "2.6.0"}, "cuda.runtime-match", "fail", "CUDA 11.2"),
    (["Could not load dynamic library 'libcurand.so.10'; dlerror: libcurand.so.10: cannot open shared object file"],
     {"tf": "2.6.0"}, "cuda.runtime-match", "fail", "CUDA 11.2"),
    (["Could not load dynamic library 'libcusolver.so.11'; dlerror: libcusolver.so.11: cannot open shared object"],
     {"tf": "2.6.0"}, "cuda.runtime-match", "fail", "CUDA 11.2"),
    (["Could not load dynamic library 'libcusparse.so.11'; dlerror: libcusparse.so.11: cannot open shared object"],
     {"tf": "2.6.0"}, "cuda.runtime-match", "fail", "CUDA 11.2"),
    (["Could not load dynamic library 'libcudart.so.11.0'; dlerror: libcudart.so.11.0: cannot open shared object"],
     {"tf": "2.12.0"}, "cuda.runtime-match", "fail", "CUDA 11.8"),
    (["Could not load dynamic library 'libcudnn.so.8'; dlerror: libcudnn.so.8: cannot open shared object file"],
     {}, "cudnn.runtime-match", "fail", "tensorflow[and-cuda]==2.15.*"),
    (["DNN library is not found."], {}, "cudnn.runtime-match", "fail", "cuDNN 8.9"),
    (["E tensorflow/compiler/xla/stream_executor/cuda/cuda_dnn.cc:439] Loaded runtime CuDNN library: 8.6.0 but "
      "source was compiled with: 8.9.4.  CuDNN library needs to have matching major version and equal or higher "
      "minor version."], {}, "cudnn.runtime-match", "fail", "8.9"),
    (["I tensorflow/core/common_runtime/gpu/gpu_device.cc:1700] Ignoring visible gpu device (device: 0, name: Tesla "
      "K40c, pci bus id: 0000:03:00.0, compute capability: 3.5) with Cuda compute capability 3.5. The minimum "
      "required Cuda capability is 5.0."], {}, "gpu.compute-capability", "fail", "tensorflow"),
    (["tensorflow.python.framework.errors_impl.InternalError: CUDA runtime implicit initialization on GPU:0 failed. "
      "Status: no kernel image is available for execution on the device"], {}, "gpu.compute-capability", "fail",
     "compute capability"),
    (["W tensorflow/core/common_runtime/bfc_allocator.cc:479] Allocator (GPU_0_bfc) ran out of memory trying to "
      "allocate 1.17GiB (rounded to 1258291200)requested by op Conv2D"], {}, "memory.out-of-memory", "fail",
     "batch size"),
    (["ResourceExhaustedError: OOM when allocating tensor with shape[16,256,160,160] and type float on "
      "/job:localhost/replica:0/task:0/device:GPU:0 by allocator GPU_0_bfc"], {}, "memory.out-of-memory", "fail",
     "batch size"),
    (["UnknownError: Failed to get convolution algorithm. This is probably because cuDNN failed to initialize, so try "
      "looking to see if a warning log message was printed above."], {}, "memory.allow-growth", "fail",
     "TF_FORCE_GPU_ALLOW_GROWTH=true"),
    (["E tensorflow/stream_executor/cuda/cuda_dnn.cc:329] Could not create cudnn handle: CUDNN_STATUS_INTERNAL_ERROR"],
     {}, "memory.allow-growth", "fail", "set_memory_growth"),
    (["Could not create cudnn handle: CUDNN_STATUS_NOT_INITIALIZED"], {}, "memory.allow-growth", "fail",
     "TF_FORCE_GPU_ALLOW_GROWTH=true"),
    (["W tensorflow/compiler/tf2tensorrt/utils/py_utils.cc:38] TF-TRT Warning: Could not find TensorRT"], {},
     "cuda.tensorrt", "ok", None),
    (["Could not load dynamic library 'libnvinfer.so.7'; dlerror: libnvinfer.so.7: cannot open shared object file"],
     {}, "cuda.tensorrt", "ok", None),
    (["A module that was compiled using NumPy 1.x cannot be run in", "NumPy 2.0.0 as it may crash."],
     {"tf": "2.15.0"}, "packages.numpy-abi", "fail", "numpy<2"),
    (["TypeError: Descriptors cannot be created directly."], {}, "packages.protobuf", "fail", "protobuf<=3.20.3"),
    (["ValueError: You have tensorflow 2.16.1 and this requires tf-keras package. Please run `pip install tf-keras`"],
     {"tf": "2.16.1"}, "packages.keras-od-api", "fail", "TF_USE_LEGACY_KERAS=1"),
]


def _snap(lines: list[str], facts: dict[str, str]) -> Snapshot:
    snap = Snapshot(source="a user's log only")
    snap.platform.system = "Linux"
    snap.expects_gpu = True
    snap.tensorflow.installed, snap.tensorflow.version = True, facts.get("tf", "2.15.0")
    if "driver" in facts:
        snap.nvml.driver_version = facts["driver"]
    snap.user_log = list(lines)
    return snap


@pytest.mark.parametrize(("lines", "facts", "cid", "status", "needle"), CASES,
                         ids=[f"{c[2]}-{i}" for i, c in enumerate(CASES)])
def test_tensorflows_words_name_the_owning_check_and_its_fix(lines, facts, cid, status, needle):
    results = run_checks(PS, _snap(lines, facts), Context()).results
    r = next(r for r in results if r.id == cid)
    assert r.status == Status(status), r.message
    if needle:
        assert needle in (r.fix or ""), r.fix
    # One root cause, one failure: nothing else fails on a log that shows one cause.
    others = [x.id for x in results if x.status is Status.FAIL and x.id != cid]
    assert others == [], others


def test_tensorrt_line_is_never_the_cause():
    snap = _snap(["Could not load dynamic library 'libnvinfer.so.7'; dlerror: libnvinfer.so.7: cannot open shared "
                  "object file: No such file or directory"], {})
    assert not [r for r in run_checks(PS, snap).results if r.status in (Status.FAIL, Status.WARN)]
