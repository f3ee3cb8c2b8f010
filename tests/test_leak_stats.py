"""Slope and verdict logic of `oddoctor leak-test` on synthetic series (no TensorFlow)."""

from __future__ import annotations

import random

import pytest

from oddoctor.leak.stats import confidence_above, theil_sen, trend

N = 30
THR = 0.25  # MiB per image, the RSS threshold


def noisy(values, sd, seed):
    rng = random.Random(seed)
    return [v + rng.gauss(0.0, sd) for v in values]


def statuses(make, seeds=range(40)):
    return {trend(make(seed), THR).status for seed in seeds}


def test_theil_sen_exact_on_a_line_and_robust_to_outliers():
    ys = [3.0 + 2.0 * i for i in range(20)]
    assert theil_sen(ys) == pytest.approx((2.0, 3.0))
    corrupted = list(ys)
    for i in (2, 7, 11, 15, 19):  # 25% wild outliers
        corrupted[i] = 1e6
    slope, _ = theil_sen(corrupted)
    assert slope == pytest.approx(2.0, abs=0.5)


def test_confidence_is_high_above_and_low_below_the_threshold():
    ys = [0.5 * i for i in range(N)]
    assert confidence_above(ys, 0.25) > 0.999
    assert confidence_above(ys, 1.0) < 0.001
    assert confidence_above([5.0] * N, 0.25) < 0.001  # constant: certainly not growing 0.25/image


def test_flat_with_noise_is_never_a_leak():
    assert statuses(lambda s: noisy([700.0] * N, 1.0, s)) == {"ok"}
    assert statuses(lambda s: noisy([700.0] * N, 5.0, s)) == {"ok"}


def test_small_steady_leak_is_always_caught():
    # 0.75 MiB/image (3x the threshold) under 0.5 MiB of noise: 22 MiB over the run.
    assert statuses(lambda s: noisy([700.0 + 0.75 * i for i in range(N)], 0.5, s)) == {"leak"}
    # Exact op counts: +31 ops per image, as the tutorial loop adds.
    t = trend([730 + 31 * i for i in range(N)], 0.5)
    assert t.status == "leak"
    assert t.slope == 31
    assert t.confidence > 0.999


def test_leak_growing_in_chunks_is_caught():
    # 4 MiB every 5 images (an allocator handing out big blocks), tiny noise.
    assert statuses(lambda s: noisy([700.0 + 4 * (i // 5) for i in range(N)], 0.3, s)) == {"leak"}


@pytest.mark.parametrize("at", [3, 8, 15, 22, 27])
def test_one_step_then_plateau_is_not_a_leak(at):
    found = statuses(lambda s: noisy([700.0 + 20.0 * (i >= at) for i in range(N)], 1.0, s))
    assert "leak" not in found


def test_allocator_warm_up_staircase_is_a_plateau_not_a_leak():
    # The fixed loop's RSS (MiB) measured on 2 CPU cores after 10 warm-up images: steps up a few
    # times, less and less often, then flat.
    fixed_rss = [703.6, 703.6, 704.5, 704.5, 710.4, 710.4, 710.4, 718.7, 718.7, 718.7, 718.7, 718.7,
                 718.7, 719.6, 719.6, 719.6, 719.6, 720.1, 720.1, 720.1, 720.1, 720.1, 720.1, 720.1,
                 720.1, 720.2, 720.2, 720.2, 720.2, 720.2]
    t = trend(fixed_rss, THR)
    assert t.status in ("ok", "plateau")
    assert not t.leaks


def test_one_outlier_spike_is_not_a_leak_and_does_not_hide_one():
    def spike(values, seed):
        values = noisy(values, 1.0, seed)
        values[seed % N] += 300.0
        return values

    assert statuses(lambda s: spike([700.0] * N, s)) == {"ok"}
    assert statuses(lambda s: spike([700.0 + 1.0 * i for i in range(N)], s)) == {"leak"}


def test_too_short_series_gets_no_verdict():
    t = trend([1.0, 2.0, 3.0], THR)
    assert t.status == "too-short"
    assert not t.leaks
