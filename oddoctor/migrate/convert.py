"""TF1 GraphDef -> TF2 SavedModel with TensorFlow's own machinery, and the parity check.

The network is not re-implemented: the legacy ``GraphDef`` is imported inside
``tf.compat.v1.wrap_function``, pruned to the named feed and fetches, wrapped in a
``tf.function`` with a ``serving_default`` signature and written with ``tf.saved_model.save``.
TensorFlow is imported inside the functions (callers decide when to pay for it).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from oddoctor.migrate.emit import TF2_INPUT_KEY, TF2_OUTPUT_KEYS
from oddoctor_legacy_tf1.names import INPUT_NAME, MASKS, REQUIRED_OUTPUT_NAMES

if TYPE_CHECKING:
    from oddoctor_legacy_tf1.graph_io import LoadedModel

RUNNER_KEYS = REQUIRED_OUTPUT_NAMES  # the outputs the emitted runner cannot do without
_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class MigrateInputError(Exception):
    """The model or the options cannot be migrated (one line; exit 2)."""


@dataclass
class TensorInfo:
    """One tensor of the legacy graph as the migrated signature exposes it."""

    key: str  # signature key
    tensor: str  # legacy tensor name, "name:0"
    dtype: str
    shape: Optional[list[Optional[int]]]  # None: unknown rank

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "tensor": self.tensor, "dtype": self.dtype, "shape": self.shape}


@dataclass
class GraphPlan:
    """What will be mapped: the legacy graph, its input and the outputs by signature key."""

    graph_def: Any
    source: Path
    kind: str  # "frozen_graph" or "saved_model"
    input: TensorInfo
    outputs: list[TensorInfo]

    @property
    def batch_one(self) -> bool:
        """True when the graph's outputs are fixed to batch 1 (the OD API Mask R-CNN exports)."""
        return all(o.shape and o.shape[0] == 1 for o in self.outputs)

    def output_map(self) -> dict[str, str]:
        return {o.key: o.tensor for o in self.outputs}


def tensor_name(name: str) -> str:
    """'image_tensor' -> 'image_tensor:0'; 'x:1' stays."""
    return name if re.search(r":\d+$", name) else f"{name}:0"


def parse_outputs(specs: Optional[Sequence[str]]) -> Optional[dict[str, str]]:
    """``--outputs`` values (``KEY=TENSOR`` or ``TENSOR``, comma-separated or repeated) -> key: tensor."""
    if not specs:
        return None
    result: dict[str, str] = {}
    for spec in specs:
        for item in (s.strip() for s in spec.split(",")):
            if not item:
                continue
            key, sep, tensor = item.partition("=")
            if not sep:
                tensor, key = item, re.sub(r":\d+$", "", item).rsplit("/", 1)[-1]
            key, tensor = key.strip(), tensor.strip()
            if not _KEY_RE.match(key):
                raise MigrateInputError(
                    f"--outputs {item!r}: signature key {key!r} must be a Python identifier; "
                    "write KEY=TENSOR, e.g. detection_boxes=my/boxes:0")
            if key in result:
                raise MigrateInputError(f"--outputs: key {key!r} given twice")
            result[key] = tensor_name(tensor)
    return result or None


def _shape(tf: Any, tensor: Any) -> Optional[list[Optional[int]]]:
    shape = tensor.shape
    if shape.rank is None:
        return None
    return [None if d is None else int(d) for d in shape.as_list()]


def load_graph(model: Path, *, outputs: Optional[Sequence[str]] = None) -> LoadedModel:
    """The legacy model as legacy_tf1's one loader reads it (``graph_io.load_model``, ``outputs`` as there);
    :class:`MigrateInputError` when it cannot be used."""
    from oddoctor_legacy_tf1 import graph_io

    try:
        return graph_io.load_model(model, outputs=outputs)
    except graph_io.ModelError as e:
        raise MigrateInputError(str(e)) from None


def plan(model: Path, input_name: Optional[str] = None,
         outputs: Optional[Mapping[str, str]] = None) -> GraphPlan:
    """Load the legacy model and decide the mapping; :class:`MigrateInputError` when impossible."""
    import tensorflow as tf

    custom = input_name is not None or outputs is not None
    input_tensor = tensor_name(input_name or INPUT_NAME)
    wanted = {k: f"{k}:0" for k in TF2_OUTPUT_KEYS} if outputs is None else dict(outputs)
    # Custom names: a graph without the OD API tensors, its variables frozen for the tensors asked for.
    loaded = load_graph(model, outputs=list(wanted.values()) if custom else None)
    graph_def, source, kind = loaded.graph_def, loaded.path, loaded.kind
    from oddoctor_legacy_tf1 import graph_io

    try:
        graph = graph_io.import_model(graph_def)
    except graph_io.ModelError as e:
        raise MigrateInputError(f"{source}: {e}") from None

    def get(name: str) -> Optional[Any]:
        try:
            return graph.get_tensor_by_name(name)
        except (KeyError, ValueError):
            return None

    inp = get(input_tensor)
    if inp is None:
        placeholders = [f"{graph_io.one_line(op.name)}:0" for op in graph.get_operations()
                        if op.type == "Placeholder"]
        raise MigrateInputError(f"{source}: no input tensor {input_tensor!r}; placeholders in the graph: "
                                f"{', '.join(placeholders[:8]) or 'none'} (use --inputs NAME)")
    if inp.dtype not in (tf.uint8, tf.float32, tf.float16, tf.int32):
        raise MigrateInputError(f"{source}: input {input_tensor!r} is {inp.dtype.name}; expected an image "
                                "tensor (uint8 or float)")
    in_shape = _shape(tf, inp)
    # The parity check and the emitted runner feed one image of its own size per call.
    problem = graph_io.image_input_problem(in_shape)
    if problem:
        raise MigrateInputError(f"{source}: input {input_tensor!r} {problem}")
    found: list[TensorInfo] = []
    missing: list[str] = []
    for key, name in wanted.items():
        t = get(name)
        if t is None:
            # Without --outputs the mask output is optional (box-only detectors have none).
            if outputs is None and key == MASKS:
                continue
            missing.append(f"{key}={name}")
            continue
        found.append(TensorInfo(key=key, tensor=name, dtype=t.dtype.name, shape=_shape(tf, t)))
    if missing:
        raise MigrateInputError(f"{source}: tensors not in the graph: {', '.join(missing)} "
                                "(name them with --outputs KEY=TENSOR)")
    absent = [k for k in RUNNER_KEYS if k not in {o.key for o in found}]
    if absent:
        raise MigrateInputError(f"the runner needs outputs {', '.join(absent)}; map them with "
                                f"--outputs {absent[0]}=TENSOR_NAME")
    return GraphPlan(graph_def=graph_def, source=source, kind=kind,
                     input=TensorInfo(key=TF2_INPUT_KEY, tensor=input_tensor, dtype=inp.dtype.name,
                                      shape=in_shape),
                     outputs=found)


def save_saved_model(p: GraphPlan, export_dir: Path) -> None:
    """Write ``export_dir`` as a TF2 SavedModel whose ``serving_default`` runs the pruned legacy graph."""
    import tensorflow as tf

    graph_def = p.graph_def

    def _import() -> None:
        tf.compat.v1.import_graph_def(graph_def, name="")

    wrapped = tf.compat.v1.wrap_function(_import, [])
    g = wrapped.graph
    pruned = wrapped.prune(
        feeds=[g.as_graph_element(p.input.tensor)],
        fetches={o.key: g.as_graph_element(o.tensor) for o in p.outputs},
    )
    in_dtype = tf.as_dtype(p.input.dtype)
    batch = 1 if p.batch_one else None
    shape = [batch, None, None, 3]
    if p.input.shape is not None:
        shape = [batch if p.input.shape[0] is None else p.input.shape[0], p.input.shape[1],
                 p.input.shape[2], 3]

    class Migrated(tf.Module):
        """The legacy graph behind a TF2 Object Detection API style signature, callable like a TF2 export.

        One ``tf.function`` is both ``__call__`` (the TF2 tutorial's ``detect_fn(input_tensor)``, as the
        TF2 OD API's ``DetectionInferenceModule``) and the ``serving_default`` signature: one traced graph
        in the SavedModel, the same outputs by the same keys either way.
        """

        def __init__(self, fn: Any) -> None:
            super().__init__()
            self._fn = fn

        @tf.function(input_signature=[tf.TensorSpec(shape, tf.uint8, name=TF2_INPUT_KEY)])
        def __call__(self, input_tensor: Any) -> dict[str, Any]:
            x = input_tensor if in_dtype == tf.uint8 else tf.cast(input_tensor, in_dtype)
            outs = self._fn(x)
            return {k: tf.identity(v, name=k) for k, v in outs.items()}

    module = Migrated(pruned)
    tf.saved_model.save(module, str(export_dir),
                        signatures={"serving_default": module.__call__.get_concrete_function()})


def run_legacy(p: GraphPlan, images: Sequence[Any]) -> list[dict[str, Any]]:
    """Outputs of the legacy graph in a TF1 Session, one image per run (the reference)."""
    import tensorflow as tf

    graph = tf.Graph()
    with graph.as_default():
        tf.graph_util.import_graph_def(p.graph_def, name="")
    fetches = {o.key: graph.get_tensor_by_name(o.tensor) for o in p.outputs}
    feed = graph.get_tensor_by_name(p.input.tensor)
    graph.finalize()
    results = []
    with tf.compat.v1.Session(graph=graph) as sess:
        for img in images:
            results.append(sess.run(fetches, {feed: img[None].astype(feed.dtype.as_numpy_dtype)}))
    return results


def run_migrated(export_dir: Path, images: Sequence[Any]) -> list[dict[str, Any]]:
    """Outputs of the migrated SavedModel's ``serving_default``, one image per call."""
    import tensorflow as tf

    fn = tf.saved_model.load(str(export_dir)).signatures["serving_default"]
    return [{k: v.numpy() for k, v in fn(**{TF2_INPUT_KEY: tf.constant(img[None])}).items()}
            for img in images]


def compare(reference: Sequence[Mapping[str, Any]], migrated: Sequence[Mapping[str, Any]],
            tolerance: float) -> dict[str, Any]:
    """Largest absolute difference per output over all images; None where shapes differ."""
    import numpy as np

    worst: dict[str, Optional[float]] = {}
    problems: list[str] = []
    for i, (ref, mig) in enumerate(zip(reference, migrated)):
        for key, a in ref.items():
            b = mig.get(key)
            if b is None:
                problems.append(f"image {i}: output {key} missing")
                worst[key] = None
                continue
            a, b = np.asarray(a), np.asarray(b)
            if a.shape != b.shape:
                problems.append(f"image {i}: {key} shape {list(a.shape)} vs {list(b.shape)}")
                worst[key] = None
                continue
            d = float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))) if a.size else 0.0
            if key not in worst or (worst[key] is not None and d > worst[key]):  # type: ignore[operator]
                worst[key] = d
    passed = bool(worst) and not problems and all(d is not None and d <= tolerance for d in worst.values())
    return {"images": len(reference), "tolerance": tolerance, "max_abs_diff": worst,
            "passed": passed, "problems": problems}
