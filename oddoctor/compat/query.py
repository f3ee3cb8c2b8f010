"""The compatibility tables asked directly, without a snapshot: the library behind ``oddoctor compat``.

>>> from oddoctor.compat.query import ask
>>> ask(tf="2.15").to_dict()["tf"]["cuda"]
'12.2'
>>> ask(driver="470.82", python="3.9").to_dict()["newest"]["series"]
'2.14'

:func:`ask` returns a :class:`CompatAnswer` (``ok`` and the JSON document) or raises
:class:`CompatQueryError` for a question that cannot be asked (not a version, a release the tables do not
list); it prints nothing and never exits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from oddoctor.compat.data import LINUX, OSES, WINDOWS, TfBuild
from oddoctor.compat.rules import (
    builds,
    driver_need,
    fitting_builds,
    format_driver,
    newest_tf_for_python,
    pip_install,
    tf_build_for,
    wheel_caps,
)
from oddoctor.versions import InvalidVersion, Version, padded

COMPAT_SCHEMA_VERSION = 1


class CompatQueryError(ValueError):
    """A question the tables cannot answer as asked; the message says what to give instead."""


@dataclass
class CompatAnswer:
    """The answer to one query. ``ok``: everything asked fits (the CLI's exit 0)."""

    ok: bool
    os: str
    driver_os: str
    query: dict[str, Optional[str]]
    body: dict[str, Any] = field(default_factory=dict)  # tf / fits / newest / *_fits / notes, as the query gave

    @property
    def notes(self) -> list[str]:
        return list(self.body.get("notes", []))

    def to_dict(self) -> dict[str, Any]:
        """The ``oddoctor compat --json`` document (docs/json-schema.md)."""
        return {"schema_version": COMPAT_SCHEMA_VERSION, "kind": "compat", "os": self.os,
                "driver_os": self.driver_os, "query": dict(self.query), **self.body}


def read_version(text: str, what: str) -> Version:
    """A version the user gave as ``what`` (``--driver``): a plain release number, else CompatQueryError."""
    try:
        v = Version(text.strip())
    except InvalidVersion:
        raise CompatQueryError(f"{what} {text!r} is not a version number "
                               f"(e.g. {'470.82' if what == '--driver' else '3.9'})") from None
    if v.is_prerelease or v.local or v.epoch:
        raise CompatQueryError(f"{what} {text!r}: give a plain release number")
    return v


def ask(*, driver: Optional[str] = None, python: Optional[str] = None, os_name: str = LINUX,
        tf: Optional[str] = None) -> CompatAnswer:
    """What ``tf`` needs (and whether ``driver``/``python`` fit it), or which releases fit ``driver``/``python``.

    ``os_name``: linux, windows (native) or wsl (Linux wheels on the Windows host driver).
    """
    os_ = os_name.strip().lower()
    driver_os = os_
    if os_ in ("wsl", "wsl2"):  # Linux wheels on the Windows host driver (NVML reports the Windows version)
        os_, driver_os = LINUX, WINDOWS
    if os_ not in OSES:
        raise CompatQueryError(f"--os {os_name!r}: use linux, windows (native) or wsl")
    if tf is None and driver is None and python is None:
        raise CompatQueryError("give --tf VERSION, or --driver VERSION and/or --python VERSION")
    drv = read_version(driver, "--driver") if driver is not None else None
    py = read_version(python, "--python") if python is not None else None
    if py is not None and len(py.release) < 2:
        raise CompatQueryError(f"--python {python!r}: give major.minor, e.g. 3.9")
    answer = CompatAnswer(ok=True, os=os_, driver_os=driver_os,
                          query={"driver": driver, "python": python, "tf": tf, "os": os_name.strip().lower()})
    if tf is not None:
        answer.ok = _tf_query(answer.body, read_version(tf, "--tf"), os_, drv, py, driver_os)
    else:
        answer.ok = _fit_query(answer.body, os_, drv, py, driver_os)
    return answer


def _build_doc(b: TfBuild, os_: str, driver_os: Optional[str] = None) -> dict[str, Any]:
    need = driver_need(b.cuda_version, driver_os or os_)
    caps = wheel_caps(b.version)
    return {
        "tensorflow": str(b.version),
        "series": b.series,
        "python": b.python_listed,
        "cuda": b.cuda,
        "cudnn": b.cudnn,
        "min_driver": format_driver(need.minimum) if need else None,
        "min_driver_kind": need.minimum_kind if need else None,
        "toolkit_driver": format_driver(need.toolkit_driver) if need and need.toolkit_driver else None,
        "compute_capabilities": caps.archs_listed if caps else None,
        "compute_capabilities_confidence": caps.confidence if caps else None,
        "install": pip_install(b, os_),
    }


def _tf_query(doc: dict[str, Any], tf: Version, os_: str, drv: Optional[Version],
              py: Optional[Version], driver_os: str) -> bool:
    b = tf_build_for(tf, os_)
    notes: list[str] = []
    if b is None and os_ == WINDOWS and tf >= Version("2.11"):
        if tf_build_for(tf, LINUX) is None:
            raise CompatQueryError(f"TensorFlow {tf} is not in the tested build tables")
        last = tf_build_for("2.10", WINDOWS)
        assert last is not None
        doc["tf"] = None
        doc["windows_native_gpu"] = False
        doc["notes"] = [f"TensorFlow {tf} has no GPU build for native Windows (GPU support ended with 2.10): "
                        f"use WSL2 (oddoctor compat --tf {tf} --os linux) or {pip_install(last, WINDOWS)}"
                        f" (CUDA {last.cuda}, cuDNN {last.cudnn}, Python {last.python_listed})"]
        return False
    if b is None:
        rows = builds(os_)
        raise CompatQueryError(f"TensorFlow {tf} is not in the tested {os_} GPU build table "
                               f"(it lists {rows[-1].version} to {rows[0].version})")
    doc["tf"] = _build_doc(b, os_, driver_os)
    if b.version != padded(tf):
        notes.append(f"{tf} is not listed itself; {b.version} is the tested build of its series")
    ok = True
    if py is not None:
        fits = b.supports_python(py)
        doc["python_fits"] = fits
        if not fits:
            notes.append(f"Python {py} is outside TensorFlow {b.series}'s range {b.python_listed}")
            ok = False
    if drv is not None:
        need = driver_need(b.cuda_version, driver_os)
        fits = need is not None and drv >= need.minimum
        doc["driver_fits"] = fits
        if not fits and need is not None:
            notes.append(f"driver {drv} is below {format_driver(need.minimum)} needed by CUDA {b.cuda}")
            ok = False
    doc["notes"] = notes
    return ok


def _fit_query(doc: dict[str, Any], os_: str, drv: Optional[Version], py: Optional[Version],
               driver_os: str) -> bool:
    fits = fitting_builds(drv, py, os_, driver_os=driver_os)
    doc["fits"] = [_build_doc(b, os_, driver_os) for b in fits]
    doc["newest"] = doc["fits"][0] if fits else None
    notes = []
    if os_ == WINDOWS:
        notes.append("native Windows GPU support ended with TensorFlow 2.10; newer releases need WSL2 "
                     "(query with --os linux)")
    if not fits:
        why = []
        if py is not None and newest_tf_for_python(py, os_) is None:
            why.append(f"no tested {os_} GPU build supports Python {py}")
        if drv is not None and not fitting_builds(drv, None, os_, driver_os=driver_os):
            oldest = builds(os_)[-1]
            why.append(f"driver {drv} is below every floor (oldest: CUDA {oldest.cuda})")
        notes.append("nothing fits" + (": " + "; ".join(why) if why else " this driver and Python together"))
    doc["notes"] = notes
    return bool(fits)
