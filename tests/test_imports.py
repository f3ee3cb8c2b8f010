"""What a command imports: `check --from` and `compat` never import TensorFlow, numpy or matplotlib, and
`check` with plain options runs without Typer (main._fast_check) exactly as it runs through Typer.

Not timed (bench/check_bench.py measures): these tests read ``sys.modules`` in a child process after the
command has run, so they fail whenever a module on the command's path imports one of these at import time.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from oddoctor.cli import check as check_cmd
from oddoctor.cli import main as cli_main
from tests.helpers import SNAPSHOTS, run_oddoctor

#: Runs ``oddoctor ARGS...`` in-process, then writes the names of every imported module to argv[1].
WRAPPER = """
import json, sys
from oddoctor.cli.main import main
out = sys.argv[1]
try:
    main(sys.argv[2:])
except SystemExit as e:
    code = e.code
else:
    code = 0
with open(out, "w") as f:
    json.dump({"code": code, "modules": sorted(sys.modules)}, f)
"""

HEAVY = ("tensorflow", "numpy", "matplotlib")
HEALTHY = SNAPSHOTS / "core_healthy_h100_tf221.json"


def imported_by(tmp_path: Path, *args: str) -> tuple[int, set[str]]:
    out = tmp_path / "modules.json"
    env = {**os.environ, "NO_COLOR": "1"}
    proc = subprocess.run([sys.executable, "-c", WRAPPER, str(out), *args], capture_output=True, text=True,
                          env=env, timeout=120)
    assert out.exists(), proc.stderr
    doc = json.loads(out.read_text())
    return doc["code"], {m.split(".")[0] for m in doc["modules"]}


@pytest.mark.timeout(120)
def test_check_from_imports_no_tensorflow_numpy_matplotlib_nor_typer(tmp_path: Path):
    code, top = imported_by(tmp_path, "check", "--from", str(HEALTHY), "--json")
    assert code == 0
    assert "oddoctor_plugins" in top  # the checks did run
    assert not top & set(HEAVY), f"check --from imported {sorted(top & set(HEAVY))}"
    assert "typer" not in top, "check with plain options should run without Typer (main._fast_check)"


@pytest.mark.timeout(120)
def test_check_from_markdown_imports_no_tensorflow_numpy_matplotlib_nor_typer_nor_rich(tmp_path: Path):
    code, top = imported_by(tmp_path, "check", "--from", str(HEALTHY), "--format", "markdown")
    assert code == 0 and "oddoctor_plugins" in top
    assert not top & {*HEAVY, "typer", "rich"}, f"check --from --format markdown imported {sorted(top)}"


@pytest.mark.timeout(120)
def test_check_from_through_typer_imports_no_tensorflow_numpy_matplotlib(tmp_path: Path):
    # --debug is a root option: this command line goes through Typer and every command module is imported
    code, top = imported_by(tmp_path, "--debug", "check", "--from", str(HEALTHY), "--json")
    assert code == 0 and "typer" in top
    assert not top & set(HEAVY), f"check --from (Typer) imported {sorted(top & set(HEAVY))}"


@pytest.mark.timeout(120)
def test_compat_imports_no_tensorflow_numpy_matplotlib(tmp_path: Path):
    code, top = imported_by(tmp_path, "compat", "--driver", "470.82", "--python", "3.9", "--json")
    assert code in (0, 1)
    assert "oddoctor" in top
    assert not top & set(HEAVY), f"compat imported {sorted(top & set(HEAVY))}"


#: Command lines that the fast path runs itself or hands to Typer; each must end exactly as through Typer.
SAME_AS_TYPER = [
    ("--from", str(SNAPSHOTS / "core_gpu_held_by_other_process.json"), "--min-vram", "8GiB"),
    ("--from", str(HEALTHY), "--strict", "-v", "--only", "gpu,driver", "--skip", "gpu.visible"),
    ("--from=" + str(HEALTHY), "--cpu", "--tf", "2.15"),
    ("--from", str(HEALTHY), "--only", "gpu.no-such-check"),  # usage error, exit 2
    ("--from", str(HEALTHY), "--tf-timeout", "inf"),  # Typer accepts inf, check refuses it
    ("--from", str(HEALTHY), "--tf-timeout", "0.5"),  # below min: the fast path leaves it to Typer
    ("--from", str(SNAPSHOTS)),  # a directory: Typer's own error
    ("--from", str(HEALTHY), "--strict", "--strict"),  # repeated: left to Typer
    ("--from", str(HEALTHY), "--no-such-option"),
    ("--from", str(HEALTHY), "--cpu", "--gpu"),
    ("--from", "/nonexistent/snap.json"),
    ("--from", str(HEALTHY), "--format", "markdown", "--strict"),
    ("--from", str(HEALTHY), "--format=human", "--color", "never"),
    ("--from", str(HEALTHY), "--format", "markdwn"),  # a typo: Typer refuses it, with a suggestion
    ("--from", str(HEALTHY), "--json", "--format", "markdown"),  # contradictory: exit 2
    ("--from", str(HEALTHY), "--color", "alwys"),
]


@pytest.mark.timeout(300)
@pytest.mark.parametrize("args", SAME_AS_TYPER, ids=lambda a: " ".join(a)[-60:])
def test_fast_path_ends_as_typer_does(args: tuple[str, ...]):
    fast = run_oddoctor("check", *args)
    typer_run = run_oddoctor("--debug", "check", *args)  # a root option sends the line through Typer

    def ending(proc: subprocess.CompletedProcess[str]) -> tuple[int, str, str]:
        return proc.returncode, re.sub(r"[\d.]+ ms\]", "ms]", proc.stdout), proc.stderr  # -v shows check times

    assert ending(fast) == ending(typer_run)


def test_fast_path_options_are_checks_parameters():
    params = inspect.signature(check_cmd.check).parameters
    for option, (param, _kind) in cli_main._FAST_CHECK_OPTIONS.items():
        assert param in params, f"{option} maps to {param}, which check() does not take"


@pytest.mark.parametrize(("argv", "expected"), [
    (["check", "--from", "s.json", "--json"], {"from_file": Path("s.json"), "json_out": True}),
    (["check", "-p", "a", "--plugin=b", "--only", "gpu"], {"plugin": ["a", "b"], "only": ["gpu"]}),
    (["check", "--tf-timeout", "5"], {"tf_timeout": 5.0}),
    (["check", "--format", "markdown", "--color=always"], {"output_format": "markdown", "color": "always"}),
    (["check", "--format", "md"], None),
    (["check", "--color", "yes"], None),
    (["check"], {}),
    (["check", "--help"], None),
    (["check", "--from"], None),
    (["check", "--from", "--json"], None),
    (["check", "-vp", "x"], None),
    (["check", "--json=1"], None),
    (["check", "extra"], None),
    (["collect"], None),
    (["--debug", "check"], None),
])
def test_fast_path_reads_only_plain_command_lines(argv: list[str], expected):
    assert cli_main._fast_check_args(argv) == expected


def test_entry_points_read_without_importlib_metadata_match_it(tmp_path: Path, monkeypatch):
    """manager.read_entry_points lists what importlib.metadata lists, in its order: a distribution earlier on
    sys.path shadows a later one of the same name; comments, blank lines and other groups are left out."""
    import importlib.metadata

    from oddoctor.manager import read_entry_points

    for name, body in (("acme_one-1.0.dist-info", "[oddoctor]\nacme = acme_one\n# a comment\n\n[other]\nx = y\n"),
                       ("Acme.Two-2.0.dist-info", "[oddoctor]\n  two = acme_two:plugin.inner [extra]  \n"),
                       ("oddoctor-9.9.dist-info", "[oddoctor]\nshadow = shadow_mod\n")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "entry_points.txt").write_text(body)
    monkeypatch.syspath_prepend(str(tmp_path))
    for group in ("oddoctor", "console_scripts", "pytest11", "other"):
        expected = [(ep.name, ep.value) for ep in importlib.metadata.entry_points(group=group)]
        assert read_entry_points(group) == expected, group
    names = [n for n, _ in read_entry_points("oddoctor")]
    assert "shadow" in names and "cuda" not in names  # this oddoctor-9.9 shadows the installed oddoctor
    assert ("two", "acme_two:plugin.inner [extra]") in read_entry_points("oddoctor")
