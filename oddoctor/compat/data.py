"""The compatibility tables shipped as package data, each with its upstream source and date read.

Every CSV in this package starts with ``#`` lines: ``# source: ...`` (one or more) and
``# read: YYYY-MM-DD``; the rest is a plain CSV with a header row. Versions are parsed with
:mod:`packaging` once, here, so that no caller ever compares version strings.
"""

from __future__ import annotations

import csv
import functools
import io
from dataclasses import dataclass, field
from importlib import resources
from typing import Optional

from packaging.version import InvalidVersion, Version

from oddoctor.versions import major_minor, parse_version, two_part

LINUX = "linux"
WINDOWS = "windows"
OSES = (LINUX, WINDOWS)

DATA_FILES = (
    "tf_builds_linux.csv",
    "tf_builds_windows.csv",
    "cuda_driver_min.csv",
    "tf_wheel_compute_caps.csv",
)


class CompatDataError(Exception):
    """A packaged data file is missing or malformed (a packaging bug, not a user error)."""


@dataclass(frozen=True)
class DataSource:
    """Where one data file's facts come from."""

    file: str
    sources: tuple[str, ...]
    read: str  # date the upstream text was read, YYYY-MM-DD
    notes: tuple[str, ...] = ()


def _read(name: str) -> tuple[DataSource, list[dict[str, str]]]:
    try:
        text = resources.files(__package__).joinpath(name).read_text(encoding="utf-8")
    except (FileNotFoundError, OSError) as e:
        raise CompatDataError(f"packaged data file {name} cannot be read: {e}") from None
    sources: list[str] = []
    notes: list[str] = []
    read = ""
    body: list[str] = []
    for line in text.splitlines():
        if line.startswith("#"):
            key, _, value = line[1:].strip().partition(":")
            if key == "source":
                sources.append(value.strip())
            elif key == "read":
                read = value.strip()
            elif key == "note":
                notes.append(value.strip())
            continue
        if line.strip():
            body.append(line)
    rows = list(csv.DictReader(io.StringIO("\n".join(body))))
    return DataSource(name, tuple(sources), read, tuple(notes)), rows


@dataclass(frozen=True)
class TfBuild:
    """One row of TensorFlow's tested build configurations (GPU)."""

    version: Version
    os: str
    python_listed: str  # exactly as upstream lists it, e.g. "2.7, 3.3-3.6"
    cuda: str  # as listed: "12.5", "9", "10"
    cudnn: str  # as listed: "9.3", "7", "7.6"
    package: str  # "tensorflow" or "tensorflow_gpu"
    compiler: str = ""
    build_tool: str = ""
    python_ranges: tuple[tuple[Version, Version], ...] = field(default=(), compare=False)

    @property
    def series(self) -> str:
        """``"2.15"``: the release series, used in pip specifiers such as ``==2.15.*``."""
        return f"{self.version.major}.{self.version.minor}"

    @property
    def cuda_version(self) -> Version:
        return two_part(self.cuda)

    @property
    def cudnn_version(self) -> Version:
        return two_part(self.cudnn)

    @property
    def python_min(self) -> Version:
        return min(lo for lo, _ in self.python_ranges)

    @property
    def python_max(self) -> Version:
        return max(hi for _, hi in self.python_ranges)

    def supports_python(self, python: str | Version) -> bool:
        """True when Python ``major.minor`` of ``python`` is in the listed set (3.0-3.2 are not in "2.7, 3.3-3.6")."""
        v = major_minor(Version(str(python)))
        return any(lo <= v <= hi for lo, hi in self.python_ranges)


def _python_ranges(listed: str) -> tuple[tuple[Version, Version], ...]:
    out = []
    for part in listed.split(","):
        part = part.strip()
        if not part:
            continue
        lo, _, hi = part.partition("-")
        out.append((Version(lo.strip()), Version((hi or lo).strip())))
    return tuple(out)


@dataclass(frozen=True)
class DriverRow:
    """One row of NVIDIA's driver tables."""

    toolkit: str  # "CUDA 12.5 Update 1"
    cuda: str  # "12.5.1", "12.x", "11.1-11.8"
    kind: str  # "toolkit_driver" or "minor_version_compat"
    linux: Optional[Version]
    windows: Optional[Version]
    source_ref: str

    def floor(self, os: str) -> Optional[Version]:
        return self.windows if os == WINDOWS else self.linux

    def covers(self, cuda: Version) -> bool:
        """Whether this row applies to the CUDA version ``cuda``."""
        spec = self.cuda.strip()
        if self.kind == "minor_version_compat":
            if spec.endswith(".x"):
                return cuda.major == int(spec[:-2])
            lo, sep, hi = spec.partition("-")
            mm = major_minor(cuda)
            if sep:
                return Version(lo) <= mm <= Version(hi)
            return mm == major_minor(Version(lo))
        row = Version(spec).release
        want = cuda.release if len(cuda.release) >= 2 else (cuda.release[0], 0)
        n = min(len(row), len(want))
        # "12.5" matches rows 12.5.0 and 12.5.1; "12.5.1" matches only 12.5.1; "10.1.105" matches "10.1".
        return n >= 2 and row[:n] == want[:n]


@dataclass(frozen=True)
class CapsRow:
    """The CUDA architectures compiled into the official wheels of a range of TF releases."""

    tf_min: Version
    tf_max: Optional[Version]  # None: open-ended (this and every later release)
    archs_listed: str
    confidence: str  # "verified" or "probable"

    def covers_tf(self, tf: Version) -> bool:
        mm = major_minor(tf)
        return self.tf_min <= mm and (self.tf_max is None or mm <= self.tf_max)


@functools.cache
def tf_builds(os: str = LINUX) -> tuple[TfBuild, ...]:
    """TensorFlow's tested GPU builds for ``os`` ("linux" or "windows"), newest first."""
    if os not in OSES:
        raise ValueError(f"os must be one of {OSES}, not {os!r}")
    _, rows = _read(f"tf_builds_{os}.csv")
    out = []
    for r in rows:
        try:
            out.append(TfBuild(
                version=Version(r["version"]), os=os, python_listed=r["python_versions_as_listed"],
                cuda=r["cuda"], cudnn=r["cudnn"], package=r["package"], compiler=r["compiler"],
                build_tool=r["build_tool"], python_ranges=_python_ranges(r["python_versions_as_listed"])))
        except (KeyError, InvalidVersion) as e:
            raise CompatDataError(f"tf_builds_{os}.csv: bad row {r}: {e}") from None
    return tuple(sorted(out, key=lambda b: b.version, reverse=True))


@functools.cache
def driver_rows() -> tuple[DriverRow, ...]:
    """NVIDIA's driver tables (toolkit driver per release, and minor-version-compatibility floors)."""
    _, rows = _read("cuda_driver_min.csv")
    return tuple(
        DriverRow(toolkit=r["cuda_toolkit"], cuda=r["cuda_version"], kind=r["kind"],
                  linux=parse_version(r["linux_x86_64_min_driver"]),
                  windows=parse_version(r["windows_x86_64_min_driver"]), source_ref=r["source_ref"])
        for r in rows)


@functools.cache
def caps_rows() -> tuple[CapsRow, ...]:
    """Compute capabilities of the official wheels, by TF release range."""
    _, rows = _read("tf_wheel_compute_caps.csv")
    return tuple(
        CapsRow(tf_min=Version(r["tf_min"]), tf_max=parse_version(r["tf_max"]),
                archs_listed=r["cuda_compute_capabilities"], confidence=r["confidence"])
        for r in rows)


@functools.cache
def data_sources() -> tuple[DataSource, ...]:
    """Source and date read of every packaged data file."""
    return tuple(_read(name)[0] for name in DATA_FILES)
