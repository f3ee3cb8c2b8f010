"""Load a TF1 Object Detection API export (frozen graph or TF1 SavedModel) and check its tensors.

Public API:

- ``load_model(path, *, outputs=None) -> LoadedModel``: the one loader. ``path`` is a
  ``frozen_inference_graph.pb``, a SavedModel directory (``saved_model.pb`` inside), the
  ``saved_model.pb`` file itself, or an OD API export directory (``frozen_inference_graph.pb``
  preferred, else ``saved_model/``). SavedModel variables are frozen into constants so every caller
  gets one self-contained ``GraphDef``. Without ``outputs`` the graph must have the OD API tensors
  (:mod:`oddoctor_legacy_tf1.names`); with ``outputs`` (other tensor names) it is taken as it is.
- ``loaded_model(model) -> LoadedModel``: a ``LoadedModel`` as is, a path through ``load_model``.
- ``validate_graph_def(graph_def) -> tuple[str, ...]``: the OD API output tensors it has.
- ``import_model(model, graph=None) -> tf.Graph``: import the ``GraphDef`` with ``name=""``
  so the standard names (``image_tensor:0``...) resolve.
- ``resolve_model(path) -> (path, kind)``: what ``load_model`` will read, without TensorFlow: a FIFO, a
  device or a file past protobuf's 2 GiB limit is refused here, before anything blocks or fills memory.
- ``image_input_problem(shape) -> str | None``: why an input of this shape cannot take one uint8 image of
  any size per call (a fixed height or width, a batch other than 1, not 3 channels), or None.
- ``one_line(text)``: a name or a TensorFlow error made safe for a one-line message (control characters
  escaped, not cut at the first newline; capped).
- ``ModelError``: every "this file cannot be used" case, one line, meant to become exit 2.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Union

from oddoctor_legacy_tf1._tfutil import quiet_deprecations
from oddoctor_legacy_tf1.names import ALL_OUTPUTS, INPUT_TENSOR, MASK_OUTPUT, REQUIRED_OUTPUTS

# Ops that end a branch without being a model output.
_NOT_OUTPUT_OPS = {"NoOp", "Const", "Assert", "Placeholder", "PlaceholderWithDefault", "VarHandleOp",
                   "VariableV2", "SaveV2", "RestoreV2", "MergeV2Checkpoints", "AssignVariableOp"}
_LIST_LIMIT = 8
MAX_GRAPH_BYTES = 2**31  # protobuf cannot parse a message past 2 GiB: a larger "GraphDef" is something else
_ONE_LINE_LIMIT = 300
_CONTROL = {c: f"\\x{c:02x}" for c in [*range(0x20), *range(0x7F, 0xA0)]}
_CONTROL.update({0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t"})


class ModelError(Exception):
    """The model cannot be used: missing, not a GraphDef/SavedModel, or without the OD API tensors."""


@dataclass(frozen=True)
class LoadedModel:
    """A model ready to import: a frozen ``GraphDef`` plus what was found in it."""

    graph_def: Any
    path: Path
    kind: str  # "frozen_graph" or "saved_model"
    outputs: tuple[str, ...]  # the OD API output tensors present (ALL_OUTPUTS order), or those asked for

    @property
    def has_masks(self) -> bool:
        return MASK_OUTPUT in self.outputs

    @property
    def node_count(self) -> int:
        return len(self.graph_def.node)


ModelLike = Union[str, "os.PathLike[str]", LoadedModel]


def one_line(text: object, limit: int = _ONE_LINE_LIMIT) -> str:
    """``text`` on one line: control characters escaped (a node name may hold a newline), at most ``limit``
    characters (TensorFlow's errors can quote a whole graph)."""
    flat = str(text).strip().translate(_CONTROL)
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _error_text(e: BaseException) -> str:
    return one_line(e) if str(e).strip() else type(e).__name__


def _regular_file(path: Path, what: str) -> None:
    """Refuse what reading would block on (a FIFO), never end (a device) or cannot hold (> 2 GiB)."""
    try:
        st = path.stat()
    except OSError as e:
        raise ModelError(f"{path}: cannot read: {e.strerror or e}") from None
    if not stat.S_ISREG(st.st_mode):
        raise ModelError(f"{path}: not a regular file (a FIFO or a device); expected {what}")
    if st.st_size > MAX_GRAPH_BYTES:
        raise ModelError(f"{path}: {st.st_size / 2**30:.1f} GiB is past protobuf's 2 GiB limit: not {what}")


def resolve_model(path: str | os.PathLike[str]) -> tuple[Path, str]:
    """Map what the user passed to (file or directory, kind); :class:`ModelError` for what cannot be read."""
    path = Path(path)
    if not path.exists():
        raise ModelError(f"{path}: no such file or directory")
    if path.is_dir():
        if (path / "frozen_inference_graph.pb").is_file():
            where, kind = path / "frozen_inference_graph.pb", "frozen_graph"
        elif (path / "saved_model.pb").is_file() or (path / "saved_model.pbtxt").is_file():
            where, kind = path, "saved_model"
        elif (path / "saved_model" / "saved_model.pb").is_file():
            where, kind = path / "saved_model", "saved_model"
        else:
            raise ModelError(f"{path}: directory holds neither frozen_inference_graph.pb nor a SavedModel "
                             "(saved_model.pb)")
    elif path.name == "saved_model.pb":
        where, kind = path.parent, "saved_model"
    else:
        where, kind = path, "frozen_graph"
    if kind == "frozen_graph":
        _regular_file(where, "a TensorFlow GraphDef (.pb)")
    else:
        pb = where / "saved_model.pb"
        if not pb.exists() and (where / "saved_model.pbtxt").exists():
            pb = where / "saved_model.pbtxt"
        _regular_file(pb, "a SavedModel's saved_model.pb")
    return where, kind


def image_input_problem(shape: Optional[Sequence[Optional[int]]]) -> Optional[str]:
    """Why an image input of ``shape`` cannot be fed one uint8 HxWx3 image of any size per call, or None.

    Both ``leak-test`` and ``migrate`` feed images of several sizes, one at a time (the tutorial loop does
    too): a fixed height or width fails at the first image with "Cannot feed value of shape".
    """
    if shape is None:
        return None
    dims = list(shape)
    if len(dims) != 4:
        return f"has shape {dims}; expected [batch, height, width, 3]"
    if dims[1] is not None or dims[2] is not None:
        return (f"has a fixed image size {dims[1]}x{dims[2]} (shape {dims}); images of any size are fed "
                "one at a time, so export the model with a variable input size ([1, None, None, 3] or "
                "[None, None, None, 3])")
    if dims[0] not in (None, 1):
        return f"has a fixed batch of {dims[0]} (shape {dims}); images are fed one at a time (batch 1)"
    if dims[3] not in (None, 3):
        return f"has {dims[3]} channels (shape {dims}); expected 3 (RGB)"
    return None


def placeholder_shape(graph_def: Any, tensor: str = INPUT_TENSOR) -> Optional[list[Optional[int]]]:
    """The declared shape of a placeholder in ``graph_def`` (None: unknown rank or no such placeholder)."""
    name = tensor.split(":")[0]
    for node in graph_def.node:
        if node.name == name and node.op in ("Placeholder", "PlaceholderWithDefault") and "shape" in node.attr:
            shape = node.attr["shape"].shape
            if shape.unknown_rank:
                return None
            return [None if d.size < 0 else int(d.size) for d in shape.dim]
    return None


def _read_graph_def(where: Path, kind: str, freeze: Sequence[str]) -> Any:
    """The ``GraphDef`` at ``where``: parsed from a frozen graph, or a SavedModel's with its variables
    frozen into constants for the ``freeze`` tensors."""
    if kind == "saved_model":
        return _freeze_saved_model(where, freeze)
    from google.protobuf.message import DecodeError
    from tensorflow.core.framework import graph_pb2

    try:
        with open(where, "rb") as f:
            data = f.read(MAX_GRAPH_BYTES + 1)
    except OSError as e:
        raise ModelError(f"{where}: cannot read: {e.strerror or e}") from None
    if not data:
        raise ModelError(f"{where}: empty file, not a TensorFlow GraphDef")
    gd = graph_pb2.GraphDef()
    try:
        gd.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError):
        gd = None
    # Protobuf parsing is lenient: random bytes can decode into an "empty" message with unknown
    # fields, so a GraphDef also needs nodes that name an op.
    if gd is None or not gd.node or any(not n.op for n in gd.node):
        raise ModelError(f"{where}: not a TensorFlow GraphDef (.pb) or SavedModel; expected an Object "
                         "Detection API export such as frozen_inference_graph.pb")
    return gd


def _freeze_saved_model(directory: Path, output_names: Sequence[str]) -> Any:
    import tensorflow as tf

    v1 = tf.compat.v1
    graph = tf.Graph()
    try:
        with quiet_deprecations(tf), graph.as_default(), v1.Session(graph=graph) as sess:
            v1.saved_model.loader.load(sess, [v1.saved_model.tag_constants.SERVING], str(directory))
            gd = graph.as_graph_def()
            present = {op.name for op in graph.get_operations()}
            outputs = [n.split(":")[0] for n in output_names if n.split(":")[0] in present]
            if v1.global_variables() and outputs:
                gd = v1.graph_util.convert_variables_to_constants(sess, gd, outputs)
    except (OSError, RuntimeError, ValueError, tf.errors.OpError) as e:
        raise ModelError(f"{directory}: cannot load as a TF1 SavedModel with tag 'serve': {_error_text(e)}") from None
    return gd


def _describe(graph_def: Any) -> tuple[list[str], list[str]]:
    """Tensors that look like inputs (placeholders) and outputs (consumed by nothing)."""
    consumed = set()
    for node in graph_def.node:
        for inp in node.input:
            consumed.add(inp.lstrip("^").split(":")[0])
    inputs = []
    for node in graph_def.node:
        if node.op in ("Placeholder", "PlaceholderWithDefault"):
            dtype = node.attr["dtype"].type if "dtype" in node.attr else 0
            inputs.append(f"{one_line(node.name)}:0 ({_dtype_name(dtype)})")
    outputs = [f"{one_line(n.name)}:0" for n in graph_def.node
               if n.name not in consumed and n.op not in _NOT_OUTPUT_OPS]
    return inputs, outputs


def _dtype_name(enum_value: int) -> str:
    names = {1: "float32", 2: "float64", 3: "int32", 4: "uint8", 7: "string", 9: "int64", 10: "bool"}
    return names.get(enum_value, f"dtype {enum_value}")


def _short(items: list[str]) -> str:
    if not items:
        return "none"
    more = f", ... (+{len(items) - _LIST_LIMIT} more)" if len(items) > _LIST_LIMIT else ""
    return ", ".join(items[:_LIST_LIMIT]) + more


def validate_graph_def(graph_def: Any, source: str = "model") -> tuple[str, ...]:
    """Return the OD API outputs present; raise ``ModelError`` naming what is missing and what is there."""
    names = {n.name for n in graph_def.node}
    missing = [t for t in (INPUT_TENSOR, *REQUIRED_OUTPUTS) if t.split(":")[0] not in names]
    if missing:
        inputs, outputs = _describe(graph_def)
        hint = ""
        if any(n.op == "StatefulPartitionedCall" for n in graph_def.node):
            hint = " (this looks like a TF2 SavedModel: load it with tf.saved_model.load, no Session loop needed)"
        raise ModelError(
            f"{source}: not an Object Detection API export: missing {', '.join(missing)}; "
            f"inputs it has: {_short(inputs)}; outputs it has: {_short(outputs)}{hint}")
    return tuple(t for t in ALL_OUTPUTS if t.split(":")[0] in names)


def load_model(path: str | os.PathLike[str], *, outputs: Optional[Sequence[str]] = None) -> LoadedModel:
    """Load a TF1 export; raise ``ModelError`` (one line) when it cannot be used.

    Without ``outputs``: an OD API export, validated (``validate_graph_def``); ``LoadedModel.outputs``
    are the OD API output tensors it has. ``outputs`` names other output tensors (a graph without the
    OD API names): a SavedModel's variables are then frozen for those, and checking that the graph has
    them is left to the caller.
    """
    where, kind = resolve_model(path)
    graph_def = _read_graph_def(where, kind, ALL_OUTPUTS if outputs is None else outputs)
    found = validate_graph_def(graph_def, str(where)) if outputs is None else tuple(outputs)
    return LoadedModel(graph_def=graph_def, path=where, kind=kind, outputs=found)


def loaded_model(model: ModelLike) -> LoadedModel:
    """``model`` itself if it is a ``LoadedModel``, else the OD API export at that path (``load_model``)."""
    return model if isinstance(model, LoadedModel) else load_model(Path(model))


def import_model(model: LoadedModel | Any, graph: Any = None) -> Any:
    """Import the model's ``GraphDef`` (``name=""``) into ``graph`` (a new ``tf.Graph`` by default)."""
    import tensorflow as tf

    graph_def = model.graph_def if isinstance(model, LoadedModel) else model
    where = f"{model.path}: " if isinstance(model, LoadedModel) else ""
    graph = graph if graph is not None else tf.Graph()
    with graph.as_default():
        try:
            tf.graph_util.import_graph_def(graph_def, name="")
        except (ValueError, TypeError, tf.errors.OpError) as e:
            raise ModelError(f"{where}cannot import the graph: {_error_text(e)}") from None
    return graph
