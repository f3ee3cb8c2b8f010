"""Peak memory as a linear function of the batch and the image size: least squares, model choice, prediction.

Pure Python (no numpy, no TensorFlow): the CLI and the check plugin use it, and its tests run in milliseconds.

A point is (batch ``n``, pixels per image ``p``, peak bytes). Three candidate models, each linear in its
coefficients (ordinary least squares, solved through the normal equations with the columns scaled):

- ``fixed + per-pixel``: ``a + c*n*p`` (weights and runtime, plus the batch's pixels)
- ``fixed + per-image + per-pixel``: ``a + b*n + c*n*p`` (the issue's three terms: a per-image cost that does not
  depend on the size, such as a fixed-size resize buffer, ROI features and masks)
- ``fixed + per-pixel + in-flight image``: ``a + c*n*p + d*p`` (the batch's input grows with ``n*p``, but the working
  set of the images being processed at one moment grows with ``p`` alone when fewer images run at once than the
  batch holds: one at a time in the CPU child, which runs with one inter-op thread)

The model kept is the one with the smallest worst leave-one-out relative error (each point predicted by a fit of
the others: the error to expect at an unmeasured configuration), fewer terms winning ties within 1 %; a model
whose size terms come out negative (memory that shrinks with more pixels) is not kept.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Callable, Optional

Features = Callable[[float, float], tuple[float, ...]]

#: name: (term names, features of (batch, pixels per image)), simplest first.
MODELS: dict[str, tuple[tuple[str, ...], Features]] = {
    "fixed + per-pixel": (("fixed", "per_pixel"), lambda n, p: (1.0, n * p)),
    "fixed + per-image + per-pixel": (("fixed", "per_image", "per_pixel"), lambda n, p: (1.0, n, n * p)),
    "fixed + per-pixel + in-flight image": (("fixed", "per_pixel", "in_flight_pixel"),
                                            lambda n, p: (1.0, n * p, p)),
}
TIE = 0.01  # leave-one-out errors closer than this are a tie: the simpler model wins


@dataclass(frozen=True)
class Point:
    """One measured configuration: ``batch`` images of ``pixels`` each, ``peak`` bytes."""

    batch: int
    pixels: int
    peak: float


@dataclass
class Fit:
    """A fitted model: ``coef`` by term name, the relative residual of each point, the leave-one-out error."""

    model: str
    coef: dict[str, float]
    points: list[Point]
    residuals: list[float]  # (measured - fitted) / measured, per point, in the order of ``points``
    loo_error: Optional[float]  # worst |relative error| of a point predicted by the fit of the others
    floor: Optional[str] = None  # set by fit_above_floor(): why the size term is not least squares'

    def predict(self, batch: float, pixels: float) -> float:
        """Peak bytes at ``batch`` images of ``pixels`` each."""
        names, features = MODELS[self.model]
        return sum(self.coef[t] * x for t, x in zip(names, features(batch, pixels)))

    def per_extra_image(self, pixels: float) -> float:
        """Bytes one more image of ``pixels`` adds to the peak (the model is linear in the batch)."""
        return self.predict(1, pixels) - self.predict(0, pixels)

    def formula(self) -> str:
        """``peak = 12.0 MiB + 3.1 B x batch x pixels + ...`` in words a reader can check."""
        unit = {"fixed": "", "per_image": " x batch", "per_pixel": " x batch x pixels",
                "in_flight_pixel": " x pixels"}
        parts = []
        for term, value in self.coef.items():
            shown = _bytes(value) if term in ("fixed", "per_image") else f"{value:.3g} B"
            parts.append(f"{shown}{unit[term]}")
        return "peak = " + " + ".join(parts)

    def to_dict(self) -> dict[str, object]:
        doc: dict[str, object] = {"model": self.model, "coef": dict(self.coef), "formula": self.formula(),
                                  "residuals": [round(r, 5) for r in self.residuals],
                                  "loo_error": None if self.loo_error is None else round(self.loo_error, 5)}
        if self.floor is not None:
            doc["floor"] = self.floor
        return doc


def _bytes(n: float) -> str:
    from oddoctor.units import format_bytes

    return format_bytes(n)


def solve_least_squares(rows: Sequence[Sequence[float]], y: Sequence[float]) -> Optional[list[float]]:
    """The ``x`` minimising ``|rows @ x - y|^2``; None when the columns are linearly dependent (a term the points
    cannot tell apart from the others, e.g. per-image and per-pixel when every point has the same image size)."""
    k = len(rows[0]) if rows else 0
    if k == 0 or len(rows) < k:
        return None
    # Scale each column to unit max: bytes per pixel and pixels per batch differ by 10^7.
    scale = [max(abs(r[j]) for r in rows) or 1.0 for j in range(k)]
    a = [[sum(r[i] / scale[i] * r[j] / scale[j] for r in rows) for j in range(k)] for i in range(k)]
    b = [sum(r[i] / scale[i] * v for r, v in zip(rows, y)) for i in range(k)]
    norm = max(abs(v) for row in a for v in row) or 1.0
    for col in range(k):  # Gaussian elimination, partial pivoting
        piv = max(range(col, k), key=lambda r: abs(a[r][col]))
        if abs(a[piv][col]) <= 1e-10 * norm:
            return None
        a[col], a[piv] = a[piv], a[col]
        b[col], b[piv] = b[piv], b[col]
        for r in range(col + 1, k):
            f = a[r][col] / a[col][col]
            for c in range(col, k):
                a[r][c] -= f * a[col][c]
            b[r] -= f * b[col]
    x = [0.0] * k
    for i in reversed(range(k)):
        x[i] = (b[i] - sum(a[i][j] * x[j] for j in range(i + 1, k))) / a[i][i]
    return [xi / s for xi, s in zip(x, scale)]


def fit_model(model: str, points: Sequence[Point]) -> Optional[Fit]:
    """Least-squares fit of ``model`` to ``points``; None when the points cannot determine it or a size term
    comes out negative."""
    names, _ = MODELS[model]
    coef = _coef(model, points)
    if coef is None:
        return None
    fit = Fit(model=model, coef=dict(zip(names, coef)), points=list(points), residuals=[], loo_error=None)
    fit.residuals = [(pt.peak - fit.predict(pt.batch, pt.pixels)) / pt.peak for pt in points]
    fit.loo_error = _leave_one_out(model, points)
    return fit


def _coef(model: str, points: Sequence[Point]) -> Optional[list[float]]:
    names, features = MODELS[model]
    if len(points) < len(names):
        return None
    coef = solve_least_squares([features(pt.batch, pt.pixels) for pt in points], [pt.peak for pt in points])
    if coef is None or any(c < 0 for t, c in zip(names, coef) if t != "fixed"):
        return None
    return coef


def _leave_one_out(model: str, points: Sequence[Point]) -> Optional[float]:
    names, features = MODELS[model]
    if len(points) < len(names) + 1:
        return None
    worst = 0.0
    for i, held in enumerate(points):
        rest = [pt for j, pt in enumerate(points) if j != i]
        coef = _coef(model, rest)
        if coef is None:
            return None
        guess = sum(c * x for c, x in zip(coef, features(held.batch, held.pixels)))
        worst = max(worst, abs(guess - held.peak) / held.peak)
    return worst


def best_fit(points: Sequence[Point]) -> Optional[Fit]:
    """The candidate that predicts unmeasured points best (see the module docstring); None for fewer than two
    points or none that fits."""
    fits = [f for f in (fit_model(m, points) for m in MODELS) if f is not None]
    if not fits:
        return None
    judged = [f for f in fits if f.loo_error is not None]
    if not judged:
        return fits[0]  # too few points to judge: the simplest that fits
    best = min(f.loo_error for f in judged if f.loo_error is not None)
    return next(f for f in judged if f.loo_error is not None and f.loo_error <= best + TIE)


def fit_above_floor(points: Sequence[Point], per_pixel: float, why: str) -> Optional[Fit]:
    """``fixed + per-pixel`` with the per-pixel term set to ``per_pixel`` (a floor known from elsewhere: the
    bytes per batch pixel of what the call must hold) and the fixed term the largest remainder, so that no
    measured point lies above the line. For points whose least squares give a negative size term: a peak
    that measures higher at batch 1 than at batch 4 (the call's working set differs from run to run) does
    not make memory shrink with the batch. ``why`` is kept in ``floor``. None without points or a floor."""
    if not points or not per_pixel > 0:
        return None

    def fixed_of(pts: Sequence[Point]) -> float:
        return max(pt.peak - per_pixel * pt.batch * pt.pixels for pt in pts)

    fit = Fit(model="fixed + per-pixel", coef={"fixed": fixed_of(points), "per_pixel": per_pixel},
              points=list(points), residuals=[], loo_error=None, floor=why)
    fit.residuals = [(pt.peak - fit.predict(pt.batch, pt.pixels)) / pt.peak for pt in points]
    if len(points) >= 2:
        fit.loo_error = max(abs(fixed_of([q for j, q in enumerate(points) if j != i])
                                + per_pixel * pt.batch * pt.pixels - pt.peak) / pt.peak
                            for i, pt in enumerate(points))
    return fit


@dataclass(frozen=True)
class BatchPrediction:
    """The largest batch whose predicted need fits ``usable`` bytes (``budget`` less the margin and the context)."""

    batch: int  # 0: not even one image fits
    need: Optional[float]  # predicted peak at ``batch`` (None when batch is 0)
    usable: float
    capped: bool  # True when the batch hit ``max_batch`` (memory is not what limits it)
    reason: str


def largest_batch(fit: Fit, pixels: float, budget: float, *, margin: float = 0.10, overhead: float = 0.0,
                  max_batch: int = 4096) -> BatchPrediction:
    """Largest ``n`` with ``fit.predict(n, pixels) <= budget * (1 - margin) - overhead``.

    ``overhead`` is memory the fit does not see (the CUDA context on a GPU)."""
    usable = budget * (1.0 - margin) - overhead
    base = fit.predict(0, pixels)
    slope = fit.per_extra_image(pixels)
    if usable < fit.predict(1, pixels):
        return BatchPrediction(0, None, usable, False,
                               f"batch 1 needs {_bytes(fit.predict(1, pixels))}, more than the "
                               f"{_bytes(usable)} usable")
    if slope <= 0:
        return BatchPrediction(max_batch, fit.predict(max_batch, pixels), usable, True,
                               "the measured peak does not grow with the batch: memory does not limit it")
    n = math.floor((usable - base) / slope)
    # floor() of a float quotient can land one off at an exact boundary: settle it on the model itself.
    while n > 1 and fit.predict(n, pixels) > usable:
        n -= 1
    while n < max_batch and fit.predict(n + 1, pixels) <= usable:
        n += 1
    capped = n >= max_batch
    n = min(n, max_batch)
    return BatchPrediction(n, fit.predict(n, pixels), usable, capped,
                           f"each extra image adds {_bytes(slope)}; batch {n + 1} would need "
                           f"{_bytes(fit.predict(n + 1, pixels))}" if not capped else
                           f"capped at {max_batch} images")
