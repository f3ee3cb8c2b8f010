"""What a leak test runs: :class:`LeakSpec`, shared by the parent and the child, and the limits it obeys.

The parent (:func:`oddoctor.leak.run_leak_test`) runs one child per mode; each child gets the spec with
``mode`` set to that one mode, as a JSON file (``to_dict``), and reads it back with ``from_dict``, which
validates it and names the field that is wrong. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Optional

MODES = ("legacy", "fixed")  # "both" runs the two, legacy first
MIN_ITERATIONS = 10  # below this, allocator warm-up and a leak look alike (see docs/leak-test.md)
# Above this a mode runs for hours (the legacy loop's cost per image grows with its graph) and the verdicts
# gain nothing: the statistics thin any series to 400 points.
MAX_ITERATIONS = 10_000
MIN_TIMEOUT_S = 1.0
MAX_TIMEOUT_S = 86_400.0  # one day per mode
MAX_SEED = 2**32 - 1  # numpy's seeds are non-negative
REFRAMES = ("auto", "od_api", "oddoctor")  # whose reframe_box_masks_to_image_masks the legacy loop builds


class LeakSpecError(ValueError):
    """A leak spec that cannot run: the message names the field and what is wrong with it."""


@dataclass(frozen=True)
class LeakSpec:
    """One leak test: which loops, on which model, with which images, for how long.

    ``model`` is a ``frozen_inference_graph.pb``, a TF1 SavedModel or an OD API export directory. With
    ``demo=True`` the built-in synthetic Mask R-CNN is used instead: built at ``model`` if that is given
    and missing, else in a temporary folder. ``mode`` is ``"legacy"`` (the tutorial's loop), ``"fixed"``
    (``LegacyDetector``) or ``"both"``. ``images`` is a folder of jpg/png, or None for seeded synthetic
    images. ``timeout_s`` is allowed per mode. With ``until_decided`` a mode stops as soon as every metric
    is decided (:mod:`oddoctor.leak.decide`); ``iterations`` is then the most it measures. ``entry``
    (``module:function`` or ``path/to/file.py:function``) replaces the tutorial loop of the legacy mode with
    the user's own per-image function. ``reframe`` picks the mask-reframe ops of the built-in legacy loop:
    the OD API's own ``utils_ops`` (``"od_api"``), oddoctor's copy (``"oddoctor"``), or the OD API's when it
    is importable (``"auto"``). With ``malloc_trim`` (glibc) the child hands the allocator's free pages back
    to the OS after each image, before it reads the RSS (:class:`oddoctor.leak.sampling.HeapTrimmer`).
    Values are checked on construction (:class:`LeakSpecError`).
    """

    model: Optional[str] = None
    demo: bool = False
    mode: str = "both"
    iterations: int = 30
    warmup: int = 3
    images: Optional[str] = None
    seed: int = 0
    allow_growth: bool = True
    memory_fraction: Optional[float] = None
    timeout_s: float = 900.0
    until_decided: bool = True
    entry: Optional[str] = None
    reframe: str = "auto"
    malloc_trim: bool = False

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            _check_type(f.name, getattr(self, f.name))
        if self.mode not in (*MODES, "both"):
            raise LeakSpecError(f"leak spec: mode: one of legacy, fixed, both; not {self.mode!r}")
        if self.reframe not in REFRAMES:
            raise LeakSpecError(f"leak spec: reframe: one of {', '.join(REFRAMES)}; not {self.reframe!r}")
        if self.entry is not None and ":" not in self.entry:
            raise LeakSpecError(f"leak spec: entry: module:function or path/to/file.py:function, not {self.entry!r}")
        _check_range("iterations", self.iterations, MIN_ITERATIONS, MAX_ITERATIONS)
        _check_range("warmup", self.warmup, 0, MAX_ITERATIONS)
        _check_range("seed", self.seed, 0, MAX_SEED)
        if self.memory_fraction is not None and not 0.0 < self.memory_fraction <= 1.0:  # also refuses nan
            raise LeakSpecError(f"leak spec: memory_fraction: must be in (0, 1], not {self.memory_fraction}")
        if not math.isfinite(self.timeout_s) or not MIN_TIMEOUT_S <= self.timeout_s <= MAX_TIMEOUT_S:
            raise LeakSpecError(f"leak spec: timeout_s: must be from {MIN_TIMEOUT_S:g} to {MAX_TIMEOUT_S:g}, "
                                f"not {self.timeout_s}")

    @property
    def modes(self) -> list[str]:
        """The modes to run, in order."""
        return list(MODES) if self.mode == "both" else [self.mode]

    def options(self) -> dict[str, Any]:
        """The options as the report states them (``options`` in the leak-test JSON)."""
        return {"iterations": self.iterations, "warmup": self.warmup, "mode": self.mode, "images": self.images,
                "memory_fraction": self.memory_fraction, "allow_growth": self.allow_growth, "seed": self.seed,
                "until_decided": self.until_decided, "entry": self.entry, "reframe": self.reframe,
                "malloc_trim": self.malloc_trim}

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable; ``from_dict`` reads it back."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LeakSpec:
        """The spec in ``data`` (as ``to_dict`` writes it; missing keys take their defaults), checked:
        :class:`LeakSpecError` names an unknown key or a field of the wrong type or out of range."""
        if not isinstance(data, Mapping):
            raise LeakSpecError(f"leak spec: a JSON object, not {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(str(k) for k in data if k not in known)
        if unknown:
            raise LeakSpecError(f"leak spec: unknown field(s) {', '.join(unknown)}")
        return cls(**dict(data))


_TYPES: dict[str, tuple[type, bool]] = {  # field: (type, None allowed)
    "model": (str, True), "demo": (bool, False), "mode": (str, False), "iterations": (int, False),
    "warmup": (int, False), "images": (str, True), "seed": (int, False), "allow_growth": (bool, False),
    "memory_fraction": (float, True), "timeout_s": (float, False), "until_decided": (bool, False),
    "entry": (str, True), "reframe": (str, False), "malloc_trim": (bool, False),
}
_TYPE_WORDS = {str: "a string", bool: "true or false", int: "an integer", float: "a number"}


def _check_type(name: str, value: Any) -> None:
    kind, nullable = _TYPES[name]
    if value is None and nullable:
        return
    # bool is an int to Python, not to a spec; an int is a fine float.
    ok = (isinstance(value, kind) and (kind is bool or not isinstance(value, bool))) or (
        kind is float and isinstance(value, int) and not isinstance(value, bool))
    if not ok:
        what = _TYPE_WORDS[kind] + (" or null" if nullable else "")
        raise LeakSpecError(f"leak spec: {name}: expected {what}, got {value!r}")


def _check_range(name: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise LeakSpecError(f"leak spec: {name}: must be from {low:,} to {high:,}, not {value:,}")
