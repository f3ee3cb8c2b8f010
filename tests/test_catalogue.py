"""docs/checks.md is generated from the registered checks and must not drift from them."""

from __future__ import annotations

from oddoctor import catalogue
from oddoctor.checks import check, ok
from oddoctor.manager import collect_checks, make_plugin_manager
from tests.helpers import REPO


def test_docs_checks_md_is_up_to_date():
    current = (REPO / "docs" / "checks.md").read_text(encoding="utf-8")
    assert current == catalogue.generate(), "docs/checks.md is out of date: run python -m oddoctor.catalogue"


def test_catalogue_lists_every_registered_builtin_check():
    text = catalogue.generate()
    checks = collect_checks(make_plugin_manager())
    assert {"platform", "driver", "tensorflow", "cuda", "gpu", "memory", "packages"} <= {c.plugin for c in checks}
    for c in checks:
        assert f"| `{c.id}` | {c.plugin} |" in text
    row = next(ln for ln in text.splitlines() if ln.startswith("| `memory.allow-growth-value` |"))
    assert row.endswith("| export TF_FORCE_GPU_ALLOW_GROWTH=true |")


def test_typical_fix_comes_from_the_docstring_and_third_party_checks_are_left_out():
    @check(id="demo.thing", title="Demo")
    def demo(snap):
        """A demo check.

        Typical fix: pip install demo==1.0 and
        restart.
        """
        return ok("fine")

    demo.plugin = "third-party"
    assert catalogue.typical_fix(demo) == "pip install demo==1.0 and restart."
    assert catalogue.own_checks([demo]) == []  # defined in tests, not in an oddoctor package


def test_check_mode_reports_a_stale_file(tmp_path):
    stale = tmp_path / "checks.md"
    stale.write_text("# old\n")
    assert catalogue.main(["--check", "-o", str(stale)]) == 1
    assert catalogue.main(["-o", str(stale)]) == 0
    assert catalogue.main(["--check", "-o", str(stale)]) == 0
