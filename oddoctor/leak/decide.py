"""When each metric's verdict is certain, and what it is: the rule the child stops on and the report states.

The child (``--until-decided``) calls :func:`judge` after every measured image and stops once every metric
is decided; :func:`oddoctor.leak.report.analyze_mode` calls the same function on the same samples, so the
verdict printed is the verdict the child stopped on. Pure Python, no TensorFlow.

- **Graph ops** are exact integers: once the last :data:`GRAPH_STREAK` differences are equal, the growth
  per image is known exactly (``+N``: a leak when ``N > 0``, no growth when ``N == 0``). Anything else
  falls back to the robust trend of :func:`oddoctor.leak.stats.trend`.
- **Memory** (host RSS, GPU) is judged on its high-water mark (:func:`high_water`), and by steps: an
  allocator that grows a pool, or the first image of a new size or detection count, lifts the series once
  and it stays flat. :func:`find_steps` finds those jumps (a difference far above the series' own noise,
  and above :data:`STEP_MIN_MIB`); the verdict, its slope and any projection use only the segment after
  the last step. A segment shorter than :data:`MIN_SEGMENT` images is ``undecided``: no verdict rather
  than one that flips. Steps that keep coming (more than :data:`MAX_ALLOCATOR_STEPS`) are the growth
  itself, a leak in chunks: then the whole series is judged, with the persistence checks of
  :func:`~oddoctor.leak.stats.trend`. A verdict against expectation needs :data:`LONG_SEGMENT` images:
  a memory leak while the graph is constant, no memory growth while the graph grows, and a plateau.
  Where the graph predicts the answer, shortcuts: while it grows, a whole series that grows persistently
  is a leak even if its chunks look like steps, and so is one whose slope is above the threshold with
  :data:`DECIDE_LEVEL` confidence while its latest half grows too, its first half unproven
  (``with-graph``, :func:`memory_decision`); and while it grows and every image also opens a new Session
  (the classic TF1 loop), :data:`SESSION_STEPS` steps of the high-water mark after the warm-up are the leak's
  chunks (``sessions``: each Session's runtime memory, kept); while it is constant, a segment that crept up and
  then stayed flat for :data:`MIN_SEGMENT` images is ``ok`` (``tail``).
- **Latency**: :func:`latency_decision`, the trend once the series has :data:`LATENCY_MIN_POINTS` images
  and as many as its noise needs (:func:`images_for_slope`), else ``undecided``. It does not hold a mode
  back (:data:`GATING_METRICS`).
- Anything else: :func:`~oddoctor.leak.stats.trend`, decided when its one-sided confidence is at least
  :data:`DECIDE_LEVEL` either way.

An ``undecided`` decision carries ``needed``: the measured images after which a verdict can be expected,
which the report turns into "inconclusive, run longer: -n K".
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Optional

from oddoctor.leak.stats import MIN_POINTS, median, trend

MIB = 1024.0 * 1024.0
# Growth per image that counts as a leak. Graph ops are counted exactly, so any steady growth counts.
# Memory: 0.25 MiB/image is ~250 MiB per 1000 images, well above allocator noise once warmed up.
NODES_THRESHOLD = 0.5
RSS_THRESHOLD_MIB = 0.25
GPU_THRESHOLD_MIB = 0.25
# Latency: 2% of the median per image (twice as slow within ~50 images), at least 1 ms.
LATENCY_THRESHOLD_FRACTION = 0.02
LATENCY_THRESHOLD_FLOOR_MS = 1.0

GRAPH_STREAK = 3  # equal consecutive op-count differences that fix the graph's growth per image
MIN_DECIDED_IMAGES = 6  # measured images before a mode may stop (--until-decided), whatever is decided
MIN_SEGMENT = 6  # memory points after the last step needed for a verdict (stats.MIN_POINTS)
DECIDE_LEVEL = 0.95  # one-sided confidence that decides a trend either way
PART_LEVEL = 0.75  # a part of a series grows (stats.trend's part_level) ...
TAIL_LEVEL = 0.5  # ... and its last third leans that way (tail_level)
STEP_MIN_MIB = 4.0  # a memory jump smaller than this is never a step (page-level noise, small buffers)
STEP_NOISE_FACTOR = 6.0  # ... nor one within this many robust standard deviations of the differences
MAX_ALLOCATOR_STEPS = 2  # more steps than this in one series: the steps are the growth
# While the graph grows and every image opens a new Session, this many steps of the high-water mark among the
# measured images are the leak's chunks (the OD API model's legacy loop keeps 5-480 MiB of runtime memory every
# few Sessions; with oneDNN off its RSS did not step at all): a leak, not allocator warm-up (rule "sessions").
SESSION_STEPS = 2
# The verdict against expectation needs a long series. Memory that grows while the graph does not is a
# runtime/allocator leak or an allocator still warming up, and for a while the two look alike (the demo's
# fixed loop creeps for 20-25 images, then stops); memory that stops growing while the graph grows is
# more likely a leak that comes in chunks (a new high-water mark every few images). Either needs this
# many images after the last step; the expected verdict needs MIN_SEGMENT.
LONG_SEGMENT = 30
# Latency: a verdict needs at least this many measured images, and as many as its own noise asks for
# (:func:`images_for_slope`). Fewer: ``undecided`` with that number, never a verdict that the next run flips.
LATENCY_MIN_POINTS = 20
Z_DECIDE = 1.645  # one-sided normal quantile of DECIDE_LEVEL
MAX_NEEDED = 10_000  # the most images a "run longer" advice names (leak-test's -n limit)

METRICS = (  # key, sample field, label, unit, scale
    ("graph_nodes", "graph_nodes", "graph nodes", "ops", 1.0),
    ("rss", "rss_bytes", "host RSS", "MiB", MIB),
    ("gpu_nvml", "gpu_nvml_bytes", "GPU memory (NVML)", "MiB", MIB),
    ("gpu_tf", "gpu_tf_bytes", "GPU memory (TF allocator)", "MiB", MIB),
    ("latency", "latency_ms", "latency", "ms", 1.0),
)
MEMORY_METRICS = ("rss", "gpu_nvml", "gpu_tf")
# What a mode waits for before it stops. Latency is not among them: on a shared machine its noise (10-30%
# from image to image) hides a 2%-per-image trend for dozens of images; it is reported, decided or not.
GATING_METRICS = ("graph_nodes", *MEMORY_METRICS)


@dataclass(frozen=True)
class Decision:
    """One metric's verdict over a series, and whether it is final.

    ``status``: "leak", "ok", "plateau" (grew, then levelled off), "undecided" or "too-short".
    ``segment``: the first and last x of the part judged (after the last step, for memory).
    """

    status: str
    decided: bool
    slope: Optional[float]
    threshold: float
    confidence: Optional[float] = None  # P(slope > threshold), one-sided Mann-Kendall
    part_confidence: tuple[Optional[float], ...] = ()
    n: int = 0
    segment: Optional[tuple[float, float]] = None
    steps: tuple[float, ...] = ()  # x of each detected step (memory)
    rule: str = "trend"  # "exact" (equal op-count differences), "trend", "segment" (after the last step),
    # "tail" (memory: the last MIN_SEGMENT images, after an early creep), "with-graph" (memory: grows, its
    # latest half too, while the graph grows), "sessions" (memory: steps while the graph grows and every image
    # opens a new Session)
    notes: tuple[str, ...] = ()
    needed: Optional[int] = None  # undecided: measured images after which a verdict can be expected

    @property
    def leaks(self) -> bool:
        return self.status == "leak"


def threshold_for(key: str, median_latency_ms: Optional[float]) -> float:
    """Growth per image that counts as a leak for metric ``key`` (latency: relative to its median)."""
    if key == "graph_nodes":
        return NODES_THRESHOLD
    if key == "rss":
        return RSS_THRESHOLD_MIB
    if key.startswith("gpu"):
        return GPU_THRESHOLD_MIB
    return max(LATENCY_THRESHOLD_FLOOR_MS, LATENCY_THRESHOLD_FRACTION * (median_latency_ms or 0.0))


def _from_trend(ys: Sequence[float], xs: Sequence[float], threshold: float, *, rule: str = "trend",
                steps: tuple[float, ...] = (), notes: tuple[str, ...] = ()) -> Decision:
    t = trend(ys, threshold, xs=xs)
    conf = t.confidence
    if t.status == "too-short":
        return Decision("too-short", False, None, threshold, n=t.n, rule=rule, steps=steps,
                        notes=(*notes, *t.notes))
    if t.status == "leak":
        status, decided = "leak", True
    elif t.status == "plateau":
        status, decided = "plateau", True
    elif conf is not None and conf <= 1.0 - DECIDE_LEVEL:
        status, decided = "ok", True
    else:
        status, decided = "undecided", False
    extra = tuple(t.notes)
    if status == "undecided":
        extra += (f"confidence {1.0 - (conf or 0.5):.0%} that it grows less than {threshold:g}/image; "
                  f"{DECIDE_LEVEL:.0%} decides",)
    return Decision(status, decided, t.slope, threshold, conf, t.part_confidence, t.n,
                    (float(xs[0]), float(xs[-1])), steps, rule, (*notes, *extra))


def exact_growth(ys: Sequence[float], xs: Sequence[float], streak: int = GRAPH_STREAK) -> Optional[float]:
    """The growth per image when the last ``streak`` differences are equal (exact counts), else None."""
    if len(ys) < streak + 1:
        return None
    diffs = [(ys[i] - ys[i - 1]) / (xs[i] - xs[i - 1]) for i in range(len(ys) - streak, len(ys))
             if xs[i] != xs[i - 1]]
    if len(diffs) < streak or any(d != diffs[0] for d in diffs):
        return None
    return diffs[0]


def graph_decision(ys: Sequence[float], xs: Sequence[float], threshold: float = NODES_THRESHOLD) -> Decision:
    """Exact when the op count grew by the same amount the last :data:`GRAPH_STREAK` times; else the trend."""
    growth = exact_growth(ys, xs)
    if growth is None:
        return _from_trend(ys, xs, threshold)
    status = "leak" if growth > threshold else "ok"
    note = (f"the last {GRAPH_STREAK} images each added {growth:+g} ops" if growth
            else f"no op added over the last {GRAPH_STREAK} images")
    return Decision(status, True, growth, threshold, 1.0 if status == "leak" else 0.0, (), len(ys),
                    (float(xs[0]), float(xs[-1])), (), "exact", (note,))


def robust_scale(values: Sequence[float]) -> float:
    """1.4826 x the median absolute deviation: a standard deviation that outliers do not move."""
    mid = median(values)
    if mid is None:
        return 0.0
    return 1.4826 * float(median([abs(v - mid) for v in values]) or 0.0)


def noise_sd(ys: Sequence[float]) -> float:
    """The image-to-image noise of a series, trend left out: the robust scale of its differences / sqrt(2)."""
    diffs = [ys[i] - ys[i - 1] for i in range(1, len(ys))]
    return robust_scale(diffs) / math.sqrt(2.0) if diffs else 0.0


def images_for_slope(sd: float, threshold: float, *, z: float = Z_DECIDE) -> int:
    """Measured images after which a slope is known to within half ``threshold`` at one-sided confidence
    ``z``, for noise ``sd`` per image: the least-squares slope's standard error is sd * sqrt(12 / n^3)
    (Theil-Sen's is close to it), so ``n = (2 z sd sqrt(12) / threshold) ** (2/3)``. A series whose true slope
    is 0 (or twice the threshold) is then decided in most runs, and the same way in each."""
    if sd <= 0.0:
        return MIN_POINTS
    if threshold <= 0.0:
        return MAX_NEEDED
    n = (2.0 * z * sd * math.sqrt(12.0) / threshold) ** (2.0 / 3.0)
    return max(MIN_POINTS, min(MAX_NEEDED, math.ceil(n)))


def latency_decision(ys: Sequence[float], xs: Sequence[float], threshold: float) -> Decision:
    """The trend verdict once the series is long enough for its noise (:func:`images_for_slope`, at least
    :data:`LATENCY_MIN_POINTS`); before that ``undecided``, with the number of images it needs.

    On a shared machine latency varies 10-30 % from image to image; over 6-12 images a 2 %-per-image trend
    is then a coin toss that the Mann-Kendall test decides now one way, now the other (runs flipped between
    ok, plateau and undecided). Withholding the verdict until the series can carry it keeps it steady."""
    sd = noise_sd(ys)
    needed = max(LATENCY_MIN_POINTS, images_for_slope(sd, threshold))
    if len(ys) >= needed:
        return _from_trend(ys, xs, threshold)
    t = trend(ys, threshold, xs=xs)
    mid = median(ys) or 0.0
    spread = f"±{sd / mid:.0%}" if mid > 0 else f"±{sd:.3g}"
    return Decision("undecided", False, t.slope, threshold, t.confidence, t.part_confidence, len(ys),
                    (float(xs[0]), float(xs[-1])), (), "trend",
                    (f"varies {spread} from image to image: about {needed} measured images are needed to tell "
                     f"a trend of {threshold:.3g}/image from that noise; run longer "
                     f"(--no-until-decided -n {needed})",), needed)


def find_steps(ys: Sequence[float], *, min_step: float = STEP_MIN_MIB,
               noise_factor: float = STEP_NOISE_FACTOR) -> list[int]:
    """Indices ``j`` where ``ys[j] - ys[j-1]`` is a step: larger than ``min_step`` and than
    ``noise_factor`` robust standard deviations of all the differences (a steady leak's differences are
    all alike, so none of them is a step)."""
    diffs = [ys[i] - ys[i - 1] for i in range(1, len(ys))]
    if not diffs:
        return []
    mid = median(diffs) or 0.0
    limit = max(min_step, noise_factor * robust_scale(diffs))
    return [i for i, d in enumerate(diffs, start=1) if abs(d - mid) > limit]


def high_water(ys: Sequence[float]) -> list[float]:
    """The running maximum. Memory after an image depends on that image's size, so sizes in turn make a
    sawtooth that the trend statistics read as noise or steps; a leak lifts the high-water mark, a sawtooth
    does not once every size has been seen."""
    out: list[float] = []
    for y in ys:
        out.append(y if not out else max(out[-1], y))
    return out


def _undecided(decision: Decision, note: str, needed: Optional[int]) -> Decision:
    return replace(decision, status="undecided", decided=False, notes=(*decision.notes, note), needed=needed)


def memory_decision(ys: Sequence[float], xs: Sequence[float], threshold: float, *,
                    leak_points: int = MIN_SEGMENT, ok_points: int = MIN_SEGMENT,
                    session_per_image: bool = False) -> Decision:
    """:func:`segment_decision`; and while the graph grows (``leak_points < ok_points``: a leak is expected),
    a leak of the whole series when the segment after the last step cannot decide one.

    Memory then often grows in chunks, one every few images, each of which looks like a step and restarts
    the segment (the OD API model's legacy loop: chunks of 5-15 MiB every 3-6 images, +1 MiB an image
    between them). The chunks are the growth: the whole series is a leak when it grows in each half and its
    last third leans up (persistence, :func:`oddoctor.leak.stats.trend`), which one step, or warm-up steps
    that stop, never do.

    ``session_per_image``: every measured image opened a new Session. With the graph growing too, that is the
    TF1 tutorial's loop, whose memory grows in chunks of what each Session's runtime keeps: two steps of the
    high-water mark (:data:`SESSION_STEPS`) are then a leak (``sessions``), at the average growth per image over
    the series, chunks included. Without a Session per image the same two steps wait for the segment after
    them: a loop that only adds ops has no such chunks, and its steps can be the allocator's."""
    decision = segment_decision(ys, xs, threshold, leak_points=leak_points, ok_points=ok_points)
    if decision.status == "leak" or leak_points >= ok_points or len(ys) < MIN_POINTS:
        return decision
    whole = _from_trend(ys, xs, threshold, steps=decision.steps)
    if whole.status == "leak" and decision.steps:
        return replace(whole, notes=(*whole.notes, f"{len(decision.steps)} step(s) while the graph grows: "
                                                    "judged as one series, the steps part of the growth"))
    parts = whole.part_confidence
    # leak or plateau: the slope is above the threshold with DECIDE_LEVEL confidence (stats.trend).
    if (whole.status in ("leak", "plateau") and len(parts) == 3 and (parts[1] or 0.0) >= PART_LEVEL
            and (parts[2] or 0.0) >= TAIL_LEVEL):
        # The graph grows by the same ops every image: the memory growth has a cause that does not stop,
        # so the slope and its latest half decide; the first half (3 images of 6, page-level noise)
        # need not prove growth on its own.
        return replace(whole, status="leak", decided=True, rule="with-graph",
                       notes=(*whole.notes, f"grows {whole.slope:+.2f}/image, the latest half too, while the "
                                            "graph grows every image"))
    if not session_per_image or len(decision.steps) < SESSION_STEPS:
        return decision
    rise = (ys[-1] - ys[0]) / (xs[-1] - xs[0])  # MIN_POINTS images: xs differ
    if rise > threshold:
        return replace(whole, status="leak", decided=True, slope=rise, rule="sessions",
                       notes=(f"{len(decision.steps)} steps while the graph grows and every image opens a new "
                              f"Session: the Sessions' memory, kept in chunks; {rise:+.2f}/image on average, "
                              "chunks included",))
    return decision


def segment_decision(ys: Sequence[float], xs: Sequence[float], threshold: float, *,
                     leak_points: int = MIN_SEGMENT, ok_points: int = MIN_SEGMENT) -> Decision:
    """The verdict on the segment after the last step, or ``undecided`` while that segment is short
    (shorter than ``leak_points`` for a leak, ``ok_points`` for no growth, :data:`LONG_SEGMENT` for a
    plateau). An undecided verdict carries ``needed``: the measured images after which it can be decided.

    A step is a plateau, not a slope: the images before the last step never count towards growth, so one
    jump (an allocator pool, a new image size) cannot make a leak of a short series."""
    steps = find_steps(ys)
    step_xs = tuple(float(xs[j]) for j in steps)
    n = len(ys)
    start = 0
    if len(steps) > MAX_ALLOCATOR_STEPS:
        decision = _from_trend(ys, xs, threshold, steps=step_xs,
                               notes=(f"{len(steps)} steps: too many for allocator warm-up, judged as one series",))
    else:
        start = steps[-1] if steps else 0
        seg_y, seg_x = ys[start:], xs[start:]
        if steps and len(seg_y) < MIN_SEGMENT:
            return Decision("undecided", False, None, threshold, n=len(seg_y),
                            segment=(float(seg_x[0]), float(seg_x[-1])), steps=step_xs, rule="segment",
                            notes=(f"a step at image {int(step_xs[-1]) + 1}; {len(seg_y)} images after it, "
                                   f"{MIN_SEGMENT} needed for a verdict",), needed=start + MIN_SEGMENT)
        decision = _from_trend(seg_y, seg_x, threshold, rule="segment" if steps else "trend", steps=step_xs)
    if (decision.status in ("undecided", "plateau") and ok_points <= MIN_SEGMENT and decision.n > MIN_SEGMENT
            and len(steps) <= MAX_ALLOCATOR_STEPS):
        # The graph is constant (no growth expected) and the segment crept up, then stopped: an allocator
        # settling after the last new size, below the step size. Its last MIN_SEGMENT images decide alone.
        tail = _from_trend(ys[-MIN_SEGMENT:], xs[-MIN_SEGMENT:], threshold, rule="tail", steps=step_xs)
        if tail.status == "ok":
            return replace(tail, notes=(*tail.notes, f"crept up at first, then flat over the last {MIN_SEGMENT} "
                                                     "images: an allocator settling, judged on those"))
    if decision.status == "undecided":
        # Between the two bounds: as many images as the segment's own noise asks for.
        more = images_for_slope(noise_sd(ys[start:]), threshold)
        return replace(decision, needed=max(n + 1, start + more))
    if decision.status == "plateau" and decision.n < LONG_SEGMENT:
        # Grew, then flat for a part of a short series: sawtooth memory (image sizes in turn) does that too.
        return _undecided(decision, f"a levelling-off is only believed over {LONG_SEGMENT} images",
                          start + LONG_SEGMENT)
    if decision.status == "leak" and leak_points >= LONG_SEGMENT and min(
            (c for c in decision.part_confidence if c is not None), default=0.0) < DECIDE_LEVEL:
        # Against expectation (the graph is constant) every part must grow, the last third included: an
        # allocator that creeps for a few dozen images and then stops passes the looser persistence test.
        return _undecided(decision, f"grows while the graph does not, but not in every part of the series "
                                    f"with {DECIDE_LEVEL:.0%} confidence: warming up, or a leak; run longer",
                          max(n + LONG_SEGMENT // 3, start + LONG_SEGMENT))
    if decision.status == "leak" and decision.n < leak_points:
        return _undecided(decision, f"grows while the graph does not: {leak_points} images after the last "
                                    "step are needed to tell a leak from an allocator still warming up",
                          start + leak_points)
    if decision.status == "ok" and decision.n < ok_points:
        return _undecided(decision, f"flat while the graph grows: {ok_points} images after the last step "
                                    "are needed to tell no growth from a leak that comes in chunks",
                          start + ok_points)
    return decision


def judge(samples: Sequence[Mapping[str, Any]]) -> dict[str, Optional[Decision]]:
    """A decision per metric over the measured (non-warm-up) ``samples``; None where a metric was not
    recorded (a field that is None in any sample)."""
    measured = [s for s in samples if not s.get("warmup")]
    xs = [float(s["i"]) for s in measured]
    med_latency = median([float(s["latency_ms"]) for s in measured])
    out: dict[str, Optional[Decision]] = {}
    graph_grows = False
    # Sessions created so far, after each image (None where a sample did not say: then unknown, never "no").
    sessions = [v for s in measured if isinstance(v := s.get("sessions"), int)]
    session_per_image = len(sessions) == len(measured) > 1 and all(
        b - a >= 1 for a, b in zip(sessions, sessions[1:]))
    for key, field_name, _label, _unit, scale in METRICS:  # graph_nodes first: memory depends on it
        values = [s.get(field_name) for s in measured]
        if not measured or any(v is None for v in values):
            out[key] = None
            continue
        ys = [float(v) / scale for v in values if v is not None]
        threshold = threshold_for(key, med_latency)
        if len(ys) < MIN_POINTS:
            out[key] = Decision("too-short", False, None, threshold, n=len(ys),
                                notes=(f"only {len(ys)} measured images; need at least {MIN_POINTS}",))
        elif key == "graph_nodes":
            decision = graph_decision(ys, xs, threshold)
            graph_grows = decision.status == "leak"
            out[key] = decision
        elif key in MEMORY_METRICS:
            out[key] = memory_decision(high_water(ys), xs, threshold,
                                       leak_points=MIN_SEGMENT if graph_grows else LONG_SEGMENT,
                                       ok_points=LONG_SEGMENT if graph_grows else MIN_SEGMENT,
                                       # measured on the host only: a GPU's pool is the process's, shared
                                       # by its Sessions, and its steps in this loop are not measured yet
                                       session_per_image=session_per_image and key == "rss")
        elif key == "latency":
            out[key] = latency_decision(ys, xs, threshold)
        else:
            out[key] = _from_trend(ys, xs, threshold)
    return out


@dataclass(frozen=True)
class StopCheck:
    """Whether a mode may stop now, and what is still open."""

    stop: bool
    undecided: list[str] = field(default_factory=list)


def may_stop(samples: Sequence[Mapping[str, Any]], *, min_images: int = MIN_DECIDED_IMAGES) -> StopCheck:
    """Stop once at least ``min_images`` images were measured and every recorded :data:`GATING_METRICS` is
    decided."""
    measured = sum(1 for s in samples if not s.get("warmup"))
    decisions = judge(samples)
    undecided = [k for k, d in decisions.items() if k in GATING_METRICS and d is not None and not d.decided]
    return StopCheck(stop=measured >= min_images and not undecided, undecided=undecided)
