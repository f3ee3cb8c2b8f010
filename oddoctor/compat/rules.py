"""Pure functions over the compatibility tables: what a TF release needs, what a driver can run.

All comparisons go through :class:`packaging.version.Version`; nothing here does I/O beyond reading
the packaged tables (cached).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Optional

from packaging.version import InvalidVersion, Version

from oddoctor.compat.data import (
    LINUX,
    CapsRow,
    DriverRow,
    TfBuild,
    caps_rows,
    driver_rows,
    tf_builds,
)
from oddoctor.versions import VersionLike, as_version, major_minor, padded, two_part

#: TensorFlow 2.11 and later have no CUDA build for native Windows.
WINDOWS_LAST_GPU_SERIES = Version("2.10")
#: The ``tensorflow[and-cuda]`` extra (pip-installed CUDA/cuDNN wheels) exists from 2.14 on Linux.
AND_CUDA_FROM = Version("2.14")


# --- versions as TensorFlow reports them ---------------------------------------------------------

def normalize_cuda(text: object) -> Optional[Version]:
    """CUDA version from TF's build info or a table: "12.5.1", "11.2", "9", Windows "64_112" -> 11.2."""
    if text is None:
        return None
    s = str(text).strip().lower().removeprefix("cuda")
    m = re.fullmatch(r"64_(\d+)", s)
    if m:  # TF on Windows reported cudart64_<MAJOR><MINOR>: "64_112" = 11.2, "64_101" = 10.1
        digits = m.group(1)
        s = f"{digits[:-1]}.{digits[-1]}" if len(digits) >= 2 else digits
    try:
        v = Version(s)
    except InvalidVersion:
        return None
    return two_part(v)


def normalize_cudnn(text: object) -> Optional[Version]:
    """cuDNN version from TF's build info or a library: "9", "8.9.4", Windows "64_8" -> 8."""
    if text is None:
        return None
    s = str(text).strip().lower()
    m = re.fullmatch(r"64_(\d+)", s)
    if m:
        s = m.group(1)
    try:
        return Version(s)
    except InvalidVersion:
        return None


# --- TensorFlow builds ------------------------------------------------------------------------

def builds(os: str = LINUX) -> tuple[TfBuild, ...]:
    """TensorFlow's tested GPU builds for ``os``, newest first."""
    return tf_builds(os)


def tf_build_for(tf_version: VersionLike, os: str = LINUX) -> Optional[TfBuild]:
    """The tested build for a TF release: the exact row, else the newest row of the same series.

    TF patch releases (2.15.1, 2.16.2) are not listed; they keep their series' CUDA/cuDNN.
    """
    try:
        v = as_version(tf_version)
    except InvalidVersion:
        return None
    rel = padded(v)
    rows = tf_builds(os)
    for b in rows:
        if b.version == rel:
            return b
    series = major_minor(v)
    for b in rows:  # newest first: the newest row of the series wins
        if major_minor(b.version) == series:
            return b
    return None


def pip_spec(build: TfBuild, os: str = LINUX) -> str:
    """A pip requirement that installs the GPU build of ``build``'s series on ``os``."""
    if build.version < Version("2.1"):  # GPU builds were a separate distribution until 2.1
        return f"tensorflow-gpu=={build.series}.*"
    if os == LINUX and build.version >= AND_CUDA_FROM:
        return f"tensorflow[and-cuda]=={build.series}.*"
    return f"tensorflow=={build.series}.*"


def pip_install(build: TfBuild, os: str = LINUX) -> str:
    return f"pip install '{pip_spec(build, os)}'"


def describe(build: TfBuild) -> str:
    """``TensorFlow 2.15 (CUDA 12.2, cuDNN 8.9, Python 3.9-3.11)``."""
    return (f"TensorFlow {build.series} (CUDA {build.cuda}, cuDNN {build.cudnn}, "
            f"Python {build.python_listed})")


def format_driver(v: Optional[Version]) -> str:
    """NVIDIA's spelling of a driver version: ``Version("450.80.2")`` -> ``"450.80.02"``."""
    if v is None:
        return "unknown"
    first, *rest = v.release
    return ".".join([str(first), *(f"{x:02d}" for x in rest)])


# --- drivers --------------------------------------------------------------------------------

@dataclass(frozen=True)
class DriverNeed:
    """What a CUDA version asks of the NVIDIA driver on one OS."""

    cuda: Version
    os: str
    #: The floor below which the CUDA runtime does not start at all.
    minimum: Version
    #: "minor_version_compat" (NVIDIA Table 2) or "toolkit_driver" (Table 3, CUDA < 11.1).
    minimum_kind: str
    #: The driver packaged with that toolkit release: needed for PTX JIT of code built with it.
    toolkit_driver: Optional[Version]
    source_ref: str


def _toolkit_rows(cuda: Version) -> list[DriverRow]:
    return [r for r in driver_rows() if r.kind == "toolkit_driver" and r.covers(cuda)]


def driver_need(cuda: VersionLike, os: str = LINUX) -> Optional[DriverNeed]:
    """The driver floor (with minor-version compatibility) and the toolkit's own driver for ``cuda``.

    CUDA 11.1 and later run on any driver of their major's compatibility branch (11.x: >= 450.80.02,
    12.x: >= 525.60.13 on Linux); older releases need the driver their toolkit shipped with.
    """
    c = normalize_cuda(cuda) if not isinstance(cuda, Version) else cuda
    if c is None:
        return None
    toolkit = [r.floor(os) for r in _toolkit_rows(c)]
    toolkit_floor = min((v for v in toolkit if v is not None), default=None)
    compat = [r for r in driver_rows() if r.kind == "minor_version_compat" and r.covers(c)]
    compat_floors = [f for f in (r.floor(os) for r in compat) if f is not None]
    compat_floor = min(compat_floors, default=None)
    if compat_floor is not None:
        ref = next(r.source_ref for r in compat if r.floor(os) == compat_floor)
        return DriverNeed(c, os, compat_floor, "minor_version_compat", toolkit_floor, ref)
    if toolkit_floor is not None:
        ref = next(r.source_ref for r in _toolkit_rows(c) if r.floor(os) == toolkit_floor)
        return DriverNeed(c, os, toolkit_floor, "toolkit_driver", toolkit_floor, ref)
    return None


def min_driver_for_cuda(cuda: VersionLike, os: str = LINUX) -> Optional[Version]:
    """Lowest NVIDIA driver that runs CUDA ``cuda`` on ``os`` (minor-version compatibility applied)."""
    need = driver_need(cuda, os)
    return need.minimum if need else None


def fitting_builds(driver: Optional[VersionLike] = None, python: Optional[VersionLike] = None,
                   os: str = LINUX, *, driver_os: Optional[str] = None) -> list[TfBuild]:
    """Tested TF GPU builds (newest first) that this driver and Python can run on ``os``.

    ``driver_os`` picks the driver column when it differs from the build table's OS: WSL2 runs the
    Linux wheels on the Windows host driver.
    """
    drv = as_version(driver) if driver is not None else None
    out = []
    for b in tf_builds(os):
        if python is not None and not b.supports_python(python):
            continue
        if drv is not None:
            floor = min_driver_for_cuda(b.cuda_version, driver_os or os)
            if floor is None or drv < floor:
                continue
        out.append(b)
    return out


def newest_tf_for_driver(driver: VersionLike, python: Optional[VersionLike] = None,
                         os: str = LINUX, *, driver_os: Optional[str] = None) -> Optional[TfBuild]:
    """The newest tested TF GPU build that ``driver`` (and ``python``, when given) can run on ``os``."""
    fits = fitting_builds(driver, python, os, driver_os=driver_os)
    return fits[0] if fits else None


def newest_tf_for_python(python: VersionLike, os: str = LINUX) -> Optional[TfBuild]:
    """The newest tested TF build that supports ``python`` on ``os``."""
    for b in tf_builds(os):
        if b.supports_python(python):
            return b
    return None


# --- compute capabilities ---------------------------------------------------------------------

@dataclass(frozen=True)
class Arch:
    """One compiled CUDA architecture: SASS for ``major.minor``, and PTX when ``ptx``."""

    major: int
    minor: int
    ptx: bool

    def __str__(self) -> str:
        return f"{'compute' if self.ptx else 'sm'}_{self.major}{self.minor}"


def parse_archs(items: Iterable[str] | str) -> list[Arch]:
    """Parse ``["sm_60", "compute_90"]`` or ``"3.5,3.7,7.0"`` (old style: PTX only for the newest)."""
    if isinstance(items, str):
        items = [p for p in re.split(r"[,\s]+", items) if p]
    archs: list[Arch] = []
    bare: list[tuple[int, int]] = []
    for raw in items:
        s = str(raw).strip().lower()
        m = re.fullmatch(r"(sm|compute)_(\d)(\d+)[a-z]?", s)
        if m:
            archs.append(Arch(int(m.group(2)), int(m.group(3)), m.group(1) == "compute"))
            continue
        m = re.fullmatch(r"(\d+)\.(\d+)", s)
        if m:
            bare.append((int(m.group(1)), int(m.group(2))))
    if bare:
        newest = max(bare)
        archs.extend(Arch(ma, mi, (ma, mi) == newest) for ma, mi in sorted(set(bare)))
    return archs


def parse_cc(cc: VersionLike) -> tuple[int, int]:
    v = as_version(cc)
    rel = (*v.release, 0)
    return rel[0], rel[1]


def cc_coverage(cc: VersionLike, archs: Sequence[Arch]) -> str:
    """How a GPU of compute capability ``cc`` runs code compiled for ``archs``.

    ``"sass"``: a binary for the same major and an equal or lower minor is present (runs as is);
    ``"ptx"``: only PTX for a lower capability is present (the driver JIT-compiles it at first start);
    ``"none"``: nothing runs (TensorFlow ignores the GPU).
    """
    major, minor = parse_cc(cc)
    if any(a.major == major and a.minor <= minor for a in archs):
        return "sass"
    if any(a.ptx and (a.major, a.minor) <= (major, minor) for a in archs):
        return "ptx"
    return "none"


def wheel_caps(tf_version: VersionLike) -> Optional[CapsRow]:
    """The compute capabilities of the official wheel of ``tf_version``, where known (TF >= 2.1)."""
    v = as_version(tf_version)
    for row in caps_rows():
        if row.covers_tf(v):
            return row
    return None


def newest_tf_for_cc(cc: VersionLike, python: Optional[VersionLike] = None, os: str = LINUX,
                     *, native: bool = False) -> Optional[TfBuild]:
    """The newest tested TF build whose official wheel runs on a GPU of compute capability ``cc``.

    ``native=True`` asks for SASS (no PTX JIT at start-up); otherwise PTX coverage is enough.
    """
    ok = ("sass",) if native else ("sass", "ptx")
    for b in tf_builds(os):
        if python is not None and not b.supports_python(python):
            continue
        row = wheel_caps(b.version)
        if row is not None and cc_coverage(cc, parse_archs(row.archs_listed)) in ok:
            return b
    return None
