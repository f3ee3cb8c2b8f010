"""Docs that users rely on stay true: README's commands are CI's, every hook is documented."""

from __future__ import annotations

import re

from oddoctor import hookspecs
from tests.helpers import REPO


def _readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    return re.findall(r"```bash\n(.+?)\n```", text)[:2]


def test_readme_starts_with_the_two_commands_and_ci_runs_the_test_one():
    install_run, test_cmd = _readme_commands()
    assert "oddoctor check" in install_run and "pip install" in install_run
    assert "pytest" in test_cmd and "[test]" in test_cmd
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    assert test_cmd in ci, "the README's test command must be what .ci/run runs, verbatim"


def test_every_hook_is_documented():
    doc = (REPO / "docs" / "plugins.md").read_text()
    hooks = [name for name in dir(hookspecs) if name.startswith("oddoctor_")]
    assert hooks
    for name in hooks:
        assert f"### `{name}`" in doc, f"hook {name} is not documented in docs/plugins.md"
