"""What a budget run measures: :class:`BudgetSpec` (the whole run) and :class:`PointSpec` (one child).

The parent (:func:`oddoctor.budget.run_budget`) runs one child per configuration (batch x image size);
each child gets a :class:`PointSpec` as a JSON file and reads it back with ``from_dict``. Nothing here
imports TensorFlow.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Optional

MAX_BATCH = 4096  # the emitted runner's own ceiling (run_inference.MAX_BATCH_SIZE)
MAX_SIDE = 16384  # an image side larger than this is a typo, not a photo
MIN_TIMEOUT_S = 1.0
MAX_TIMEOUT_S = 86_400.0
MAX_REPEATS = 20
MAX_MARGIN = 1.0
_SIZE_RE = re.compile(r"^\s*(\d+)\s*[xX]\s*(\d+)\s*$")


class BudgetSpecError(ValueError):
    """A budget spec that cannot run: the message names the field and what is wrong with it."""


def parse_batches(text: str) -> tuple[int, ...]:
    """``"1,2,4"`` -> (1, 2, 4): distinct, sorted, each 1..MAX_BATCH; ValueError names the bad item."""
    out = set()
    for item in (s.strip() for s in text.split(",")):
        if not item:
            continue
        if not item.isdigit() or not 1 <= int(item) <= MAX_BATCH:
            raise ValueError(f"batch {item!r}: give whole numbers from 1 to {MAX_BATCH}, e.g. 1,2,4")
        out.add(int(item))
    if not out:
        raise ValueError("no batch size given, e.g. 1,2,4")
    return tuple(sorted(out))


def parse_image_sizes(text: str) -> tuple[tuple[int, int], ...]:
    """``"640x480,1024x768"`` (width x height, as image sizes are written) -> ((480, 640), (768, 1024)):
    (height, width) pairs, distinct, sorted by pixels; ValueError names the bad item."""
    out = set()
    for item in (s for s in text.split(",") if s.strip()):
        m = _SIZE_RE.match(item)
        if not m or not all(1 <= int(v) <= MAX_SIDE for v in m.groups()):
            raise ValueError(f"image size {item.strip()!r}: give WIDTHxHEIGHT, each side 1 to {MAX_SIDE}, "
                             "e.g. 640x480")
        width, height = int(m.group(1)), int(m.group(2))
        out.add((height, width))
    if not out:
        raise ValueError("no image size given, e.g. 640x480,1024x768")
    return tuple(sorted(out, key=lambda hw: (hw[0] * hw[1], hw)))


def size_text(height: int, width: int) -> str:
    """(480, 640) -> ``"640x480"`` (width x height)."""
    return f"{width}x{height}"


@dataclass(frozen=True)
class PointSpec:
    """One measured configuration, run by one child: ``batch`` images of ``height`` x ``width`` (synthetic,
    seeded) or the first ``batch`` images of ``images`` (cycled, zero-padded to the largest), ``repeats``
    measured calls after one warm-up call. ``memory_limit`` (bytes) caps the address space the child may
    add after loading the model (RLIMIT_AS; Linux): a way to produce an out-of-memory on purpose.
    ``cpu``: measure on the CPU even where a GPU is visible."""

    model: str
    batch: int
    height: int = 480
    width: int = 640
    images: Optional[str] = None
    repeats: int = 3
    seed: int = 0
    memory_limit: Optional[int] = None
    cpu: bool = False

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PointSpec:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(str(k) for k in data if k not in known)
        if unknown:
            raise BudgetSpecError(f"budget point: unknown field(s) {', '.join(unknown)}")
        return cls(**dict(data))


@dataclass(frozen=True)
class BudgetSpec:
    """One budget run: ``model`` measured at every ``batches`` x ``sizes`` ((height, width) pairs), or at
    every batch with the images of ``images`` (then ``sizes`` is not used), each point in a fresh child
    allowed ``timeout_s``. ``budget`` (bytes) is the memory to fit into; None: each visible GPU's free
    memory (NVML), or no prediction where there is none. ``margin``: the share of the budget kept free."""

    model: str
    batches: tuple[int, ...] = (1, 2, 4)
    sizes: tuple[tuple[int, int], ...] = ((480, 640), (768, 1024))
    images: Optional[str] = None
    timeout_s: float = 300.0
    repeats: int = 3
    seed: int = 0
    memory_limit: Optional[int] = None
    budget: Optional[int] = None
    margin: float = 0.10
    cpu: bool = False

    def __post_init__(self) -> None:
        if not self.batches or any(not isinstance(b, int) or not 1 <= b <= MAX_BATCH for b in self.batches):
            raise BudgetSpecError(f"budget spec: batches: whole numbers from 1 to {MAX_BATCH}, not {self.batches}")
        if self.images is None and (not self.sizes or any(
                len(s) != 2 or not all(1 <= v <= MAX_SIDE for v in s) for s in self.sizes)):
            raise BudgetSpecError(f"budget spec: sizes: (height, width) pairs, each 1 to {MAX_SIDE}, not {self.sizes}")
        if not math.isfinite(self.timeout_s) or not MIN_TIMEOUT_S <= self.timeout_s <= MAX_TIMEOUT_S:
            raise BudgetSpecError(f"budget spec: timeout_s: from {MIN_TIMEOUT_S:g} to {MAX_TIMEOUT_S:g}, "
                                  f"not {self.timeout_s}")
        if not 1 <= self.repeats <= MAX_REPEATS:
            raise BudgetSpecError(f"budget spec: repeats: from 1 to {MAX_REPEATS}, not {self.repeats}")
        if not 0.0 <= self.margin < MAX_MARGIN:  # also refuses nan
            raise BudgetSpecError(f"budget spec: margin: from 0 to below {MAX_MARGIN:g}, not {self.margin}")
        for name in ("memory_limit", "budget"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise BudgetSpecError(f"budget spec: {name}: bytes > 0, not {value}")

    def points(self) -> list[PointSpec]:
        """The configurations, one child each, smallest first (batch, then pixels)."""
        sizes: Sequence[tuple[int, int]] = [(0, 0)] if self.images is not None else self.sizes
        return [PointSpec(model=self.model, batch=b, height=h, width=w, images=self.images, repeats=self.repeats,
                          seed=self.seed, memory_limit=self.memory_limit, cpu=self.cpu)
                for h, w in sizes for b in self.batches]

    def options(self) -> dict[str, Any]:
        return {"batches": list(self.batches), "image_sizes": [size_text(h, w) for h, w in self.sizes]
                if self.images is None else None, "images": self.images, "timeout_s": self.timeout_s,
                "repeats": self.repeats, "memory_limit": self.memory_limit, "budget": self.budget,
                "margin": self.margin, "cpu": self.cpu}
