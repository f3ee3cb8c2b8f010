"""The snapshot: typed, JSON-serialisable facts about a machine.

Probes (``oddoctor.probes``) fill it in; checks are pure functions of it. A snapshot written by
``oddoctor collect`` on one machine is diagnosed on another with ``oddoctor check --from``.

**Unknown is not "no".** Every fact may be unknown, written ``null`` (``None``), and that is distinct
from empty, false or zero: ``nvml.gpus: []`` says NVML answered and listed no GPU, ``nvml.gpus: null``
says nobody could tell. A key missing from a file reads as unknown, so a snapshot reconstructed from a
bug report holds only what the report states. In ``env`` a variable with ``null`` was unset when the
snapshot was collected; a variable that is absent is unknown.

Versioning: ``schema_version`` is bumped when a field changes meaning or is removed. Fields may be
added without a bump (readers ignore keys they do not know and read missing ones as unknown), so an
older oddoctor reads a newer snapshot of the same version, and refuses a newer version. Schema 1
snapshots are converted on load (:func:`upgrade_v1`), their unknowns marked.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import typing
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional, TypeVar

from oddoctor.fsutil import atomic_write_text

SCHEMA_VERSION = 2

#: Environment variables that change how TensorFlow finds and uses GPUs.
RELEVANT_ENV_VARS = (
    "CUDA_VISIBLE_DEVICES",
    "CUDA_DEVICE_ORDER",
    "NVIDIA_VISIBLE_DEVICES",
    "NVIDIA_DRIVER_CAPABILITIES",
    "LD_LIBRARY_PATH",
    "PATH",
    "CUDA_HOME",
    "CUDA_PATH",
    "CONDA_PREFIX",
    "TF_FORCE_GPU_ALLOW_GROWTH",
    "TF_GPU_ALLOCATOR",
    "TF_CPP_MIN_LOG_LEVEL",
    "TF_USE_LEGACY_KERAS",
    "XLA_FLAGS",
    "TF_ENABLE_ONEDNN_OPTS",
    "CUDA_CACHE_MAXSIZE",
    "CUDA_FORCE_PTX_JIT",
    "PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION",
)


class SnapshotError(Exception):
    """A snapshot file cannot be used: unreadable, malformed, or from a newer schema."""


@dataclass
class PlatformFacts:
    system: Optional[str] = None  # platform.system(): Linux, Windows, Darwin
    release: Optional[str] = None
    machine: Optional[str] = None  # x86_64, aarch64, AMD64, arm64
    distro: Optional[str] = None  # PRETTY_NAME from /etc/os-release where present
    is_wsl: Optional[bool] = None
    in_container: Optional[bool] = None
    libc: Optional[str] = None  # e.g. "glibc 2.36"


@dataclass
class PythonFacts:
    version: Optional[str] = None  # "3.11.7"
    implementation: Optional[str] = None
    executable: Optional[str] = None
    bits: Optional[int] = None


@dataclass
class GpuProcess:
    pid: Optional[int] = None
    name: Optional[str] = None
    used_bytes: Optional[int] = None  # None when NVML does not say (e.g. WDDM, no permission)
    kind: Optional[str] = None  # "compute" or "graphics" (a display server, a desktop)


@dataclass
class GpuFacts:
    index: Optional[int] = None  # NVML index (PCI bus order)
    name: Optional[str] = None
    uuid: Optional[str] = None
    pci_bus_id: Optional[str] = None  # "00000000:01:00.0"
    compute_capability: Optional[str] = None  # "8.6"
    memory_total_bytes: Optional[int] = None
    memory_used_bytes: Optional[int] = None
    memory_free_bytes: Optional[int] = None
    processes: Optional[list[GpuProcess]] = None  # None: could not list; []: none running
    errors: list[str] = field(default_factory=list)  # per-field NVML failures, "could not collect"


@dataclass
class NvmlFacts:
    available: Optional[bool] = None  # NVML initialised; None: not tried / not stated
    error: Optional[str] = None  # why NVML could not be used, e.g. "NVMLError_LibraryNotFound: ..."
    library: Optional[str] = None  # path of libnvidia-ml that was loaded, where known
    driver_version: Optional[str] = None  # "535.104.05"
    cuda_driver_version: Optional[str] = None  # highest CUDA the driver supports, "12.2"
    gpus: Optional[list[GpuFacts]] = None  # None: unknown (NVML failed); []: the driver lists none


@dataclass
class PciDevice:
    slot: Optional[str] = None  # "0000:01:00.0"
    device_id: Optional[str] = None  # "0x2330"
    klass: Optional[str] = None  # PCI class, "0x030200" (3D controller), "0x030000" (VGA)
    driver: Optional[str] = None  # kernel driver bound to it ("nvidia", "nouveau", "vfio-pci"); None: none bound


@dataclass
class HardwareFacts:
    """What the kernel sees, whatever the driver says: the evidence that an NVIDIA GPU exists."""

    pci_nvidia: Optional[list[PciDevice]] = None  # NVIDIA display/3D devices on the PCI bus; None: unknown
    dev_nvidia: Optional[list[str]] = None  # /dev/nvidia* nodes ("/dev/nvidia0", "/dev/nvidiactl", "/dev/dxg")
    nvidia_module: Optional[str] = None  # /proc/driver/nvidia/version's driver version, where present


@dataclass
class LibFacts:
    """One CUDA/cuDNN shared library found on this machine."""

    name: Optional[str] = None  # "cudart", "cudnn", "cublas", "cuda" (libcuda, the driver API)
    path: Optional[str] = None
    #: "pip" (nvidia-* wheel), "ld_library_path", "system", "cuda_home", "conda", "wsl",
    #: "path" (a PATH folder the Linux loader does not search)
    source: Optional[str] = None
    version: Optional[str] = None  # "12.5" for cudart, "9.3.0" for cudnn, from the library itself
    loadable: Optional[bool] = None
    error: Optional[str] = None


@dataclass
class CudaLibsFacts:
    searched: Optional[list[str]] = None  # directories looked in, in loader order; None: not searched
    cudart: Optional[list[LibFacts]] = None  # first entry is what the loader would pick
    cudnn: Optional[list[LibFacts]] = None
    #: Other CUDA libraries by stem ("cublas", "cufft", "cusolver", ...), each list in loader order.
    other: Optional[dict[str, list[LibFacts]]] = None
    #: libcuda.so.1 (the driver API) as the loader resolves it; None: unknown.
    libcuda: Optional[LibFacts] = None
    #: CUDA libraries in folders that are on PATH but not on the loader's path (Linux), unknown if None.
    path_only: Optional[list[LibFacts]] = None


@dataclass
class ProbeOutcome:
    """How the child process that imported TensorFlow ended."""

    ran: Optional[bool] = None
    exit_code: Optional[int] = None
    signal: Optional[str] = None  # "SIGSEGV", "SIGABRT" when the child was killed by a signal
    timed_out: Optional[bool] = None
    timeout_s: Optional[float] = None
    elapsed_s: Optional[float] = None
    error: Optional[str] = None  # the exception the import raised, "ImportError: ..."
    stderr_tail: list[str] = field(default_factory=list)


@dataclass
class TfGpu:
    name: Optional[str] = None  # "/physical_device:GPU:0"
    device_name: Optional[str] = None  # "NVIDIA GeForce RTX 3090"
    compute_capability: Optional[str] = None


@dataclass
class Distribution:
    name: str = ""
    version: Optional[str] = None


@dataclass
class KernelRun:
    """One small real kernel run by ``check --active`` on one device (twice: the first call includes start-up)."""

    device: Optional[str] = None  # "/device:GPU:0", "/device:CPU:0"
    kernel: Optional[str] = None  # "conv2d" (cuDNN), "matmul" (cuBLAS), "crop_and_resize", "non_max_suppression"
    ok: Optional[bool] = None  # None: not run (time budget spent, or the probe died first)
    error: Optional[str] = None  # TensorFlow's exception, "InternalError: Blas GEMM launch failed ..."
    first_s: Optional[float] = None  # the first call: cuDNN/cuBLAS start-up, autotuning, a PTX JIT compile
    second_s: Optional[float] = None  # the same call again: the kernel itself


@dataclass
class TensorFlowFacts:
    installed: Optional[bool] = None  # a tensorflow distribution is installed (read from metadata)
    distribution: Optional[str] = None  # "tensorflow", "tensorflow-cpu", "tensorflow-gpu", ...
    #: Every installed distribution that provides the ``tensorflow`` module (more than one breaks it).
    distributions: Optional[list[Distribution]] = None
    version: Optional[str] = None  # from distribution metadata, or tf.__version__
    importable: Optional[bool] = None  # None: not tried
    probe: ProbeOutcome = field(default_factory=ProbeOutcome)
    built_with_cuda: Optional[bool] = None
    build_info: Optional[dict[str, Any]] = None  # tf.sysconfig.get_build_info(); None: unknown
    gpus: Optional[list[TfGpu]] = None  # tf.config.list_physical_devices("GPU"); None: unknown
    log_lines: list[str] = field(default_factory=list)  # TF's own log lines worth quoting
    #: Whether the Object Detection API (``object_detection``) imports beside this TensorFlow.
    od_api_importable: Optional[bool] = None
    od_api_error: Optional[str] = None
    #: ``check --active``: the kernels run on each device after the import; None: not run (no --active).
    kernels: Optional[list[KernelRun]] = None


@dataclass
class CondaFacts:
    prefix: Optional[str] = None  # CONDA_PREFIX
    #: CUDA-related conda packages in that environment, name -> version ("cudatoolkit": "11.2.2").
    packages: Optional[dict[str, str]] = None


@dataclass
class ProbeError:
    """A fact nobody could collect, and why: what a check quotes when it cannot tell."""

    fact: str = ""  # "nvml", "hardware.pci_nvidia", "tensorflow", "extra.acme" ...
    error: str = ""


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
    hardware: HardwareFacts = field(default_factory=HardwareFacts)
    cuda_libs: CudaLibsFacts = field(default_factory=CudaLibsFacts)
    tensorflow: TensorFlowFacts = field(default_factory=TensorFlowFacts)
    #: Relevant Python distributions installed beside TensorFlow, name -> version (numpy, protobuf,
    #: keras, tf-keras, tf-slim, object-detection, nvidia-*). None: unknown; a name absent from a
    #: known dict is not installed.
    packages: Optional[dict[str, str]] = None
    conda: Optional[CondaFacts] = None  # None: unknown or not a conda environment (see env CONDA_PREFIX)
    env: dict[str, Optional[str]] = field(default_factory=dict)
    #: The user means to use an NVIDIA GPU here (``--gpu`` when collected; a report about GPU use). None:
    #: not said, and the checks judge from the hardware.
    expects_gpu: Optional[bool] = None
    #: Log or traceback the user saw (``oddoctor check --log FILE``): TensorFlow's words as evidence.
    user_log: list[str] = field(default_factory=list)
    #: Facts contributed by plugins (hook ``oddoctor_facts``), keyed by fact name.
    extra: dict[str, Any] = field(default_factory=dict)
    #: Facts nobody could collect, and why.
    probe_errors: list[ProbeError] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        # allow_nan=False: bare NaN / Infinity are not JSON (a plugin fact holding one is refused at collection).
        return json.dumps(self.to_dict(), indent=2, sort_keys=False, allow_nan=False) + "\n"

    def why_unknown(self, fact: str) -> Optional[str]:
        """The recorded reason ``fact`` (or the probe above it, ``nvml`` for ``nvml.gpus``) is unknown."""
        parts = fact.split(".")
        for n in range(len(parts), 0, -1):
            key = ".".join(parts[:n])
            for pe in self.probe_errors:
                if pe.fact == key:
                    return pe.error
        return None

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
        if version == 1:
            data = upgrade_v1(data)
        return _build(cls, data, "snapshot")

    def write(self, path: Path) -> None:
        """Write atomically: a reader never sees a half-written snapshot."""
        atomic_write_text(Path(path), self.to_json())


def upgrade_v1(data: dict[str, Any]) -> dict[str, Any]:
    """A schema 1 snapshot as schema 2: what version 1 could not say "unknown" about becomes null.

    Version 1 wrote ``""``, ``[]`` and ``{}`` where nothing was known: an empty string is unknown;
    NVML's GPU list is unknown when NVML was not available; the library lists are unknown when no folder
    was searched; TensorFlow's build info and GPU list are unknown when it did not import (or said nothing).
    """
    d = copy.deepcopy(data)
    d["schema_version"] = SCHEMA_VERSION

    def blank_to_none(obj: Any, keys: tuple[str, ...]) -> None:
        if isinstance(obj, dict):
            for k in keys:
                if obj.get(k) == "":
                    obj[k] = None

    blank_to_none(d.get("platform"), ("system", "release", "machine", "distro", "libc"))
    blank_to_none(d.get("python"), ("version", "implementation", "executable"))
    nv = d.get("nvml")
    if isinstance(nv, dict):
        if nv.get("available") is not True and not nv.get("gpus"):
            nv["gpus"] = None
        for g in nv.get("gpus") or []:
            blank_to_none(g, ("name", "uuid"))
            for p in (g.get("processes") or []) if isinstance(g, dict) else []:
                blank_to_none(p, ("name",))
    libs = d.get("cuda_libs")
    if isinstance(libs, dict) and not libs.get("searched"):
        libs["searched"] = None
        for k in ("cudart", "cudnn"):
            if not libs.get(k):
                libs[k] = None
    tf = d.get("tensorflow")
    if isinstance(tf, dict):
        if not tf.get("build_info"):
            tf["build_info"] = None
        if tf.get("importable") is not True and not tf.get("gpus"):
            tf["gpus"] = None
    errs = d.get("probe_errors")
    if isinstance(errs, list):
        d["probe_errors"] = [_v1_probe_error(e) for e in errs]
    return d


def _v1_probe_error(text: Any) -> Any:
    if not isinstance(text, str):
        return text
    # "could not collect acme (plugin p): why" -> fact "extra.acme"
    if text.startswith("could not collect ") and " (plugin " in text:
        name = text[len("could not collect "):].split(" (plugin ", 1)[0]
        return {"fact": f"extra.{name}", "error": text}
    return {"fact": "unknown", "error": text}


#: A snapshot is a few hundred KiB at most; a larger input is refused rather than read into memory.
MAX_SNAPSHOT_BYTES = 64 * 2**20


def load_snapshot(path: Path | str) -> Snapshot:
    """Read a snapshot file; every failure is a :class:`SnapshotError` with a one-line reason."""
    from oddoctor.fsutil import InputError, read_input

    p = Path(path)
    try:
        raw = read_input(path, what="a snapshot JSON file", max_bytes=MAX_SNAPSHOT_BYTES)
    except InputError as e:
        raise SnapshotError(str(e)) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise SnapshotError(f"{p}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise SnapshotError(f"{p}: not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})") from None
    except (ValueError, RecursionError) as e:  # an integer past Python's digit limit, nesting too deep
        raise SnapshotError(f"{p}: not a usable JSON document: {str(e).splitlines()[0][:160]}") from None
    try:
        return Snapshot.from_dict(data)
    except SnapshotError as e:
        raise SnapshotError(f"{p}: {e}") from None
    except RecursionError:
        raise SnapshotError(f"{p}: nested too deeply to be a snapshot") from None


def json_schema() -> dict[str, Any]:
    """The JSON Schema (2020-12) of a snapshot, derived from these dataclasses (shipped as
    oddoctor/schemas/snapshot.schema.json; a test keeps the file in step). Unknown keys are allowed: a newer
    oddoctor may add facts without a version bump."""
    defs: dict[str, Any] = {}

    def of(tp: Any) -> dict[str, Any]:
        origin, args = typing.get_origin(tp), typing.get_args(tp)
        if origin is typing.Union:
            inner = [a for a in args if a is not type(None)]
            return {"anyOf": [of(inner[0]), {"type": "null"}]}
        if isinstance(tp, type) and dataclasses.is_dataclass(tp):
            if tp.__name__ not in defs:
                defs[tp.__name__] = {}  # placeholder against recursion
                hints = typing.get_type_hints(tp)
                defs[tp.__name__] = {"type": "object", "properties": {
                    f.name: of(hints[f.name]) for f in dataclasses.fields(tp)}}
            return {"$ref": f"#/$defs/{tp.__name__}"}
        if origin is list:
            return {"type": "array", "items": of(args[0])}
        if origin is dict:
            return {"type": "object", "additionalProperties": of(args[1])}
        return {bool: {"type": "boolean"}, int: {"type": "integer"}, float: {"type": "number"},
                str: {"type": "string"}}.get(tp, {})

    of(Snapshot)  # fills defs
    body = defs.pop("Snapshot")
    body["properties"]["schema_version"] = {"type": "integer", "minimum": 1, "maximum": SCHEMA_VERSION}
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"https://oddoctor.invalid/schemas/snapshot-{SCHEMA_VERSION}.json",
            "title": f"oddoctor snapshot, schema_version {SCHEMA_VERSION} (null: unknown)",
            "required": ["schema_version"], **body, "$defs": defs}


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
