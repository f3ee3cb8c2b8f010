"""The snapshot: typed, JSON-serialisable facts about a machine.

Probes (``oddoctor.probes``) fill it in; checks are pure functions of it. A snapshot written by
``oddoctor collect`` on one machine is diagnosed on another with ``oddoctor check --from``.

Versioning: ``schema_version`` is bumped when a field changes meaning or is removed. Fields may be
added without a bump (readers ignore keys they do not know and default the ones that are missing),
so an older oddoctor reads a newer snapshot of the same version, and refuses a newer version.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import typing
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional, TypeVar

from oddoctor.fsutil import atomic_write_text

SCHEMA_VERSION = 1

#: Environment variables that change how TensorFlow finds and uses GPUs.
RELEVANT_ENV_VARS = (
    "CUDA_VISIBLE_DEVICES",
    "LD_LIBRARY_PATH",
    "PATH",
    "CUDA_HOME",
    "CUDA_PATH",
    "TF_FORCE_GPU_ALLOW_GROWTH",
    "TF_GPU_ALLOCATOR",
    "TF_CPP_MIN_LOG_LEVEL",
    "XLA_FLAGS",
    "TF_ENABLE_ONEDNN_OPTS",
    "CUDA_CACHE_MAXSIZE",
    "CUDA_FORCE_PTX_JIT",
)


class SnapshotError(Exception):
    """A snapshot file cannot be used: unreadable, malformed, or from a newer schema."""


@dataclass
class PlatformFacts:
    system: str = ""  # platform.system(): Linux, Windows, Darwin
    release: str = ""
    machine: str = ""  # x86_64, aarch64, AMD64, arm64
    distro: str = ""  # PRETTY_NAME from /etc/os-release where present
    is_wsl: bool = False
    in_container: bool = False
    libc: str = ""  # e.g. "glibc 2.36"


@dataclass
class PythonFacts:
    version: str = ""  # "3.11.7"
    implementation: str = ""
    executable: str = ""
    bits: int = 64


@dataclass
class GpuProcess:
    pid: int = 0
    name: str = ""
    used_bytes: Optional[int] = None  # None when NVML does not say (e.g. WDDM, no permission)


@dataclass
class GpuFacts:
    index: int = 0
    name: str = ""
    uuid: str = ""
    compute_capability: Optional[str] = None  # "8.6"
    memory_total_bytes: Optional[int] = None
    memory_used_bytes: Optional[int] = None
    memory_free_bytes: Optional[int] = None
    processes: list[GpuProcess] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # per-field NVML failures, "could not collect"


@dataclass
class NvmlFacts:
    available: bool = False
    error: Optional[str] = None  # why NVML could not be used, e.g. "NVMLError_LibraryNotFound: ..."
    library: Optional[str] = None  # path of libnvidia-ml that was loaded, where known
    driver_version: Optional[str] = None  # "535.104.05"
    cuda_driver_version: Optional[str] = None  # highest CUDA the driver supports, "12.2"
    gpus: list[GpuFacts] = field(default_factory=list)


@dataclass
class LibFacts:
    """One CUDA/cuDNN shared library found on this machine."""

    name: str = ""  # "cudart", "cudnn"
    path: str = ""
    source: str = ""  # "pip" (nvidia-* wheel), "ld_library_path", "system", "cuda_home"
    version: Optional[str] = None  # "12.5" for cudart, "9.3.0" for cudnn, from the library itself
    loadable: bool = False
    error: Optional[str] = None


@dataclass
class CudaLibsFacts:
    searched: list[str] = field(default_factory=list)  # directories looked in, in loader order
    cudart: list[LibFacts] = field(default_factory=list)  # first entry is what the loader would pick
    cudnn: list[LibFacts] = field(default_factory=list)


@dataclass
class ProbeOutcome:
    """How the child process that imported TensorFlow ended."""

    ran: bool = False
    exit_code: Optional[int] = None
    signal: Optional[str] = None  # "SIGSEGV", "SIGABRT" when the child was killed by a signal
    timed_out: bool = False
    timeout_s: Optional[float] = None
    elapsed_s: Optional[float] = None
    error: Optional[str] = None  # the exception the import raised, "ImportError: ..."
    stderr_tail: list[str] = field(default_factory=list)


@dataclass
class TfGpu:
    name: str = ""  # "/physical_device:GPU:0"
    device_name: Optional[str] = None  # "NVIDIA GeForce RTX 3090"
    compute_capability: Optional[str] = None


@dataclass
class TensorFlowFacts:
    installed: bool = False  # a tensorflow distribution is installed (read from metadata)
    distribution: Optional[str] = None  # "tensorflow", "tensorflow-cpu", "tensorflow-gpu", ...
    version: Optional[str] = None  # from distribution metadata, or tf.__version__
    importable: Optional[bool] = None  # None: not tried
    probe: ProbeOutcome = field(default_factory=ProbeOutcome)
    built_with_cuda: Optional[bool] = None
    build_info: dict[str, Any] = field(default_factory=dict)  # tf.sysconfig.get_build_info()
    gpus: list[TfGpu] = field(default_factory=list)  # tf.config.list_physical_devices("GPU")
    log_lines: list[str] = field(default_factory=list)  # TF's own log lines worth quoting


@dataclass
class Snapshot:
    schema_version: int = SCHEMA_VERSION
    oddoctor_version: str = ""
    collected_at: str = ""  # ISO 8601, UTC
    hostname: str = ""
    source: str = "collected"  # "collected" or a note such as "reconstructed from <url>"
    platform: PlatformFacts = field(default_factory=PlatformFacts)
    python: PythonFacts = field(default_factory=PythonFacts)
    nvml: NvmlFacts = field(default_factory=NvmlFacts)
    cuda_libs: CudaLibsFacts = field(default_factory=CudaLibsFacts)
    tensorflow: TensorFlowFacts = field(default_factory=TensorFlowFacts)
    env: dict[str, Optional[str]] = field(default_factory=dict)
    #: Facts contributed by plugins (hook ``oddoctor_facts``), keyed by fact name.
    extra: dict[str, Any] = field(default_factory=dict)
    #: Probe failures that are not facts about the patient ("could not collect X: why").
    probe_errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n"

    @classmethod
    def from_dict(cls, data: Any) -> Snapshot:
        if not isinstance(data, dict):
            raise SnapshotError("a snapshot is a JSON object; this file holds " + type(data).__name__)
        version = data.get("schema_version")
        if not isinstance(version, int) or isinstance(version, bool):
            raise SnapshotError("not an oddoctor snapshot: no integer 'schema_version' field")
        if version > SCHEMA_VERSION:
            raise SnapshotError(
                f"snapshot schema version {version} is newer than this oddoctor understands "
                f"({SCHEMA_VERSION}); upgrade with: pip install -U oddoctor"
            )
        if version < 1:
            raise SnapshotError(f"invalid snapshot schema version {version}")
        return _build(cls, data, "snapshot")

    def write(self, path: Path) -> None:
        """Write atomically: a reader never sees a half-written snapshot."""
        atomic_write_text(Path(path), self.to_json())


def load_snapshot(path: Path | str) -> Snapshot:
    """Read a snapshot file; every failure is a :class:`SnapshotError` with a one-line reason."""
    p = Path(path)
    try:
        text = sys.stdin.read() if str(path) == "-" else p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SnapshotError(f"{p}: no such file") from None
    except IsADirectoryError:
        raise SnapshotError(f"{p}: is a directory, expected a snapshot JSON file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise SnapshotError(f"{p}: cannot read: {e}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise SnapshotError(f"{p}: not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})") from None
    try:
        return Snapshot.from_dict(data)
    except SnapshotError as e:
        raise SnapshotError(f"{p}: {e}") from None


T = TypeVar("T")


def _build(cls: type[T], data: Any, where: str) -> T:
    if not isinstance(data, dict):
        raise SnapshotError(f"{where}: expected an object, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name in data:
            kwargs[f.name] = _convert(hints[f.name], data[f.name], f"{where}.{f.name}")
    return cls(**kwargs)


def _convert(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Union:
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _convert(inner[0], value, where)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _build(tp, value, where)
    if origin is list:
        if not isinstance(value, list):
            raise SnapshotError(f"{where}: expected a list, got {type(value).__name__}")
        return [_convert(args[0], v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise SnapshotError(f"{where}: expected an object, got {type(value).__name__}")
        return {str(k): _convert(args[1], v, f"{where}.{k}") for k, v in value.items()}
    if tp is Any:
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise SnapshotError(f"{where}: expected true/false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SnapshotError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SnapshotError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise SnapshotError(f"{where}: expected a string, got {value!r}")
        return value
    return value
