"""Write the standalone ``run_inference.py`` and ``README.md`` of a migration (no TensorFlow).

Everything that comes from the model file or the command line (tensor names, paths) is
user-controlled: it enters the emitted code only as a Python literal produced by :func:`py_literal`
and checked with :func:`ast.literal_eval`, never spliced into code, comments or docstrings.
"""

from __future__ import annotations

import ast
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Optional

from oddoctor_legacy_tf1 import names

#: The runner's file name, in this package and in a migration's output folder.
RUNNER_FILE = "run_inference.py"
#: The Apache Beam pipeline, copied as it is: it imports the runner beside it for every model-derived value.
BEAM_FILE = "beam_pipeline.py"
BEGIN = "# --- oddoctor:constants begin ---"
END = "# --- oddoctor:constants end ---"

#: The keys a TF2 Object Detection API export's ``serving_default`` signature uses: the TF1 node names.
TF2_OUTPUT_KEYS = names.OUTPUT_NAMES
TF2_INPUT_KEY = "input_tensor"


@dataclass
class RunnerSpec:
    """The model-derived values the runner needs."""

    source_model: str
    source_input: str
    source_outputs: dict[str, str]  # signature key -> legacy tensor name
    oddoctor_version: str
    signature_key: str = "serving_default"
    input_key: str = TF2_INPUT_KEY
    boxes_key: str = names.BOXES
    scores_key: str = names.SCORES
    classes_key: str = names.CLASSES
    num_key: str = names.NUM_DETECTIONS
    masks_key: Optional[str] = names.MASKS
    extra: dict[str, Any] = field(default_factory=dict)


def py_literal(value: Any, *, indent: Optional[int] = None, start: int = 0) -> str:
    """A Python source literal for plain data (str, int, float, bool, None, list, tuple, dict).

    Built from ``repr`` of the parts, which for these types is a literal that ``ast.literal_eval``
    reads back to an equal value; the round trip is checked so that nothing else can ever reach
    the emitted code. ``indent=None``: one line. ``indent=N``: long values are wrapped (strings as
    implicitly concatenated pieces) so that lines stay within ``LINE`` columns for linters.
    """
    _check_plain(value)
    text = repr(value) if indent is None else _wrapped(value, indent, start)
    if ast.literal_eval(text) != value or (indent is None and ("\n" in text or "\r" in text)):
        raise ValueError(f"cannot emit {type(value).__name__} as a Python literal")
    return text


LINE = 79


def _wrapped(value: Any, indent: int, start: int) -> str:
    one = repr(value)
    if start + len(one) <= LINE or not isinstance(value, (str, list, tuple, dict)):
        return one
    inner = " " * (indent + 4)
    if isinstance(value, str):
        pieces: list[str] = []
        chunk = ""
        for ch in value:
            if chunk and len(inner) + len(repr(chunk + ch)) > LINE:
                pieces.append(repr(chunk))
                chunk = ""
            chunk += ch
        pieces.append(repr(chunk))
        return "(\n" + "".join(f"{inner}{p}\n" for p in pieces) + " " * indent + ")"
    if isinstance(value, dict):
        items = [f"{inner}{_wrapped(k, indent + 4, indent + 4)}: "
                 f"{_wrapped(v, indent + 4, indent + 4 + len(repr(k)) + 2)},\n" for k, v in value.items()]
        return "{\n" + "".join(items) + " " * indent + "}"
    items = [f"{inner}{_wrapped(v, indent + 4, indent + 4)},\n" for v in value]
    opening, closing = ("[", "]") if isinstance(value, list) else ("(", ")")
    return opening + "\n" + "".join(items) + " " * indent + closing


def _check_plain(value: Any) -> None:
    if value is None or isinstance(value, (bool, int, str)):
        return
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("cannot emit a non-finite float as a literal")
        return
    if isinstance(value, (list, tuple)):
        for v in value:
            _check_plain(v)
        return
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise ValueError("dict keys must be strings")
            _check_plain(v)
        return
    raise ValueError(f"cannot emit {type(value).__name__} as a Python literal")


def constant_values(spec: RunnerSpec) -> dict[str, Any]:
    """The runner's model-derived constants, by the name they have in its source."""
    return {
        "SOURCE_MODEL": spec.source_model,
        "SOURCE_INPUT": spec.source_input,
        "SOURCE_OUTPUTS": dict(spec.source_outputs),
        "SIGNATURE_KEY": spec.signature_key,
        "INPUT_KEY": spec.input_key,
        "BOXES_KEY": spec.boxes_key,
        "SCORES_KEY": spec.scores_key,
        "CLASSES_KEY": spec.classes_key,
        "NUM_KEY": spec.num_key,
        "MASKS_KEY": spec.masks_key,
        "ODDOCTOR_VERSION": spec.oddoctor_version,
    }


def constants_block(spec: RunnerSpec) -> str:
    """The constants section of the runner: one ``NAME = literal`` line per value."""
    values = constant_values(spec)
    lines = [BEGIN, "# Values below come from the migrated model; oddoctor writes them as Python literals."]
    lines += [f"{name} = {py_literal(value, indent=0, start=len(name) + 3)}" for name, value in values.items()]
    lines.append(END)
    return "\n".join(lines)


def runner_source() -> str:
    """The runner as shipped in this package (a valid, runnable Python file with default constants)."""
    return resources.files("oddoctor.migrate").joinpath(RUNNER_FILE).read_text(encoding="utf-8")


def beam_source() -> str:
    """The Beam pipeline as shipped in this package (emitted unchanged beside the runner)."""
    return resources.files("oddoctor.migrate").joinpath(BEAM_FILE).read_text(encoding="utf-8")


def render_runner(spec: RunnerSpec) -> str:
    """The runner's source with the constants block replaced; it is parsed before being returned."""
    src = runner_source()
    start = src.index(BEGIN)
    stop = src.index(END, start) + len(END)
    out = src[:start] + constants_block(spec) + src[stop:]
    # Defence in depth: the result must parse, and assign only literals in the constants block.
    tree = ast.parse(out)
    names = set(constant_values(spec))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id in names for t in node.targets):
            ast.literal_eval(node.value)
    return out


def _md_code(text: str) -> str:
    """Inline Markdown code for an arbitrary string (backticks and newlines cannot break out)."""
    one_line = text.replace("\r", "\\r").replace("\n", "\\n").replace("|", "\\|")
    fence = "`"
    while fence in one_line:
        fence += "`"
    return f"{fence} {one_line} {fence}"


def render_readme(spec: RunnerSpec, parity: Mapping[str, Any], tf_version: str) -> str:
    """DIR/README.md: what this folder is and how to run it."""
    rows = "\n".join(f"| {_md_code(tensor)} | {_md_code(key)} |" for key, tensor in spec.source_outputs.items())
    diffs = "\n".join(f"| {_md_code(k)} | {v:.3g} |" for k, v in parity.get("max_abs_diff", {}).items())
    example = "python run_inference.py images/ --out detections.jsonl"
    version = _md_code(spec.oddoctor_version)
    recheck = _md_code(f"oddoctor migrate {shlex.quote(spec.source_model)} --out NEWDIR --images YOUR_IMAGES/")
    if spec.input_key.isidentifier():
        call = f"detect({spec.input_key}=tf.constant(image_uint8[None]))"
    else:
        call = f"detect(**{{{py_literal(spec.input_key)}: tf.constant(image_uint8[None])}})"
    return f"""# Migrated model

Migrated by oddoctor {version} (TensorFlow {_md_code(tf_version)}) from {_md_code(spec.source_model)}:
the TF1 graph's weights and ops, unchanged, in a TF2 SavedModel.

- `saved_model/`: TF2 SavedModel, signature {_md_code(spec.signature_key)}: input {_md_code(spec.input_key)}
  (uint8 image batch, `[batch, height, width, 3]`; `migration.json` says whether batch is fixed at 1),
  outputs under the TF2 Object Detection API keys.
  `detection_boxes` are `[ymin, xmin, ymax, xmax]` normalised to the input image; `detection_masks`
  (when present) are box-relative, as in a TF2 Object Detection API export. Callable like a TF2
  export too: `detect_fn = tf.saved_model.load("saved_model"); detections = detect_fn(input_tensor)`
  gives the signature's outputs by the same keys.
- `run_inference.py`: a standalone batch runner (needs only `pip install tensorflow`).
- `beam_pipeline.py`: the same detections on Apache Beam (`pip install apache-beam`), for many
  machines: `python beam_pipeline.py 'images/*.jpg' --output out/detections` (any Beam runner option
  passes through, e.g. `--runner DataflowRunner`); it imports `run_inference.py`, keep them together.
- `migration.json`: the tensor mapping and the parity figures below.

## Run it

```sh
{example}
python run_inference.py --help        # every option
python run_inference.py images/ --batch-size 2 --gpu 0 --memory-limit-mb 4096  # less GPU memory
python run_inference.py images/ --label-map label_map.pbtxt --draw drawn/  # class names, pictures
python run_inference.py images/ --format coco --coco-gt annotations.json --score-threshold 0.05 --out results.json
```

Each output line is one image:
`{{"file": ..., "height": H, "width": W, "detections": [{{"box": [ymin, xmin, ymax, xmax], "score": s,
"class_id": c, "mask": {{"size": [H, W], "counts": "..."}}}}]}}`, boxes in pixels of the original image,
masks as COCO compressed RLE (`pycocotools.mask.decode(det["mask"])` gives the H x W binary mask).
Unreadable images are skipped, listed on stderr and counted; the `done:` line on stderr gives images/s.

In your own code:

```python
import tensorflow as tf
detect = tf.saved_model.load("saved_model").signatures[{py_literal(spec.signature_key)}]
outputs = {call}  # image_uint8: an H x W x 3 uint8 array
```

## Tensor mapping

Input: {_md_code(spec.source_input)} -> {_md_code(spec.input_key)}

| legacy tensor | signature output key |
|---|---|
{rows}

## Parity (legacy TF1 Session vs this SavedModel)

{parity.get("images", 0)} image(s), tolerance {parity.get("tolerance", 0):g} (largest absolute difference per output):

| output | max abs diff |
|---|---|
{diffs}

Re-check on your own images: {recheck}.
"""
