"""`oddoctor compat`: the compatibility tables asked directly, without a snapshot.

``oddoctor compat --driver 470.82 --python 3.9 [--os windows]``: the TensorFlow releases that fit,
and the newest with its CUDA/cuDNN. ``oddoctor compat --tf 2.15``: what that release needs.
"""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer
from packaging.version import InvalidVersion, Version

from oddoctor.cli._common import EXIT_FAIL, EXIT_OK, JsonOpt, die, emit_json
from oddoctor.versions import padded

COMPAT_SCHEMA_VERSION = 1

DriverOpt = Annotated[Optional[str], typer.Option("--driver", help="NVIDIA driver version, e.g. 470.82 or 535.104.05.")]
PythonOpt = Annotated[Optional[str], typer.Option("--python", help="Python version, e.g. 3.9.")]
OsOpt = Annotated[str, typer.Option("--os", help="linux, windows (native) or wsl (Linux wheels, Windows driver).")]
TfOpt = Annotated[Optional[str], typer.Option("--tf", help="A TensorFlow release, e.g. 2.15: print what it needs.")]


def _version(text: str, what: str) -> Version:
    try:
        v = Version(text.strip())
    except InvalidVersion:
        die(f"{what} {text!r} is not a version number (e.g. {'470.82' if what == '--driver' else '3.9'})")
    if v.is_prerelease or v.local or v.epoch:
        die(f"{what} {text!r}: give a plain release number")
    return v


def _build_doc(b: Any, os_: str, driver_os: Optional[str] = None) -> dict[str, Any]:
    from oddoctor import compat
    from oddoctor.compat.rules import format_driver

    need = compat.driver_need(b.cuda_version, driver_os or os_)
    caps = compat.wheel_caps(b.version)
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
        "install": compat.pip_install(b, os_),
    }


def compat(
    driver: DriverOpt = None,
    python: PythonOpt = None,
    os_name: OsOpt = "linux",
    tf: TfOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Which TensorFlow fits a driver and Python, or what a TensorFlow release needs (no snapshot)."""
    from oddoctor import compat as c

    os_ = os_name.strip().lower()
    driver_os = os_
    if os_ in ("wsl", "wsl2"):  # Linux wheels on the Windows host driver (NVML reports the Windows version)
        os_, driver_os = c.LINUX, c.WINDOWS
    if os_ not in c.OSES:
        die(f"--os {os_name!r}: use linux, windows (native) or wsl")
    if tf is None and driver is None and python is None:
        die("give --tf VERSION, or --driver VERSION and/or --python VERSION")
    drv = _version(driver, "--driver") if driver is not None else None
    py = _version(python, "--python") if python is not None else None
    if py is not None and len(py.release) < 2:
        die(f"--python {python!r}: give major.minor, e.g. 3.9")
    doc: dict[str, Any] = {"schema_version": COMPAT_SCHEMA_VERSION, "kind": "compat", "os": os_,
                           "driver_os": driver_os,
                           "query": {"driver": driver, "python": python, "tf": tf, "os": os_name.strip().lower()}}
    if tf is not None:
        code = _tf_query(doc, _version(tf, "--tf"), os_, drv, py, driver_os)
    else:
        code = _fit_query(doc, os_, drv, py, driver_os)
    if json_out:
        emit_json(doc)
    else:
        _print_human(doc)
    raise typer.Exit(code)


def _tf_query(doc: dict[str, Any], tf: Version, os_: str, drv: Optional[Version],
              py: Optional[Version], driver_os: str) -> int:
    from oddoctor import compat as c
    from oddoctor.compat.rules import format_driver

    b = c.tf_build_for(tf, os_)
    notes: list[str] = []
    if b is None and os_ == c.WINDOWS and tf >= Version("2.11"):
        linux = c.tf_build_for(tf, c.LINUX)
        if linux is None:
            die(f"TensorFlow {tf} is not in the tested build tables")
        last = c.tf_build_for("2.10", c.WINDOWS)
        assert last is not None
        doc["tf"] = None
        doc["windows_native_gpu"] = False
        doc["notes"] = [f"TensorFlow {tf} has no GPU build for native Windows (GPU support ended with 2.10): "
                        f"use WSL2 (oddoctor compat --tf {tf} --os linux) or {c.pip_install(last, c.WINDOWS)}"
                        f" (CUDA {last.cuda}, cuDNN {last.cudnn}, Python {last.python_listed})"]
        return EXIT_FAIL
    if b is None:
        rows = c.builds(os_)
        die(f"TensorFlow {tf} is not in the tested {os_} GPU build table "
            f"(it lists {rows[-1].version} to {rows[0].version})")
    doc["tf"] = _build_doc(b, os_, driver_os)
    if b.version != padded(tf):
        notes.append(f"{tf} is not listed itself; {b.version} is the tested build of its series")
    code = EXIT_OK
    if py is not None:
        fits = b.supports_python(py)
        doc["python_fits"] = fits
        if not fits:
            notes.append(f"Python {py} is outside TensorFlow {b.series}'s range {b.python_listed}")
            code = EXIT_FAIL
    if drv is not None:
        need = c.driver_need(b.cuda_version, driver_os)
        fits = need is not None and drv >= need.minimum
        doc["driver_fits"] = fits
        if not fits and need is not None:
            notes.append(f"driver {drv} is below {format_driver(need.minimum)} needed by CUDA {b.cuda}")
            code = EXIT_FAIL
    doc["notes"] = notes
    return code


def _fit_query(doc: dict[str, Any], os_: str, drv: Optional[Version], py: Optional[Version],
               driver_os: str) -> int:
    from oddoctor import compat as c

    fits = c.fitting_builds(drv, py, os_, driver_os=driver_os)
    doc["fits"] = [_build_doc(b, os_, driver_os) for b in fits]
    doc["newest"] = doc["fits"][0] if fits else None
    notes = []
    if os_ == c.WINDOWS:
        notes.append("native Windows GPU support ended with TensorFlow 2.10; newer releases need WSL2 "
                     "(query with --os linux)")
    if not fits:
        why = []
        if py is not None and c.newest_tf_for_python(py, os_) is None:
            why.append(f"no tested {os_} GPU build supports Python {py}")
        if drv is not None and not c.fitting_builds(drv, None, os_, driver_os=driver_os):
            oldest = c.builds(os_)[-1]
            why.append(f"driver {drv} is below every floor (oldest: CUDA {oldest.cuda})")
        notes.append("nothing fits" + (": " + "; ".join(why) if why else " this driver and Python together"))
    doc["notes"] = notes
    return EXIT_OK if fits else EXIT_FAIL


def _print_human(doc: dict[str, Any]) -> None:
    q = doc["query"]
    if "tf" in doc and q["tf"] is not None:
        t = doc["tf"]
        if t is not None:
            print(f"TensorFlow {t['tensorflow']} ({q['os']} GPU, tested build):")
            print(f"  Python   {t['python']}")
            print(f"  CUDA     {t['cuda']}")
            print(f"  cuDNN    {t['cudnn']}")
            kind = "minor-version compatibility" if t["min_driver_kind"] == "minor_version_compat" else "toolkit"
            drv = f"  driver   >= {t['min_driver']} ({kind})"
            if t["toolkit_driver"] and t["toolkit_driver"] != t["min_driver"]:
                drv += f"; >= {t['toolkit_driver']} for PTX JIT"
            print(drv)
            if t["compute_capabilities"]:
                print(f"  GPU      {t['compute_capabilities']} ({t['compute_capabilities_confidence']})")
            print(f"  install  {t['install']}")
        else:
            print(f"TensorFlow {q['tf']}: no tested GPU build for {doc['os']}.")
    else:
        what = " and ".join(x for x in (f"driver {q['driver']}" if q["driver"] else "",
                                         f"Python {q['python']}" if q["python"] else "") if x)
        fits = doc["fits"]
        if fits:
            print(f"TensorFlow releases that fit {what} ({q['os']}): "
                  + ", ".join(f["series"] for f in fits))
            n = doc["newest"]
            jit = (f"; >= {n['toolkit_driver']} for PTX JIT" if n["toolkit_driver"]
                   and n["toolkit_driver"] != n["min_driver"] else "")
            print(f"Newest: TensorFlow {n['tensorflow']} with CUDA {n['cuda']}, cuDNN {n['cudnn']}, "
                  f"Python {n['python']} (driver >= {n['min_driver']}{jit})")
            print(f"  {n['install']}")
        else:
            print(f"No TensorFlow GPU release fits {what} ({q['os']}).")
    for note in doc.get("notes", []):
        print(f"note: {note}")
