"""Child-process TensorFlow probe: ``python probe_tf.py OUT.json [DISTRIBUTION ...]``.

Run by path (stdlib only, no oddoctor imports) so that it works under any interpreter and a crash,
abort or hang here is a fact recorded by the parent, not a crash of oddoctor. Its directory holds
only child scripts, so running it by path puts nothing generic on ``sys.path``.

The DISTRIBUTION names (those that provide the ``tensorflow`` module) are looked up in this
interpreter's metadata before anything is imported. After the GPUs are listed, the Object Detection
API is imported too, where it is installed: whether it imports beside this TensorFlow is a fact.
"""

import contextlib
import json
import os
import re
import sys
import time
import traceback

OD_DISTRIBUTION = "object-detection"


def _write(path, data):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, default=str)


def _err(e):
    return f"{type(e).__name__}: {e}"


def _installed(names):
    """Normalised name -> version of the distributions in ``names`` this interpreter sees; None if unknown.

    Looked up by name (the first on sys.path wins): reading every installed distribution's metadata costs
    more than a tenth of a second in a full environment, all of it before TensorFlow's import starts."""
    try:
        import importlib.metadata as md
    except ImportError:  # Python < 3.8
        return None
    found = {}
    try:
        for name in sorted(names):
            try:
                found[re.sub(r"[-_.]+", "-", name).lower()] = md.distribution(name).version
            except Exception:  # noqa: BLE001 - not installed, or one broken METADATA: the others still count
                continue
    except Exception:  # noqa: BLE001
        return None
    return found


def _od_api_present(installed):
    if installed and OD_DISTRIBUTION in installed:
        return True
    try:
        import importlib.util

        return importlib.util.find_spec("object_detection") is not None
    except Exception:  # noqa: BLE001 - a broken path entry: treat as not findable
        return False


def _where(e):
    """The innermost frame of an exception's traceback: ``file:line``."""
    frames = traceback.extract_tb(e.__traceback__)
    return f"{frames[-1].filename}:{frames[-1].lineno}" if frames else None


def _probe_od_api(facts):
    try:
        import object_detection  # noqa: F401
    except BaseException as e:  # noqa: BLE001 - SystemExit/KeyboardInterrupt from its import are facts too
        facts["od_api_importable"] = False
        where = _where(e)
        facts["od_api_error"] = _err(e) + (f" (at {where})" if where else "")
        return
    facts["od_api_importable"] = True
    facts["od_api_error"] = None


def _probe_kernels(tf, facts, out):
    """Run the small real kernels (kernels.py, beside this file); each record is written before its kernel
    runs, so a kernel that kills the process is named by the record it left unfinished."""
    facts["stage"] = "kernels"
    facts["kernels"] = []
    _write(out, facts)
    try:
        import kernels  # this folder is sys.path[0]: the file is run by path
    except Exception as e:  # noqa: BLE001
        facts["kernels_error"] = _err(e)
        return
    try:
        for rec in kernels.iter_kernels(tf):
            if rec["ok"] is None and rec["error"] is None:
                facts["kernels"].append(rec)  # about to run: the unfinished record is what a crash leaves
            else:
                facts["kernels"][-1] = rec
            _write(out, facts)
    except Exception as e:  # noqa: BLE001 - listing the devices failed: a fact
        facts["kernels_error"] = _err(e)


def main(out, tf_names):
    installed = _installed(set(tf_names) | {OD_DISTRIBUTION})
    facts = {"stage": "import", "importable": False}
    if installed is not None:
        facts["distributions"] = [[n, installed[n]] for n in tf_names if n in installed]
    t0 = time.monotonic()
    _write(out, facts)  # even a hard crash during import leaves the stage behind
    try:
        import tensorflow as tf
    except BaseException as e:  # noqa: BLE001 - the import failing is the fact we are after
        facts["error"] = _err(e)
        facts["import_s"] = time.monotonic() - t0
        _write(out, facts)
        return 3
    facts["importable"] = True
    facts["import_s"] = time.monotonic() - t0
    facts["version"] = getattr(tf, "__version__", None)
    facts["stage"] = "build_info"
    _write(out, facts)
    try:
        info = dict(tf.sysconfig.get_build_info())
        facts["build_info"] = {k: (list(v) if isinstance(v, (list, tuple)) else v) for k, v in info.items()}
    except Exception as e:  # noqa: BLE001 - old TF has no get_build_info
        facts["build_info_error"] = _err(e)
    try:
        facts["built_with_cuda"] = bool(tf.test.is_built_with_cuda())
    except Exception as e:  # noqa: BLE001
        facts["built_with_cuda_error"] = _err(e)
    facts["stage"] = "list_devices"
    _write(out, facts)
    try:
        gpus = []
        for dev in tf.config.list_physical_devices("GPU"):
            g = {"name": dev.name}
            try:
                d = tf.config.experimental.get_device_details(dev)
                g["device_name"] = d.get("device_name")
                cc = d.get("compute_capability")
                if cc:
                    g["compute_capability"] = ".".join(str(x) for x in cc)
            except Exception:  # noqa: BLE001 - details are optional (older TF)
                pass
            gpus.append(g)
        facts["gpus"] = gpus  # only once listed: absent means nobody could tell
    except Exception as e:  # noqa: BLE001
        facts["list_devices_error"] = _err(e)
    if _od_api_present(installed):
        facts["stage"] = "od_api"
        _write(out, facts)
        _probe_od_api(facts)
    if os.environ.get("ODDOCTOR_PROBE_KERNELS") == "1":  # check --active
        _probe_kernels(tf, facts, out)
    facts["stage"] = "done"
    _write(out, facts)
    return 0


def _exit_now(code):
    """End without the interpreter's teardown (``oddoctor.childproc.exit_now``, written again here: this script
    imports nothing of oddoctor). Everything the parent reads is in OUT by now, and tearing
    TensorFlow down (its modules, thread pools, allocators) took about half a second of a 2.5-3 s probe on a
    CPU machine, more than anything else ``check`` adds to the import; it tells the checks nothing."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a closed pipe: nothing more to say anyway
            stream.flush()
    os._exit(code)


if __name__ == "__main__":
    _exit_now(main(sys.argv[1], sys.argv[2:]))
