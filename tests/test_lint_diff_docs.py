"""`oddoctor lint --diff` (the LegacyDetector patch) and docs/lint.md (generated from the rules, never drifting)."""

from __future__ import annotations

import ast
import shutil
import subprocess

import pytest

from oddoctor.cli.main import main as cli_main
from oddoctor.lint import catalogue
from oddoctor.lint.diff import IMPORT, patch_for, patched
from oddoctor.lint.engine import lint_paths
from oddoctor.manager import collect_lint_rules, make_plugin_manager
from oddoctor_plugins import lint as builtin
from tests.helpers import REPO

CORPUS = REPO / "tests" / "lint_corpus"
TUTORIAL = REPO / "legacy_tf1" / "oddoctor_legacy_tf1" / "tutorial.py"


@pytest.mark.parametrize("source", [CORPUS / "leaky" / "tutorial_loop.py", TUTORIAL], ids=["script", "project"])
def test_the_patched_tutorial_is_valid_python_without_the_leak(tmp_path, source):
    old, new = patched(source)
    text = "".join(new)
    compile(text, str(source), "exec")
    assert IMPORT in text and "LegacyDetector(" in text
    fn = next(n for n in ast.parse(text).body if isinstance(n, ast.FunctionDef)
              and n.name == "run_inference_for_single_image")
    orig = next(n for n in ast.parse("".join(old)).body if isinstance(n, ast.FunctionDef)
                and n.name == "run_inference_for_single_image")
    assert ast.unparse(fn.args) == ast.unparse(orig.args)  # callers do not change
    (tmp_path / "fixed.py").write_text(text)
    rules = collect_lint_rules(make_plugin_manager())
    leaks = {"lint.session-per-item", "lint.graph-op-per-item"}
    assert not [f for f in lint_paths([str(tmp_path)], rules).findings if f.rule in leaks]


def test_the_script_patch_uses_its_own_model_path():
    text = "".join(patched(CORPUS / "leaky" / "tutorial_loop.py")[1])
    assert "LegacyDetector(PATH_TO_FROZEN_GRAPH)" in text


@pytest.mark.skipif(shutil.which("patch") is None, reason="needs patch(1)")
def test_the_printed_patch_applies_with_patch_p1(tmp_path):
    src = CORPUS / "leaky" / "tutorial_loop.py"
    (tmp_path / "t.py").write_text(src.read_text())
    diff = patch_for(tmp_path / "t.py", "t.py")
    subprocess.run(["patch", "-p1", "-s"], input=diff, text=True, cwd=tmp_path, check=True, timeout=30)
    assert (tmp_path / "t.py").read_text() == "".join(patched(src)[1])


@pytest.mark.skipif(shutil.which("patch") is None, reason="needs patch(1)")
def test_a_notebook_patch_applies_and_leaves_a_notebook_without_the_leak(tmp_path):
    import json

    src = CORPUS / "leaky" / "tutorial_notebook.ipynb"
    (tmp_path / "nb.ipynb").write_text(src.read_text(encoding="utf-8"), encoding="utf-8")
    diff = patch_for(tmp_path / "nb.ipynb", "nb.ipynb")
    assert diff is not None
    changed = [ln for ln in diff.splitlines() if ln[:1] in "+-" and not ln.startswith(("+++", "---"))]
    assert all(ln[1:].startswith('    "') for ln in changed), "only the cell's source lines change"
    subprocess.run(["patch", "-p1", "-s"], input=diff, text=True, cwd=tmp_path, check=True, timeout=30)
    nb = json.loads((tmp_path / "nb.ipynb").read_text(encoding="utf-8"))  # still a notebook
    code = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]
    cell = next(c for c in code if "def run_inference_for_single_image(image, graph):" in c)
    assert IMPORT in cell and "_detector = LegacyDetector(" in cell and "tf.Session" not in cell
    assert len(code) == 5 and "%matplotlib inline" in code[0]  # the other cells, magics included, untouched
    rules = collect_lint_rules(make_plugin_manager())
    leaks = {"lint.session-per-item", "lint.graph-op-per-item"}
    assert not [f for f in lint_paths([str(tmp_path)], rules).findings if f.rule in leaks]


def test_cli_diff_covers_the_notebooks_of_a_folder(capsys, monkeypatch):
    monkeypatch.chdir(REPO)  # patch paths are relative to the working directory
    with pytest.raises(SystemExit) as info:
        cli_main(["lint", "--diff", str(CORPUS / "leaky")])
    out = capsys.readouterr().out
    assert info.value.code == 1
    assert "+++ b/tests/lint_corpus/leaky/tutorial_notebook.ipynb" in out.replace("\\", "/")
    assert "+++ b/tests/lint_corpus/leaky/tutorial_loop.py" in out.replace("\\", "/")


def test_cli_diff_prints_a_patch_and_exits_1_and_0_when_nothing_to_patch(capsys):
    with pytest.raises(SystemExit) as info:
        cli_main(["lint", "--diff", str(CORPUS / "leaky" / "tutorial_loop.py")])
    out = capsys.readouterr().out
    assert info.value.code == 1 and out.startswith("--- a/") and "+from oddoctor_legacy_tf1 import" in out
    with pytest.raises(SystemExit) as info:
        cli_main(["lint", "--diff", str(CORPUS / "clean" / "detector_class_init.py")])
    assert info.value.code == 0 and capsys.readouterr().out == ""


def test_docs_lint_md_is_up_to_date():
    current = (REPO / "docs" / "lint.md").read_text(encoding="utf-8")
    assert current == catalogue.generate(), "docs/lint.md is out of date: python -m oddoctor.lint.catalogue --write"


def test_docs_lint_md_lists_every_builtin_rule_with_a_bad_and_a_good_example():
    text = catalogue.generate()
    for rule in builtin.RULES:
        assert f"| [`{rule.id}`]" in text and f"\n## {rule.id}\n" in text
        section = text.split(f"\n## {rule.id}\n", 1)[1].split("\n## ", 1)[0]
        assert "Bad:" in section and "Good:" in section and rule.bad.strip().splitlines()[-1] in section


def test_catalogue_check_mode_reports_a_stale_file(tmp_path):
    stale = tmp_path / "lint.md"
    stale.write_text("# old\n")
    assert catalogue.main(["--check", "-o", str(stale)]) == 1
    assert catalogue.main(["--write", "-o", str(stale)]) == 0
    assert catalogue.main(["--check", "-o", str(stale)]) == 0
