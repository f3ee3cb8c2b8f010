"""`oddoctor lint`: the engine, name resolution, rules as plugins, ignore comments, output formats, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from oddoctor import hookimpl
from oddoctor.cli.main import main as cli_main
from oddoctor.lint import render
from oddoctor.lint.api import Hit, LintRule, lint_rule
from oddoctor.lint.engine import ignored, lint_paths
from oddoctor.manager import collect_lint_rules, make_plugin_manager
from oddoctor_plugins import lint as builtin
from tests.helpers import REPO
from tests.test_architecture import offending, package_imports

TUTORIAL = REPO / "legacy_tf1" / "oddoctor_legacy_tf1" / "tutorial.py"


@pytest.fixture(scope="module")
def rules() -> list[LintRule]:
    return collect_lint_rules(make_plugin_manager())


def lint_text(tmp_path: Path, rules, files: dict[str, str]):
    for name, text in files.items():
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text))
    return lint_paths([str(tmp_path)], rules)


def ids(report) -> list[tuple[str, int, str]]:
    return [(Path(f.file).name, f.line, f.rule) for f in report.findings]


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        cli_main(["lint", *args])
    out, err = capsys.readouterr()
    return int(info.value.code or 0), out, err


# --- the project's own code -------------------------------------------------------------------------------------
def test_legacy_tf1_tutorial_is_found_and_legacy_detector_is_clean(rules):
    report = lint_paths([str(REPO / "legacy_tf1")], rules)
    files = {Path(f.file).name for f in report.findings}
    assert files == {"tutorial.py"}, [f.location() for f in report.findings]
    lines = TUTORIAL.read_text().splitlines()
    session = [f for f in report.findings if f.rule == "lint.session-per-item"]
    assert len(session) == 1 and "Session(" in lines[session[0].line - 1]
    ops = {lines[f.line - 1].strip().split("=")[1].strip().split("(")[0]
           for f in report.findings if f.rule == "lint.graph-op-per-item"}
    assert {"tf.squeeze", "tf.slice", "tf.cast", "tf.expand_dims", "reframe_box_masks_to_image_masks"} <= ops
    assert all("LegacyDetector" in f.fix for f in report.findings)
    assert not report.errors and not report.skipped


def test_the_lint_plugin_defines_no_checks_and_imports_no_framework():
    ps = make_plugin_manager()
    assert ps.pm.get_plugin("lint") is not None and not ps.errors
    assert not hasattr(builtin, "oddoctor_checks")
    code = ("import sys, oddoctor_plugins.lint, oddoctor.lint.engine, oddoctor.lint.render; "
            "bad = [m for m in ('tensorflow', 'numpy', 'oddoctor.cli') if m in sys.modules]; "
            "sys.exit(1 if bad else 0)")
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0


def test_the_lint_engine_imports_neither_the_cli_nor_tensorflow():
    imports = package_imports(REPO, "oddoctor.lint")
    assert not offending(imports, "oddoctor.cli")
    assert not offending(imports, "tensorflow")


# --- rules and their documented examples ---
@pytest.mark.parametrize("rule", builtin.RULES, ids=lambda r: r.id)
def test_each_rule_hits_its_bad_example_and_not_its_good_one(tmp_path, rule: LintRule):
    assert rule.id.startswith("lint.") and rule.why and rule.fix and rule.title
    (tmp_path / "bad").mkdir()
    (tmp_path / "good").mkdir()
    (tmp_path / "bad" / "example.py").write_text(rule.bad)
    (tmp_path / "good" / "example.py").write_text(rule.good)
    assert rule.id in {f.rule for f in lint_paths([str(tmp_path / "bad")], [rule]).findings}
    assert lint_paths([str(tmp_path / "good")], [rule]).findings == []


# --- name resolution ---
@pytest.mark.parametrize(("header", "call"), [
    ("import tensorflow.compat.v1 as tf", "tf.Session()"),
    ("import tensorflow as tf", "tf.compat.v1.Session()"),
    ("from tensorflow import Session", "Session()"),
    ("from tensorflow.compat.v1 import Session as S", "S()"),
    ("import tensorflow as tf\nv1 = tf.compat.v1", "v1.InteractiveSession()"),
    ("from tensorflow.compat.v1 import *", "Session()"),
    ("import tensorflow\n", "tensorflow.Session()"),
])
def test_a_session_is_recognised_however_it_is_spelled(tmp_path, rules, header, call):
    src = f"{header}\nfor image in images:\n    sess = {call}  # here\n    sess.run(x)\n    sess.close()\n"
    report = lint_text(tmp_path, rules, {"s.py": src})
    assert ("s.py", src.splitlines().index(f"    sess = {call}  # here") + 1, "lint.session-per-item") in ids(report)


def test_names_resolve_through_a_star_import_from_the_tree(tmp_path, rules):
    report = lint_text(tmp_path, rules, {
        "common.py": "import tensorflow.compat.v1 as tf\n",
        "app.py": """\
            from common import *

            def handle(frame):
                with tf.Session() as sess:
                    return sess.run(frame)
            """,
    })
    assert ("app.py", 4, "lint.session-per-item") in ids(report)
    assert not report.notes  # tf came from common.py, not assumed


def test_a_fragment_is_linted_with_tf_assumed_and_says_so(tmp_path, rules):
    report = lint_text(tmp_path, rules, {"cell.py": "while True:\n    s = tf.Session()\n    s.close()\n"})
    assert ("cell.py", 2, "lint.session-per-item") in ids(report)
    assert report.notes and "`tf`" in report.notes[0].message


def test_a_file_that_does_not_parse_is_reported_and_the_others_are_linted(tmp_path, rules):
    report = lint_text(tmp_path, rules, {
        "py2.py": "import tensorflow as tf\nprint 'hello'\n",
        "ok.py": "import tensorflow as tf\nfor i in x:\n    tf.Session().close()\n",
    })
    assert [(Path(s.file).name, s.line) for s in report.skipped] == [("py2.py", 2)]
    assert ("ok.py", 3, "lint.session-per-item") in ids(report)


def test_files_without_tensorflow_are_not_parsed_unless_they_call_into_it(tmp_path, rules):
    from oddoctor.lint.engine import read_tree

    for name, text in {"plain.py": "def f(): pass\n", "helper.py": "import tensorflow as tf\n",
                       "relay.py": "from helper import tf\n", "app.py": "import relay\n"}.items():
        (tmp_path / name).write_text(text)
    sources, total = read_tree([str(tmp_path)], tensorflow_only=True)
    assert total == 4 and sorted(s.path.name for s in sources) == ["app.py", "helper.py", "relay.py"]
    sources, total = read_tree([str(tmp_path)])
    assert total == len(sources) == 4


def test_cross_file_flow_reaches_a_method_through_self_and_a_route(tmp_path, rules):
    report = lint_text(tmp_path, rules, {
        "pkg/__init__.py": "",
        "pkg/model.py": """\
            import tensorflow.compat.v1 as tf

            class Model:
                def predict(self, data):
                    return self._run(data)

                def _run(self, data):
                    with tf.Session() as sess:
                        return sess.run(data)
            """,
        "pkg/web.py": """\
            from fastapi import APIRouter
            from pkg.model import Model

            router = APIRouter()
            MODEL = Model()

            @router.post("/x")
            def x(body: dict):
                return Model.predict(MODEL, body)
            """,
    })
    assert ("model.py", 8, "lint.session-per-item") in ids(report)


@pytest.mark.parametrize("register", [
    "camera.set_frame_callback(on_data)",  # a registering call
    "camera.pre_callback = on_data",  # a callback attribute (picamera2)
    "cam.on_frame = on_data",  # an on_<item> hook attribute
], ids=["call", "callback-attribute", "on-frame-attribute"])
def test_a_function_registered_as_a_frame_callback_runs_per_item(tmp_path, rules, register):
    report = lint_text(tmp_path, rules, {"cam.py": f"""\
        import tensorflow as tf
        from camera import Camera

        def on_data(buf):
            return tf.keras.models.load_model("m.h5").predict(buf)

        camera = cam = Camera(0)
        {register}
        """})
    assert ids(report) == [("cam.py", 5, "lint.model-load-per-item")]


def test_a_session_made_once_is_not_a_finding(tmp_path, rules):
    report = lint_text(tmp_path, rules, {"ok.py": """\
        import tensorflow.compat.v1 as tf
        config = tf.ConfigProto(gpu_options=tf.GPUOptions(allow_growth=True))
        sess = tf.Session(config=config)

        class D:
            def __init__(self):
                self.sess = tf.Session(config=config)

            def __call__(self, image):
                t = tf.get_default_graph().get_tensor_by_name("x:0")
                return self.sess.run(t, {"in:0": image})

        for image in images:
            sess.run(tf.get_default_graph().get_tensor_by_name("y:0"))
        """})
    assert report.findings == []


# --- ignore comments ---
def test_ignore_comments():
    assert ignored("x = 1  # oddoctor: ignore[lint.a]", "lint.a")
    assert ignored("x = 1  # oddoctor: ignore[lint.b, lint.a]", "lint.a")
    assert ignored("x = 1  # oddoctor: ignore", "lint.a")
    assert not ignored("x = 1  # oddoctor: ignore[lint.b]", "lint.a")
    assert not ignored("x = 1", "lint.a")


def test_an_ignore_comment_silences_only_its_rule_on_its_line(tmp_path, rules):
    report = lint_text(tmp_path, rules, {"s.py": """\
        import tensorflow.compat.v1 as tf
        for image in images:
            with tf.Session() as s:  # oddoctor: ignore[lint.session-per-item]
                s.run(image)
        """})
    assert ids(report) == [("s.py", 3, "lint.gpu-session-config")]


# --- plugins ---
def test_a_rule_that_raises_is_an_error_naming_its_plugin_and_the_others_still_run(tmp_path, rules):
    @lint_rule(id="demo.boom", title="Boom", why="w", fix="f", bad="", good="")
    def boom(mod):
        raise RuntimeError("kaboom")

    boom.plugin = "demo-plugin"
    report = lint_text(tmp_path, [boom, *rules], {"s.py": "import tensorflow as tf\nwhile 1:\n    tf.Session()\n"})
    [err] = report.errors
    assert err.plugin == "demo-plugin" and err.rule == "demo.boom" and "kaboom" in err.message
    assert ("s.py", 3, "lint.session-per-item") in ids(report)
    assert report.exit_code() == 1


def test_collect_lint_rules_isolates_a_failing_plugin():
    ps = make_plugin_manager()

    class Boom:
        @hookimpl
        def oddoctor_lint_rules(self):
            raise RuntimeError("no rules today")

    class Junk:
        @hookimpl
        def oddoctor_lint_rules(self):
            return ["not a rule"]

    class Dup:
        @hookimpl
        def oddoctor_lint_rules(self):
            return [LintRule("lint.session-per-item", "t", "w", "f", "", "", lambda m: [])]

    for name, plugin in (("boom", Boom()), ("junk", Junk()), ("dup", Dup())):
        ps.pm.register(plugin, name=name)
    rules = collect_lint_rules(ps)
    assert {r.id for r in rules} >= {r.id for r in builtin.RULES}
    assert all(r.plugin == "lint" for r in rules)
    errors = {e.plugin: e.message for e in ps.errors}
    assert "no rules today" in errors["boom"] and "not an oddoctor LintRule" in errors["junk"]
    assert "already registered" in errors["dup"]


def test_a_third_party_rule_runs_and_is_reported_with_its_plugin(tmp_path):
    @lint_rule(id="acme.print", title="print", why="no print", fix="log", bad="print(1)\n", good="")
    def no_print(mod):
        for s in mod.calls:
            if s.qualified == "print":
                yield Hit(s.node, "print() call")

    ps = make_plugin_manager()

    class Acme:
        @hookimpl
        def oddoctor_lint_rules(self):
            return [no_print]

    ps.pm.register(Acme(), name="acme")
    report = lint_text(tmp_path, collect_lint_rules(ps), {"s.py": "print(1)\n"})
    [f] = report.findings
    assert (f.rule, f.plugin, f.line, f.col) == ("acme.print", "acme", 1, 1)


# --- the command line ---
def test_cli_human_output_groups_by_file_with_source_and_caret(capsys):
    code, out, _ = run_cli(capsys, str(TUTORIAL))
    assert code == 1
    lines = out.splitlines()
    assert lines[0].endswith("tutorial.py")
    i = next(n for n, ln in enumerate(lines) if "lint.session-per-item" in ln)
    assert "Session(" in lines[i + 1] and lines[i + 2].strip() == "^"
    col = int(lines[i].split()[0].split(":")[1])
    assert lines[i + 2].index("^") - 6 == col - 1 - (len(TUTORIAL.read_text().splitlines()[
        int(lines[i].split()[0].split(":")[0]) - 1]) - len(TUTORIAL.read_text().splitlines()[
        int(lines[i].split()[0].split(":")[0]) - 1].lstrip()))
    assert "fix: " in lines[i + 3] and "LegacyDetector" in lines[i + 3]


def test_cli_json_document_and_exit_codes(capsys, tmp_path):
    code, out, _ = run_cli(capsys, "--json", str(TUTORIAL))
    doc = json.loads(out)
    assert code == 1 and doc["schema_version"] == 1 and doc["exit_code"] == 1
    f = doc["findings"][0]
    assert set(f) >= {"file", "line", "col", "rule", "plugin", "message", "fix"}
    clean = tmp_path / "clean.py"
    clean.write_text("import tensorflow as tf\nprint(tf.__version__)\n")
    code, out, _ = run_cli(capsys, "--json", str(clean))
    assert code == 0 and json.loads(out)["findings"] == []


@pytest.mark.parametrize("args", [("no/such/path",), (), ("--format", "xml", "."), ("--select", "nope", ".")])
def test_cli_usage_errors_exit_2_in_one_line(capsys, args):
    code, out, err = run_cli(capsys, *args)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and err.startswith("oddoctor: error:") and "Traceback" not in err


def test_cli_select_limits_the_rules(capsys):
    code, out, _ = run_cli(capsys, "--json", "--select", "lint.session-per-item", str(TUTORIAL))
    assert code == 1 and {f["rule"] for f in json.loads(out)["findings"]} == {"lint.session-per-item"}


# --- SARIF ---
def test_sarif_is_structurally_valid_2_1_0(capsys):
    code, out, _ = run_cli(capsys, "--format", "sarif", str(REPO / "tests" / "lint_corpus" / "leaky"))
    assert code == 1
    log = json.loads(out)
    assert log["version"] == "2.1.0" and log["$schema"].endswith("sarif-2.1.0.json")
    [run] = log["runs"]
    driver = run["tool"]["driver"]
    assert driver["name"] and driver["version"]
    rule_ids = [r["id"] for r in driver["rules"]]
    assert len(rule_ids) == len(set(rule_ids))
    for r in driver["rules"]:
        assert r["shortDescription"]["text"] and r["fullDescription"]["text"] and r["help"]["text"]
        assert r["defaultConfiguration"]["level"] in ("none", "note", "warning", "error")
    assert run["results"]
    for res in run["results"]:
        assert res["ruleId"] in rule_ids and driver["rules"][res["ruleIndex"]]["id"] == res["ruleId"]
        assert res["level"] == "warning" and res["message"]["text"]
        [loc] = res["locations"]
        phys = loc["physicalLocation"]
        assert not phys["artifactLocation"]["uri"].startswith("/") and "\\" not in phys["artifactLocation"]["uri"]
        assert phys["region"]["startLine"] >= 1 and phys["region"]["startColumn"] >= 1
    assert run["invocations"][0]["executionSuccessful"] is True


def test_render_human_for_a_clean_report(tmp_path, rules):
    report = lint_text(tmp_path, rules, {"a.py": "x = 1\n"})
    assert render.render_human(report).strip() == f"no findings (1 file linted, {len(rules)} rules)"
