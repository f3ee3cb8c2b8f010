"""Short leak-test runs are honest (issue #16): the fixed loop is never called a leak on 12 images."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


@pytest.mark.tf
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_ten_short_runs_of_the_fixed_loop_never_say_leak(tmp_path):
    pytest.importorskip("tensorflow")
    from oddoctor_legacy_tf1.model import build_model

    pb = build_model(tmp_path / "frozen_inference_graph.pb")
    verdicts = []
    for run in range(10):
        # -n 12 -w 3 once judged the fixed loop's RSS a leak "with 98 % confidence" from one step up.
        proc = subprocess.run([sys.executable, "-m", "oddoctor", "leak-test", str(pb), "--mode", "fixed",
                               "-n", "12", "-w", "3", "--no-until-decided", "--json"],
                              capture_output=True, text=True, timeout=300, check=False)
        assert proc.returncode == 0, (run, proc.stderr[-2000:])
        fixed = json.loads(proc.stdout)["modes"]["fixed"]
        assert fixed["verdict"] in ("ok", "inconclusive"), (run, fixed["metrics"]["rss"])
        assert fixed["metrics"]["rss"]["status"] != "leak" and fixed["leaking_metrics"] == []
        assert fixed["warmup"] == 4 and "one pass over the 4 image sizes" in fixed["start"]["warmup_why"]
        assert fixed["images_run"] == 4 + 12
        if fixed["verdict"] == "inconclusive":  # then it names the run that decides
            assert fixed["smallest_run"]["iterations"] > 12 and not fixed["smallest_run"]["decided"]
        verdicts.append(fixed["verdict"])
    assert "leak" not in verdicts
