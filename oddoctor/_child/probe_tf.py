"""Child-process TensorFlow probe: ``python probe_tf.py OUT.json``.

Run by path (stdlib only, no oddoctor imports) so that it works under any interpreter and a crash,
abort or hang here is a fact recorded by the parent, not a crash of oddoctor. Its directory holds
only child scripts, so running it by path puts nothing generic on ``sys.path``.
"""

import json
import sys
import time


def _write(path, data):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, default=str)


def main(out):
    facts = {"stage": "import", "importable": False}
    t0 = time.monotonic()
    _write(out, facts)  # even a hard crash during import leaves the stage behind
    try:
        import tensorflow as tf
    except BaseException as e:  # noqa: BLE001 - the import failing is the fact we are after
        facts["error"] = f"{type(e).__name__}: {e}"
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
        facts["build_info_error"] = f"{type(e).__name__}: {e}"
    try:
        facts["built_with_cuda"] = bool(tf.test.is_built_with_cuda())
    except Exception as e:  # noqa: BLE001
        facts["built_with_cuda_error"] = f"{type(e).__name__}: {e}"
    facts["stage"] = "list_devices"
    _write(out, facts)
    gpus = []
    try:
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
    except Exception as e:  # noqa: BLE001
        facts["list_devices_error"] = f"{type(e).__name__}: {e}"
    facts["gpus"] = gpus
    facts["stage"] = "done"
    _write(out, facts)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
