"""`oddoctor check --from` on snapshots of healthy and broken machines, through the real CLI."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from tests.helpers import REPO, SNAPSHOTS, run_json, run_oddoctor

SCHEMA = json.loads((REPO / "oddoctor" / "schemas" / "check-report.schema.json").read_text())


def by_id(doc: dict) -> dict[str, dict]:
    return {r["id"]: r for r in doc["results"]}


def test_healthy_gpu_box_passes_every_check():
    code, doc = run_json("check", "--from", str(SNAPSHOTS / "core_healthy_h100_tf221.json"))
    jsonschema.validate(doc, SCHEMA)
    assert code == 0 and doc["exit_code"] == 0 and doc["verdict"] == "ok"
    bad = [r for r in doc["results"] if r["status"] in ("fail", "error", "warn")]
    assert bad == []
    assert by_id(doc)["driver.present"]["message"].startswith("NVIDIA driver 560.35.03")
    assert doc["snapshot"]["facts"]["tf_build_cuda"] == "12.5.1"


@pytest.mark.parametrize(("snapshot", "check_id", "status", "fix_contains"), [
    ("core_tf_import_segfault", "tf.importable", "fail", "python -m venv"),
    ("core_tf_import_hang", "tf.importable", "fail", "--tf-timeout"),
    ("core_tf_not_installed", "tf.importable", "fail", "pip install 'tensorflow[and-cuda]==2.21.*'"),
    ("core_cpu_wheel_on_gpu_box", "tf.cpu-build-with-gpu", "fail", "pip uninstall -y tensorflow-cpu"),
    ("core_cuda_visible_devices_hides_gpu", "gpu.cuda-visible-devices", "fail", "unset CUDA_VISIBLE_DEVICES"),
    ("core_gpu_held_by_other_process", "gpu.other-processes.gpu0", "warn", "TF_FORCE_GPU_ALLOW_GROWTH=true"),
])
def test_broken_snapshots_name_the_failing_check_and_fix(snapshot, check_id, status, fix_contains):
    code, doc = run_json("check", "--from", str(SNAPSHOTS / f"{snapshot}.json"))
    jsonschema.validate(doc, SCHEMA)
    r = by_id(doc)[check_id]
    assert r["status"] == status, r
    assert fix_contains in r["fix"]
    assert code == (1 if status == "fail" else 0)


def test_segfault_is_quoted_from_the_childs_stderr():
    _, doc = run_json("check", "--from", str(SNAPSHOTS / "core_tf_import_segfault.json"))
    r = by_id(doc)["tf.importable"]
    assert "SIGSEGV" in r["message"] and "Segmentation fault" in r["message"]
    assert "Fatal Python error" in r["details"]["stderr_tail"]


def test_strict_turns_warnings_into_failures():
    snap = str(SNAPSHOTS / "core_gpu_held_by_other_process.json")
    assert run_oddoctor("check", "--from", snap).returncode == 0
    code, doc = run_json("check", "--from", snap, "--strict")
    assert code == 1 and doc["strict"] is True and doc["verdict"] == "problems"


def test_min_vram_fails_when_another_process_holds_the_memory():
    code, doc = run_json("check", "--from", str(SNAPSHOTS / "core_gpu_held_by_other_process.json"),
                         "--min-vram", "8GiB")
    r = by_id(doc)["gpu.min-vram.gpu0"]
    assert code == 1 and r["status"] == "fail"
    assert "pid 31337" in r["message"] and "8.0 GiB asked" in r["message"]
    assert r["details"]["required_bytes"] == 8 * 1024**3
    code, doc = run_json("check", "--from", str(SNAPSHOTS / "core_healthy_h100_tf221.json"), "--min-vram", "40GB")
    assert code == 0 and by_id(doc)["gpu.min-vram.gpu0"]["status"] == "ok"


def test_only_and_skip_select_by_id_or_prefix():
    snap = str(SNAPSHOTS / "core_healthy_h100_tf221.json")
    _, doc = run_json("check", "--from", snap, "--only", "gpu")
    assert doc["results"] and all(r["id"].startswith("gpu.") for r in doc["results"])
    _, doc = run_json("check", "--from", snap, "--skip", "gpu,tf.importable")
    ids = set(by_id(doc))
    assert "tf.importable" not in ids and not any(i.startswith("gpu.") for i in ids)
    assert "driver.present" in ids


def test_cpu_flag_skips_gpu_checks_on_a_machine_without_driver():
    code, doc = run_json("check", "--from", str(SNAPSHOTS / "core_no_driver_cpu_machine.json"), "--cpu")
    assert by_id(doc)["driver.present"]["status"] == "skip"
    assert not [r for r in doc["results"] if r["status"] in ("fail", "error")]
    assert code == 0


def test_machine_without_nvidia_hardware_is_a_healthy_cpu_machine():
    # Collected on a CPU-only machine: no NVIDIA PCI device, no /dev/nvidia*, TensorFlow 2.21 (a CUDA build).
    code, doc = run_json("check", "--from", str(SNAPSHOTS / "core_no_driver_cpu_machine.json"))
    res = by_id(doc)
    assert res["driver.present"]["status"] == "skip" and "no NVIDIA GPU" in res["driver.present"]["message"]
    assert not [r for r in doc["results"] if r["status"] in ("fail", "error", "warn")], doc["results"]
    assert code == 0


def test_gpu_flag_insists_a_gpu_is_expected_and_names_the_driver_floor():
    code, doc = run_json("check", "--from", str(SNAPSHOTS / "core_no_driver_cpu_machine.json"), "--gpu")
    r = by_id(doc)["driver.present"]
    assert code == 1 and r["status"] == "fail" and "no NVIDIA PCI device" in r["message"]
    assert ">= 525.60.13 (for CUDA 12.5.1" in r["fix"]
    assert run_oddoctor("check", "--from", str(SNAPSHOTS / "core_no_driver_cpu_machine.json"),
                        "--gpu", "--cpu").returncode == 2


def test_unknown_hardware_is_not_read_as_no_driver(tmp_path: Path):
    # NVML failed and nothing else says whether a GPU is here: "could not tell", never "no driver found".
    snap = json.loads((SNAPSHOTS / "core_no_driver_cpu_machine.json").read_text())
    snap.pop("hardware", None)
    f = tmp_path / "unknown_hw.json"
    f.write_text(json.dumps(snap))
    code, doc = run_json("check", "--from", str(f))
    r = by_id(doc)["driver.present"]
    assert r["status"] == "skip" and r["message"].startswith("could not tell: driver.version unknown (NVML failed")
    assert code == 0


def test_human_report_has_marks_fix_and_summary_without_color_when_not_a_tty():
    proc = run_oddoctor("check", "--from", str(SNAPSHOTS / "core_tf_not_installed.json"), env={"NO_COLOR": ""})
    out = proc.stdout
    assert proc.returncode == 1
    assert "\x1b[" not in out  # stdout is a pipe: no colour codes
    assert "[✗] tf.importable" in out
    assert "fix: pip install 'tensorflow[and-cuda]==2.21.*'" in out
    assert out.rstrip().splitlines()[-1].startswith("Doctor found 1 problem(s)")


def test_verbose_shows_details():
    proc = run_oddoctor("check", "--from", str(SNAPSHOTS / "core_tf_import_segfault.json"), "--verbose")
    assert "stderr_tail: " in proc.stdout and "plugin tensorflow" in proc.stdout


@pytest.mark.parametrize(("content", "expect"), [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "a snapshot is a JSON object"),
    ('{"hello": 1}', "no integer 'schema_version'"),
    ('{"schema_version": 99}', "newer than this oddoctor understands"),
    ('{"schema_version": 1, "nvml": {"gpus": "many"}}', "snapshot.nvml.gpus: expected a list"),
    ('{"schema_version": 1, "python": {"bits": "64"}}', "snapshot.python.bits: expected an integer"),
])
def test_bad_snapshot_files_exit_2_with_one_line(tmp_path: Path, content: str, expect: str):
    f = tmp_path / "snap.json"
    f.write_text(content)
    proc = run_oddoctor("check", "--from", str(f))
    assert proc.returncode == 2
    assert expect in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert proc.stdout == ""


def test_missing_snapshot_file_and_bad_size_exit_2(tmp_path: Path):
    proc = run_oddoctor("check", "--from", str(tmp_path / "nope.json"))
    assert proc.returncode == 2 and "no such file" in proc.stderr
    proc = run_oddoctor("check", "--from", str(SNAPSHOTS / "core_healthy_h100_tf221.json"), "--min-vram", "lots")
    assert proc.returncode == 2 and "cannot read size 'lots'" in proc.stderr


def test_checks_lists_builtin_checks_with_their_plugin():
    code, doc = run_json("checks")
    assert code == 0
    rows = {c["id"]: c for c in doc["checks"]}
    for cid in ("platform.supported", "driver.present", "tf.importable", "tf.cuda-build", "gpu.visible",
                "gpu.min-vram", "gpu.other-processes"):
        area = cid.split(".")[0]
        assert rows[cid]["plugin"] == {"tf": "tensorflow"}.get(area, area) and rows[cid]["description"]


def test_driver_fix_without_tensorflow_names_the_floor_of_the_newest_tf_for_this_python(tmp_path: Path):
    # A fresh machine: an NVIDIA GPU on the PCI bus, no driver, no TensorFlow yet (Python 3.11.9).
    snap = json.loads((SNAPSHOTS / "core_tf_not_installed.json").read_text())
    snap["schema_version"] = 2
    snap["nvml"] = {"available": False, "error": "NVMLError_LibraryNotFound: NVML Shared Library Not Found"}
    snap["hardware"] = {"pci_nvidia": [{"slot": "0000:01:00.0", "device_id": "0x2684", "klass": "0x030000",
                                        "driver": None}], "dev_nvidia": []}
    f = tmp_path / "fresh.json"
    f.write_text(json.dumps(snap))
    code, doc = run_json("check", "--from", str(f))
    r = by_id(doc)["driver.present"]
    assert code == 1 and r["status"] == "fail"
    assert ">= 525.60.13 (for TensorFlow 2.21's CUDA 12.5)" in r["fix"]
    assert "1 NVIDIA PCI device" in r["message"]


def test_one_root_cause_gives_one_failure():
    # tensorflow-cpu on a GPU box: the compat check fails with the versioned fix; core checks defer to it.
    _, doc = run_json("check", "--from", str(SNAPSHOTS / "core_cpu_wheel_on_gpu_box.json"))
    failed = [r["id"] for r in doc["results"] if r["status"] == "fail"]
    assert failed == ["tf.cpu-build-with-gpu"]
    assert "see tf.cpu-build-with-gpu" in by_id(doc)["tf.cuda-build"]["message"]


def test_macos_is_not_told_to_install_an_nvidia_driver():
    _, doc = run_json("check", "--from", str(SNAPSHOTS / "corpus" / "tf_15230_macos_gpu.json"))
    res = by_id(doc)
    assert res["driver.present"]["status"] == "skip"
    assert res["tf.cuda-build"]["status"] == "skip"
    assert res["platform.macos-no-cuda"]["status"] in ("warn", "fail")


# --- before the install: --tf judges the machine for a release ---------------------------------------------

H200_IDLE = SNAPSHOTS / "corpus" / "real_h200_idle_no_tf.json"


def test_tf_option_judges_a_real_machine_before_the_install():
    # Collected on a real H200 (Python 3.12, driver 580, a CUDA 13 toolkit and torch's cuDNN 9 already there).
    code, doc = run_json("check", "--from", str(H200_IDLE), "--tf", "2.15")
    res = by_id(doc)
    assert code == 1
    assert res["python.tf-range"]["status"] == "fail" and "3.9-3.11" in res["python.tf-range"]["message"]
    assert "tensorflow[and-cuda]==2.21.*" in res["python.tf-range"]["fix"]
    imp = res["tf.importable"]
    assert imp["status"] == "ok" and "pip install 'tensorflow[and-cuda]==2.15.*'" in imp["message"]
    # tensorflow[and-cuda] brings its own CUDA 12.2 / cuDNN 8.9 wheels: the CUDA 13 toolkit does not shadow them.
    assert res["cuda.runtime-match"]["status"] == "ok" and "nothing on LD_LIBRARY_PATH" in res[
        "cuda.runtime-match"]["message"]
    assert res["driver.cuda-floor"]["status"] == "ok" and "CUDA 12.2" in res["driver.cuda-floor"]["message"]
    assert res["tf.gpu-libs-loaded"]["status"] == "skip" and doc["origin"].endswith("(--tf)")
    code, doc = run_json("check", "--from", str(H200_IDLE), "--tf", "2.21")
    assert code == 0, [r for r in doc["results"] if r["status"] in ("fail", "warn")]


def test_tf_option_names_a_library_folder_that_would_shadow_the_wheels(tmp_path: Path):
    snap = json.loads(H200_IDLE.read_text())
    snap["cuda_libs"]["cudart"].insert(0, {"name": "cudart", "path": "/usr/local/cuda-13.0/lib64/libcudart.so.13",
                                           "source": "ld_library_path", "version": "13.0", "loadable": True})
    snap["nvml"]["driver_version"] = "470.82.01"
    f = tmp_path / "snap.json"
    f.write_text(json.dumps(snap))
    code, doc = run_json("check", "--from", str(f), "--tf", "2.21")
    res = by_id(doc)
    r = res["cuda.runtime-match"]
    assert code == 1 and r["status"] == "fail" and "would shadow" in r["message"]
    assert r["fix"].startswith("Remove /usr/local/cuda-13.0/lib64 from LD_LIBRARY_PATH")
    floor = res["driver.cuda-floor"]
    assert floor["status"] == "fail" and ">= 525.60.13" in floor["fix"]


@pytest.mark.parametrize("bad", ["9.9", "latest", "2"])
def test_tf_option_refuses_an_unknown_release(bad: str):
    proc = run_oddoctor("check", "--from", str(H200_IDLE), "--tf", bad)
    assert proc.returncode == 2 and "not a TensorFlow release" in proc.stderr and "Traceback" not in proc.stderr
