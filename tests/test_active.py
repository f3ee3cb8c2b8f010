"""`check --active`: the first real kernels' failures, diagnosed from the error texts users reported.

The snapshots are the synthetic scenario fixtures (an H100 with TensorFlow 2.21, and the same card held by
another job); each kernel error is TensorFlow's own text from the report named beside it.
"""

from __future__ import annotations

import json

import pytest

from oddoctor.manager import make_plugin_manager
from oddoctor.runner import run_checks
from oddoctor.snapshot import Snapshot
from tests.helpers import SNAPSHOTS

KERNELS = ("conv2d", "matmul", "crop_and_resize", "non_max_suppression")
#: tensorflow/tensorflow#34518 (the OD API tutorial notebook, TF 2.0, GTX 1050 Mobile 2 GB)
CONV_ALGO = ("UnknownError: Failed to get convolution algorithm. This is probably because cuDNN failed to "
             "initialize, so try looking to see if a warning log message was printed above. [Op:Conv2D]")
#: tensorflow/tensorflow#60913 (a later comment: TF built with cuDNN 9.3, an older cuDNN first on the path)
CUDNN_OLD_LOG = ("E0000 00:00:1738697930.202924    7665 cuda_dnn.cc:522] Loaded runtime CuDNN library: 9.1.0 but "
                 "source was compiled with: 9.3.0.  CuDNN library needs to have matching major version and equal "
                 "or higher minor version.")
DNN_INIT = ("FailedPreconditionError: DNN library initialization failed. Look at the errors above for more "
            "details. [Op:Conv2D]")
#: deepmodeling/dpgen#753 (the text of tensorflow#34069, cured by closing the other notebooks on the GPU)
BLAS = ("InternalError: Blas GEMM launch failed : a.shape=(64, 50), b.shape=(50, 180), m=64, n=180, k=50 "
        "[Op:MatMul]")
#: gsethi2409/tf-pose-estimation#3 (GTX 750 Ti, compute capability 5.0; tensorflow#42467 says why)
NO_IMAGE = ("InternalError: Non-OK-status: GpuLaunchKernel(...) status: Internal: no kernel image is available "
            "for execution on the device")


def _snap(name: str, runs: list[dict], log: tuple[str, ...] = ()) -> Snapshot:
    data = json.loads((SNAPSHOTS / name).read_text())
    data["tensorflow"]["kernels"] = runs
    data["tensorflow"]["log_lines"] = [*data["tensorflow"].get("log_lines", []), *log]
    return Snapshot.from_dict(data)


def _runs(device: str = "/device:GPU:0", **errors: str) -> list[dict]:
    out = []
    for k in KERNELS:
        if k in errors:
            out.append({"device": device, "kernel": k, "ok": False, "error": errors[k]})
        else:
            out.append({"device": device, "kernel": k, "ok": True, "first_s": 0.2, "second_s": 0.001})
    return out


@pytest.fixture(scope="module")
def ps():
    return make_plugin_manager()


def results(ps, snap: Snapshot) -> dict:
    return {r.id: r for r in run_checks(ps, snap).results}


def test_cudnn_that_cannot_start_is_a_memory_problem_with_the_free_memory_and_the_growth_fix(ps):
    got = results(ps, _snap("core_gpu_held_by_other_process.json", _runs(conv2d=CONV_ALGO)))
    r = got["tf.kernels.gpu0"]
    assert r.status.value == "fail"
    assert "cuDNN could not start at the first conv2d" in r.message and "GiB free" in r.message
    assert "Failed to get convolution algorithm" in r.message
    assert "pid 31337" in r.fix and "TF_FORCE_GPU_ALLOW_GROWTH=true" in r.fix


def test_cudnn_that_cannot_start_beside_an_old_cudnn_points_at_the_cudnn_check(ps):
    got = results(ps, _snap("core_healthy_h100_tf221.json", _runs(conv2d=DNN_INIT), log=(CUDNN_OLD_LOG,)))
    assert got["tf.kernels.gpu0"].status.value == "skip"
    assert "see cudnn.runtime-match" in got["tf.kernels.gpu0"].message
    assert got["cudnn.runtime-match"].status.value == "fail"  # one root cause, one failure: the cuDNN version


def test_cublas_that_cannot_start_names_the_processes_holding_the_gpu(ps):
    got = results(ps, _snap("core_gpu_held_by_other_process.json", _runs(matmul=BLAS)))
    r = got["tf.kernels.gpu0"]
    assert r.status.value == "fail" and "cuBLAS could not start at the first matmul" in r.message
    assert r.fix.startswith("stop the other processes on the GPU (pid 31337)")


def test_no_kernel_image_names_a_tensorflow_with_code_for_the_gpu(ps):
    got = results(ps, _snap("core_healthy_h100_tf221.json", _runs(conv2d=NO_IMAGE, matmul=NO_IMAGE)))
    r = got["tf.kernels.gpu0"]
    assert r.status.value == "fail" and "no kernel for this GPU" in r.message and "1 more kernel(s)" in r.message
    assert "pip install" in r.fix and "compute capability 9.0" in r.fix


def test_an_unknown_failure_says_how_to_run_the_kernel_alone(ps):
    got = results(ps, _snap("core_healthy_h100_tf221.json", _runs(crop_and_resize="InternalError: something new")))
    r = got["tf.kernels.gpu0"]
    assert r.status.value == "fail" and "crop_and_resize failed: InternalError: something new" in r.message
    assert "TF_CPP_MIN_LOG_LEVEL=0 python -c" in r.fix and "crop_and_resize" in r.fix


def test_a_first_call_that_takes_seconds_is_a_ptx_jit_warning(ps):
    runs = _runs()
    runs[0].update(first_s=41.5, second_s=0.002)
    r = results(ps, _snap("core_healthy_h100_tf221.json", runs))["tf.kernels.gpu0"]
    assert r.status.value == "warn" and "took 41.5 s" in r.message and "PTX" in r.message
    assert "CUDA_CACHE_MAXSIZE=4294967296" in r.fix


def test_kernels_that_ran_are_ok_with_their_times_and_not_running_them_is_a_skip(ps):
    r = results(ps, _snap("core_healthy_h100_tf221.json", _runs()))["tf.kernels.gpu0"]
    assert r.status.value == "ok" and "conv2d 200 ms first, 1.0 ms then" in r.message
    data = json.loads((SNAPSHOTS / "core_healthy_h100_tf221.json").read_text())
    r = results(ps, Snapshot.from_dict(data))["tf.kernels"]
    assert r.status.value == "skip" and "oddoctor check --active" in r.message


def test_a_failure_tensorflow_also_logged_is_told_once_by_the_check_that_owns_the_log_line(ps):
    log = ("2026-11-20 10:00:01.000000: E tensorflow/stream_executor/cuda/cuda_dnn.cc:329] Could not create cudnn "
           "handle: CUDNN_STATUS_INTERNAL_ERROR",)  # the line TF logs before "Failed to get convolution algorithm"
    got = results(ps, _snap("core_gpu_held_by_other_process.json", _runs(conv2d=CONV_ALGO), log=log))
    assert got["tf.kernels.gpu0"].status.value == "skip" and "see memory.allow-growth" in got["tf.kernels.gpu0"].message
    assert got["memory.allow-growth"].status.value == "fail"


# --- live: the probe child runs the kernels --------------------------------------------------------------------

def test_check_active_runs_the_four_kernels_on_this_machine_and_times_them():
    from tests.helpers import run_json

    _code, doc = run_json("check", "--active", "--only", "tf.", "--json")
    r = {x["id"]: x for x in doc["results"]}["tf.kernels.cpu"]  # the CI machine has no GPU: the CPU runs them
    assert r["status"] == "ok", r
    kernels = r["details"]["kernels"]
    assert [k["kernel"] for k in kernels] == list(KERNELS)
    assert all(k["ok"] and 0 < k["second_s"] < 30 and 0 < k["first_s"] < 60 for k in kernels), kernels


def test_collect_active_keeps_the_kernels_for_check_from(tmp_path):
    from tests.helpers import run_oddoctor

    snap = tmp_path / "snap.json"
    proc = run_oddoctor("collect", "--active", "-o", str(snap))
    assert proc.returncode == 0, proc.stderr
    kernels = json.loads(snap.read_text())["tensorflow"]["kernels"]
    assert {k["kernel"] for k in kernels} == set(KERNELS) and all(k["ok"] for k in kernels)
    proc = run_oddoctor("check", "--from", str(snap), "--only", "tf.kernels")
    assert "tf.kernels.cpu" in proc.stdout and "conv2d" in proc.stdout


def test_check_active_with_from_is_a_usage_error(tmp_path):
    from tests.helpers import run_oddoctor

    proc = run_oddoctor("check", "--active", "--from", str(SNAPSHOTS / "core_healthy_h100_tf221.json"))
    assert proc.returncode == 2 and "--active runs kernels on this machine" in proc.stderr


#: A TensorFlow stand-in whose first convolution on "GPU:0" takes the process down, as a cuDNN fatal check does.
ABORTING_TF = '''
import contextlib, os, sys, types
__version__ = "2.99.0"

class _Any:
    def __init__(self, *a, **k): pass
    def __call__(self, *a, **k): return _Any()
    def __getattr__(self, name): return _Any()
    def __mul__(self, other): return self
    __rmul__ = __add__ = __radd__ = __mul__
    def numpy(self): return 0

def _conv2d(*a, **k):
    print("F fake/cuda_dnn.cc:1] the stand-in aborts in conv2d", file=sys.stderr, flush=True)
    os.abort()

class _Dev:
    name = "/device:GPU:0"

nn = types.SimpleNamespace(conv2d=_conv2d)
random = linalg = image = _Any()
constant = zeros = concat = _Any()
int32 = None
device = lambda name: contextlib.nullcontext()
sysconfig = types.SimpleNamespace(get_build_info=lambda: {"cuda_version": "12.5.1"})
test = types.SimpleNamespace(is_built_with_cuda=lambda: True)
config = types.SimpleNamespace(
    list_physical_devices=lambda kind: [_Dev()] if kind == "GPU" else [],
    list_logical_devices=lambda kind: [_Dev()] if kind == "GPU" else [],
    experimental=types.SimpleNamespace(get_device_details=lambda d: {"device_name": "Stand-in GPU"}))
'''


@pytest.mark.timeout(120)
def test_a_kernel_that_kills_the_probe_is_named_with_its_last_words(tmp_path, monkeypatch):
    from oddoctor.probes.tensorflow import probe_tensorflow

    (tmp_path / "tensorflow").mkdir()
    (tmp_path / "tensorflow" / "__init__.py").write_text(ABORTING_TF)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    facts = probe_tensorflow(timeout_s=60, kernels=True)
    assert facts.importable is True and facts.probe.signal == "SIGABRT"
    assert len(facts.kernels) == 1
    run = facts.kernels[0]
    assert (run.device, run.kernel, run.ok) == ("/device:GPU:0", "conv2d", False)
    assert "killed by SIGABRT during kernels" in run.error and "the stand-in aborts in conv2d" in run.error
