"""Package checks: the Python packages around TensorFlow (duplicate TF distributions, Keras 3 and the Object
Detection API, numpy 2, protobuf) that break it whatever the GPU stack."""

from __future__ import annotations

from typing import Optional

from packaging.version import Version

from oddoctor import hookimpl
from oddoctor.checks import Check, Context, Result, check, fail, ok, skip, unknown
from oddoctor.compat import logs
from oddoctor.snapshot import Snapshot
from oddoctor_plugins._advice import View, gpu_expected, parse_version, pip_tf, view

#: Pairs that install together on purpose: ``tensorflow`` is a thin package over these on some platforms
#: (tensorflow-intel on Windows 2.13-2.15, tensorflow-macos on Apple silicon 2.13+, tensorflow-cpu-aws on
#: Linux aarch64 2.10-2.15), at the same version.
COMPANIONS = {"tensorflow-intel", "tensorflow-macos", "tensorflow-cpu-aws"}
#: First TensorFlow built against numpy 2 (TensorFlow 2.18.0 release notes: "TensorFlow now supports and is
#: compiled with NumPy 2.0 by default").
NUMPY2_FROM = Version("2.18")
#: First TensorFlow whose tf.keras is Keras 3 (TensorFlow 2.16 release notes: "Keras 3 will be the default").
KERAS3_FROM = Version("2.16")
#: TensorFlow releases before 2.12 pin protobuf < 3.20 / < 4 (their setup.py REQUIRED_PACKAGES); the
#: Object Detection API's generated *_pb2.py files need the same unless regenerated.
PROTOBUF4_FROM_TF = Version("2.12")


def _pkg(snap: Snapshot, name: str) -> Optional[Version]:
    """A package's version: the snapshot's package list, else what the user's log shows pip installing."""
    if snap.packages is not None and name in snap.packages:
        return parse_version(snap.packages.get(name))
    return parse_version(view(snap).log_packages.get(name))


@check(id="packages.tf-duplicates", title="One TensorFlow distribution installed", requires=("tf.installed",))
def tf_duplicates(snap: Snapshot, ctx: Context) -> Result:
    """Exactly one distribution provides the `tensorflow` module (tensorflow, tensorflow-gpu, -cpu, tf-nightly...).

    Typical fix: pip uninstall -y every one of them, then pip install the one pinned for this machine.
    """
    v = view(snap)
    dists = v.tf_distributions
    if dists is None:
        return unknown("tf.distributions", "the snapshot does not list the installed TensorFlow distributions")
    versions = {d.name: d.version for d in snap.tensorflow.distributions or []}
    if snap.packages is not None:
        versions.update({d: snap.packages.get(d) for d in dists if d not in versions})
    main = [d for d in dists if d not in COMPANIONS or len({versions.get(x) for x in dists}) > 1]
    if len(main) <= 1:
        shown = ", ".join(f"{d} {versions.get(d) or ''}".strip() for d in dists) or "none"
        return ok(f"TensorFlow distributions: {shown}")
    listed = ", ".join(f"{d} {versions.get(d) or ''}".strip() for d in dists)
    return fail(f"{len(dists)} TensorFlow distributions share the `tensorflow` module: {listed}; whichever was "
                "installed last overwrote the others' files",
                fix=f"pip uninstall -y {' '.join(dists)} && {_reinstall(v, ctx, versions)} (uninstall all of them "
                    "first: removing one deletes files the other still needs)", details={"distributions": versions})


def _reinstall(v: View, ctx: Context, versions: dict[str, Optional[str]]) -> str:
    """Reinstall one TensorFlow: the GPU build of the series the user had, where one is known, else the pinned one."""
    from oddoctor import compat

    gpu_dists = ("tensorflow-gpu", "tensorflow", "tf-nightly")
    for name in gpu_dists:
        ver = parse_version(versions.get(name))
        if ver is None or (name == "tf-nightly"):
            continue
        b = compat.tf_build_for(ver, v.tf_os or "linux")
        if b is not None:
            spec = compat.pip_spec(b, v.tf_os or "linux") if gpu_expected(v, ctx) is not False \
                else f"tensorflow=={b.series}.*"
            return f"pip install '{spec}'"
    return pip_tf(v, ctx)


def _od_api(v: View) -> Optional[bool]:
    """Is the Object Detection API in use here? None: cannot tell."""
    snap = v.snap
    if snap.tensorflow.od_api_importable is not None or (snap.packages and "object-detection" in snap.packages):
        return True
    if any("object_detection" in ln for ln in v.log):
        return True
    if snap.packages is not None:
        return False
    return None


def _keras_fix(v: View) -> str:
    series = f"{v.tf_version.major}.{v.tf_version.minor}" if v.tf_version else None
    pin = f"=={series}.*" if series else ""
    return (f"pip install 'tf-keras{pin}' and export TF_USE_LEGACY_KERAS=1 before Python starts (the Object "
            "Detection API and other tf.keras 2 code need Keras 2)")


@check(id="packages.keras-od-api", title="Keras 2 for the Object Detection API on TensorFlow >= 2.16",
       requires=("tf.version",))
def keras_od_api(snap: Snapshot) -> Result:
    """TensorFlow >= 2.16 ships Keras 3; the Object Detection API needs tf-keras with TF_USE_LEGACY_KERAS=1.

    Typical fix: pip install 'tf-keras==2.16.*' and export TF_USE_LEGACY_KERAS=1.
    """
    v = view(snap)
    assert v.tf_version is not None
    keras_lines = logs.find_any(snap, logs.KERAS3)
    if v.tf_version < KERAS3_FROM:
        return skip(f"TensorFlow {v.tf_version} ships Keras 2 (tf.keras)")
    od = _od_api(v)
    legacy = snap.env.get("TF_USE_LEGACY_KERAS")
    legacy_on = legacy is not None and legacy.strip().lower() in ("1", "true", "yes")
    tfk = _pkg(snap, "tf-keras")
    details = {"TF_USE_LEGACY_KERAS": legacy, "tf_keras": str(tfk) if tfk else None, "od_api": od}
    if snap.tensorflow.od_api_importable is False or (keras_lines and (od or od is None)):
        line = keras_lines[0] if keras_lines else (snap.tensorflow.od_api_error or "")
        details["log_line"] = line
        return fail(f"TensorFlow {v.tf_version} ships Keras 3 and the Object Detection API (tf.keras 2 code) fails "
                    f"with it: {logs.short(line)}", fix=_keras_fix(v), details=details)
    if od is False:
        return skip("the Object Detection API is not installed")
    if od is None:
        return unknown("packages", "the snapshot does not say whether the Object Detection API is installed")
    if legacy_on and tfk is not None:
        return ok(f"tf-keras {tfk} with TF_USE_LEGACY_KERAS={legacy}: the Object Detection API gets Keras 2",
                  details=details)
    if "TF_USE_LEGACY_KERAS" not in snap.env and tfk is not None:
        return unknown("env.TF_USE_LEGACY_KERAS", "tf-keras is installed; whether TF_USE_LEGACY_KERAS is set is "
                                                  "not in the snapshot")
    missing = "tf-keras is not installed" if tfk is None and snap.packages is not None else \
        "TF_USE_LEGACY_KERAS is not set"
    return fail(f"the Object Detection API runs on TensorFlow {v.tf_version}, which ships Keras 3, and {missing}",
                fix=_keras_fix(v), details=details)


@check(id="packages.numpy-abi", title="numpy matches what TensorFlow was built against")
def numpy_abi(snap: Snapshot) -> Result:
    """numpy 2 needs TensorFlow >= 2.18; older TensorFlow was compiled against numpy 1.

    Typical fix: pip install 'numpy<2' (or TensorFlow >= 2.18).
    """
    v = view(snap)
    lines = logs.find_any(snap, logs.NUMPY_ABI)
    np_v = _pkg(snap, "numpy")
    details = {"numpy": str(np_v) if np_v else None, "tf": str(v.tf_version) if v.tf_version else None}
    too_new = np_v is not None and np_v.major >= 2 and v.tf_version is not None and v.tf_version < NUMPY2_FROM
    if lines or too_new:
        quote = f": {logs.short(lines[0])}" if lines else ""
        tf_txt = f"TensorFlow {v.tf_version}" if v.tf_version else "this TensorFlow"
        np_txt = f"numpy {np_v}" if np_v else "numpy 2"
        return fail(f"{np_txt} with {tf_txt}, which was compiled against numpy 1{quote}",
                    fix="pip install 'numpy<2' (or a TensorFlow >= 2.18, built against numpy 2)", details=details)
    if np_v is None:
        return unknown("packages", "the numpy version is not in the snapshot")
    if v.tf_version is None:
        return unknown("tf.version", v.unknown("tf.version") or "")
    return ok(f"numpy {np_v} fits TensorFlow {v.tf_version}", details=details)


@check(id="packages.protobuf", title="protobuf that TensorFlow's generated code can use")
def protobuf(snap: Snapshot) -> Result:
    """protobuf >= 4 breaks TensorFlow < 2.12 and old generated *_pb2.py files ("Descriptors cannot be created").

    Typical fix: pip install 'protobuf<=3.20.3', or export PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python.
    """
    v = view(snap)
    lines = logs.find_any(snap, logs.PROTOBUF_TOO_NEW)
    pb = _pkg(snap, "protobuf")
    details = {"protobuf": str(pb) if pb else None}
    too_new = pb is not None and pb.major >= 4 and v.tf_version is not None and v.tf_version < PROTOBUF4_FROM_TF
    if lines or too_new:
        quote = f": {logs.short(lines[0])}" if lines else ""
        return fail(f"protobuf {pb or '>= 4'} is too new for code generated by an older protoc{quote}",
                    fix="pip install 'protobuf<=3.20.3' (or export PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python, "
                        "slower), or regenerate the *_pb2.py files with protoc >= 3.19", details=details)
    if pb is None:
        return unknown("packages", "the protobuf version is not in the snapshot")
    return ok(f"protobuf {pb}", details=details)


CHECKS: list[Check] = [tf_duplicates, keras_od_api, numpy_abi, protobuf]


@hookimpl
def oddoctor_checks() -> list[Check]:
    return list(CHECKS)
