"""`oddoctor compat`: the compatibility tables asked directly, without a snapshot.

``oddoctor compat --driver 470.82 --python 3.9 [--os windows]``: the TensorFlow releases that fit,
and the newest with its CUDA/cuDNN. ``oddoctor compat --tf 2.15``: what that release needs.
The question is answered by :mod:`oddoctor.compat.query`; this module only parses, prints and exits.
"""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer

from oddoctor.cli._common import EXIT_FAIL, EXIT_OK, JsonOpt, choice_option, die, emit_json

DriverOpt = Annotated[Optional[str], typer.Option("--driver", metavar="VERSION",
                                                  help="NVIDIA driver version, e.g. 470.82 or 535.104.05.")]
PythonOpt = Annotated[Optional[str], typer.Option("--python", metavar="VERSION", help="Python version, e.g. 3.9.")]
OsOpt = Annotated[str, choice_option("--os", choices=("linux", "windows", "wsl"),
                                     help="linux, windows (native) or wsl (Linux wheels, Windows driver).")]
TfOpt = Annotated[Optional[str], typer.Option("--tf", metavar="VERSION",
                                              help="A TensorFlow release, e.g. 2.15: print what it needs.")]


def compat(
    driver: DriverOpt = None,
    python: PythonOpt = None,
    os_name: OsOpt = "linux",
    tf: TfOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Which TensorFlow fits a driver and Python, or what a TensorFlow release needs (no snapshot)."""
    from oddoctor.compat.query import CompatQueryError, ask

    try:
        answer = ask(driver=driver, python=python, os_name=os_name, tf=tf)
    except CompatQueryError as e:
        die(str(e))
    doc = answer.to_dict()
    if json_out:
        emit_json(doc)
    else:
        _print_human(doc)
    raise typer.Exit(EXIT_OK if answer.ok else EXIT_FAIL)


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
