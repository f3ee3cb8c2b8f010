"""Version logic of oddoctor.compat and the branches of the compat checks that the corpus does not reach."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest
from packaging.version import Version

from oddoctor import compat
from oddoctor.checks import Check, Context, Status
from oddoctor.compat import logs
from oddoctor.snapshot import GpuProcess, LibFacts, Snapshot, load_snapshot
from oddoctor_plugins import cuda, driver, gpu, memory, platform, python, tensorflow
from tests.helpers import SNAPSHOTS

#: The built-in checks by function name, whichever area module holds them.
plugin = SimpleNamespace(**{name: obj for mod in (cuda, driver, gpu, memory, platform, python, tensorflow)
                            for name, obj in vars(mod).items() if isinstance(obj, Check)})


def _run(check, snap: Snapshot, ctx: Context | None = None):
    return check(snap, ctx or Context())


def _healthy(name: str = "healthy_tf221_cuda125_rtx4090") -> Snapshot:
    return load_snapshot(SNAPSHOTS / f"{name}.json")


# --- pure functions ------------------------------------------------------------------------------

def test_versions_are_compared_as_versions_not_strings():
    # As strings "1000.1" < "999" and "3.10" < "3.9"; as versions they are not.
    assert compat.min_driver_for_cuda("12.2") == Version("525.60.13")
    assert compat.newest_tf_for_driver("1000.1", "3.12").version == Version("2.21.0")
    assert compat.newest_tf_for_python("3.10").version >= compat.newest_tf_for_python("3.9").version
    assert not compat.tf_build_for("1.5", "linux").supports_python("3.2")  # "2.7, 3.3-3.6" skips 3.0-3.2
    assert compat.tf_build_for("1.5", "linux").supports_python("3.3.7")


@pytest.mark.parametrize(("cuda", "os_", "floor", "kind", "toolkit"), [
    ("12.5.1", "linux", "525.60.13", "minor_version_compat", "555.42.06"),
    ("12.5", "linux", "525.60.13", "minor_version_compat", "555.42.02"),
    ("11.8", "windows", "452.39", "minor_version_compat", "520.06"),
    ("11.0", "linux", "450.36.06", "minor_version_compat", "450.36.06"),
    ("10.1", "linux", "418.39", "toolkit_driver", "418.39"),
    ("9", "windows", "385.54", "toolkit_driver", "385.54"),
    ("64_112", "windows", "452.39", "minor_version_compat", "460.82"),
])
def test_driver_need(cuda, os_, floor, kind, toolkit):
    need = compat.driver_need(cuda, os_)
    assert (compat.format_driver(need.minimum), need.minimum_kind, compat.format_driver(need.toolkit_driver)) == (
        floor, kind, toolkit)


def test_tf_build_for_patch_releases_and_unknowns():
    assert compat.tf_build_for("2.15.1").cudnn == "8.9"  # corrected upstream from 8.8 (tensorflow/docs 0fc1acda9)
    assert compat.tf_build_for("2.16.2").version == Version("2.16.1")
    assert compat.tf_build_for("2.11", "windows") is None
    assert compat.tf_build_for("9.9") is None
    assert compat.pip_spec(compat.tf_build_for("1.15")) == "tensorflow-gpu==1.15.*"
    assert compat.pip_spec(compat.tf_build_for("2.13")) == "tensorflow==2.13.*"
    assert compat.pip_spec(compat.tf_build_for("2.17")) == "tensorflow[and-cuda]==2.17.*"


def test_compute_capability_coverage():
    new = compat.parse_archs(["sm_60", "sm_70", "sm_80", "sm_89", "compute_90"])
    assert [compat.cc_coverage(cc, new) for cc in ("8.6", "9.0", "12.0", "5.2")] == ["sass", "sass", "ptx", "none"]
    old = compat.parse_archs("3.5,3.7,5.2,6.0,6.1,7.0")  # bare list: PTX only for the newest
    assert [str(a) for a in old][-1] == "compute_70" and compat.cc_coverage("8.6", old) == "ptx"
    assert compat.newest_tf_for_cc("3.7").series == "2.13"
    assert compat.newest_tf_for_cc("3.0") is None
    assert compat.newest_tf_for_cc("12.0", native=True) is None


def test_log_helpers():
    assert logs.lib_stem("libcudart.so.11.0") == "cudart" and logs.lib_stem("cudnn64_8.dll") == "cudnn"
    assert logs.soname_major("libcudart.so.10.0") == 10 and logs.soname_major("cudart64_110.dll") == 11
    line = "E0000 00:00:1738697930.202924    7665 cuda_dnn.cc:522] Loaded runtime CuDNN library: 9.1.0 but"
    assert logs.short(line).startswith("cuda_dnn.cc:522]")


# --- check branches -----------------------------------------------------------------------------

def test_cpu_only_context_skips_gpu_checks():
    snap = load_snapshot(SNAPSHOTS / "corpus" / "tf_60913_cudnn_85_vs_86.json")
    assert _run(plugin.cudnn_runtime_match, snap, Context(cpu_only=True)).status is Status.SKIP


def test_ld_library_path_shadowing_names_both_files():
    snap = _healthy()
    pip = snap.cuda_libs.cudart[0]
    snap.cuda_libs.cudart = [LibFacts("cudart", "/usr/local/cuda-11.8/lib64/libcudart.so.11.0", "ld_library_path",
                                      "11.8", True), pip]
    r = _run(plugin.cuda_runtime_match, snap)
    assert r.status is Status.FAIL
    assert "/usr/local/cuda-11.8/lib64" in r.fix and pip.path in r.fix and "CUDA 12.5" in r.message


def test_older_cuda_minor_warns():
    snap = _healthy("healthy_tf212_cuda118_t4_conda")
    snap.cuda_libs.cudart[0].version = "11.2"
    r = _run(plugin.cuda_runtime_match, snap)
    assert r.status is Status.WARN and "older than TensorFlow's CUDA 11.8" in r.message and "CUDA 11.8" in r.fix


def test_cudart_found_but_not_loaded_suggests_ld_library_path():
    snap = load_snapshot(SNAPSHOTS / "corpus" / "tf_45930_libcudart_11_0.json")
    snap.cuda_libs.cudart = [LibFacts("cudart", "/usr/local/cuda-11.1/targets/x86_64-linux/lib/libcudart.so.11.0",
                                      "cuda_home", "11.1", True)]
    r = _run(plugin.cuda_runtime_match, snap)
    assert r.status is Status.FAIL
    # The folder goes first, without an empty entry when LD_LIBRARY_PATH was unset.
    assert r.fix.startswith("export LD_LIBRARY_PATH=/usr/local/cuda-11.1/targets/x86_64-linux/lib"
                            "${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}")


def test_ptx_only_gpu_warns_about_first_start():
    snap = _healthy("healthy_tf212_cuda118_t4_conda")
    snap.nvml.gpus[0].name, snap.nvml.gpus[0].compute_capability = "NVIDIA H100 80GB HBM3", "9.0"
    r = _run(plugin.gpu_compute_capability, snap)
    assert r.status is Status.WARN and "PTX" in r.message
    assert "CUDA_CACHE_MAXSIZE=4294967296" in r.fix and "tensorflow[and-cuda]==" in r.fix


def test_tf_jit_line_warns_when_the_compiled_list_is_unknown():
    snap = _healthy("healthy_tf115_cuda100_v100")  # TF 1.15: no build info, no wheel table row
    snap.tensorflow.log_lines = ["W0000 00:00:1755011248.049012     142 gpu_device.cc:2447] TensorFlow was not built "
                                 "with CUDA kernel binaries compatible with compute capability 12.0. CUDA kernels "
                                 "will be jit-compiled from PTX, which could take 30 minutes or longer."]
    r = _run(plugin.gpu_compute_capability, snap)
    assert r.status is Status.WARN and "CUDA_CACHE_MAXSIZE" in r.fix and "compute capability 12.0" in r.message
    snap.tensorflow.log_lines = []
    r = _run(plugin.gpu_compute_capability, snap)
    assert r.status is Status.SKIP and r.message.startswith("could not tell")


def test_unsupported_gpu_names_the_last_release():
    snap = _healthy()
    snap.nvml.gpus[0].name, snap.nvml.gpus[0].compute_capability = "Tesla K80", "3.7"
    snap.python.version = "3.10.12"
    r = _run(plugin.gpu_compute_capability, snap)
    assert r.status is Status.FAIL and "tensorflow==2.13.*" in r.fix


def test_driver_floor_warns_below_toolkit_driver_and_fails_below_floor():
    snap = _healthy()
    snap.nvml.driver_version = "535.104.05"  # >= 525.60.13 (12.x minor compat), < 555.42.06 (12.5.1 toolkit)
    r = _run(plugin.driver_cuda_floor, snap)
    assert r.status is Status.WARN and "555.42.06" in r.fix
    snap.nvml.driver_version = "470.82.01"
    r = _run(plugin.driver_cuda_floor, snap)
    assert r.status is Status.FAIL
    assert ">= 525.60.13" in r.fix and "tensorflow[and-cuda]==2.14.*" in r.fix


def test_driver_max_cuda_used_when_the_driver_version_is_unknown():
    snap = _healthy()
    snap.nvml.driver_version, snap.nvml.cuda_driver_version = None, "11.4"
    r = _run(plugin.driver_cuda_floor, snap)
    assert r.status is Status.FAIL and ">= 525.60.13" in r.fix
    snap.nvml.cuda_driver_version = "12.2"
    assert _run(plugin.driver_cuda_floor, snap).status is Status.SKIP


def test_wsl_uses_the_windows_driver_column():
    snap = _healthy("healthy_tf219_wsl2_rtx3070")
    snap.nvml.driver_version = "527.41"  # a Windows driver: >= 525.60.13 (Linux) but < 528.33 (Windows)
    r = _run(plugin.driver_cuda_floor, snap)
    assert r.status is Status.FAIL and ">= 528.33" in r.fix


def test_cuda_visible_devices_selection_is_what_tensorflow_should_see():
    snap = _healthy("healthy_tf215_cuda122_a100")
    snap.tensorflow.gpus = snap.tensorflow.gpus[:1]
    snap.env["CUDA_VISIBLE_DEVICES"] = "0"
    assert _run(plugin.tf_gpu_libs_loaded, snap).status is Status.OK  # 1 selected, 1 seen
    r = _run(plugin.gpu_cuda_visible_devices, snap)
    assert r.status is Status.OK and "selects GPU 0" in r.message
    snap.env["CUDA_VISIBLE_DEVICES"] = None
    r = _run(plugin.tf_gpu_libs_loaded, snap)
    assert r.status is Status.WARN and "1 of 2" in r.message  # unexplained: points to verbose logs


def test_python_outside_installed_tf_range_names_a_fitting_release():
    snap = _healthy("healthy_tf115_cuda100_v100")
    snap.python.version = "3.8.10"
    r = _run(plugin.python_tf_range, snap)
    assert r.status is Status.FAIL and "3.7" in r.fix and "tensorflow[and-cuda]==2.14" not in r.fix
    assert "pip install 'tensorflow[and-cuda]==2.13.*'" not in r.fix  # 2.13 has no and-cuda extra
    assert "pip install 'tensorflow==2.13.*'" in r.fix


def test_python_without_any_tf_release():
    snap = Snapshot()
    snap.platform.system, snap.python.version, snap.python.bits = "Linux", "3.14.0", 64
    r = _run(plugin.python_tf_range, snap)
    assert r.status is Status.FAIL and "Python 3.13" in r.fix


def test_shared_gpu_advises_allow_growth_and_true_is_ok():
    snap = copy.deepcopy(_healthy("healthy_tf215_cuda122_a100"))
    snap.nvml.gpus[0].processes = [GpuProcess(4242, "jupyter", 30 * 2**30)]
    r = _run(plugin.memory_allow_growth, snap)
    assert r.status is Status.WARN and "TF_FORCE_GPU_ALLOW_GROWTH=true" in r.fix and "memory_limit=" in r.fix
    snap.env["TF_FORCE_GPU_ALLOW_GROWTH"] = "true"
    assert _run(plugin.memory_allow_growth, snap).status is Status.OK
    snap.env["TF_FORCE_GPU_ALLOW_GROWTH"] = "1"
    assert _run(plugin.memory_allow_growth_value, snap).status is Status.FAIL


def test_macos_tensorflow_gpu_fails():
    snap = Snapshot()
    snap.platform.system = "Darwin"
    snap.tensorflow.installed, snap.tensorflow.version, snap.tensorflow.distribution = True, "1.1.0", "tensorflow-gpu"
    r = _run(plugin.macos_no_cuda, snap)
    assert r.status is Status.FAIL and "tensorflow-metal" in r.fix


def test_tensorflow_cpu_distribution_on_linux_gpu_box():
    snap = _healthy()
    snap.tensorflow.distribution, snap.tensorflow.build_info = "tensorflow-cpu", {}
    snap.tensorflow.built_with_cuda = None
    r = _run(plugin.tf_cpu_build_with_gpu, snap)
    assert r.status is Status.FAIL
    assert r.fix == "pip uninstall -y tensorflow-cpu && pip install 'tensorflow[and-cuda]==2.21.*'"
