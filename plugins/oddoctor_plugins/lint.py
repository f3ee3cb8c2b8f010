"""The built-in lint rules of `oddoctor lint` (no checks): per-item Sessions, graph ops and model loads, and more.

Each rule is a pure function of one module of the linted tree (:class:`oddoctor.lint.project.ModuleInfo`), which
knows its calls, their canonical names (``tf.Session`` for every spelling) and whether they run once per item.
Importing this module is cheap (``ast`` and ``re``): ``oddoctor check`` loads it too, and finds no checks here.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from typing import Optional

from oddoctor import hookimpl
from oddoctor.lint.api import Hit, LintRule, lint_rule
from oddoctor.lint.names import terminal
from oddoctor.lint.project import CallSite, Func, ModuleInfo, item_loop, model_loop

SESSIONS = frozenset({"tf.Session", "tf.InteractiveSession"})
LOADS = frozenset({"tf.import_graph_def", "tf.saved_model.load", "tf.saved_model.loader.load", "tf.saved_model.load_v2",
                   "tf.keras.models.load_model", "tf.keras.saving.load_model", "hub.load", "hub.KerasLayer",
                   "tf.train.import_meta_graph"})
# Loads into the default graph (TF1, or Keras on a TF1 session): each adds the whole model to it again.
DEFAULT_GRAPH_LOADS = frozenset({"tf.import_graph_def", "tf.saved_model.loader.load", "tf.train.import_meta_graph",
                                 "tf.keras.models.load_model"})
RESETS = frozenset({"tf.reset_default_graph", "tf.keras.backend.clear_session"})
OD_API_OPS = frozenset({"reframe_box_masks_to_image_masks"})
# tf.<namespace>.* calls that add ops to the graph.
OP_NAMESPACES = frozenset({"image", "math", "nn", "strings", "linalg", "signal", "sparse", "random", "bitwise",
                           "ragged"})
# tf.<lowercase> calls that do not add ops (or are reported by another rule).
NOT_OPS = frozenset({"get_default_graph", "reset_default_graph", "get_default_session", "executing_eagerly",
                     "enable_eager_execution", "disable_eager_execution", "disable_v2_behavior", "enable_v2_behavior",
                     "device", "name_scope", "variable_scope", "control_dependencies", "function", "make_tensor_proto",
                     "make_ndarray", "get_logger", "import_graph_def", "get_collection", "global_variables",
                     "trainable_variables", "set_random_seed", "get_variable_scope", "is_tensor", "as_dtype",
                     "get_static_value", "autograph", "load_op_library", "load_library", "TensorSpec",
                     "global_variables_initializer", "local_variables_initializer", "tables_initializer",
                     "numpy_function", "py_function", "py_func"})
OP_CLASSES = frozenset({"Variable"})
FIX_DETECTOR = ("Build the graph and the Session once, reuse them per item: `from oddoctor_legacy_tf1 import "
                "LegacyDetector`; `det = LegacyDetector('frozen_inference_graph.pb')` once, `det(image)` per item "
                "(or the TF2 runner `oddoctor migrate` writes)")


def is_graph_op(site: CallSite) -> bool:
    """Whether the call adds an op to the graph (``tf.squeeze``, ``tf.image.resize``, the OD API's reframe)."""
    if terminal(site.node.func) in OD_API_OPS:
        return True
    name = site.name
    if not name or not name.startswith("tf."):
        return False
    parts = name.split(".")
    if len(parts) == 2:
        leaf = parts[1]
        return leaf in OP_CLASSES or (leaf[:1].islower() and leaf not in NOT_OPS)
    if parts[1] == "io":
        return parts[2].startswith(("decode_", "encode_", "parse_"))
    return parts[1] in OP_NAMESPACES


def _is_load(mod: ModuleInfo, site: CallSite) -> bool:
    if site.name in LOADS:
        return True
    # graph_def.ParseFromString(f.read()) of a frozen graph: a load, unless import_graph_def (reported) follows.
    # Only a GraphDef's: other protos (configs, events) parse in microseconds.
    if terminal(site.node.func) != "ParseFromString" or not isinstance(site.node.func, ast.Attribute):
        return False
    receiver = ast.unparse(site.node.func.value)
    is_graph_def = "graph" in receiver.lower() or any(
        (s.name or "").endswith("GraphDef") and s.target is not None and ast.unparse(s.target) == receiver
        for s in mod.calls_in(site.func))
    return is_graph_def and not any(s.name == "tf.import_graph_def" for s in mod.calls_in(site.func))


@lint_rule(
    tensorflow_only=True,
    id="lint.session-per-item",
    title="A new Session for every item",
    why="Each Session allocates its own memory and state; made per image/frame/request it leaks and crawls",
    fix=FIX_DETECTOR,
    bad="""import tensorflow.compat.v1 as tf

for image in images:
    with tf.Session(graph=graph) as sess:
        out = sess.run(fetches, feed_dict={inp: image})
""",
    good="""import tensorflow.compat.v1 as tf

sess = tf.Session(graph=graph, config=tf.ConfigProto(gpu_options=tf.GPUOptions(allow_growth=True)))
for image in images:
    out = sess.run(fetches, feed_dict={inp: image})
""",
)
def session_per_item(mod: ModuleInfo) -> Iterator[Hit]:
    for site in mod.calls:
        if site.name in SESSIONS:
            why = mod.per_item(site)
            if why:
                yield Hit(site.node, f"new {site.name} per item: {why}")


@lint_rule(
    tensorflow_only=True,
    id="lint.graph-op-per-item",
    title="Graph ops built for every item",
    why="In a TF1 graph every op constructor adds nodes that are never freed: the graph grows by each item",
    fix="Build these ops once, next to the graph (image size from tf.shape of the input, not Python ints), then only "
        "sess.run per item: `from oddoctor_legacy_tf1 import LegacyDetector` does this for OD API exports",
    bad="""import tensorflow.compat.v1 as tf

for image in images:
    boxes = tf.squeeze(detection_boxes, [0])
    out = sess.run(boxes, feed_dict={inp: image})
""",
    good="""import tensorflow.compat.v1 as tf

boxes = tf.squeeze(detection_boxes, [0])
for image in images:
    out = sess.run(boxes, feed_dict={inp: image})
""",
)
def graph_op_per_item(mod: ModuleInfo) -> Iterator[Hit]:
    for site in mod.calls:
        if is_graph_op(site) and mod.builds_graph(site):
            why = mod.per_item(site)
            if why:
                what = site.name or terminal(site.node.func)
                yield Hit(site.node, f"`{what}` adds ops to the graph per item: {why}")


@lint_rule(
    tensorflow_only=True,
    id="lint.model-load-per-item",
    title="A model loaded for every item",
    why="Loading a model per request/frame re-reads and re-builds it each time (seconds), and in TF1 grows the graph",
    fix="Load the model once at start-up (module level, __init__, or an app factory) and reuse it per item; for a "
        "frozen graph: `from oddoctor_legacy_tf1 import LegacyDetector`",
    bad="""import tensorflow as tf

@app.route("/predict", methods=["POST"])
def predict():
    model = tf.saved_model.load("exported/saved_model")
    return model(read_image(request))
""",
    good="""import tensorflow as tf

model = tf.saved_model.load("exported/saved_model")

@app.route("/predict", methods=["POST"])
def predict():
    return model(read_image(request))
""",
)
def model_load_per_item(mod: ModuleInfo) -> Iterator[Hit]:
    for site in mod.calls:
        if _is_load(mod, site):
            why = mod.per_item(site)
            if why:
                what = site.name or terminal(site.node.func)
                yield Hit(site.node, f"`{what}` loads a model per item: {why}")


def _closed_names(mod: ModuleInfo, func: Optional[Func]) -> set[str]:
    node = func.node if func else mod.src.tree
    names: set[str] = set()
    for n in ast.walk(node) if node is not None else ():
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "close":
            names.add(ast.unparse(n.func.value))
        elif isinstance(n, (ast.Return, ast.Yield)) and n.value is not None:  # handed to the caller
            values = n.value.elts if isinstance(n.value, ast.Tuple) else [n.value]
            names.update(ast.unparse(v) for v in values if isinstance(v, (ast.Name, ast.Attribute)))
        elif isinstance(n, ast.With):
            names.update(ast.unparse(i.context_expr) for i in n.items)
    return names


@lint_rule(
    tensorflow_only=True,
    id="lint.session-not-closed",
    title="A Session that is never closed",
    why="A Session holds its GPU memory and thread pools until closed; one made in a function and dropped leaks them",
    fix="Use `with tf.Session(...) as sess:`, call `sess.close()` when done, or keep one Session for the process",
    bad="""import tensorflow.compat.v1 as tf

def evaluate(graph, batches):
    sess = tf.Session(graph=graph, config=config)
    return [sess.run(fetch, {inp: b}) for b in batches]
""",
    good="""import tensorflow.compat.v1 as tf

def evaluate(graph, batches):
    with tf.Session(graph=graph, config=config) as sess:
        return [sess.run(fetch, {inp: b}) for b in batches]
""",
)
def session_not_closed(mod: ModuleInfo) -> Iterator[Hit]:
    for site in mod.calls:
        if site.name not in SESSIONS or site.with_item or site.func is None:
            continue
        if site.func.name in ("__init__", "__enter__", "setup", "setUp", "_load", "load") or site.func.name.startswith(
                ("load", "_load", "build", "_build", "create", "_create", "make", "_make", "get_", "_get_", "open")):
            continue
        target = site.target
        if target is None:
            yield Hit(site.node, f"{site.name} made and dropped in `{site.func.qualname}`: never closed")
            continue
        if isinstance(target, ast.Attribute) or (isinstance(target, ast.Name) and target.id in _globals(site.func)):
            continue  # kept on an object or module: its owner's lifetime
        name = ast.unparse(target)
        if name not in _closed_names(mod, site.func):
            yield Hit(site.node, f"`{name} = {site.name}(...)` in `{site.func.qualname}` is never closed")


def _globals(func: Func) -> set[str]:
    return {n for g in ast.walk(func.node) if isinstance(g, (ast.Global, ast.Nonlocal)) for n in g.names}


@lint_rule(
    tensorflow_only=True,
    id="lint.reload-without-reset",
    title="Models loaded one after another into the same default graph",
    why="Each load adds the whole model to the default graph again; without reset_default_graph it only grows",
    fix="Load each model into its own `tf.Graph()` (`with graph.as_default():`), or call "
        "`tf.compat.v1.reset_default_graph()` (Keras: `tf.keras.backend.clear_session()`) before each load",
    bad="""import tensorflow.compat.v1 as tf

for model_path in model_paths:
    graph_def = read_graph_def(model_path)
    tf.import_graph_def(graph_def, name="")
    evaluate(tf.get_default_graph())
""",
    good="""import tensorflow.compat.v1 as tf

for model_path in model_paths:
    tf.reset_default_graph()
    graph_def = read_graph_def(model_path)
    tf.import_graph_def(graph_def, name="")
    evaluate(tf.get_default_graph())
""",
)
def reload_without_reset(mod: ModuleInfo) -> Iterator[Hit]:
    for site in mod.calls:
        if site.name not in DEFAULT_GRAPH_LOADS or site.in_default_graph:
            continue
        loop = model_loop(site.loops)
        if loop is None or item_loop(site.loops) is not None:
            continue
        if any(s.name in RESETS and loop in s.loops for s in mod.calls):
            continue
        where = mod.where(getattr(loop, "lineno", 0) or site.node.lineno)
        yield Hit(site.node, f"`{site.name}` in a loop over models ({where}) with no reset_default_graph / "
                             "clear_session in it")


def _config_arg(site: CallSite) -> Optional[ast.expr]:
    for k in site.node.keywords:
        if k.arg == "config":
            return k.value
        if k.arg is None:  # **kwargs: cannot tell
            return ast.Constant(None)
    return site.node.args[2] if len(site.node.args) > 2 else None


def _sets_gpu_memory(mod: ModuleInfo) -> bool:
    text = mod.text
    return any(w in text for w in ("allow_growth", "per_process_gpu_memory_fraction", "TF_FORCE_GPU_ALLOW_GROWTH",
                                   "set_memory_growth", "set_virtual_device_configuration",
                                   "set_logical_device_configuration"))


@lint_rule(
    tensorflow_only=True,
    id="lint.gpu-session-config",
    title="A Session without GPU memory options",
    why="Without allow_growth or a memory fraction a TF1 Session maps almost all GPU memory at once, starving others",
    fix="Pass `config=tf.compat.v1.ConfigProto(gpu_options=tf.compat.v1.GPUOptions(allow_growth=True))` (or "
        "`per_process_gpu_memory_fraction=0.4`), or set TF_FORCE_GPU_ALLOW_GROWTH=true",
    bad="""import tensorflow.compat.v1 as tf

sess = tf.Session(graph=graph)
for image in images:
    out = sess.run(fetches, feed_dict={inp: image})
""",
    good="""import tensorflow.compat.v1 as tf

config = tf.ConfigProto(gpu_options=tf.GPUOptions(allow_growth=True))
sess = tf.Session(graph=graph, config=config)
for image in images:
    out = sess.run(fetches, feed_dict={inp: image})
""",
)
def gpu_session_config(mod: ModuleInfo) -> Iterator[Hit]:
    if _sets_gpu_memory(mod):
        return
    for site in mod.calls:
        if site.name not in SESSIONS:
            continue
        if site.with_item and mod.per_item(site) is None:
            continue  # a short-lived `with Session()` that builds or freezes a graph, not a serving Session
        config = _config_arg(site)
        if config is None:
            yield Hit(site.node, f"{site.name} without config: it maps nearly all GPU memory")
        elif isinstance(config, ast.Call) and mod.canonical_of(config.func) == "tf.ConfigProto":
            yield Hit(site.node, f"{site.name} with a ConfigProto that sets neither allow_growth nor a memory fraction")
        elif isinstance(config, ast.Name) and any(
                s.name == "tf.ConfigProto" and isinstance(s.target, ast.Name) and s.target.id == config.id
                for s in mod.calls):
            yield Hit(site.node, f"{site.name} with a ConfigProto (`{config.id}`) that sets neither allow_growth "
                                 "nor a memory fraction")


def _fraction_values(mod: ModuleInfo) -> Iterator[tuple[ast.AST, ast.expr]]:
    if "per_process_gpu_memory_fraction" not in mod.text:
        return
    tree = mod.src.tree
    for n in ast.walk(tree) if tree is not None else ():
        if isinstance(n, ast.Call):
            for k in n.keywords:
                if k.arg == "per_process_gpu_memory_fraction":
                    yield k.value, k.value
        elif isinstance(n, ast.Assign):
            for t in n.targets:
                if isinstance(t, ast.Attribute) and t.attr == "per_process_gpu_memory_fraction":
                    yield n, n.value


def _number(node: ast.expr) -> Optional[float]:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        v = _number(node.operand)
        return -v if v is not None else None
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return float(node.value)
    return None


@lint_rule(
    tensorflow_only=True,
    id="lint.gpu-memory-fraction",
    title="per_process_gpu_memory_fraction outside (0, 1]",
    why="0 or less means 'no limit' (all memory), above 1 turns on unified memory and oversubscribes the GPU",
    fix="Use a fraction in (0, 1], e.g. `per_process_gpu_memory_fraction=0.4`, or allow_growth=True instead",
    bad="""import tensorflow.compat.v1 as tf

gpu_options = tf.GPUOptions(per_process_gpu_memory_fraction=40)
""",
    good="""import tensorflow.compat.v1 as tf

gpu_options = tf.GPUOptions(per_process_gpu_memory_fraction=0.4)
""",
)
def gpu_memory_fraction(mod: ModuleInfo) -> Iterator[Hit]:
    for node, value in _fraction_values(mod):
        v = _number(value)
        if v is not None and not 0 < v <= 1:
            yield Hit(node, f"per_process_gpu_memory_fraction={v:g} is outside (0, 1]")


@lint_rule(
    tensorflow_only=True,
    id="lint.tf-function-per-item",
    title="tf.function created for every item",
    why="Each new tf.function traces its Python body into a new graph: made per item it retraces every time",
    fix="Define the tf.function once (module level or __init__) and call it per item",
    bad="""import tensorflow as tf

for image in images:
    detect = tf.function(model.signatures["serving_default"])
    out = detect(image)
""",
    good="""import tensorflow as tf

detect = tf.function(model.signatures["serving_default"])
for image in images:
    out = detect(image)
""",
)
def tf_function_per_item(mod: ModuleInfo) -> Iterator[Hit]:
    for site in mod.calls:
        if site.name == "tf.function":
            why = mod.per_item(site)
            if why:
                yield Hit(site.node, f"tf.function made per item: {why}")
    for f in mod.funcs.values():
        if not f.tf_function:
            continue
        loop = item_loop(f.loops)
        if loop is not None:
            yield Hit(f.node, f"@tf.function `{f.name}` defined in a loop ({mod.where(getattr(loop, 'lineno', 0))})")
        elif f.outer is not None and f.outer.per_item:
            yield Hit(f.node, f"@tf.function `{f.name}` defined in `{f.outer.qualname}`, which {f.outer.per_item}")


def _range_targets(site: CallSite) -> set[str]:
    names: set[str] = set()
    for loop in site.loops:
        if isinstance(loop, (ast.For, ast.comprehension)) and isinstance(loop.iter, ast.Call) and isinstance(
                loop.iter.func, ast.Name) and loop.iter.func.id in ("range", "enumerate"):
            names.update(n.id for n in ast.walk(loop.target) if isinstance(n, ast.Name))
    return names


@lint_rule(
    tensorflow_only=True,
    id="lint.tf-function-retracing",
    title="tf.function called with changing Python scalars",
    why="A tf.function without input_signature traces a new graph for every new Python value (and new shape)",
    fix="Pass tensors (`tf.constant(i)`), or give the tf.function an `input_signature=[tf.TensorSpec(...)]`",
    bad="""import tensorflow as tf

@tf.function
def step(x, scale):
    return x * scale

for i in range(1000):
    step(batch, i)
""",
    good="""import tensorflow as tf

@tf.function(input_signature=[tf.TensorSpec([None, 4]), tf.TensorSpec([])])
def step(x, scale):
    return x * scale

for i in range(1000):
    step(batch, i)
""",
)
def tf_function_retracing(mod: ModuleInfo) -> Iterator[Hit]:
    project = mod.project
    if project is None:
        return
    for site in mod.calls:
        if not site.loops:
            continue
        f = project.find_func(site.qualified, mod)
        if f is None or not f.tf_function or f.input_signature:
            continue
        scalars = _range_targets(site)
        args = [*site.node.args, *(k.value for k in site.node.keywords)]
        bad = [a for a in args if (isinstance(a, ast.Name) and a.id in scalars)]
        if bad:
            yield Hit(site.node, f"`{f.name}` is a tf.function called with loop counter `{ast.unparse(bad[0])}`: "
                                 "one new trace per value")


RULES: list[LintRule] = [session_per_item, graph_op_per_item, model_load_per_item, session_not_closed,
                         reload_without_reset, gpu_session_config, gpu_memory_fraction, tf_function_per_item,
                         tf_function_retracing]


@hookimpl
def oddoctor_lint_rules() -> list[LintRule]:
    return list(RULES)
