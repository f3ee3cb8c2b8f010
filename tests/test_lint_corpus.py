"""The lint corpus: every leaky case gives exactly the findings its `# expect:` comments name, clean cases none."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from oddoctor.lint.engine import lint_paths
from oddoctor.manager import collect_lint_rules, make_plugin_manager

CORPUS = Path(__file__).parent / "lint_corpus"
EXPECT = re.compile(r"#\s*expect:\s*(.+)$")
HEADER = re.compile(r"Pattern: .*?([\w.-]+/[\w.-]+)@([0-9a-f]{40})|Pattern: .*?([\w.-]+/[\w.-]+)", re.DOTALL)

Key = tuple[str, "int | None", int, str]


def cases(kind: str) -> list[Path]:
    return sorted(p for p in (CORPUS / kind).iterdir() if p.name != "__pycache__")


def case_files(case: Path) -> list[Path]:
    if case.is_file():
        return [case]
    return sorted(p for p in case.rglob("*") if p.suffix in (".py", ".ipynb"))


def _expects(lines: list[str]) -> list[tuple[int, str]]:
    out = []
    for n, line in enumerate(lines, start=1):
        m = EXPECT.search(line)
        if m:
            out.extend((n, rule.strip()) for rule in m.group(1).split(","))
    return out


def expected(case: Path) -> Counter[Key]:
    want: Counter[Key] = Counter()
    for f in case_files(case):
        if f.suffix == ".ipynb":
            for i, cell in enumerate(json.loads(f.read_text())["cells"], start=1):
                if cell["cell_type"] == "code":
                    for line, rule in _expects("".join(cell["source"]).splitlines()):
                        want[(f.name, i, line, rule)] += 1
        else:
            for line, rule in _expects(f.read_text(encoding="utf-8").splitlines()):
                want[(f.name, None, line, rule)] += 1
    return want


@pytest.fixture(scope="module")
def rules():
    ps = make_plugin_manager()
    found = collect_lint_rules(ps)
    assert not [e for e in ps.errors if e.stage == "oddoctor_lint_rules"]
    return found


def found(case: Path, rules) -> Counter[Key]:
    report = lint_paths([str(case)], rules)
    assert not report.errors, report.errors
    return Counter((Path(f.file).name, f.cell, f.line, f.rule) for f in report.findings)


@pytest.mark.parametrize("case", cases("leaky"), ids=lambda p: p.name)
def test_leaky_case_gives_exactly_the_expected_findings(case: Path, rules):
    want = expected(case)
    assert want, f"{case.name} marks no expected finding"
    assert found(case, rules) == want


@pytest.mark.parametrize("case", cases("clean"), ids=lambda p: p.name)
def test_clean_case_gives_no_finding(case: Path, rules):
    assert expected(case) == Counter()
    assert found(case, rules) == Counter()


def test_corpus_size_and_coverage():
    leaky, clean = cases("leaky"), cases("clean")
    assert len(leaky) >= 15 and len(clean) >= 8
    names = {p.name for p in leaky}
    assert {"flask_xfile", "fastapi_xfile", "aiohttp_xfile", "webcam_session_per_frame.py",
            "tutorial_notebook.ipynb", "flask_tf2_star"} <= names
    assert "get_tensor_by_name_loop.py" in {p.name for p in clean}
    rules_hit = {rule for case in leaky for (_, _, _, rule) in expected(case)}
    assert len(rules_hit) >= 9  # every built-in rule has a leaky case


@pytest.mark.parametrize("case", cases("leaky") + cases("clean"), ids=lambda p: p.name)
def test_every_corpus_file_cites_the_pattern_it_imitates(case: Path):
    for f in case_files(case):
        text = f.read_text(encoding="utf-8")
        if f.suffix == ".ipynb":
            head = "".join(next(c for c in json.loads(text)["cells"] if c["cell_type"] == "code")["source"])
        else:
            head = text[:600]
        m = re.search(r"Pattern: ", head)
        assert m, f"{f} has no 'Pattern:' header"
        if "see main.py" in head or "see app.py" in head:
            continue
        assert re.search(r"[\w.-]+/[\w.-]+(@[0-9a-f]{40})?", head), f"{f}: cite repository and commit"


def test_the_unparseable_notebook_cell_is_reported_and_the_rest_linted(rules):
    report = lint_paths([str(CORPUS / "leaky" / "tutorial_notebook.ipynb")], rules)
    [skipped] = report.skipped
    assert skipped.cell == 4 and "cannot parse" in skipped.message
    assert report.findings
