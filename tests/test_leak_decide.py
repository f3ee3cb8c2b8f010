"""When a leak-test verdict is decided (no TensorFlow): exact op counts, memory steps, the stop rule."""

from __future__ import annotations

import random

import pytest

from oddoctor.leak.decide import (
    GRAPH_STREAK,
    LATENCY_MIN_POINTS,
    MIB,
    MIN_SEGMENT,
    RSS_THRESHOLD_MIB,
    exact_growth,
    find_steps,
    graph_decision,
    images_for_slope,
    judge,
    latency_decision,
    may_stop,
    memory_decision,
)

# Measured on the OD API Mask R-CNN Inception v2 (size 300) on 2 CPU cores, warm-up 3, MiB after images 3..11.
REAL_LEGACY_RSS = [2734.5, 2736.8, 2738.6, 2740.2, 2741.2, 2742.6, 2743.5, 2744.9, 2746.4]
REAL_FIXED_RSS = [2575.3, 2576.4, 2576.4, 2576.9, 2576.9, 2576.9, 2576.9, 2576.9, 2576.9]


def xs(n, start=3):
    return [float(start + i) for i in range(n)]


def noisy(values, sd, seed):
    rng = random.Random(seed)
    return [v + rng.gauss(0.0, sd) for v in values]


def samples(rss_mib, nodes, latency_ms=100.0, warmup=3):
    out = [{"i": i, "warmup": True, "latency_ms": latency_ms, "graph_nodes": nodes[0], "rss_bytes": rss_mib[0] * MIB,
            "gpu_nvml_bytes": None, "gpu_tf_bytes": None} for i in range(warmup)]
    for k, (r, g) in enumerate(zip(rss_mib, nodes)):
        out.append({"i": warmup + k, "warmup": False, "latency_ms": latency_ms + (k % 3), "graph_nodes": g,
                    "rss_bytes": r * MIB, "gpu_nvml_bytes": None, "gpu_tf_bytes": None})
    return out


def test_graph_growth_is_exact_after_three_equal_differences():
    ys = [7976 + 84 * i for i in range(GRAPH_STREAK + 1)]
    assert exact_growth(ys, xs(len(ys))) == 84
    d = graph_decision(ys, xs(len(ys)))
    assert (d.status, d.decided, d.slope, d.rule) == ("leak", True, 84, "exact")
    flat = graph_decision([7985.0] * 4, xs(4))
    assert (flat.status, flat.decided, flat.slope) == ("ok", True, 0)


def test_uneven_graph_growth_falls_back_to_the_trend():
    ys = [100, 102, 105, 106, 110, 111, 115, 117, 120, 121]  # uneven growth: not exact, still a leak
    assert exact_growth(ys, xs(len(ys))) is None
    d = graph_decision(ys, xs(len(ys)))
    assert d.rule == "trend" and d.status == "leak"


def test_a_steady_leak_has_no_steps_and_an_allocator_jump_is_one():
    assert find_steps(REAL_LEGACY_RSS) == []
    assert find_steps([700.0 + 1.5 * i for i in range(12)]) == []
    assert find_steps([700.0, 700.2, 700.1, 760.0, 760.1, 760.0, 760.2]) == [3]
    assert find_steps([700.0, 701.0, 702.5, 703.0]) == []  # under STEP_MIN_MIB: noise, not a step


def test_memory_is_judged_after_the_last_step_only():
    # Flat, a 60 MiB allocator step, flat again: no leak, judged on the images after the step.
    ys = [700.0] * 4 + [760.0 + 0.01 * (i % 2) for i in range(8)]
    d = memory_decision(ys, xs(len(ys)), RSS_THRESHOLD_MIB)
    assert d.status == "ok" and d.decided and d.rule == "segment"
    assert d.steps == (7.0,) and d.segment == (7.0, 14.0)
    # A leak after the step is still a leak, at the post-step rate.
    ys = [700.0] * 3 + [760.0 + 2.0 * i for i in range(8)]
    d = memory_decision(ys, xs(len(ys)), RSS_THRESHOLD_MIB)
    assert d.status == "leak" and d.slope == pytest.approx(2.0)


def test_a_short_segment_after_a_step_is_undecided_not_a_flip():
    ys = [700.0] * 8 + [760.0, 760.0, 760.0]
    d = memory_decision(ys, xs(len(ys)), RSS_THRESHOLD_MIB)
    assert d.status == "undecided" and not d.decided and d.n == 3 < MIN_SEGMENT
    assert "3 images after it" in d.notes[0]


def test_the_real_model_series_are_decided_in_six_images():
    legacy = judge(samples(REAL_LEGACY_RSS[:6], [8069 + 84 * i for i in range(6)]))
    assert legacy["graph_nodes"].status == "leak" and legacy["graph_nodes"].slope == 84
    assert legacy["rss"].status == "leak" and legacy["rss"].decided
    assert legacy["gpu_nvml"] is None  # not recorded
    fixed = judge(samples(REAL_FIXED_RSS, [7985] * len(REAL_FIXED_RSS)))
    assert fixed["graph_nodes"].status == "ok" and fixed["rss"].status == "ok" and fixed["rss"].decided


def test_noise_never_flips_a_decided_memory_verdict():
    # 40 seeds: flat-with-noise is never a decided leak; a steady 1.5 MiB/image leak is never decided ok.
    for seed in range(40):
        flat = memory_decision(noisy([2577.0] * 9, 0.3, seed), xs(9), RSS_THRESHOLD_MIB)
        assert flat.status != "leak", seed
        leak = memory_decision(noisy([2734.0 + 1.5 * i for i in range(9)], 0.3, seed), xs(9), RSS_THRESHOLD_MIB)
        assert leak.status != "ok", seed


def test_a_mode_stops_only_past_the_floor_with_every_metric_decided():
    nodes = [8069 + 84 * i for i in range(9)]
    assert not may_stop(samples(REAL_LEGACY_RSS[:5], nodes[:5])).stop  # 5 < 6 measured
    assert may_stop(samples(REAL_LEGACY_RSS[:6], nodes[:6])).stop
    stepped = [2500.0] * 5 + [2560.0, 2560.0]  # a step two images ago: RSS still open
    check = may_stop(samples(stepped, [7985] * 7))
    assert not check.stop and check.undecided == ["rss"]


# The demo model's fixed loop, MiB after images 3..32 (warm-up 3): a sawtooth of 4 image sizes whose top
# creeps up for ~20 images, then stays.
DEMO_FIXED_RSS = [709.1, 737.3, 720.1, 728.7, 733.9, 738.0, 720.5, 729.0, 735.0, 739.1, 727.5, 736.0, 741.1, 753.1,
                  735.7, 744.1, 749.3, 753.1, 735.7, 744.1, 750.2, 754.0, 736.5, 745.0, 750.2, 754.0, 736.5, 745.0,
                  750.2, 754.0]


def test_a_creeping_allocator_with_a_constant_graph_is_never_a_leak():
    for n in range(6, len(DEMO_FIXED_RSS) + 1):
        rss = judge(samples(DEMO_FIXED_RSS[:n], [739] * n))["rss"]
        assert rss.status != "leak", n


def test_a_steady_runtime_leak_with_a_constant_graph_is_caught_after_the_long_segment():
    for seed in range(20):
        ys = noisy([700.0 + 0.75 * i for i in range(30)], 0.5, seed)
        assert judge(samples(ys, [739] * 30))["rss"].status == "leak", seed
        assert judge(samples(ys[:20], [739] * 20))["rss"].status == "undecided", seed  # too soon to tell


# --- Short runs (issue #16) and the OD API model's series (issue #10) --------------------------------------------

# OD API Mask R-CNN Inception v2 (size 300), 2 shared CPU cores, MiB after images 4..9 (warm-up 4): the legacy
# loop's RSS grows in chunks (+15 MiB at image 7) between +1 MiB images, while the graph grows by 84 ops/image.
REAL_LEGACY_CHUNKS = [2767.8, 2769.4, 2784.6, 2785.4, 2786.2, 2791.8]
# The fixed loop on the same model, images 4..11: creeps by 0.3-0.7 MiB for three images, then flat.
REAL_FIXED_CREEP = [2517.5, 2517.8, 2518.2, 2518.9, 2518.9, 2518.9, 2518.9, 2519.1]


def test_memory_growing_in_chunks_with_the_graph_is_a_leak_within_six_images():
    # Before: every chunk was a step that restarted the segment, so the verdict waited (max 21 images).
    d = judge(samples(REAL_LEGACY_CHUNKS, [8365 + 84 * i for i in range(6)], warmup=4))
    assert d["rss"].status == "leak" and d["rss"].decided and d["rss"].steps == (6.0,)
    assert may_stop(samples(REAL_LEGACY_CHUNKS, [8365 + 84 * i for i in range(6)], warmup=4)).stop


def test_one_step_while_the_graph_grows_is_not_a_memory_leak():
    # The graph grows, memory steps once and stays flat: the whole series is not a leak (one half is flat).
    for at in range(1, 11):
        ys = [2500.0] * at + [2560.0] * (12 - at)
        rss = judge(samples(ys, [8000 + 84 * i for i in range(12)]))["rss"]
        assert rss.status != "leak", at


def test_an_allocator_that_creeps_then_stops_is_ok_on_its_flat_tail():
    # Before: undecided until 10 measured images (the creep kept the Mann-Kendall test from 95%).
    d = judge(samples(REAL_FIXED_CREEP, [7985] * len(REAL_FIXED_CREEP), warmup=4))["rss"]
    assert (d.status, d.decided, d.rule) == ("ok", True, "tail")
    # Still creeping at the end: no verdict yet.
    assert judge(samples(REAL_FIXED_CREEP[:6], [7985] * 6, warmup=4))["rss"].status == "undecided"


# The fixed loop on the same model (2026-12-03, images 4..17): +12.9 MiB at image 5, +10.6 MiB at image 9, flat
# after. A leak of +11 MiB every 5 images (2.2 MiB/image, 9x the threshold) gives the same numbers up to image 13.
REAL_FIXED_STEPS = [2554.9, 2567.8, 2568.0, 2568.3, 2568.6, 2579.2, 2579.2, 2579.2, 2579.2, 2579.2, 2579.4, 2579.4,
                    2579.4, 2579.4]


def chunked_leak(start, n, every=5, chunk=11.0):
    ys = list(start)
    while len(ys) < n:
        ys.append(ys[-1] + (chunk if (len(ys) - 5) % every == 0 else 0.1))
    return ys


def test_allocator_steps_are_not_ok_before_a_chunked_leak_could_be_told_from_them():
    # Issue #10 asked for the verdicts within 12 images (8 measured). This series cannot be "ok" by then: a leak
    # in chunks every 5 images measures the same 9 numbers, so a rule that said ok here would say it to the leak.
    leak = chunked_leak(REAL_FIXED_STEPS[:9], 40)
    assert leak[:9] == REAL_FIXED_STEPS[:9]
    for n in range(6, 10):
        rss = judge(samples(REAL_FIXED_STEPS[:n], [7985] * n, warmup=4))["rss"]
        assert (rss.status, rss.decided, rss.needed) == ("undecided", False, 11), n
    real = judge(samples(REAL_FIXED_STEPS, [7985] * len(REAL_FIXED_STEPS), warmup=4))["rss"]
    assert (real.status, real.decided) == ("ok", True)  # six flat images after the last step
    for n in range(6, len(leak) + 1):
        rss = judge(samples(leak[:n], [7985] * n, warmup=4))["rss"]
        assert rss.status != "ok", n
    assert judge(samples(leak, [7985] * len(leak), warmup=4))["rss"].status == "leak"


def test_a_slow_leak_is_never_called_ok_at_any_length():
    # 0.5 MiB/image (twice the threshold) with noise, looked at after every image as --until-decided does:
    # with the graph constant it may stay undecided, it is never decided "ok".
    for seed in range(30):
        ys = noisy([700.0 + 0.5 * i for i in range(30)], 0.2, seed)
        for n in range(6, 31):
            rss = judge(samples(ys[:n], [739] * n))["rss"]
            assert rss.status != "ok", (seed, n)
        assert judge(samples(ys, [739] * 30))["rss"].status == "leak", seed
        # With the graph growing (a leak expected) it is found within 10 measured images.
        assert judge(samples(ys[:10], [8000 + 84 * i for i in range(10)]))["rss"].status == "leak", seed


def test_short_fixed_run_with_a_late_step_is_inconclusive_not_a_leak():
    # -n 12 -w 3 (#16): flat, one 60 MiB step two images before the end. Once judged "LEAK 98%".
    ys = [2519.0] * 10 + [2579.0, 2579.0]
    rss = judge(samples(ys, [7985] * 12))["rss"]
    assert rss.status == "undecided" and not rss.decided
    assert rss.needed == 10 + MIN_SEGMENT and "2 images after it" in rss.notes[0]
    for seed in range(20):  # anywhere, with noise: never a leak
        for at in range(1, 12):
            ys = noisy([2519.0] * at + [2579.0] * (12 - at), 0.2, seed)
            assert judge(samples(ys, [7985] * 12))["rss"].status != "leak", (seed, at)


def test_latency_under_its_needed_images_is_undecided_and_says_how_many():
    # Shared-CPU latency, 20 % noise: over 6-19 images the old rule said ok, plateau or undecided by chance.
    statuses = set()
    for seed in range(30):
        for n in (6, 9, 12, 19):
            ys = noisy([4000.0] * n, 800.0, seed)
            lat = judge([{**s, "latency_ms": y} for s, y in zip(samples([700.0] * n, [739] * n), [4000.0] * 3 + ys)])
            statuses.add(lat["latency"].status)
            assert lat["latency"].needed >= LATENCY_MIN_POINTS
            assert f"-n {lat['latency'].needed}" in lat["latency"].notes[-1]
    assert statuses == {"undecided"}


def test_latency_is_decided_once_the_series_carries_it():
    flat = noisy([100.0] * 60, 2.0, 1)
    d = latency_decision(flat, xs(60), threshold=2.0)
    assert (d.status, d.decided) == ("ok", True)
    growing = [100.0 + 5.0 * i + e for i, e in enumerate(noisy([0.0] * 60, 2.0, 2))]
    assert latency_decision(growing, xs(60), threshold=2.0).status == "leak"


def test_images_needed_grows_with_noise_and_shrinks_with_the_threshold():
    # sd 20 % of the median against a 2 %-per-image threshold: (2 * 1.645 * 0.2 * sqrt(12) / 0.02) ** (2/3).
    assert images_for_slope(0.2, 0.02) == 24
    assert images_for_slope(0.1, 0.02) < images_for_slope(0.2, 0.02) < images_for_slope(0.4, 0.02)
    assert images_for_slope(0.2, 0.04) < images_for_slope(0.2, 0.02)
    assert images_for_slope(0.0, 0.02) == 6


# The legacy loop on the OD API model with the RSS read after malloc_trim (images 4..9, MiB): +1.2 MiB an image,
# but the first half (3 images) wobbles, so the persistence test alone calls it a plateau.
REAL_LEGACY_TRIMMED = [2078.7, 2081.21, 2080.66, 2081.62, 2082.48, 2084.56]


def test_memory_growing_with_the_graph_is_a_leak_in_six_images_even_if_its_first_half_wobbles():
    nodes = [8365 + 84 * i for i in range(6)]
    d = judge(samples(REAL_LEGACY_TRIMMED, nodes, warmup=4))["rss"]
    assert (d.status, d.decided, d.rule) == ("leak", True, "with-graph")
    assert d.slope > RSS_THRESHOLD_MIB
    assert may_stop(samples(REAL_LEGACY_TRIMMED, nodes, warmup=4)).stop
    # The same memory with a constant graph: growth against expectation waits for the long segment.
    constant = judge(samples(REAL_LEGACY_TRIMMED, [7985] * 6, warmup=4))["rss"]
    assert constant.status == "undecided" and constant.needed >= 30


def test_memory_that_grew_and_levelled_off_is_no_leak_though_the_graph_grows():
    # Grew over the first half, flat in the latest: the graph's growth does not make it a leak.
    ys = [2000.0, 2002.0, 2004.0, 2006.0, 2006.0, 2006.0, 2006.0, 2006.0]
    d = judge(samples(ys, [8000 + 84 * i for i in range(8)]))["rss"]
    assert d.status != "leak" and d.rule != "with-graph"


# The legacy loop on the OD API model (2026-12-03, quiet machine), RSS in MiB as read: warm-up images 0-3, then
# measured images 4-15. The high-water mark steps at images 5 and 7 (+72 and +34 MiB) and is flat for the next
# five: the segment after the last step has too few images, and persistence fails on the flat middle third.
REAL_LEGACY_SESSION_CHUNKS = [2361.4, 2840.0, 3034.7, 3107.1, 3099.4, 3171.5, 3171.8, 3205.9, 3170.9, 3170.9, 3171.0,
                      3171.1, 3231.7, 3249.2, 3249.6, 3250.3]
# The same loop with oneDNN off (TF_ENABLE_ONEDNN_OPTS=0): a Session per image, the graph growing, RSS a sawtooth.
REAL_LEGACY_ONEDNN_OFF = [1763.0, 1767.6, 1746.7, 1784.7, 1779.5, 1782.8, 1769.2, 1731.3, 1808.8, 1798.2, 1777.9,
                          1764.3, 1764.4, 1751.8, 1773.8, 1766.9]


def loop_samples(rss_mib, *, graph_step, session_step, warmup=4):
    """Samples of a loop whose graph grows by ``graph_step`` ops and that opens ``session_step`` Sessions an image."""
    out = samples(rss_mib[warmup:], [8029 + graph_step * (warmup + k) for k in range(len(rss_mib) - warmup)],
                  warmup=warmup)
    for k, s in enumerate(out):
        s["rss_bytes"] = rss_mib[k] * MIB
        s["sessions"] = 1 + session_step * k
        if s["warmup"]:
            s["graph_nodes"] = 8029 + graph_step * k
    return out


def test_steps_of_a_session_per_image_loop_whose_graph_grows_are_its_leak():
    # Rule "sessions": each Session's runtime memory, kept in chunks. Decided at 6 measured images (10 in all),
    # where the rules before it waited until image 14 on this run.
    legacy = loop_samples(REAL_LEGACY_SESSION_CHUNKS[:10], graph_step=84, session_step=1)
    d = judge(legacy)["rss"]
    assert (d.status, d.decided, d.rule) == ("leak", True, "sessions")
    assert d.slope == pytest.approx((3205.9 - 3099.4) / 5)  # the average over the series, chunks included
    assert "every image opens a new Session" in d.notes[0]
    assert may_stop(legacy).stop
    # One Session for the whole loop (ops added, no Session per image): the two steps wait for the segment.
    one_session = judge(loop_samples(REAL_LEGACY_SESSION_CHUNKS[:10], graph_step=84, session_step=0))["rss"]
    assert one_session.status == "undecided" and one_session.rule != "sessions"
    # A Session per image with a constant graph (finalized, reused): no leak from the steps either.
    constant = judge(loop_samples(REAL_LEGACY_SESSION_CHUNKS[:10], graph_step=0, session_step=1))["rss"]
    assert constant.status != "leak"
    # Samples that did not record Sessions (older JSON): the rule does not apply.
    unknown = [{k: v for k, v in s.items() if k != "sessions"} for s in legacy]
    assert judge(unknown)["rss"].rule != "sessions"


def test_a_session_per_image_loop_whose_memory_does_not_step_is_not_called_a_leak_by_the_sessions_rule():
    # oneDNN off: the same loop's RSS is a sawtooth with no growth. Judged after every image, never "sessions".
    for n in range(10, len(REAL_LEGACY_ONEDNN_OFF) + 1):
        d = judge(loop_samples(REAL_LEGACY_ONEDNN_OFF[:n], graph_step=84, session_step=1))["rss"]
        assert d.rule != "sessions" and d.status != "leak", n


def test_the_sessions_rule_is_for_host_memory_only():
    # A GPU's allocator pool is the process's, shared by every Session: its steps in a Session-per-image loop have
    # not been measured, so GPU memory with the same steps keeps the rules that wait for the segment after them.
    legacy = loop_samples(REAL_LEGACY_SESSION_CHUNKS[:10], graph_step=84, session_step=1)
    for s in legacy:
        s["gpu_nvml_bytes"] = s["rss_bytes"]
    d = judge(legacy)
    assert d["rss"].rule == "sessions" and d["gpu_nvml"].rule != "sessions" and not d["gpu_nvml"].decided
