"""`oddoctor compat` agrees with the packaged upstream tables, row by row.

The oracle here reads the CSV files with the csv module and applies NVIDIA's rules directly, so it
does not share code with :mod:`oddoctor.compat` beyond the files themselves.
"""

from __future__ import annotations

import csv
import io
import json
import re
from importlib import resources

import pytest
from packaging.version import Version
from typer.testing import CliRunner

from oddoctor import compat
from oddoctor.cli.main import app
from tests.helpers import run_oddoctor

runner = CliRunner()


def _rows(name: str) -> list[dict[str, str]]:
    text = resources.files("oddoctor.compat").joinpath(name).read_text(encoding="utf-8")
    body = "\n".join(ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#"))
    return list(csv.DictReader(io.StringIO(body)))


LINUX_ROWS = _rows("tf_builds_linux.csv")
WINDOWS_ROWS = _rows("tf_builds_windows.csv")
DRIVER_ROWS = _rows("cuda_driver_min.csv")


def _oracle_floor(cuda: str, os_: str) -> str:
    """NVIDIA's floor for a TF build's CUDA: minor-version compatibility for 11.0+ (Table 2), else Table 3."""
    col = "windows_x86_64_min_driver" if os_ == "windows" else "linux_x86_64_min_driver"
    v = Version(cuda if "." in cuda else cuda + ".0")
    compat_rows = {r["cuda_version"]: r[col] for r in DRIVER_ROWS if r["kind"] == "minor_version_compat"}
    if v.major >= 12:
        return compat_rows[f"{v.major}.x"]
    if v.major == 11:
        return compat_rows["11.0" if v.minor == 0 else "11.1-11.8"]
    floors = [Version(r[col]) for r in DRIVER_ROWS
              if r["kind"] == "toolkit_driver" and Version(r["cuda_version"]).release[:2] == v.release[:2]]
    return compat.format_driver(min(floors))


def _compat_json(*args: str) -> tuple[int, dict]:
    res = runner.invoke(app, ["compat", *args, "--json"])
    return res.exit_code, json.loads(res.stdout)


def test_tables_have_every_upstream_row_and_a_source():
    assert len(LINUX_ROWS) == 38 and len(WINDOWS_ROWS) == 27
    assert LINUX_ROWS[0]["version"] == "2.21.0" and LINUX_ROWS[-1]["version"] == "1.0.0"
    for src in compat.data_sources():
        assert src.sources and all(s.strip() for s in src.sources), src.file
        assert re.fullmatch(r"\d{4}-\d\d-\d\d", src.read), src.file
        assert src.file in compat.DATA_FILES


@pytest.mark.parametrize(("os_", "row"), [("linux", r) for r in LINUX_ROWS] + [("windows", r) for r in WINDOWS_ROWS],
                         ids=lambda x: x if isinstance(x, str) else x["version"])
def test_compat_tf_answers_match_the_table_row(os_: str, row: dict[str, str]):
    code, doc = _compat_json("--tf", row["version"], "--os", os_)
    assert code == 0
    t = doc["tf"]
    assert (t["tensorflow"], t["cuda"], t["cudnn"], t["python"]) == (
        row["version"], row["cuda"], row["cudnn"], row["python_versions_as_listed"])
    assert t["min_driver"] == _oracle_floor(row["cuda"], os_)
    # The driver floor is a true boundary: at the floor the release fits, one step below it does not.
    floor = Version(t["min_driver"])
    below = f"{floor.release[0] - 1}.99" if len(floor.release) == 1 else compat.format_driver(
        Version(".".join(str(x) for x in (*floor.release[:-1], floor.release[-1] - 1))))
    py = row["python_versions_as_listed"].split(",")[-1].split("-")[-1].strip()
    _, at = _compat_json("--driver", t["min_driver"], "--python", py, "--os", os_)
    _, under = _compat_json("--driver", below, "--python", py, "--os", os_)
    assert row["version"] in [f["tensorflow"] for f in at["fits"]]
    assert row["version"] not in [f["tensorflow"] for f in under["fits"]]


def test_compat_driver_python_newest():
    code, doc = _compat_json("--driver", "470.82", "--python", "3.9")
    assert code == 0
    assert (doc["newest"]["series"], doc["newest"]["cuda"], doc["newest"]["cudnn"]) == ("2.14", "11.8", "8.7")
    assert [f["series"] for f in doc["fits"]][:3] == ["2.14", "2.13", "2.12"]
    code, doc = _compat_json("--driver", "470.82", "--python", "3.9", "--os", "windows")
    assert doc["newest"]["series"] == "2.10" and doc["newest"]["install"] == "pip install 'tensorflow==2.10.*'"
    code, doc = _compat_json("--driver", "535.104.05", "--python", "3.12")
    assert doc["newest"]["tensorflow"] == "2.21.0" and doc["newest"]["cuda"] == "12.5"


def test_compat_wsl_uses_linux_wheels_and_windows_driver_floors():
    code, doc = _compat_json("--tf", "2.19", "--os", "wsl")
    assert code == 0 and doc["tf"]["cuda"] == "12.5" and doc["tf"]["min_driver"] == "528.33"
    assert doc["tf"]["install"] == "pip install 'tensorflow[and-cuda]==2.19.*'"
    # 527.41 (Windows numbering) is below 528.33, the CUDA 12 floor on Windows: CUDA 11.8 is the newest.
    _, doc = _compat_json("--driver", "527.41", "--python", "3.11", "--os", "wsl")
    assert (doc["newest"]["series"], doc["newest"]["cuda"]) == ("2.14", "11.8")
    code, doc = _compat_json("--driver", "527.41", "--python", "3.12", "--os", "wsl")
    assert code == 1 and doc["fits"] == []  # Python 3.12 needs TF >= 2.16, i.e. CUDA 12


def test_compat_tf_patch_release_and_windows_limit():
    code, doc = _compat_json("--tf", "2.16.2")
    assert code == 0 and doc["tf"]["tensorflow"] == "2.16.1" and doc["tf"]["cuda"] == "12.3"
    code, doc = _compat_json("--tf", "2.15", "--os", "windows")
    assert code == 1 and doc["tf"] is None and "WSL2" in doc["notes"][0]
    code, doc = _compat_json("--tf", "2.15", "--driver", "470.82")
    assert code == 1 and doc["driver_fits"] is False and "525.60.13" in doc["notes"][0]


def test_compat_human_output_names_versions():
    res = runner.invoke(app, ["compat", "--tf", "2.15"])
    assert res.exit_code == 0
    assert "CUDA     12.2" in res.stdout and "cuDNN    8.9" in res.stdout and ">= 525.60.13" in res.stdout
    res = runner.invoke(app, ["compat", "--driver", "470.82", "--python", "3.9"])
    assert "Newest: TensorFlow 2.14.0 with CUDA 11.8, cuDNN 8.7" in res.stdout


@pytest.mark.parametrize("args", [["--driver", "abc"], ["--python", "three"], ["--tf", "3.0"], ["--os", "beos",
                                  "--tf", "2.15"], [], ["--python", "3"]])
def test_compat_bad_input_is_exit_2(args: list[str]):
    res = runner.invoke(app, ["compat", *args])
    assert res.exit_code == 2
    assert res.stdout == ""


@pytest.mark.timeout(60)
def test_compat_bad_input_one_line_no_traceback():
    proc = run_oddoctor("compat", "--driver", "not-a-version")
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and proc.stderr.startswith("oddoctor: error: --driver")
    assert "Traceback" not in proc.stderr


def test_query_library_answers_without_printing_or_exiting(capsys):
    from oddoctor.compat.query import CompatQueryError, ask

    a = ask(tf="2.15", driver="470.82")
    assert a.ok is False and a.to_dict()["driver_fits"] is False
    assert any("below 525.60.13" in n for n in a.notes)
    assert ask(driver="470.82", python="3.9").to_dict()["newest"]["series"] == "2.14"
    with pytest.raises(CompatQueryError, match="not a version number"):
        ask(driver="abc")
    with pytest.raises(CompatQueryError, match="not in the tested"):
        ask(tf="3.0")
    assert capsys.readouterr() == ("", "")
