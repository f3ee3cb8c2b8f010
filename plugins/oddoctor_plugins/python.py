"""Python checks: the interpreter's version against the TensorFlow releases built for it."""

from __future__ import annotations

from packaging.version import Version

from oddoctor import compat, hookimpl
from oddoctor.checks import Check, Context, Result, check, fail, ok, skip, unknown
from oddoctor.compat.data import LINUX
from oddoctor.snapshot import Snapshot
from oddoctor_plugins._advice import gpu_expected, view


@check(id="python.tf-range", title="Python version inside TensorFlow's supported range",
       requires=("python.version",))
def python_tf_range(snap: Snapshot, ctx: Context) -> Result:
    """The Python version is one the installed TensorFlow (or any TensorFlow, if none) was built for.

    Typical fix: pip install the newest TensorFlow for this Python, or use a Python in the release's range.
    """
    v = view(snap)
    py, os_ = v.python, v.tf_os
    assert py is not None  # requires
    if snap.python.bits is not None and snap.python.bits != 64:
        b = compat.newest_tf_for_python(py, os_) if os_ is not None else None
        return fail(f"{snap.python.bits}-bit Python {snap.python.version}: TensorFlow publishes 64-bit wheels only "
                    "(pip says 'No matching distribution found for tensorflow')",
                    fix="Install a 64-bit Python" + (f" {py} and pip install '{compat.pip_spec(b, os_)}'"
                                                       if b and os_ else f" {py}, then pip install tensorflow"),
                    details={"bits": snap.python.bits})
    if os_ is None:
        return unknown("platform.system", v.unknown("platform.system") or "")
    tf_v = v.tf_version
    newest = compat.newest_tf_for_python(py, os_)
    if tf_v is None:
        if newest is None:
            top = compat.builds(os_)[0]
            return fail(f"no TensorFlow release supports Python {py} on {os_} "
                        f"(newest: TensorFlow {top.series} for Python {top.python_listed})",
                        fix=f"Use Python {top.python_max} (e.g. python{top.python_max} -m venv .venv) "
                            f"and {compat.pip_install(top, os_)}",
                        details={"python": str(py)})
        what = "TensorFlow not installed" if v.tf_installed is False else "TensorFlow version unknown"
        return ok(f"{what}; Python {py} fits TensorFlow up to {newest.series}",
                  details={"python": str(py), "newest_tf": str(newest.version)})
    b = compat.tf_build_for(tf_v, os_)
    if b is None and v.native_windows and tf_v >= Version("2.11"):
        b = compat.tf_build_for(tf_v, LINUX)  # CPU-only on Windows, but the Python range is the same
    if b is None:
        return skip(f"TensorFlow {tf_v} is not in the tested build table ({os_})")
    details = {"python": str(py), "tf": str(tf_v), "tested_python": b.python_listed}
    if b.supports_python(py):
        return ok(f"Python {py} is in TensorFlow {b.series}'s range {b.python_listed}", details=details)
    if newest is not None:
        spec = compat.pip_spec(newest, os_) if gpu_expected(v, ctx) else f"tensorflow=={newest.series}.*"
        fix = (f"pip install '{spec}' (newest TensorFlow for Python {py}), or use "
               f"Python {b.python_max} with TensorFlow {b.series}")
    else:
        fix = f"Use Python {b.python_max} (TensorFlow {b.series} supports {b.python_listed})"
    return fail(f"Python {py} is outside TensorFlow {tf_v}'s tested range {b.python_listed}",
                fix=fix, details=details)


CHECKS: list[Check] = [python_tf_range]


@hookimpl
def oddoctor_checks() -> list[Check]:
    return list(CHECKS)
