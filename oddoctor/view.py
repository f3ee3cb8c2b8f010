"""One derived view of a snapshot, computed once, so that two checks never answer the same question differently.

The snapshot holds raw facts, any of which may be unknown (``None``). The view answers the questions
checks ask of them: which OS family and which TensorFlow build table apply, whether this machine has
NVIDIA hardware (and the evidence), which GPUs CUDA_VISIBLE_DEVICES selects, the CUDA/cuDNN TensorFlow
was built for, the libraries the loader picks, and every line of TensorFlow's own words (the probe's
capture and the user's ``--log``). Each answer is either known or ``None``; :meth:`View.unknown` says why
a named fact is unknown, and the runner skips a check whose declared ``requires`` are unknown.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Optional

from packaging.version import Version

from oddoctor.snapshot import GpuFacts, GpuProcess, LibFacts, Snapshot
from oddoctor.versions import parse_version

if TYPE_CHECKING:
    from oddoctor.compat.data import TfBuild

#: Process names of display servers and desktops: a GPU they hold a little of is not "shared".
GRAPHICS_PROCESS_NAMES = re.compile(
    r"(^|/)(Xorg|X|Xwayland|gnome-shell|kwin(_x11|_wayland)?|plasmashell|cinnamon|mutter|sway|weston|"
    r"compiz|xfwm4|dwm\.exe|explorer\.exe|chrome|firefox|Discord|steam|code|slack)(\s|$)")
#: TensorFlow distributions that are vendor builds (compatibility follows the vendor's release notes).
VENDOR_DISTRIBUTIONS = ("nvidia-tensorflow",)
#: Distributions without CUDA support whatever their version.
CPU_DISTRIBUTIONS = ("tensorflow-cpu", "tensorflow-intel", "tensorflow-macos", "intel-tensorflow",
                     "tf-nightly-cpu", "tensorflow-cpu-aws", "tensorflow-aarch64")


@dataclass
class GpuView:
    """One GPU as the checks see it: from NVML where it answered, else from TensorFlow or the report."""

    index: Optional[int]
    name: Optional[str]
    uuid: Optional[str]
    compute_capability: Optional[str]
    total_bytes: Optional[int]
    free_bytes: Optional[int]
    used_bytes: Optional[int]
    processes: Optional[list[GpuProcess]]
    source: str  # "nvml" or "tensorflow"

    @property
    def label(self) -> str:
        idx = f"GPU {self.index}" if self.index is not None else "GPU"
        return f"{idx} ({self.name})" if self.name else idx


@dataclass
class Visibility:
    """What CUDA_VISIBLE_DEVICES does to the GPU list."""

    value: Optional[str]  # the variable; None when unset (or unknown: see ``known``)
    known: bool  # False: the snapshot does not say whether the variable was set
    selected: Optional[list[GpuView]]  # the GPUs CUDA programs see, in CUDA order; None: cannot tell
    invalid: list[str] = field(default_factory=list)  # entries that name no GPU (CUDA stops at the first)
    note: str = ""  # why the selection is uncertain, when it is


@dataclass
class View:
    snap: Snapshot
    system: Optional[str] = None  # "Linux", "Windows", "Darwin"
    wsl: Optional[bool] = None
    container: Optional[bool] = None
    python: Optional[Version] = None  # major.minor
    tf_installed: Optional[bool] = None
    tf_version: Optional[Version] = None
    tf_distributions: Optional[list[str]] = None
    #: TensorFlow imports: the probe's answer, else what the user's log shows (TensorFlow at work, or an
    #: ImportError from ``import tensorflow``).
    tf_imports: Optional[bool] = None
    vendor_build: bool = False
    #: ``check --tf X``: the machine is judged for TensorFlow X, which is not (or not as X) installed.
    planned: Optional[Version] = None
    is_cuda_build: Optional[bool] = None
    driver: Optional[Version] = None
    driver_max_cuda: Optional[Version] = None
    nvidia_hw: Optional[bool] = None
    hw_evidence: list[str] = field(default_factory=list)
    gpus: Optional[list[GpuView]] = None
    visibility: Optional[Visibility] = None
    log: list[str] = field(default_factory=list)
    #: The user's own log (``--log``) shows TensorFlow, CUDA or the driver at work on a GPU: one is meant.
    gpu_intent: bool = False
    #: Package versions the log shows pip installing or finding ("Downloading protobuf-4.21.9-...").
    log_packages: dict[str, str] = field(default_factory=dict)
    why: dict[str, str] = field(default_factory=dict)

    # -- names checks can declare in ``requires`` ------------------------------------------------
    def unknown(self, fact: str) -> Optional[str]:
        """Why ``fact`` is unknown, or None when it is known. Alternatives: ``"a|b"`` is known if either is."""
        if "|" in fact:
            reasons = [self.unknown(f) for f in fact.split("|")]
            return None if any(r is None for r in reasons) else "; ".join(r for r in reasons if r)
        getter = _FACTS.get(fact)
        if getter is None:
            raise KeyError(f"unknown fact name {fact!r} in a check's requires")
        if getter(self) is not None:
            return None
        return self.why.get(fact) or self._probe_reason(fact) or "not collected, and the report does not say"

    def _probe_reason(self, fact: str) -> Optional[str]:
        probe = {"driver.version": "nvml", "gpus": "nvml", "gpu.memory": "nvml", "gpu.processes": "nvml",
                 "nvidia_hw": "hardware", "tf.version": "tensorflow", "tf.cuda_build": "tensorflow"}.get(fact, fact)
        return self.snap.why_unknown(probe)

    @property
    def build_info(self) -> dict:
        """The installed TensorFlow's build info; empty when judging a planned release (it is another build)."""
        return {} if self.planned is not None else (self.snap.tensorflow.build_info or {})

    @property
    def tf_gpus(self) -> Optional[list]:
        """TensorFlow's GPU list; unknown for a planned release (not installed yet)."""
        return None if self.planned is not None else self.snap.tensorflow.gpus

    @property
    def tf_os(self) -> Optional[str]:
        """Which TensorFlow build table applies: native Windows has its own; WSL2 runs the Linux wheels."""
        from oddoctor.compat import LINUX, WINDOWS

        if self.system is None:
            return None
        if self.system == "Windows" and not self.wsl:
            return WINDOWS
        return LINUX

    @property
    def driver_os(self) -> Optional[str]:
        """Which driver column applies: WSL2 uses the Windows host driver."""
        from oddoctor.compat import LINUX, WINDOWS

        if self.system is None:
            return None
        return WINDOWS if self.system == "Windows" or self.wsl else LINUX

    @property
    def native_windows(self) -> bool:
        return self.system == "Windows" and not self.wsl

    def tf_build(self) -> Optional[TfBuild]:
        """The tested build row of the installed TensorFlow, where the table has it."""
        from oddoctor import compat

        if self.tf_version is None or self.tf_os is None:
            return None
        return compat.tf_build_for(self.tf_version, self.tf_os)

    def build_cuda(self) -> tuple[Optional[Version], str]:
        """CUDA version the installed TF was built with: its own build info first, else the tested table."""
        from oddoctor import compat

        bi = self.build_info
        v = compat.normalize_cuda(bi.get("cuda_version"))
        if v:
            return v, "tf.sysconfig.get_build_info()"
        b = self.tf_build()
        if b is not None and not self.vendor_build:
            return b.cuda_version, f"tested build of TensorFlow {b.version}"
        return None, ""

    def build_cudnn(self) -> tuple[Optional[Version], str]:
        """cuDNN version TF was built with; the tested table adds the minor when build info has the major only."""
        from oddoctor import compat

        bi = self.build_info
        v = compat.normalize_cudnn(bi.get("cudnn_version"))
        b = self.tf_build() if not self.vendor_build else None
        if v is not None and b is not None and len(v.release) == 1 and b.cudnn_version.major == v.major:
            return b.cudnn_version, "tf.sysconfig.get_build_info() and the tested build table"
        if v is not None:
            return v, "tf.sysconfig.get_build_info()"
        if b is not None:
            return b.cudnn_version, f"tested build of TensorFlow {b.version}"
        return None, ""

    def find(self, needle: str) -> list[str]:
        """TensorFlow's captured lines (probe and ``--log``) that contain ``needle``."""
        return [ln for ln in self.log if needle in ln]

    def find_re(self, pattern: re.Pattern[str]) -> list[tuple[str, re.Match[str]]]:
        out = []
        for ln in self.log:
            m = pattern.search(ln)
            if m:
                out.append((ln, m))
        return out

    @property
    def selected_gpus(self) -> Optional[list[GpuView]]:
        """The GPUs CUDA programs see (CUDA_VISIBLE_DEVICES applied), or None when that cannot be told."""
        return self.visibility.selected if self.visibility is not None else None

    def runtime_cudas(self) -> list[Version]:
        """CUDA versions of runtimes that would load besides TensorFlow's build: the loader's first libcudart,
        and a conda environment's cudatoolkit (conda's TensorFlow links the environment's CUDA)."""
        from oddoctor.compat import normalize_cuda

        out = []
        pick = self.loader_pick("cudart")
        if pick is not None and pick.version:
            c = normalize_cuda(pick.version)
            if c is not None:
                out.append(c)
        conda = self.snap.conda
        for name in ("cudatoolkit", "cuda-toolkit", "cuda-cudart", "cuda-runtime", "cuda-version"):
            ver = (conda.packages or {}).get(name) if conda is not None else None
            c = normalize_cuda(".".join(str(ver).split(".")[:2])) if ver else None
            if c is not None:
                out.append(c)
                break
        return out

    def loader_pick(self, kind: str) -> Optional[LibFacts]:
        libs = getattr(self.snap.cuda_libs, kind)
        return libs[0] if libs else None


def _gpu_view_nvml(g: GpuFacts) -> GpuView:
    free = g.memory_free_bytes
    if free is None and g.memory_total_bytes is not None and g.memory_used_bytes is not None:
        free = max(0, g.memory_total_bytes - g.memory_used_bytes)  # nvidia-smi shows used / total only
    return GpuView(index=g.index, name=g.name, uuid=g.uuid, compute_capability=g.compute_capability,
                   total_bytes=g.memory_total_bytes, free_bytes=free, used_bytes=g.memory_used_bytes,
                   processes=g.processes, source="nvml")


#: Fact name -> how to read it off the view (None: unknown).
_FACTS: dict[str, Callable[[View], object]] = {
    "platform.system": lambda v: v.system,
    "platform.wsl": lambda v: v.wsl,
    "python.version": lambda v: v.python,
    "python.bits": lambda v: v.snap.python.bits,
    "tf.installed": lambda v: v.tf_installed,
    "tf.version": lambda v: v.tf_version,
    "tf.cuda_build": lambda v: v.is_cuda_build,
    "tf.build_cuda": lambda v: v.build_cuda()[0],
    "tf.build_cudnn": lambda v: v.build_cudnn()[0],
    "tf.gpus": lambda v: v.tf_gpus,
    "tf.importable": lambda v: True if v.planned is not None else v.tf_imports,
    "driver.version": lambda v: v.driver,
    "driver.max_cuda": lambda v: v.driver_max_cuda,
    "nvidia_hw": lambda v: v.nvidia_hw,
    "gpus": lambda v: v.gpus,
    "gpus.selected": lambda v: v.selected_gpus,
    "gpu.memory": lambda v: ([g for g in v.selected_gpus if g.free_bytes is not None] or None)
    if v.selected_gpus else None,
    "gpu.processes": lambda v: ([g for g in v.selected_gpus if g.processes is not None] or None)
    if v.selected_gpus else None,
    "gpu.compute_capability": lambda v: ([g for g in v.gpus if g.compute_capability] or None) if v.gpus else None,
    "libs.cudart": lambda v: v.snap.cuda_libs.cudart,
    "libs.cudnn": lambda v: v.snap.cuda_libs.cudnn,
    "packages": lambda v: v.snap.packages,
    "env.CUDA_VISIBLE_DEVICES": lambda v: True if "CUDA_VISIBLE_DEVICES" in v.snap.env else None,
}

FACT_NAMES = tuple(_FACTS)


_CACHE_ATTR = "_oddoctor_view"


def view(snap: Snapshot, target_tf: Optional[str] = None) -> View:
    """The derived view of ``snap``: the one :func:`computed_once` holds during a run, else a fresh one
    (a snapshot may change between two calls outside a run)."""
    cached = getattr(snap, _CACHE_ATTR, None)
    if isinstance(cached, View) and cached.snap is snap:
        return cached
    return _derive(snap, target_tf)


@contextlib.contextmanager
def computed_once(snap: Snapshot, target_tf: Optional[str] = None) -> Iterator[View]:
    """Compute the view once for a run of checks over ``snap`` (which must not change meanwhile);
    ``target_tf`` judges the machine for that TensorFlow release instead of the installed one."""
    v = _derive(snap, target_tf)
    object.__setattr__(snap, _CACHE_ATTR, v)
    try:
        yield v
    finally:
        with contextlib.suppress(AttributeError):
            object.__delattr__(snap, _CACHE_ATTR)


def _derive(snap: Snapshot, target_tf: Optional[str] = None) -> View:
    from oddoctor.compat import major_minor, normalize_cuda

    v = View(snap=snap)
    v.planned = parse_version(target_tf) if target_tf else None
    p = snap.platform
    v.system = p.system or None
    v.wsl = p.is_wsl
    if v.wsl is None and v.system in ("Windows", "Darwin"):
        v.wsl = False
    v.container = p.in_container
    py = parse_version(snap.python.version)
    v.python = major_minor(py) if py is not None else None
    v.log = _log_lines(snap, planned=v.planned is not None)
    conda_cuda = snap.conda is not None and bool(set(snap.conda.packages or {}) & _CONDA_CUDA)
    v.gpu_intent = bool(snap.expects_gpu) or conda_cuda or any(_GPU_WORDS.search(ln) for ln in snap.user_log)
    v.log_packages = _packages_from_log(v.log)
    _derive_tf(v)
    v.driver = parse_version(snap.nvml.driver_version)
    v.driver_max_cuda = normalize_cuda(snap.nvml.cuda_driver_version)
    if v.driver is None and snap.hardware.nvidia_module:
        v.driver = parse_version(snap.hardware.nvidia_module)
    if v.driver is None:
        v.why["driver.version"] = _nvml_why(snap)
    _derive_gpus(v)
    _derive_hw(v)
    v.visibility = _visibility(snap, v.gpus)
    return v


def _nvml_why(snap: Snapshot) -> str:
    n = snap.nvml
    if n.error:
        return f"NVML failed: {n.error}"
    if n.available is None:
        return "NVML was not asked (the report does not give nvidia-smi output)"
    return "NVML did not report it"


def _log_lines(snap: Snapshot, *, planned: bool = False) -> list[str]:
    tf = snap.tensorflow
    if planned:  # the installed TensorFlow's words say nothing about another release
        return list(dict.fromkeys(ln for ln in snap.user_log if ln.strip()))
    lines = list(tf.log_lines) + list(tf.probe.stderr_tail) + list(snap.user_log)
    if tf.probe.error:
        lines.extend(tf.probe.error.splitlines())
    if tf.od_api_error:
        lines.extend(tf.od_api_error.splitlines())
    return list(dict.fromkeys(ln for ln in lines if ln.strip()))


def _derive_tf(v: View) -> None:
    snap = v.snap
    tf = snap.tensorflow
    dists = tf.distributions
    if dists is None and snap.packages is not None:
        from oddoctor.probes.packages import TF_DISTRIBUTIONS

        dists_names = [d for d in TF_DISTRIBUTIONS if d in snap.packages]
        v.tf_distributions = dists_names
    elif dists is not None:
        v.tf_distributions = [d.name for d in dists]
    if v.planned is not None:
        v.tf_installed = True
        v.tf_version = v.planned
        v.tf_distributions = [d.name for d in tf.distributions] if tf.distributions is not None else None
        v.is_cuda_build = _is_cuda_build(v, "tensorflow")
        v.tf_imports = None
        return
    v.tf_installed = tf.installed
    if v.tf_installed is None and (tf.version or tf.importable):
        v.tf_installed = True
    if v.tf_installed is None and v.tf_distributions is not None:
        v.tf_installed = bool(v.tf_distributions)
    v.tf_version = parse_version(tf.version) if v.tf_installed is not False else None
    dist = (tf.distribution or "").lower().replace("_", "-")
    v.vendor_build = dist in VENDOR_DISTRIBUTIONS or "+nv" in (tf.version or "")
    v.is_cuda_build = _is_cuda_build(v, dist)
    if v.vendor_build:
        v.why["tf.build_cuda"] = v.why["tf.build_cudnn"] = (
            f"{tf.distribution or 'tensorflow'} {tf.version or ''} is NVIDIA's build: its CUDA and cuDNN follow "
            "NVIDIA's TensorFlow release notes (NGC container tags), not TensorFlow's tested-build table").replace(
            "  ", " ")
    v.tf_imports = tf.importable
    if v.tf_imports is None:
        if any(_TF_IMPORT_FAILED.search(ln) for ln in v.log):
            v.tf_imports = False
        elif tf.gpus is not None or tf.build_info or any(_TF_RUNNING.search(ln) for ln in v.log):
            v.tf_imports = True
        elif v.tf_installed is False:
            v.tf_imports = False


def _is_cuda_build(v: View, dist: str) -> Optional[bool]:
    """Whether the installed TF can use CUDA at all: its own answer first, then what is known of it."""
    tf = v.snap.tensorflow
    bi = v.build_info
    if isinstance(bi.get("is_cuda_build"), bool):
        return bool(bi["is_cuda_build"])
    if tf.built_with_cuda is not None and v.planned is None:
        return tf.built_with_cuda
    if dist in CPU_DISTRIBUTIONS:
        return False
    if v.vendor_build:
        return True
    if v.tf_gpus:
        return True
    t = v.tf_version
    if t is None:
        return None
    if v.system == "Darwin":
        return False
    if v.native_windows and t >= Version("2.11"):
        return False
    if dist == "tensorflow" and (t < Version("1.15") or Version("2.0") <= t < Version("2.1")):
        return False  # before 1.15 (and in 2.0) the GPU build was the separate tensorflow-gpu
    if dist in ("tensorflow", "tensorflow-gpu", "tf-nightly", "tf-nightly-gpu"):
        return True
    if not dist and v.system == "Linux" and t >= Version("2.1"):
        return True  # the report names no distribution: on Linux, plain `tensorflow` >= 2.1 is a CUDA build
    return None


def _derive_gpus(v: View) -> None:
    snap = v.snap
    if snap.nvml.gpus is not None:
        v.gpus = [_gpu_view_nvml(g) for g in snap.nvml.gpus]
        # A GPU list reconstructed from a report may lack the index: number them in order.
        for i, g in enumerate(v.gpus):
            if g.index is None:
                g.index = i
        return
    tf_gpus = snap.tensorflow.gpus
    if tf_gpus:
        v.gpus = [GpuView(index=i, name=g.device_name, uuid=None, compute_capability=g.compute_capability,
                          total_bytes=None, free_bytes=None, used_bytes=None, processes=None, source="tensorflow")
                  for i, g in enumerate(tf_gpus)]
        return
    v.why["gpus"] = _nvml_why(snap)


#: TensorFlow log lines that only appear when a GPU was found (a device was created or rejected).
_HW_LINES = ("Created device /job", "Created TensorFlow device", "Found device 0 with properties",
             "Ignoring visible gpu device", "failed to allocate", "from device: CUDA_ERROR_OUT_OF_MEMORY",
             "CUDA driver version is insufficient", "GPU_0_bfc", "CUDNN_STATUS_", "no kernel image is available")


def _derive_hw(v: View) -> None:
    snap = v.snap
    ev: list[str] = []
    if v.gpus:
        ev.append(f"{len(v.gpus)} GPU(s) listed by {v.gpus[0].source}")
    hw = snap.hardware
    if hw.pci_nvidia:
        ev.append(f"{len(hw.pci_nvidia)} NVIDIA PCI device(s)")
    nodes = [d for d in (hw.dev_nvidia or []) if re.search(r"/nvidia\d+$|/dxg$", d)]
    if nodes:
        ev.append("device nodes " + ", ".join(nodes[:4]))
    if hw.nvidia_module:
        ev.append(f"nvidia kernel module {hw.nvidia_module}")
    if snap.nvml.available:
        ev.append("NVML answered")
    lines = [ln for ln in v.log if any(k in ln for k in _HW_LINES)]
    if lines:
        ev.append("TensorFlow's log mentions a GPU device")
    v.hw_evidence = ev
    if ev:
        v.nvidia_hw = True
        return
    # No evidence: "no" only when every probe that could have seen one looked and saw nothing.
    if snap.nvml.gpus == [] or (hw.pci_nvidia == [] and not nodes):
        v.nvidia_hw = False
        return
    v.nvidia_hw = None
    v.why["nvidia_hw"] = snap.why_unknown("hardware.pci_nvidia") or (
        "no NVIDIA PCI scan, device nodes or GPU list in the snapshot" + (f"; {_nvml_why(snap)}"
                                                                          if snap.nvml.error else ""))


#: Lines only a TensorFlow that imported prints (its C++ runtime logging, device creation).
_TF_RUNNING = re.compile(r"tensorflow/(core|stream_executor|compiler|tsl)/|external/local_xla/|"
                         r"Created (TensorFlow )?device|dso_loader|cuda_dnn\.cc|gpu_device\.cc|bfc_allocator")
_TF_IMPORT_FAILED = re.compile(r"Failed to load the native TensorFlow runtime|ImportError: DLL load failed|"
                               r"ImportError: lib\w+\.so[.\d]*: cannot open shared object file|"
                               r"No module named '?tensorflow'?$")
_GPU_WORDS = re.compile(r"(?i)cuda|cudnn|\bgpu|nvml|nvidia|cublas|libcud|cufft|curand|cusolver|cusparse|\bDNN\b")
_CONDA_CUDA = {"cudatoolkit", "cuda-toolkit", "cuda-cudart", "cuda-runtime", "cudnn"}
_PIP_LINE = re.compile(r"(?:Downloading|Collecting|Using cached)\s+([A-Za-z0-9_.-]+?)-(\d+(?:\.\d+)+)[-.]")
_PIP_INSTALLED = re.compile(r"Successfully installed (.+)$")


def _packages_from_log(lines: list[str]) -> dict[str, str]:
    """Versions pip says it downloaded or installed, by normalised name (the last one wins)."""
    out: dict[str, str] = {}
    for ln in lines:
        for m in _PIP_LINE.finditer(ln):
            out[m.group(1).lower().replace("_", "-")] = m.group(2)
        m2 = _PIP_INSTALLED.search(ln)
        if m2:
            for item in m2.group(1).split():
                name, _, ver = item.rpartition("-")
                if name and ver[:1].isdigit():
                    out[name.lower().replace("_", "-")] = ver
    return out
_UUID = re.compile(r"^(GPU|MIG)-[0-9a-fA-F-]+$")


def resolve_visible_devices(value: str, gpus: list[GpuView], order: Optional[str] = None) -> Visibility:
    """Apply CUDA_VISIBLE_DEVICES to ``gpus`` (NVML's PCI-ordered list) the way CUDA does.

    Entries are indices or GPU UUIDs (a unique prefix is enough); CUDA stops at the first entry that names
    no GPU (``-1`` included), and an empty value hides every GPU. Indices follow CUDA's own order, which is
    "fastest first" unless CUDA_DEVICE_ORDER=PCI_BUS_ID: on a machine whose GPUs differ, an index may name
    another GPU than NVML's same index, so the selection is uncertain there.
    """
    selected: list[GpuView] = []
    invalid: list[str] = []
    entries = [e.strip() for e in value.split(",")]
    mixed = len({g.name for g in gpus}) > 1 and (order or "").upper() != "PCI_BUS_ID"
    note = ""
    for i, e in enumerate(entries):
        if e == "" and len(entries) == 1:
            break
        hit: Optional[GpuView] = None
        if re.fullmatch(r"\d+", e):
            n = int(e)
            hit = gpus[n] if n < len(gpus) else None
            if hit is not None and mixed:
                note = ("CUDA numbers GPUs fastest first (CUDA_DEVICE_ORDER is not PCI_BUS_ID) and these GPUs "
                        "differ: an index may name another GPU than nvidia-smi's")
        elif _UUID.match(e):
            matches = [g for g in gpus if g.uuid and g.uuid.lower().startswith(e.lower())]
            hit = matches[0] if len(matches) == 1 else None
        if hit is None or hit in selected:
            invalid = entries[i:]
            break
        selected.append(hit)
    return Visibility(value=value, known=True, selected=None if note else selected, invalid=invalid, note=note)


def _visibility(snap: Snapshot, gpus: Optional[list[GpuView]]) -> Visibility:
    known = "CUDA_VISIBLE_DEVICES" in snap.env
    value = snap.env.get("CUDA_VISIBLE_DEVICES")
    if gpus is None:
        return Visibility(value=value, known=known, selected=None,
                          note="the GPU list is unknown")
    if gpus and gpus[0].source == "tensorflow":
        # TensorFlow's list is already what CUDA_VISIBLE_DEVICES selected (renumbered from 0).
        return Visibility(value=value, known=known, selected=list(gpus),
                          note="TensorFlow's own list, after CUDA_VISIBLE_DEVICES")
    if value is None:
        # Unset (or not stated): CUDA programs see every GPU.
        return Visibility(value=None, known=known, selected=list(gpus),
                          note="" if known else "CUDA_VISIBLE_DEVICES not stated: every GPU judged")
    return resolve_visible_devices(value, gpus, snap.env.get("CUDA_DEVICE_ORDER"))


def is_graphics_process(p: GpuProcess) -> bool:
    """A display server or desktop program (nvidia-smi type "G"), not a compute job."""
    if p.kind == "graphics":
        return True
    if p.kind == "compute":
        return False
    return bool(p.name and GRAPHICS_PROCESS_NAMES.search(p.name.strip()))
