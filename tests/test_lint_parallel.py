"""`oddoctor lint` on several cores gives exactly the report of one process (and falls back when it cannot)."""

from __future__ import annotations

import shutil
import sys
import textwrap
from pathlib import Path

import pytest

from oddoctor.lint import render
from oddoctor.lint.api import Hit, lint_rule
from oddoctor.lint.engine import lint_paths, select_files
from oddoctor.lint.parallel import lint_in_parallel
from oddoctor.manager import collect_lint_rules, make_plugin_manager
from tests.helpers import REPO

CORPUS = REPO / "tests" / "lint_corpus"
pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="the parallel linter forks")


@pytest.fixture(scope="module")
def rules():
    return collect_lint_rules(make_plugin_manager())


def _tree(root: Path) -> Path:
    """Three copies of the corpus (same module names in every copy), plus modules that reach across copies by
    name only: the cases where grouping by who-can-reach-whom matters."""
    for k in range(3):
        shutil.copytree(CORPUS, root / f"copy{k}")
    extra = {
        # no detector.py next to it: `detector` resolves to the first one in the tree, in another copy
        "lonely/app.py": """\
            from flask import Flask
            from detector import detect
            app = Flask(__name__)

            @app.route("/x")
            def x():
                return detect(None)
            """,
        "copy1/leaky/flask_xfile/extra_user.py": "from copy0.leaky.webcam_ops_in_loop import *\n",
        "frag/cell.py": "det = detector.run\nfor img in images:\n    det(img)\n",  # a fragment, never imports
        "broken/bad.py": "def f(:\n",
        "deep/pkg/__init__.py": "import tensorflow as tf\n",
        "deep/pkg/sub/mod.py": "import pkg\nfor i in items:\n    pkg.tf.Session()\n",
    }
    for name, text in extra.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


@pytest.mark.parametrize("workers", [2, 3])
def test_the_parallel_report_equals_the_serial_one(tmp_path, rules, workers):
    root = _tree(tmp_path)
    serial = lint_paths([str(root)], rules, workers=1)
    kept, files = select_files([str(root)], tensorflow_only=True)
    parallel = lint_in_parallel(kept, files, rules, (), workers=workers, min_files=0)
    assert parallel is not None, "the parallel linter fell back"
    assert len(serial.findings) > 50 and serial.skipped  # a real tree: findings and a file that does not parse
    assert render.to_json(parallel) == render.to_json(serial)


def test_small_trees_and_third_party_rules_stay_in_one_process(tmp_path, rules):
    root = _tree(tmp_path)
    kept, files = select_files([str(root)], tensorflow_only=True)
    assert lint_in_parallel(kept, files, rules, (), workers=2) is None  # fewer files than MIN_FILES

    @lint_rule(id="acme.any", title="t", why="w", fix="f", bad="x = 1", good="y = 2")
    def anything(mod):  # a third-party rule may look at the whole tree
        return [Hit(mod.src.tree, "w")] if mod.project and len(mod.project.modules) > 1 else []

    anything.plugin = "acme"
    assert lint_in_parallel(kept, files, [*rules, anything], (), workers=2, min_files=0) is None


def test_a_rule_that_raises_falls_back_and_is_reported_once(tmp_path, rules):
    root = _tree(tmp_path)

    @lint_rule(id="lint.boom", title="t", why="w", fix="f", bad="x = 1", good="y = 2")
    def boom(mod):
        raise ValueError("boom")

    boom.check.__module__ = "oddoctor_plugins.fake"  # looks like one of ours: the parallel path is tried
    kept, files = select_files([str(root)], tensorflow_only=True)
    assert lint_in_parallel(kept, files, [*rules, boom], (), workers=2, min_files=0) is None
    report = lint_paths([str(root)], [*rules, boom])
    assert [e.rule for e in report.errors] == ["lint.boom"]
