"""The check API: what a plugin returns, and what a check returns.

A check is a pure function of the :class:`~oddoctor.snapshot.Snapshot` (and, optionally, of the
:class:`Context` that carries what the user asked for, such as ``--min-vram``)::

    @check(id="driver.present", title="NVIDIA driver present")
    def driver_present(snap: Snapshot) -> Result:
        if snap.nvml.driver_version:
            return ok(f"driver {snap.nvml.driver_version}")
        return fail("no NVIDIA driver", fix="Install the NVIDIA driver (>= 525.60.13 for CUDA 12)")

A check may also return a list of results (one per GPU, say); their ids must start with the
check's id.
"""

from __future__ import annotations

import enum
import inspect
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Union

CHECK_ID_RE = re.compile(r"^[a-z0-9]+(?:[-_][a-z0-9]+)*(?:\.[a-z0-9]+(?:-[a-z0-9]+)*)+$")


class Status(str, enum.Enum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"
    ERROR = "error"

    def __str__(self) -> str:
        return self.value


@dataclass
class Context:
    """What the user asked for on this run: the inputs of checks that are not facts."""

    min_vram_bytes: Optional[int] = None
    #: ``--cpu``: the user means to run on the CPU, so GPU checks are skipped instead of failing.
    cpu_only: bool = False
    #: ``--gpu``: a GPU is expected here, so a machine without one fails instead of being a CPU machine.
    expect_gpu: bool = False
    #: ``--tf VERSION``: judge the machine for this TensorFlow release instead of the installed one.
    target_tf: Optional[str] = None
    #: Anything a third-party check wants from ``-o key=value`` style options.
    options: dict[str, str] = field(default_factory=dict)


@dataclass
class Result:
    status: Status
    message: str
    fix: Optional[str] = None
    details: dict[str, Any] = field(default_factory=dict)
    # Filled in by the runner:
    id: str = ""
    title: str = ""
    plugin: str = ""
    duration_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "plugin": self.plugin,
            "status": self.status.value,
            "message": self.message,
            "fix": self.fix,
            "details": self.details,
            "duration_s": round(self.duration_s, 4),
        }


def ok(message: str, *, details: dict[str, Any] | None = None, id: str = "") -> Result:
    return Result(Status.OK, message, None, dict(details or {}), id=id)


def warn(message: str, *, fix: str | None = None, details: dict[str, Any] | None = None,
         id: str = "") -> Result:
    return Result(Status.WARN, message, fix, dict(details or {}), id=id)


def fail(message: str, *, fix: str | None = None, details: dict[str, Any] | None = None,
         id: str = "") -> Result:
    return Result(Status.FAIL, message, fix, dict(details or {}), id=id)


def skip(message: str, *, details: dict[str, Any] | None = None, id: str = "") -> Result:
    return Result(Status.SKIP, message, None, dict(details or {}), id=id)


def unknown(fact: str, why: str, *, details: dict[str, Any] | None = None, id: str = "") -> Result:
    """Skip because ``fact`` is unknown: "could not tell: <fact> unknown (<why>)". Never a "no"."""
    d = {**(details or {}), "unknown": [fact], "why": why}
    return Result(Status.SKIP, f"could not tell: {fact} unknown ({why})", None, d, id=id)


CheckReturn = Union[Result, "list[Result]"]


@dataclass
class Check:
    id: str
    title: str
    func: Callable[..., Any]
    description: str = ""
    #: Seconds the runner waits before it reports the check as hung (an ``error`` result).
    timeout_s: float = 10.0
    #: Set by the plugin manager: the name of the plugin that contributed the check.
    plugin: str = ""
    #: Facts the check cannot judge without (names from :data:`oddoctor.view.FACT_NAMES`; ``"a|b"``: either).
    #: The runner skips the check, saying which fact was unknown and why, only when one of these is.
    requires: tuple[str, ...] = ()

    def __call__(self, snap: Any, ctx: Context) -> Any:
        if self._wants_context:
            return self.func(snap, ctx)
        return self.func(snap)

    @property
    def _wants_context(self) -> bool:
        try:
            params = inspect.signature(self.func).parameters
        except (TypeError, ValueError):
            return False
        return len(params) >= 2


def check(*, id: str, title: str, description: str | None = None, timeout_s: float = 10.0,
          requires: tuple[str, ...] = ()) -> Callable[[Callable[..., Any]], Check]:
    """Turn a function of the snapshot into a :class:`Check`.

    ``description`` defaults to the first line of the function's docstring. ``requires`` names the facts
    the check cannot judge without (see :class:`Check`).
    """
    if not CHECK_ID_RE.match(id):
        raise ValueError(f"check id {id!r} must look like '<area>.<kebab-slug>'")

    def wrap(func: Callable[..., Any]) -> Check:
        doc = (func.__doc__ or "").strip().splitlines()
        return Check(id=id, title=title, func=func, description=description or (doc[0] if doc else title),
                     timeout_s=timeout_s, requires=tuple(requires))

    return wrap
