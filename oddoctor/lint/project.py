"""The linted tree as one program: each module's names, functions and calls, and which code runs per item.

Code runs *per item* (per image, frame or request) when it is inside a loop (one that does not iterate over
models: ``for path in model_paths`` swaps models, it does not serve items), or inside a function that is a
web request handler (Flask/FastAPI/Django/aiohttp/Socket.IO routes), a registered callback, a function that
handles one item (a parameter named ``image``, ``frame``, ...), or that is called from any of these, also
across files of the tree. Everything here is a pure function of the parsed source.
"""

from __future__ import annotations

import ast
import re
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Optional, Union

from oddoctor.lint.names import CONVENTIONAL_ROOTS, canonical, dotted, terminal
from oddoctor.lint.source import SourceFile

FuncNode = Union[ast.FunctionDef, ast.AsyncFunctionDef]
LoopNode = Union[ast.For, ast.AsyncFor, ast.While, ast.comprehension]

# A loop over these swaps models (or configs); it does not serve items.
_MODEL_LOOP = re.compile(r"model|ckpt|checkpoint|weight|graph|\.pb\b|saved|export", re.IGNORECASE)
# Parameters that hold one item: the function does one item's work.
_ITEM_PARAM = re.compile(
    r"^(input_|np_|rgb_|bgr_|raw_|cv_|pil_)?(image|img|frame|photo|picture|im)(_(np|array|arr|bgr|rgb|data|tensor))?$")
# Decorator methods that register a per-request handler: @app.route, @router.post, @sio.on, @routes.get...
_ROUTE_DECORATORS = frozenset({"route", "get", "post", "put", "delete", "patch", "head", "options", "api_route",
                               "websocket", "websocket_route", "on", "event", "middleware", "view"})
# Calls that register a function passed to them as a per-item handler or callback.
_REGISTER_CALL = re.compile(r"callback|handler|^add_(url_rule|get|post|put|delete|patch|route|api_route|"
                            r"websocket_route|view)$|^(path|re_path|url|Interface)$", re.IGNORECASE)
# Attributes that, assigned a function, register it as a per-item callback: picam2.pre_callback = draw.
_HOOK_ATTR = re.compile(r"callback|handler|^on_(frame|image|message|request|data)$", re.IGNORECASE)
_REGISTER_KEYWORDS = frozenset({"fn", "callback", "handler", "view_func", "endpoint", "on_frame", "process_frame"})
_DJANGO_METHODS = frozenset({"get", "post", "put", "patch", "delete"})

# Calls after which a graph exists and ops accumulate in it (TF1 style code).
GRAPH_MARKERS = frozenset({"tf.Session", "tf.InteractiveSession", "tf.Graph", "tf.GraphDef", "tf.import_graph_def",
                           "tf.placeholder", "tf.get_default_graph", "tf.disable_eager_execution",
                           "tf.disable_v2_behavior", "tf.train.import_meta_graph", "tf.saved_model.loader.load"})

# Calls that only make sense in eager TF2 code: ops next to them run eagerly and are freed.
EAGER_MARKERS = frozenset({"tf.saved_model.load", "hub.load", "hub.KerasLayer", "tf.executing_eagerly",
                           "tf.config.experimental.set_memory_growth", "tf.keras.models.load_model"})


@dataclass(eq=False)
class Func:
    module: ModuleInfo
    qualname: str  # "Detector.run", "predict", "outer.inner"
    node: FuncNode
    cls: Optional[str]
    outer: Optional[Func]
    loops: tuple[ast.AST, ...]  # loops (in the enclosing scope) the def statement sits in
    per_item: Optional[str] = None  # why it runs once per item
    tf_function: bool = False
    input_signature: bool = False
    nested: Optional[set[str]] = None  # names of defs nested in this one (computed on first use)

    @property
    def name(self) -> str:
        return self.node.name

    def params(self) -> list[str]:
        a = self.node.args
        names = [x.arg for x in [*a.posonlyargs, *a.args, *a.kwonlyargs]]
        return names[1:] if self.cls and names and names[0] in ("self", "cls") else names


@dataclass(eq=False)
class CallSite:
    node: ast.Call
    module: ModuleInfo
    name: Optional[str]  # canonical: "tf.Session"; None when unresolved
    qualified: Optional[str]  # before canonical(): "app.detect", "tensorflow.compat.v1.Session"
    func: Optional[Func]  # enclosing function; None at module level
    loops: tuple[ast.AST, ...]  # enclosing loops, innermost last, in the same scope
    in_default_graph: bool  # inside `with g.as_default()` or `with Session()`
    with_item: bool  # the call is a `with` item's context expression
    target: Optional[ast.expr] = None  # `x = call(...)`: x


@dataclass(eq=False)
class ModuleInfo:
    src: SourceFile
    aliases: dict[str, str] = field(default_factory=dict)  # local name -> dotted expression it stands for
    stars: list[str] = field(default_factory=list)  # modules star-imported
    funcs: dict[str, Func] = field(default_factory=dict)  # qualname -> Func
    top: set[str] = field(default_factory=set)  # names defined at module level (defs, classes)
    calls: list[CallSite] = field(default_factory=list)
    # `camera.pre_callback = on_frame`: (the function expression, the attribute, the statement's line, scope)
    hooks: list[tuple[ast.expr, str, int, Optional[Func]]] = field(default_factory=list)
    assumed: set[str] = field(default_factory=set)  # undefined roots taken as convention ("tf")
    bound: set[str] = field(default_factory=set)  # every parameter and assigned name, anywhere
    graph_mode: bool = False
    project: Optional[Project] = None
    _by_func: Optional[dict[int, list[CallSite]]] = None
    _text: Optional[str] = None

    @property
    def name(self) -> str:
        return self.src.module

    @property
    def text(self) -> str:
        """The module's source text (joined once)."""
        if self._text is None:
            self._text = "\n".join(self.src.lines)
        return self._text

    def package(self) -> str:
        return self.name if self.src.path.name == "__init__.py" else self.name.rpartition(".")[0]

    def where(self, line: int) -> str:
        cell, ln = self.src.place(line)
        return f"{self.src.display}[cell {cell}]:{ln}" if cell is not None else f"{self.src.display}:{ln}"

    # --- names -------------------------------------------------------------------------------------------
    def resolve_name(self, name: str, _seen: Optional[set[str]] = None) -> Optional[str]:
        seen = _seen if _seen is not None else set()
        key = f"{self.name}:{name}"
        if key in seen:
            return None
        seen.add(key)
        if name in self.aliases:
            value = self.aliases[name]
            root, _, rest = value.partition(".")
            if root == name or root not in self.aliases:
                return value
            base = self.resolve_name(root, seen)
            return f"{base}.{rest}" if base and rest else base
        if name in self.top:
            return f"{self.name}.{name}"
        if self.project is not None:
            for star in self.stars:
                got = self.project.star_lookup(star, name, self, seen)
                if got:
                    return got
        if name in CONVENTIONAL_ROOTS:
            if name not in self.bound:  # bound: a parameter `tf` is the module passed in, not a fragment
                self.assumed.add(name)
            return CONVENTIONAL_ROOTS[name]
        return None

    def resolve(self, node: ast.AST) -> Optional[str]:
        """The dotted name ``node`` stands for, through imports and aliases (None when unknown)."""
        d = dotted(node)
        if d is None:
            return None
        root, _, rest = d.partition(".")
        base = self.resolve_name(root)
        if base is None:
            return None
        return f"{base}.{rest}" if rest else base

    def canonical_of(self, node: ast.AST) -> Optional[str]:
        q = self.resolve(node)
        return canonical(q) if q else None

    # --- what rules ask ----------------------------------------------------------------------------------
    def per_item(self, site: CallSite) -> Optional[str]:
        """Why ``site`` runs once per item (in an item loop, or in a per-item function), or None."""
        loop = item_loop(site.loops)
        if loop is not None:
            return f"in a loop ({self.where(loop_line(loop))})"
        if site.func is not None and site.func.per_item:
            return f"in `{site.func.qualname}`, which {site.func.per_item}"
        return None

    def builds_graph(self, site: CallSite) -> bool:
        """Whether ``site`` runs where ops go into a long-lived graph (TF1 style), not eagerly or in a trace."""
        if site.in_default_graph:
            return True
        f = site.func
        while f is not None:
            if f.tf_function:
                return False  # traced once into its own graph
            f = f.outer
        names = {s.name for s in self.calls_in(site.func)} if site.func is not None else set()
        if names & GRAPH_MARKERS:
            return True
        if site.func is not None and (names & EAGER_MARKERS or any(
                isinstance(s.node.func, ast.Attribute) and s.node.func.attr == "numpy"
                for s in self.calls_in(site.func))):
            return False
        return self.graph_mode

    def calls_in(self, func: Optional[Func]) -> list[CallSite]:
        """The calls made directly in ``func`` (None: at module level)."""
        if self._by_func is None:
            self._by_func = {}
            for s in self.calls:
                self._by_func.setdefault(id(s.func), []).append(s)
        return self._by_func.get(id(func), [])


ModuleView = ModuleInfo  # what a rule's check() receives


def _is_loop_over_models(loop: ast.AST) -> bool:
    if not isinstance(loop, (ast.For, ast.AsyncFor, ast.comprehension)):
        return False
    verdict = getattr(loop, "_oddoctor_over_models", None)  # kept on the node: one unparse per loop, per tree
    if verdict is None:
        verdict = bool(_MODEL_LOOP.search(ast.unparse(loop.target) + " " + ast.unparse(loop.iter)))
        setattr(loop, "_oddoctor_over_models", verdict)  # noqa: B010 - an attribute ast does not declare
    return bool(verdict)


_LEAVES = (ast.expr_context, ast.operator, ast.boolop, ast.cmpop, ast.unaryop, ast.Constant, ast.alias)
_SESSION_WORDS = frozenset({"Session", "InteractiveSession"})


class _Collector:
    """One pass over a module: imports, aliases, defs and calls with their context (loops, functions, `with`).

    Names are resolved afterwards (:meth:`finish`), once every module's imports are known (star imports)."""

    def __init__(self, mod: ModuleInfo) -> None:
        self.mod = mod
        self.cls: Optional[str] = None
        self.targets: dict[int, ast.expr] = {}
        self.with_calls: set[int] = set()
        self.pending: list[tuple[ast.Call, Optional[Func], tuple[ast.AST, ...], bool]] = []
        self.funcs: list[Func] = []

    def run(self, tree: ast.Module) -> None:
        for stmt in tree.body:
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                self.mod.top.add(stmt.name)
        for stmt in tree.body:
            self.visit(stmt, None, (), False)

    def _import(self, node: ast.AST) -> None:
        mod = self.mod
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.asname:
                    mod.aliases[a.asname] = a.name
                else:
                    root = a.name.partition(".")[0]
                    mod.aliases.setdefault(root, root)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = mod.package().split(".") if mod.package() else []
                pkg = pkg[: len(pkg) - (node.level - 1)] if node.level > 1 else pkg
                base = ".".join([*pkg, base] if base else pkg)
            for a in node.names:
                if a.name == "*":
                    mod.stars.append(base)
                else:
                    mod.aliases[a.asname or a.name] = f"{base}.{a.name}" if base else a.name

    def visit(self, node: ast.AST, func: Optional[Func], loops: tuple[ast.AST, ...], in_default: bool) -> None:
        kind = node.__class__
        if kind is ast.Name:
            if isinstance(node.ctx, ast.Store):  # type: ignore[attr-defined]
                self.mod.bound.add(node.id)  # type: ignore[attr-defined]
            return
        if kind is ast.Attribute:
            value = node.value  # type: ignore[attr-defined]
            while value.__class__ is ast.Attribute:
                value = value.value
            if value.__class__ is not ast.Name:
                self.visit(value, func, loops, in_default)
            return
        if isinstance(node, _LEAVES):
            return
        if kind is ast.Call:
            self.pending.append((node, func, loops, in_default))  # type: ignore[arg-type]
        elif kind is ast.Assign:
            targets = node.targets  # type: ignore[attr-defined]
            value = node.value  # type: ignore[attr-defined]
            if value.__class__ is ast.Call:
                self.targets[id(value)] = targets[0]
            elif (value.__class__ in (ast.Name, ast.Attribute) and targets[0].__class__ is ast.Attribute
                  and _HOOK_ATTR.search(targets[0].attr)):
                self.mod.hooks.append((value, targets[0].attr, node.lineno, func))  # type: ignore[attr-defined]
            elif len(targets) == 1 and targets[0].__class__ is ast.Name:
                d = dotted(value)
                name = targets[0].id
                if d and d.partition(".")[0] != name and name not in self.mod.aliases:
                    self.mod.aliases[name] = d
        elif kind in (ast.Import, ast.ImportFrom):
            self._import(node)
            return
        elif kind in (ast.FunctionDef, ast.AsyncFunctionDef):
            self._def(node, func, loops, in_default)  # type: ignore[arg-type]
            return
        elif kind is ast.ClassDef:
            for d in [*node.decorator_list, *node.bases]:  # type: ignore[attr-defined]
                self.visit(d, func, loops, in_default)
            saved = self.cls
            self.cls = f"{saved}.{node.name}" if saved else node.name  # type: ignore[attr-defined]
            for stmt in node.body:  # type: ignore[attr-defined]
                self.visit(stmt, func, loops, in_default)
            self.cls = saved
            return
        elif kind in (ast.For, ast.AsyncFor):
            self.visit(node.iter, func, loops, in_default)  # type: ignore[attr-defined]
            self.visit(node.target, func, loops, in_default)  # type: ignore[attr-defined]
            inner = (*loops, node)
            for stmt in node.body:  # type: ignore[attr-defined]
                self.visit(stmt, func, inner, in_default)
            for stmt in node.orelse:  # type: ignore[attr-defined]
                self.visit(stmt, func, loops, in_default)
            return
        elif kind is ast.While:
            inner = (*loops, node)
            self.visit(node.test, func, inner, in_default)  # type: ignore[attr-defined]
            for stmt in node.body:  # type: ignore[attr-defined]
                self.visit(stmt, func, inner, in_default)
            for stmt in node.orelse:  # type: ignore[attr-defined]
                self.visit(stmt, func, loops, in_default)
            return
        elif kind in (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp):
            inner = loops
            for i, gen in enumerate(node.generators):  # type: ignore[attr-defined]
                self.visit(gen.iter, func, inner if i else loops, in_default)
                inner = (*inner, gen)
                self.visit(gen.target, func, inner, in_default)
                for cond in gen.ifs:
                    self.visit(cond, func, inner, in_default)
            elts = [node.key, node.value] if kind is ast.DictComp else [node.elt]  # type: ignore[attr-defined]
            for e in elts:
                self.visit(e, func, inner, in_default)
            return
        elif kind in (ast.With, ast.AsyncWith):
            opens_graph = in_default
            for item in node.items:  # type: ignore[attr-defined]
                ctx = item.context_expr
                if ctx.__class__ is ast.Call:
                    self.with_calls.add(id(ctx))
                    word = terminal(ctx.func)
                    if word == "as_default" or word in _SESSION_WORDS:
                        opens_graph = True
                self.visit(item, func, loops, in_default)
            for stmt in node.body:  # type: ignore[attr-defined]
                self.visit(stmt, func, loops, opens_graph)
            return
        elif kind is ast.ExceptHandler:
            # An except block runs on failure (a retry, a fallback), not once per item.
            for child in ast.iter_child_nodes(node):
                self.visit(child, func, (), in_default)
            return
        elif kind is ast.arg:
            self.mod.bound.add(node.arg)  # type: ignore[attr-defined]
            return
        for name in node._fields:  # ast.iter_child_nodes without its generator: the hot path of big trees
            sub: object = getattr(node, name, None)
            if sub.__class__ is list:
                for item in sub:  # type: ignore[attr-defined]
                    if isinstance(item, ast.AST):
                        self.visit(item, func, loops, in_default)
            elif isinstance(sub, ast.AST):
                self.visit(sub, func, loops, in_default)

    def _def(self, node: FuncNode, func: Optional[Func], loops: tuple[ast.AST, ...], in_default: bool) -> None:
        for d in node.decorator_list:
            self.visit(d, func, loops, in_default)
        a = node.args
        for d in [*a.defaults, *[k for k in a.kw_defaults if k is not None]]:
            self.visit(d, func, loops, in_default)
        for arg in [*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg]:
            if arg is not None:
                self.mod.bound.add(arg.arg)
        if func is not None:
            qual = f"{func.qualname}.{node.name}"
            outer: Optional[Func] = func
            while outer is not None:  # nested anywhere in it, for calls by bare name
                if outer.nested is None:
                    outer.nested = set()
                outer.nested.add(node.name)
                outer = outer.outer
        else:
            qual = f"{self.cls}.{node.name}" if self.cls else node.name
        f = Func(self.mod, qual, node, self.cls if func is None else None, func, loops)
        self.funcs.append(f)
        self.mod.funcs.setdefault(qual, f)
        saved, self.cls = self.cls, None
        for stmt in node.body:
            self.visit(stmt, f, (), False)
        self.cls = saved

    def finish(self) -> None:
        """Resolve every call and decorator, now that the tree's imports are known."""
        for f in self.funcs:
            self._tf_function(f)
        for node, func, loops, in_default in self.pending:
            self._call(node, func, loops, in_default)

    def _call(self, node: ast.Call, func: Optional[Func], loops: tuple[ast.AST, ...], in_default: bool) -> None:
        mod = self.mod
        qualified: Optional[str] = None
        callee = node.func
        d = dotted(callee)
        if d is not None:
            root, _, rest = d.partition(".")
            if root in ("self", "cls") and func is not None and rest and "." not in rest:
                owner = func
                while owner.outer is not None:
                    owner = owner.outer
                if owner.cls:
                    qualified = f"{mod.name}.{owner.cls}.{rest}"
            elif func is not None and not rest and _nested(func, root) is not None:
                qualified = f"{mod.name}.{_nested(func, root)}"
            else:
                qualified = mod.resolve(callee)
                if qualified is None and not rest:
                    qualified = root  # a builtin (print, open) or a name defined in a way we do not follow
        name = canonical(qualified) if qualified else None
        mod.calls.append(CallSite(node, mod, name, qualified, func, loops, in_default, id(node) in self.with_calls,
                                  self.targets.get(id(node))))

    def _tf_function(self, f: Func) -> None:
        for d in f.node.decorator_list:
            target = d.func if isinstance(d, ast.Call) else d
            if self.mod.canonical_of(target) == "tf.function":
                f.tf_function = True
                f.input_signature = isinstance(d, ast.Call) and any(
                    k.arg == "input_signature" for k in d.keywords)


def _nested(func: Func, name: str) -> Optional[str]:
    """The qualname of a def named ``name`` nested in ``func`` (or in its enclosing functions)."""
    f: Optional[Func] = func
    while f is not None:
        if f.nested and name in f.nested:
            return f"{f.qualname}.{name}"
        f = f.outer
    return None


def analyse_module(src: SourceFile) -> tuple[ModuleInfo, _Collector]:
    """One parsed module's names, functions and (not yet resolved) calls."""
    mod = ModuleInfo(src)
    assert src.tree is not None
    c = _Collector(mod)
    c.run(src.tree)
    return mod, c


def _finish(mod: ModuleInfo, c: _Collector) -> None:
    c.finish()
    names = {s.name for s in mod.calls}
    mod.graph_mode = bool(names & GRAPH_MARKERS) or any(
        v in ("tensorflow.compat.v1",) for v in mod.aliases.values()) or any(
        isinstance(s.node.func, ast.Attribute) and s.node.func.attr == "as_default" for s in mod.calls)


class Project:
    """Every parsed module of the linted tree, and which functions run per item."""

    def __init__(self, sources: list[SourceFile],
                 analysed: Optional[dict[int, tuple[ModuleInfo, _Collector]]] = None) -> None:
        """``analysed``: modules already through :func:`analyse_module`, by ``id()`` of their source (the
        parallel linter analyses each file where it parsed it)."""
        self.modules: list[ModuleInfo] = []
        self.by_name: dict[str, ModuleInfo] = {}
        self.by_suffix: dict[str, list[ModuleInfo]] = {}  # "detector" and "pkg.detector" for "app.pkg.detector"
        collectors: list[tuple[ModuleInfo, _Collector]] = []
        self.failed: list[tuple[SourceFile, str]] = []  # modules too deeply nested to analyse
        for src in sources:
            if src.tree is None:
                continue
            try:
                mod, c = analysed[id(src)] if analysed and id(src) in analysed else analyse_module(src)
            except RecursionError:
                self.failed.append((src, "skipped: nested too deeply to analyse"))
                continue
            mod.project = self
            collectors.append((mod, c))
            self.modules.append(mod)
            self.by_name.setdefault(mod.name, mod)
            parts = mod.name.split(".")
            for i in range(1, len(parts)):
                self.by_suffix.setdefault(".".join(parts[i:]), []).append(mod)
        for mod, c in collectors:
            _finish(mod, c)
        self._mark_per_item()

    # --- modules and functions across the tree -------------------------------------------------------------
    def find_module(self, name: str, near: Optional[ModuleInfo] = None) -> Optional[ModuleInfo]:
        if name in self.by_name:
            return self.by_name[name]
        cands = self.by_suffix.get(name, [])
        if not cands:
            return None
        if near is not None:
            pkg = near.package()
            for m in cands:
                if pkg and m.name == f"{pkg}.{name}":
                    return m
        return cands[0]

    def find_func(self, qualified: Optional[str], near: Optional[ModuleInfo] = None) -> Optional[Func]:
        """The tree function a qualified name denotes (``pkg.detector.Detector.run``), if any."""
        if not qualified:
            return None
        parts = qualified.split(".")
        for i in range(len(parts) - 1, 0, -1):
            mod = self.find_module(".".join(parts[:i]), near)
            if mod is not None:
                qual = ".".join(parts[i:])
                f = mod.funcs.get(qual) or mod.funcs.get(f"{qual}.__call__") or mod.funcs.get(f"{qual}.__init__")
                if f is not None:
                    return f
                if len(parts[i:]) == 1 and parts[i] in mod.aliases:  # re-exported name: follow it once
                    again = mod.resolve_name(parts[i])
                    if again and again != qualified:
                        return self.find_func(again, mod)
                return None
        return None

    def star_lookup(self, module: str, name: str, importer: ModuleInfo, seen: set[str]) -> Optional[str]:
        mod = self.find_module(module, importer)
        if mod is None:
            if module.split(".")[0] == "tensorflow" and name[:1].isalpha():
                return f"{module}.{name}"
            return None
        if mod is importer:
            return None
        return mod.resolve_name(name, seen)

    # --- per item --------------------------------------------------------------------------------------------
    def _mark_per_item(self) -> None:
        queue: deque[Func] = deque()

        def mark(f: Optional[Func], why: str) -> None:
            if f is not None and f.per_item is None:
                f.per_item = why
                queue.append(f)

        for mod in self.modules:
            for f in mod.funcs.values():
                why = _handler_reason(f)
                if why:
                    mark(f, why)
            for site in mod.calls:
                self._registered(site, mark)
            for expr, attr, line, scope in mod.hooks:
                hooked = self._function_named(expr, mod, scope)
                if hooked is not None:
                    mark(hooked, f"is registered as a per-item callback (`.{attr} =`, {mod.where(line)})")
        # Item functions (a parameter named image/frame) are the weakest seed: handlers win the wording.
        for mod in self.modules:
            for f in mod.funcs.values():
                if f.per_item is None and not (f.name.startswith("__") and f.name != "__call__"):
                    item = next((p for p in f.params() if _ITEM_PARAM.match(p)), None)
                    if item:
                        mark(f, f"handles one item (parameter `{item}`)")
        # Calls made in a loop seed their targets; then per-item-ness flows along calls, across files.
        for mod in self.modules:
            if _is_test_module(mod):
                continue  # a test's loop over cases does not make the library it calls per-item
            for site in mod.calls:
                loop = item_loop(site.loops)
                if loop is not None:
                    mark(self.find_func(site.qualified, mod), f"called in a loop at {mod.where(site.node.lineno)}")
        while queue:
            f = queue.popleft()
            scopes = [f, *(g for g in f.module.funcs.values() if g.outer is not None and _inside(g, f))]
            for site in (s for g in scopes for s in f.module.calls_in(g)):
                target = self.find_func(site.qualified, f.module)
                targets = [t for t in [target, *self._function_args(site)]  # run_in_executor(pool, detect, ...)
                           if t is not None and t is not f and t.per_item is None]
                if targets:
                    why = f"called from `{f.qualname}` ({f.module.where(site.node.lineno)}), which {_short(f.per_item)}"
                    for t in targets:
                        mark(t, why)

    def _function_args(self, site: CallSite) -> list[Func]:
        out = []
        for a in [*site.node.args, *(k.value for k in site.node.keywords)]:
            if isinstance(a, (ast.Name, ast.Attribute)):
                f = self.find_func(site.module.resolve(a), site.module)
                if f is not None:
                    out.append(f)
        return out

    def _registered(self, site: CallSite, mark: Callable[[Optional[Func], str], None]) -> None:
        term = site.node.func.attr if isinstance(site.node.func, ast.Attribute) else (
            site.node.func.id if isinstance(site.node.func, ast.Name) else "")
        args: list[ast.expr] = []
        if _REGISTER_CALL.search(term):
            args.extend(site.node.args)
        args.extend(k.value for k in site.node.keywords if k.arg in _REGISTER_KEYWORDS)
        for a in args:
            f = self._function_named(a, site.module, site.func)
            if f is not None:
                mark(f, f"is registered as a per-item handler ({term}, {site.module.where(site.node.lineno)})")

    def _function_named(self, expr: ast.expr, mod: ModuleInfo, scope: Optional[Func]) -> Optional[Func]:
        """The tree function ``expr`` names (``detect``, ``det.run``, ``self.on_frame`` in a method), if any."""
        if not isinstance(expr, (ast.Name, ast.Attribute)):
            return None
        f = self.find_func(mod.resolve(expr), mod)
        if f is None and isinstance(expr, ast.Attribute) and (dotted(expr) or "").startswith("self."):
            owner = scope
            while owner is not None and owner.outer is not None:
                owner = owner.outer
            if owner is not None and owner.cls:
                f = mod.funcs.get(f"{owner.cls}.{expr.attr}")
        return f


def _is_test_module(mod: ModuleInfo) -> bool:
    name = mod.src.path.name
    return name.startswith("test_") or name.endswith("_test.py") or name == "conftest.py"


def _inside(f: Func, outer: Func) -> bool:
    g: Optional[Func] = f
    while g is not None:
        if g is outer:
            return True
        g = g.outer
    return False


def _short(reason: Optional[str]) -> str:
    r = reason or ""
    return r if len(r) < 160 else r[:157] + "..."


def item_loop(loops: tuple[ast.AST, ...]) -> Optional[ast.AST]:
    """The innermost enclosing loop that iterates over items, not models."""
    for loop in reversed(loops):
        if not _is_loop_over_models(loop):
            return loop
    return None


def model_loop(loops: tuple[ast.AST, ...]) -> Optional[ast.AST]:
    for loop in reversed(loops):
        if _is_loop_over_models(loop):
            return loop
    return None


def _handler_reason(f: Func) -> Optional[str]:
    for d in f.node.decorator_list:
        target = d.func if isinstance(d, ast.Call) else d
        if isinstance(target, ast.Attribute) and target.attr in _ROUTE_DECORATORS and f.cls is None:
            return f"is a request handler (@{ast.unparse(target)})"
    params = [x.arg for x in f.node.args.args]
    if f.module.src.path.name == "views.py" or f.module.name.endswith(".views"):
        if f.cls is None and params[:1] in (["request"], ["req"]):
            return "is a Django view"
        if f.cls and f.name in _DJANGO_METHODS and params[1:2] in (["request"], ["req"]):
            return f"is a Django view method ({f.qualname})"
    return None


def loop_line(loop: ast.AST) -> int:
    line = getattr(loop, "lineno", None) or getattr(getattr(loop, "target", None), "lineno", 0)
    return int(line or 0)
