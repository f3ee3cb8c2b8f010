"""What the terminal shows: `--format markdown` (a report to paste into a bug), colour control (`--color`,
NO_COLOR, FORCE_COLOR, a real terminal), golden output for a pipe and a terminal, choices and shell completion.

The golden files are in tests/golden/; after an intended change of the output, rewrite them with
``ODDOCTOR_UPDATE_GOLDEN=1 python -m pytest tests/test_cli_output.py`` and read the diff.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path

import pytest

from oddoctor import __version__
from tests.helpers import REPO, SNAPSHOTS, run_in_pty, run_oddoctor

GOLDEN = Path(__file__).parent / "golden"
HELD = SNAPSHOTS / "core_gpu_held_by_other_process.json"
#: The snapshot as the golden files name it: relative to the repository (the commands run there).
HELD_REL = "tests/snapshots/core_gpu_held_by_other_process.json"
HEALTHY = SNAPSHOTS / "core_healthy_h100_tf221.json"
ESC = "\x1b["
#: Colour decided by the environment alone: neither variable set (run_oddoctor sets NO_COLOR=1 otherwise).
NO_ENV_COLOR = {"NO_COLOR": "", "FORCE_COLOR": "", "TERM": "xterm-256color"}


def _personal_snapshot(tmp_path: Path) -> Path:
    data = json.loads(HELD.read_text())
    data["hostname"] = "gpu-node-17.corp.example"
    data["python"]["executable"] = "/home/alice/.venvs/od/bin/python"
    data["env"]["PATH"] = "/home/alice/bin:/opt/acme-secret/bin:/usr/local/cuda/bin:/usr/bin"
    data["env"]["USER"] = "alice"
    data["tensorflow"]["probe"]["stderr_tail"] = ["alice@gpu-node-17:~$ python /home/alice/train.py"]
    path = tmp_path / "gpu-node-17.json"
    path.write_text(json.dumps(data))
    return path


# ---------------------------------------------------------------- --format markdown


def test_check_format_markdown_is_a_redacted_report_with_the_diagnosis(tmp_path: Path):
    snap = _personal_snapshot(tmp_path)
    proc = run_oddoctor("check", "--from", str(snap), "--format", "markdown")
    assert proc.returncode == 0, proc.stderr  # warnings only: exit 0 as in the human report
    text = proc.stdout
    assert text.startswith("### Environment (oddoctor ")
    for secret in ("alice", "gpu-node-17", "corp.example", "/home/", "acme-secret", ESC):
        assert secret not in text, secret
    assert "| TensorFlow | 2.21.0 (tensorflow), imports |" in text
    diagnosis = text.split("### Diagnosis", 1)[1]
    assert "**gpu.other-processes.gpu0**" in diagnosis and "  - fix: " in diagnosis
    assert "TF_FORCE_GPU_ALLOW_GROWTH=true" in diagnosis
    strict = run_oddoctor("check", "--from", str(snap), "--format", "markdown", "--strict")
    assert strict.returncode == 1 and "verdict: **problems**" in strict.stdout


def test_format_json_is_json_and_json_with_another_format_is_a_usage_error():
    proc = run_oddoctor("check", "--from", str(HEALTHY), "--format", "json")
    assert proc.returncode == 0 and json.loads(proc.stdout)["kind"] == "oddoctor.check-report"
    both = run_oddoctor("check", "--from", str(HEALTHY), "--json", "--format", "json")
    assert both.returncode == 0 and json.loads(both.stdout)["verdict"] == "ok"
    bad = run_oddoctor("check", "--from", str(HEALTHY), "--json", "--format", "markdown")
    assert bad.returncode == 2 and bad.stdout == ""
    assert "--json and --format markdown contradict each other" in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.timeout(180)
def test_collect_format_markdown_diagnoses_this_machine_without_its_name(tmp_path: Path, monkeypatch):
    # A TensorFlow that aborts on import: fast, and a failure the diagnosis must show with its fix.
    (tmp_path / "tensorflow").mkdir()
    (tmp_path / "tensorflow" / "__init__.py").write_text("import os\nos.abort()\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    out = tmp_path / "report.md"
    proc = run_oddoctor("collect", "--format", "markdown", "-o", str(out), "--tf-timeout", "60")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "" and "report written to" in proc.stderr
    text = out.read_text()
    assert text.startswith("### Environment (oddoctor ") and "### Diagnosis" in text
    assert "**tf.importable**" in text.split("### Diagnosis", 1)[1]
    host = socket.gethostname().split(".")[0]
    if len(host) >= 2:
        assert host not in text
    assert str(Path.home()) + "/" not in text
    assert sorted(x.name for x in tmp_path.iterdir()) == ["report.md", "tensorflow"]  # no temp file left


def test_collect_refuses_a_format_it_does_not_write():
    proc = run_oddoctor("collect", "--format", "human")
    assert proc.returncode == 2 and "not one of json, markdown" in proc.stderr


# ---------------------------------------------------------------- colour


def _run_in_pty(*args: str, env: dict[str, str]) -> str:
    """Run oddoctor with its stdout on a pseudo-terminal (a real TTY to it); return what it wrote."""
    return run_in_pty(*args, env=env, timeout=120)[1].replace("\r\n", "\n")


def _golden(name: str, text: str) -> None:
    text = text.replace(f"oddoctor {__version__}:", "oddoctor VERSION:")
    path = GOLDEN / name
    if os.environ.get("ODDOCTOR_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
    assert text == path.read_text(), f"output differs from {path} (ODDOCTOR_UPDATE_GOLDEN=1 rewrites it)"


def test_pipe_output_matches_the_golden_text_without_escape_codes():
    proc = run_oddoctor("check", "--from", HELD_REL, env=NO_ENV_COLOR, cwd=REPO)
    assert proc.returncode == 0 and ESC not in proc.stdout
    _golden("check_gpu_held_pipe.txt", proc.stdout)


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_terminal_output_matches_the_golden_text_with_colour():
    text = _run_in_pty("check", "--from", HELD_REL, env=NO_ENV_COLOR)
    assert f"{ESC}33m[!]{ESC}0m gpu.other-processes.gpu0" in text  # a warning, in yellow
    _golden("check_gpu_held_tty.txt", text)
    plain = (GOLDEN / "check_gpu_held_pipe.txt").read_text()
    import re

    assert re.sub(r"\x1b\[[0-9;]*m", "", text).replace(f"oddoctor {__version__}:", "oddoctor VERSION:") == plain


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
@pytest.mark.parametrize(("args", "env"), [
    (("--color", "never"), {}),
    ((), {"NO_COLOR": "1"}),
    ((), {"NO_COLOR": "1", "FORCE_COLOR": "1"}),  # NO_COLOR wins
    ((), {"TERM": "dumb"}),
], ids=["--color never", "NO_COLOR", "NO_COLOR and FORCE_COLOR", "TERM=dumb"])
def test_no_escape_codes_on_a_terminal_when_colour_is_off(args: tuple[str, ...], env: dict[str, str]):
    text = _run_in_pty("check", "--from", str(HELD), *args, env={**NO_ENV_COLOR, **env})
    assert "gpu.other-processes.gpu0" in text and ESC not in text


@pytest.mark.parametrize(("args", "env"), [
    ((), {"FORCE_COLOR": "1"}),
    (("--color", "always"), {}),
    (("--color=always",), {"NO_COLOR": "1"}),  # the option beats the environment
], ids=["FORCE_COLOR", "--color always", "--color=always over NO_COLOR"])
def test_escape_codes_in_a_pipe_when_colour_is_forced(args: tuple[str, ...], env: dict[str, str]):
    proc = run_oddoctor("check", "--from", HELD_REL, *args, env={**NO_ENV_COLOR, **env}, cwd=REPO)
    assert proc.returncode == 0
    assert f"{ESC}33m[!]{ESC}0m gpu.other-processes.gpu0" in proc.stdout
    tty = (GOLDEN / "check_gpu_held_tty.txt").read_text()
    assert proc.stdout.replace(f"oddoctor {__version__}:", "oddoctor VERSION:") == tty


def test_root_color_option_and_force_color_zero():
    root = run_oddoctor("--color", "always", "check", "--from", str(HELD), env=NO_ENV_COLOR)
    assert root.returncode == 0 and ESC in root.stdout
    zero = run_oddoctor("check", "--from", str(HELD), env={**NO_ENV_COLOR, "FORCE_COLOR": "0"})
    assert zero.returncode == 0 and ESC not in zero.stdout
    as_json = run_oddoctor("--color", "always", "check", "--from", str(HELD), "--json")
    as_markdown = run_oddoctor("check", "--from", str(HELD), "--color", "always", "--format", "markdown")
    for proc in (as_json, as_markdown):  # machines and bug reports get no colour
        assert proc.returncode == 0 and proc.stdout and ESC not in proc.stdout


# ---------------------------------------------------------------- choices, help, completion


@pytest.mark.parametrize(("args", "suggestion"), [
    (("check", "--from", str(HEALTHY), "--format", "markdwn"), "'markdown'"),
    (("check", "--from", str(HEALTHY), "--color", "nevr"), "'never'"),
    (("--color", "alway", "checks"), "'always'"),
    (("collect", "--format", "jsn"), "'json'"),
    (("compat", "--driver", "470.82", "--os", "wls"), "'wsl'"),
    (("lint", "--format", "sarf", "x.py"), "'sarif'"),
])
def test_a_typo_in_a_choice_is_exit_2_with_the_closest_choice(args: tuple[str, ...], suggestion: str):
    proc = run_oddoctor(*args)
    assert proc.returncode == 2 and proc.stdout == ""
    assert f"did you mean {suggestion}?" in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("oddoctor: error: ") and len(proc.stderr.strip().splitlines()) == 1


def test_choices_are_case_insensitive_and_a_far_miss_lists_them_without_a_guess():
    proc = run_oddoctor("compat", "--driver", "470.82", "--os", "Windows", "--json")
    assert proc.returncode in (0, 1) and json.loads(proc.stdout)["query"]["os"] == "windows"
    far = run_oddoctor("check", "--from", str(HEALTHY), "--format", "xml")
    assert far.returncode == 2 and "is not one of human, json, markdown" in far.stderr
    assert "did you mean" not in far.stderr


@pytest.mark.parametrize("command", ["check", "collect", "checks", "compat", "lint", "eval", "migrate", "budget"])
def test_help_shows_readable_metavars(command: str):
    text = run_oddoctor(command, "--help").stdout
    for raw in ("<str>", "<path>", "<file>", "<float", "<int", "<list", "{migrated}", "{model}"):
        assert raw not in text, f"oddoctor {command} --help shows {raw}"
    if command == "check":
        assert "[human|json|markdown]" in text and "[auto|always|never]" in text


def test_the_bash_completion_script_is_generated():
    # Typer finds the shell among the parent processes (a test run started outside a shell, e.g. orphaned in the
    # background, has none): run it from bash, as a user does.
    import shlex
    import subprocess
    import sys

    # "; exit $?": bash would otherwise exec a lone command in its own place and not be a parent.
    proc = subprocess.run(["bash", "-c", f"{shlex.quote(sys.executable)} -m oddoctor --show-completion; exit $?"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "_ODDOCTOR_COMPLETE=complete_bash" in proc.stdout and "complete " in proc.stdout


def _complete(words: str) -> list[str]:
    """What bash completion offers for the last word of ``words`` (Typer's environment-variable protocol)."""
    parts = words.split(" ")
    proc = run_oddoctor(env={"_ODDOCTOR_COMPLETE": "complete_bash", "COMP_WORDS": words,
                             "COMP_CWORD": str(len(parts) - 1)})
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()


def test_only_and_skip_complete_check_ids_and_choices_complete_their_values():
    from oddoctor.manager import collect_checks, make_plugin_manager

    gpu_ids = sorted(c.id for c in collect_checks(make_plugin_manager()) if c.id.startswith("gpu.vis"))
    assert gpu_ids and _complete("oddoctor check --only gpu.vis") == gpu_ids
    assert _complete("oddoctor check --skip driver,gpu.vis") == [f"driver,{i}" for i in gpu_ids]
    assert "driver" in _complete("oddoctor check --only dri")  # an area is an id prefix
    assert _complete("oddoctor check --format m") == ["markdown"]
    assert _complete("oddoctor compat --os w") == ["windows", "wsl"]


# ---------------------------------------------------------------- grouped by area (as flutter doctor)


def test_results_are_grouped_by_area_problems_listed_with_fixes_skips_folded():
    from oddoctor.manager import collect_checks, make_plugin_manager

    ids = [c.id for c in collect_checks(make_plugin_manager())]
    healthy = run_oddoctor("check", "--from", str(HEALTHY)).stdout.splitlines()
    body = healthy[healthy.index("") + 1:]
    assert "[✓] driver    3 ok" in body and "[✓] gpu       4 ok, 1 not applicable" in body
    assert not [ln for ln in body if any(i in ln for i in ids if "." in i)]  # no check's own line: all is well
    assert body[-3] == "[-] 4 could not tell (packages): -v lists them"  # an area that only skipped: folded
    held = run_oddoctor("check", "--from", str(HELD), "--min-vram", "8GiB").stdout
    gpu = held.index("[✗] gpu       1 failed, 1 warning(s), 2 ok, 1 not applicable\n")
    assert held.index("    [✗] gpu.min-vram.gpu0 ") > gpu and held.index("        → fix: Free memory on GPU 0") > gpu
    assert "gpu.visible" not in held  # an ok check of a troubled area: counted, not listed
    verbose = run_oddoctor("check", "--from", str(HELD), "-v").stdout
    only = run_oddoctor("check", "--from", str(HELD), "--only", "gpu,packages").stdout
    for rid in ("gpu.visible", "packages.protobuf", "platform.wsl-driver"):
        assert f"] {rid} " in verbose  # -v: every check, skips included
    assert "[✓] gpu.visible " in only and "[-] packages.protobuf " in only  # --only: each check asked for
