"""Child-process library probe: ``python libversion.py KIND:PATH ...`` prints JSON on stdout.

Loads each CUDA runtime / cuDNN library with ctypes and asks it for its version
(``cudaRuntimeGetVersion``, ``cudnnGetVersion``). A child, because loading a broken library can
crash the process that loads it.
"""

import ctypes
import json
import sys


def _cudart(lib):
    v = ctypes.c_int(0)
    rc = lib.cudaRuntimeGetVersion(ctypes.byref(v))
    if rc != 0:
        raise RuntimeError(f"cudaRuntimeGetVersion returned error {rc}")
    n = v.value  # 12050 -> 12.5
    return f"{n // 1000}.{(n % 1000) // 10}"


def _cudnn(lib):
    fn = lib.cudnnGetVersion
    fn.restype = ctypes.c_size_t
    n = int(fn())
    if n >= 90000:  # cuDNN 9: major*10000 + minor*100 + patch
        return f"{n // 10000}.{(n % 10000) // 100}.{n % 100}"
    return f"{n // 1000}.{(n % 1000) // 100}.{n % 100}"  # cuDNN <= 8: major*1000 + minor*100 + patch


def probe(kind, path):
    out = {"path": path, "loadable": False, "version": None, "error": None}
    try:
        lib = ctypes.CDLL(path)
    except OSError as e:
        out["error"] = f"cannot load: {e}"
        return out
    out["loadable"] = True
    try:
        out["version"] = _cudart(lib) if kind == "cudart" else _cudnn(lib)
    except (AttributeError, RuntimeError, OSError) as e:
        out["error"] = f"cannot read version: {e}"
    return out


def main(args):
    results = []
    for arg in args:
        kind, _, path = arg.partition(":")
        results.append(probe(kind, path))
        # flush per library: if the next one crashes the process, the ones before survive
        sys.stdout.write(json.dumps(results[-1]) + "\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
