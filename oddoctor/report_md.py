"""A report to paste into a bug: the machine's facts as a short Markdown block, redacted, with the diagnosis under it.

``oddoctor check --format markdown`` / ``oddoctor collect --format markdown``. What a maintainer asks for first
(TensorFlow and its CUDA build, the driver, the GPUs, the CUDA and cuDNN libraries the loader finds, the related
packages), then every problem with its fix. Nothing personal leaves the machine: the host name, home folders
(``/home/alice/x`` becomes ``~/x``), the user name, and the PATH entries that have nothing to do with CUDA or
Python are replaced, in the facts and in the results' texts alike (the whole text is redacted last).
"""

from __future__ import annotations

import re
from typing import Any, Optional

from oddoctor import __version__
from oddoctor.checks import Result, Status
from oddoctor.runner import Report
from oddoctor.snapshot import Snapshot

HOST = "<hostname>"
USER = "<user>"
_HOME = re.compile(r"(?P<home>/home/(?P<u1>[^/\s'\"`:;,|)]+)|/Users/(?P<u2>[^/\s'\"`:;,|)]+)|"
                   r"[A-Za-z]:\\+Users\\+(?P<u3>[^\\\s'\"`:;,|)]+)|/root(?=[/\s'\"`:;,|)]|$))")
_RELEVANT_PATH = re.compile(r"cuda|cudnn|nvidia|tensorrt|conda|venv|virtualenv|python|pyenv", re.IGNORECASE)
_RELATED_PACKAGES = re.compile(r"^(tensorflow|tf[-_]|tf$|keras|tf-keras|nvidia-|tensorrt|jax|torch|numpy$|protobuf$|"
                               r"object[-_]detection|tf-models|ml-dtypes|h5py$|oddoctor)", re.IGNORECASE)
_USER_VARS = ("USER", "USERNAME", "LOGNAME")
_MARK = {Status.OK: "✅", Status.WARN: "⚠️", Status.FAIL: "❌", Status.SKIP: "➖", Status.ERROR: "💥"}


class Redactor:
    """What to replace in a snapshot's texts: its host name, the home folders and user names its paths show."""

    def __init__(self, snap: Snapshot) -> None:
        self.hostname = (snap.hostname or "").strip()
        users: set[str] = set()
        for text in _strings(snap.to_dict()):
            for m in _HOME.finditer(text):
                user = m.group("u1") or m.group("u2") or m.group("u3")
                if user:
                    users.add(user)
        for var in _USER_VARS:
            value = (snap.env or {}).get(var)
            if value:
                users.add(value)
        self.users = sorted((u for u in users if len(u) >= 2), key=len, reverse=True)

    def __call__(self, text: str) -> str:
        out = _HOME.sub("~", text)
        if len(self.hostname) >= 2:
            out = re.sub(rf"(?<![\w.-]){re.escape(self.hostname)}(?![\w-])", HOST, out)
            short = self.hostname.split(".")[0]
            if len(short) >= 2 and short != self.hostname:
                out = re.sub(rf"(?<![\w.-]){re.escape(short)}(?![\w-])", HOST, out)
        for user in self.users:  # a user name left outside a home path: user@host, a path under /scratch/alice
            out = re.sub(rf"(?<![\w-]){re.escape(user)}(?![\w-])", USER, out)
        return out


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _gib(n: Optional[int]) -> str:
    return "unknown" if n is None else f"{n / 2**30:.1f} GiB"


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _path_var(value: Optional[str], *, keep_all: bool) -> Optional[str]:
    """A PATH-like variable: the entries a CUDA/Python diagnosis needs, the others counted, not shown."""
    if value is None:
        return None
    entries = [e for e in value.split(":" if ";" not in value else ";") if e]
    kept = entries if keep_all else [e for e in entries if _RELEVANT_PATH.search(e)]
    hidden = len(entries) - len(kept)
    shown = ":".join(kept) if kept else ""
    return shown + (f" (+{hidden} other entr{'y' if hidden == 1 else 'ies'} not shown)" if hidden else "") or "(empty)"


def _facts(report: Report) -> list[tuple[str, str]]:
    from oddoctor.render import facts_summary

    snap = report.snapshot
    f = facts_summary(snap, report.target_tf)
    tf = snap.tensorflow
    rows: list[tuple[str, str]] = []
    plat = f["platform"] or "unknown"
    extras = [x for x in (f["distro"], "container" if snap.platform.in_container else None,
                          snap.platform.libc) if x]
    rows.append(("OS", plat + (f", {', '.join(extras)}" if extras else "")))
    py = snap.python
    rows.append(("Python", f"{py.version or 'unknown'} ({py.implementation or 'implementation unknown'}"
                           + (f", {py.executable}" if py.executable else "") + ")"))
    if tf.installed is False:
        tf_text = "not installed"
    elif tf.version is None:
        tf_text = "unknown"
    else:
        imports = ("imports" if tf.importable else "does not import" + (f": {tf.probe.error}" if tf.probe.error
                                                                         else "") if tf.importable is False
                   else "import not tried")
        tf_text = f"{tf.version} ({tf.distribution or 'tensorflow'}), {imports}"
    rows.append(("TensorFlow", tf_text))
    if f["tf_build_cuda"] or tf.built_with_cuda is False:
        rows.append(("TensorFlow built for", "no CUDA (CPU build)" if tf.built_with_cuda is False else
                     f"CUDA {f['tf_build_cuda']}, cuDNN {f['tf_build_cudnn'] or 'unknown'}"))
    nv = snap.nvml
    if nv.driver_version:
        rows.append(("NVIDIA driver", nv.driver_version + (f" (CUDA {nv.cuda_driver_version} and older)"
                                                           if nv.cuda_driver_version else "")))
    elif nv.error:
        rows.append(("NVIDIA driver", f"NVML not answering: {nv.error}"))
    else:
        rows.append(("NVIDIA driver", "none found" if f["nvidia_hardware"] is False else "unknown"))
    if nv.gpus:
        for g in nv.gpus:
            rows.append((f"GPU {g.index if g.index is not None else '?'}",
                         f"{g.name or 'unnamed'} (cc {g.compute_capability or 'unknown'}, "
                         f"{_gib(g.memory_total_bytes)}, {_gib(g.memory_free_bytes)} free"
                         + (f", {len(g.processes)} process(es) on it" if g.processes else "") + ")"))
    elif nv.gpus == []:
        rows.append(("GPUs", "none listed by the driver"))
    if tf.gpus is not None:
        rows.append(("GPUs TensorFlow sees", ", ".join(g.device_name or g.name or "?" for g in tf.gpus) or "none"))
    rows.append(("CUDA runtime found", _lib_text(snap, "cudart", f["cudart"])))
    rows.append(("cuDNN found", _lib_text(snap, "cudnn", f["cudnn"])))
    env = snap.env or {}
    for var in sorted(env):
        value = env[var]
        if var in _USER_VARS or value is None:
            continue
        if var in ("PATH", "LD_LIBRARY_PATH", "PYTHONPATH"):
            value = _path_var(value, keep_all=var == "LD_LIBRARY_PATH")
        rows.append((f"`{var}`", value or "(empty)"))
    unset = sorted(k for k, v in env.items() if v is None and k not in _USER_VARS)
    if unset:
        rows.append(("unset", ", ".join(f"`{k}`" for k in unset)))
    pkgs = snap.packages
    if pkgs is None:
        rows.append(("Related packages", "unknown"))
    else:
        related = sorted((k, v) for k, v in pkgs.items() if _RELATED_PACKAGES.match(k))
        rows.append(("Related packages", ", ".join(f"{k} {v}" for k, v in related) or "none"))
    return rows


def _lib_text(snap: Snapshot, kind: str, version: Optional[str]) -> str:
    libs = getattr(snap.cuda_libs, kind, None)
    if libs is None:
        return "not searched"
    if not libs:
        return "none"
    first = libs[0]
    return f"{version or first.version or 'version unknown'} ({first.path or first.name or '?'})" + (
        f", +{len(libs) - 1} more" if len(libs) > 1 else "")


def _result_lines(r: Result) -> list[str]:
    lines = [f"- {_MARK[r.status]} **{r.id}**: {r.message}"]
    if r.fix and r.status in (Status.FAIL, Status.WARN, Status.ERROR):
        lines.append(f"  - fix: {r.fix}")
    return lines


def render_markdown(report: Report, *, origin: str = "this machine", strict: bool = False) -> str:
    """The Markdown block: facts (a two-column table), then problems with fixes, then the rest in one line."""
    snap = report.snapshot
    redact = Redactor(snap)
    out = [f"### Environment (oddoctor {__version__}, {origin}"
           + (f", collected {snap.collected_at}" if snap.collected_at else "") + ")", "",
           "| | |", "|---|---|"]
    out += [f"| {_cell(k)} | {_cell(v)} |" for k, v in _facts(report)]
    if snap.source not in ("", "collected"):
        out += ["", f"Source: {snap.source}"]
    bad = [r for r in report.results if r.status in (Status.FAIL, Status.ERROR, Status.WARN)]
    c = report.counts()
    out += ["", "### Diagnosis", ""]
    if bad:
        for r in sorted(bad, key=lambda r: [Status.FAIL, Status.ERROR, Status.WARN].index(r.status)):
            out += _result_lines(r)
    else:
        out.append("- ✅ no problem found")
    verdict = "problems" if report.exit_code(strict=strict) else "ok"
    out += ["", f"{c['ok']} ok, {c['warn']} warning(s), {c['fail']} failed, {c['error']} errored, "
                f"{c['skip']} not applicable; verdict: **{verdict}**."]
    return redact("\n".join(out)) + ("\n(Host name, home folders, user name and unrelated PATH entries are "
                                     "redacted.)\n")
