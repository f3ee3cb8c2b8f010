"""Verdicts, projection, findings, exit codes and rendering of the leak-test report (no TensorFlow)."""

from __future__ import annotations

import json

import pytest

from oddoctor.leak.report import analyze_mode, build_report, render_text
from oddoctor.leak.spawn import ModeRun

MIB = 1024 * 1024


def fake_run(mode, *, nodes_per_image, rss_per_image_mib, latency_ms, n=30, warmup=5, gpu=False):
    samples = []
    for i in range(n + warmup):
        # Warm-up: memory jumps on the first images in both modes (allocator warm-up).
        rss = 700 * MIB + (40 * MIB if i >= 2 else 0) + int(rss_per_image_mib * MIB * i) + (i % 3) * 4096
        samples.append({"i": i, "warmup": i < warmup, "latency_ms": latency_ms + (i % 4) * 0.5,
                        "graph_nodes": 730 + nodes_per_image * i, "rss_bytes": rss,
                        "gpu_nvml_bytes": (500 * MIB if gpu else None), "gpu_tf_bytes": None,
                        "sessions": i + 1 if mode == "legacy" else 1})
    start = {"mode": mode, "model": "m.pb", "model_kind": "frozen_graph", "model_nodes": 699,
             "has_masks": True, "image_sizes": [[480, 640], [512, 512]], "skipped": [],
             "tf_version": "2.x", "nvml": "ok" if gpu else "NVML unavailable (no driver)",
             "tf_allocator": "TensorFlow sees no GPU", "host_available_bytes": 8 * 1024 * MIB,
             "gpu_free_bytes": None}
    return ModeRun(mode=mode, start=start, samples=samples,
                   done={"sessions": samples[-1]["sessions"], "host_available_bytes": 8 * 1024 * MIB})


def test_legacy_leaks_fixed_passes_with_findings_and_projection():
    legacy = analyze_mode(fake_run("legacy", nodes_per_image=31, rss_per_image_mib=2.0, latency_ms=200)).to_dict()
    fixed = analyze_mode(fake_run("fixed", nodes_per_image=0, rss_per_image_mib=0.0, latency_ms=20)).to_dict()
    assert legacy["verdict"] == "leak"
    assert set(legacy["leaking_metrics"]) == {"graph_nodes", "rss"}
    assert legacy["metrics"]["graph_nodes"]["slope_per_image"] == pytest.approx(31)
    assert fixed["verdict"] == "ok"
    assert fixed["metrics"]["rss"]["status"] == "ok"  # warm-up jump excluded, plateau not flagged
    assert legacy["metrics"]["gpu_nvml"]["status"] == "n/a"
    assert "no driver" in legacy["metrics"]["gpu_nvml"]["reason"]
    # 8 GiB free at 2 MiB per image: about 4096 images.
    assert legacy["projection"]["RAM"]["images_to_exhaustion"] == pytest.approx(4096, rel=0.02)
    ids = [f["id"] for f in legacy["findings"]]
    assert ids == ["leak.graph-growth", "leak.session-per-image"]
    assert "LegacyDetector" in legacy["findings"][0]["fix"]
    assert fixed["findings"] == []


def test_runtime_memory_growth_with_a_constant_graph_is_not_blamed_on_the_user():
    mode = analyze_mode(fake_run("fixed", nodes_per_image=0, rss_per_image_mib=1.0, latency_ms=20))
    assert mode.verdict == "leak"
    assert [f.id for f in mode.findings] == ["leak.runtime-memory"]


def test_exit_codes_ratio_and_json_document():
    runs = {"legacy": fake_run("legacy", nodes_per_image=31, rss_per_image_mib=0.0, latency_ms=200),
            "fixed": fake_run("fixed", nodes_per_image=0, rss_per_image_mib=0.0, latency_ms=20)}
    report = build_report(runs, model="m.pb", options={})
    doc = report.to_dict()
    assert doc["exit_code"] == report.exit_code == 1  # a measured mode leaks: CI gate fails
    assert doc["cost_ratio"]["median"] == pytest.approx(200.75 / 20.75, rel=0.01)
    json.loads(json.dumps(doc))  # one serialisable document
    assert doc["schema_version"] == 1
    assert "demo_as_expected" not in doc and "plot" not in doc
    demo = build_report(runs, model="demo", options={}, demo=True).to_dict()
    assert demo["exit_code"] == 0
    assert demo["demo_as_expected"]
    swapped = {"legacy": runs["fixed"], "fixed": runs["legacy"]}
    assert build_report(swapped, model="demo", options={}, demo=True).exit_code == 1
    only_fixed = build_report({"fixed": runs["fixed"]}, model="m.pb", options={})
    assert only_fixed.exit_code == 0
    assert "cost_ratio" not in only_fixed.to_dict()
    text = render_text(report)
    assert "LEAKS" in text
    assert "+31.0 ops/image" in text
    assert "per-image cost ratio legacy/fixed: 9.7x" in text
    assert "fix: Build tensor_dict" in text


def test_a_crashed_child_is_an_error_and_exit_1():
    run = fake_run("legacy", nodes_per_image=31, rss_per_image_mib=0.0, latency_ms=200, n=3)
    run.error = {"kind": "died", "message": "the legacy process killed by signal 9 after 8 iterations"}
    report = build_report({"legacy": run}, model="m.pb", options={})
    assert report.to_dict()["modes"]["legacy"]["verdict"] == "error"
    assert report.to_dict()["exit_code"] == 1
    assert "signal 9" in render_text(report)


def test_plot_is_written_with_both_modes(tmp_path):
    pytest.importorskip("matplotlib")
    from oddoctor.leak.plot import save_plot

    runs = {"legacy": fake_run("legacy", nodes_per_image=31, rss_per_image_mib=1.0, latency_ms=200),
            "fixed": fake_run("fixed", nodes_per_image=0, rss_per_image_mib=0.0, latency_ms=20, gpu=True)}
    report = build_report(runs, model="m.pb", options={})
    out = save_plot(runs, report, tmp_path / "sub" / "leak.png")
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 10_000
    assert [p.name for p in out.parent.iterdir()] == ["leak.png"]  # no temp file left behind


def test_json_document_keys_in_order():
    """The --json document (schema_version 1) key by key, in the order users' tools have seen it."""
    runs = {"legacy": fake_run("legacy", nodes_per_image=31, rss_per_image_mib=2.0, latency_ms=200),
            "fixed": fake_run("fixed", nodes_per_image=0, rss_per_image_mib=0.0, latency_ms=20)}
    report = build_report(runs, model="m.pb", options={"iterations": 30}, demo=True)
    report.plot = "leak.png"
    doc = report.to_dict()
    assert list(doc) == ["schema_version", "command", "model", "demo", "options", "modes", "cost_ratio",
                         "demo_as_expected", "exit_code", "plot"]
    legacy = doc["modes"]["legacy"]
    assert list(legacy) == ["mode", "title", "wall_s", "iterations", "warmup", "start", "error", "metrics", "latency",
                            "sessions_created", "images_run", "verdict", "leaking_metrics", "projection", "findings",
                            "undecided_metrics", "stopped", "reframe", "entry", "smallest_run",
                            "samples"]  # new keys before samples
    assert list(legacy["metrics"]) == ["graph_nodes", "rss", "gpu_nvml", "gpu_tf", "latency"]
    assert list(legacy["metrics"]["rss"]) == ["status", "slope_per_image", "threshold_per_image", "confidence",
                                              "verdict_confidence", "part_confidence", "unit", "n", "notes", "label",
                                              "first", "last", "decided", "rule", "segment", "steps",
                                              "needed_images"]
    assert legacy["metrics"]["gpu_nvml"] == {"status": "n/a", "label": "GPU memory (NVML)", "unit": "MiB",
                                             "reason": "NVML unavailable (no driver)"}
    assert list(legacy["latency"]) == ["first_image_ms", "median_ms", "p90_ms"]
    assert list(legacy["projection"]["RAM"]) == ["free_bytes", "bytes_per_image", "images_to_exhaustion", "segment"]
    assert list(legacy["findings"][0]) == ["id", "message", "fix"]
    assert list(doc["cost_ratio"]) == ["median", "first_image"]
    assert legacy["samples"] == runs["legacy"].samples
    assert legacy["metrics"]["rss"]["verdict_confidence"] == report.modes["legacy"].metrics["rss"].verdict_confidence


def test_the_report_says_how_many_images_ran_and_why_it_stopped():
    run = fake_run("fixed", nodes_per_image=0, rss_per_image_mib=0.0, latency_ms=20, n=8, warmup=3)
    run.done.update(stopped="decided", until_decided=True)
    mode = analyze_mode(run)
    assert mode.stopped == {"reason": "decided", "images": 11,
                            "message": "stopped after 11 images (3 warm-up + 8 measured): graph and memory decided; "
                                       "latency undecided (latency never holds a mode back)"}
    # 8 images cannot carry a latency verdict: undecided, with the run that can.
    assert mode.metrics["latency"].status == "undecided" and mode.smallest_run == {
        "warmup": 3, "iterations": 8, "decided": True, "latency_iterations": 20}
    assert mode.metrics["graph_nodes"].rule == "exact" and mode.metrics["graph_nodes"].decided
    run = fake_run("fixed", nodes_per_image=0, rss_per_image_mib=0.0, latency_ms=20, n=10, warmup=0)
    run.done.update(stopped="max-images", until_decided=False)
    assert analyze_mode(run).stopped["message"] == "ran all 10 images (0 warm-up + 10 measured); undecided: latency"
    report = build_report({"fixed": run}, model="m.pb", options={})
    text = render_text(report)
    assert "images run" in text and "10 (max-images)" in text


def test_memory_after_an_allocator_step_is_judged_on_its_own_and_projected_from_it():
    run = fake_run("legacy", nodes_per_image=84, rss_per_image_mib=0.0, latency_ms=200, n=12, warmup=3)
    for s in run.samples:  # a 300 MiB step at image 5, then +1.5 MiB per image
        if s["i"] >= 5:
            s["rss_bytes"] = 3000 * MIB + int(1.5 * MIB * (s["i"] - 5))
    mode = analyze_mode(run)
    rss = mode.metrics["rss"]
    assert (rss.status, rss.rule, rss.steps, rss.segment) == ("leak", "segment", [5], [5, 14])
    assert rss.slope_per_image == pytest.approx(1.5, rel=0.01)
    assert mode.projection["RAM"].segment == [5, 14]
    assert "from #6" in render_text(build_report({"legacy": run}, model="m.pb", options={}))


def test_a_run_too_short_to_decide_is_inconclusive_and_names_the_run_that_decides():
    run = fake_run("fixed", nodes_per_image=0, rss_per_image_mib=0.0, latency_ms=20, n=12, warmup=3)
    for s in run.samples:  # a 60 MiB step two images before the end (-n 12 -w 3, issue #16)
        if s["i"] >= 13:
            s["rss_bytes"] += 60 * MIB
    run.done.update(stopped="max-images", until_decided=False)
    report = build_report({"fixed": run}, model="m.pb", options={})
    mode = report.modes["fixed"]
    assert mode.verdict == "inconclusive" and mode.leaking_metrics == [] and report.exit_code == 0
    assert mode.metrics["rss"].needed == 10 + 6  # the step at measured image 10, then 6 images after it
    assert mode.smallest_run == {"warmup": 3, "iterations": 16, "decided": False, "latency_iterations": 20}
    text = render_text(report)
    assert "inconclusive: run longer" in text
    assert "fixed: inconclusive (rss undecided after 12 measured images): run longer, -w 3 -n 16 at least" in text
    assert report.to_dict()["modes"]["fixed"]["metrics"]["rss"]["needed_images"] == 16
    demo = build_report({"fixed": run}, model="demo", options={}, demo=True)
    assert not demo.demo_as_expected and demo.exit_code == 1  # the demo did not show the fix passing
    assert "demo: the fixed loop found no leak but was not decided in this run: run longer" in render_text(demo)


def test_the_report_names_allocator_settings_the_child_ran_under():
    # The child inherits the environment: glibc's MALLOC_* settings change the RSS's steps, so a run made
    # under one says so (and a run under none says nothing: the line would only be noise).
    runs = {m: fake_run(m, nodes_per_image=n, rss_per_image_mib=r, latency_ms=20)
            for m, n, r in (("legacy", 84, 2.0), ("fixed", 0, 0.0))}
    assert "host allocator" not in render_text(build_report(runs, model="m.pb", options={}))
    for run in runs.values():
        run.start["malloc_env"] = {"MALLOC_ARENA_MAX": "2"}
    text = render_text(build_report(runs, model="m.pb", options={}))
    assert "host allocator set by the environment: MALLOC_ARENA_MAX=2 (it changes the RSS's steps" in text


def test_a_leak_in_chunks_of_a_session_per_image_loop_is_shown_as_such_and_projected_from_their_average():
    # The OD API model's legacy loop (2026-12-03): the RSS high-water mark stepped at images 5 and 7, then sat flat.
    real = [2361.4, 2840.0, 3034.7, 3107.1, 3099.4, 3171.5, 3171.8, 3205.9, 3170.9, 3170.9]
    run = fake_run("legacy", nodes_per_image=84, rss_per_image_mib=0.0, latency_ms=7000, n=6, warmup=4)
    for s, mib in zip(run.samples, real):
        s["rss_bytes"] = int(mib * MIB)
    mode = analyze_mode(run)
    rss = mode.metrics["rss"]
    assert (rss.status, rss.rule) == ("leak", "sessions")
    assert rss.slope_per_image == pytest.approx((3205.9 - 3099.4) / 5, rel=1e-3)
    assert mode.projection["RAM"].images_to_exhaustion == pytest.approx(8 * 1024 / ((3205.9 - 3099.4) / 5), rel=0.01)
    text = render_text(build_report({"legacy": run}, model="m.pb", options={}))
    assert "LEAK in chunks" in text
    assert "in chunks = steps while the graph grows and every image opens a Session" in text
    # Without the Session per image (sessions constant) the same RSS is not called a leak in 6 measured images.
    for s in run.samples:
        s["sessions"] = 1
    assert analyze_mode(run).metrics["rss"].status == "undecided"
