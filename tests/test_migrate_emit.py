"""The emitted run_inference.py: literals only, valid, lint-clean, its COCO RLE is right, and it
decodes images as PIL does.

Most of these tests need no TensorFlow (the runner imports it only after parsing its options); those
that do are marked ``tf``.
"""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import json
import py_compile
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from oddoctor.migrate.emit import BEGIN, END, RunnerSpec, py_literal, render_readme, render_runner
from tests.helpers import REPO

HOSTILE = [
    "x'; __import__('os').system('touch PWNED') #",
    'x"; __import__("os").system("touch PWNED") #',
    "a\n__import__('os').system('touch PWNED')\n",
    '"""\nimport os; os.system("touch PWNED")\n"""',
    "'''\nimport os\n'''",
    "back\\slash\\",
    "line\u2028separator\u2029and\x00nul\x1b[31m",
    "{SOURCE_MODEL}%s%(x)s",
    "`rm -rf /` | table | cell",
    "very/long/" * 40 + "name:0",
    "é\U0001f600" * 30,
]


def hostile_spec(value: str) -> RunnerSpec:
    return RunnerSpec(source_model=value, source_input=value,
                      source_outputs={"detection_boxes": value, value: value},
                      oddoctor_version=value)


def load_module(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("value", HOSTILE)
def test_py_literal_round_trips_hostile_strings(value):
    text = py_literal(value)
    assert "\n" not in text and "\r" not in text
    assert ast.literal_eval(text) == value


def test_py_literal_refuses_what_is_not_plain_data():
    for bad in (object(), float("nan"), {1: "x"}, b"bytes", {"k": {1, 2}}):
        with pytest.raises(ValueError, match=r"cannot emit|keys must be strings"):
            py_literal(bad)


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_names_stay_data(tmp_path, monkeypatch, value):
    src = render_runner(hostile_spec(value))
    path = tmp_path / "run_inference.py"
    path.write_text(src, encoding="utf-8")
    py_compile.compile(str(path), doraise=True)
    # Importing the module runs every top-level statement: nothing may touch the disk.
    monkeypatch.chdir(tmp_path)
    mod = load_module(path, "emitted_hostile")
    assert not (tmp_path / "PWNED").exists()
    got = (mod.SOURCE_MODEL, mod.SOURCE_INPUT, mod.SOURCE_OUTPUTS)
    assert got == (value, value, {"detection_boxes": value, value: value})
    # The only calls at module level are the ones the runner's source makes (os.path helpers).
    tree = ast.parse(src)
    for cls in (s for s in tree.body if isinstance(s, ast.ClassDef)):  # a class body only defines methods
        assert all(isinstance(s, ast.FunctionDef) or (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))
                   for s in cls.body)
    defs = (ast.FunctionDef, ast.ClassDef, ast.If)  # the one top-level If is `if __name__ == "__main__"`
    top_calls = [ast.unparse(n.func) for stmt in tree.body if not isinstance(stmt, defs)
                 for n in ast.walk(stmt) if isinstance(n, ast.Call)]
    assert set(top_calls) <= {"os.path.dirname", "os.path.abspath"}, top_calls
    assert "__import__" not in {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}


def test_hostile_names_in_readme_cannot_break_out_of_code(tmp_path):
    value = "x`\n# Injected heading\n| a | b |"
    text = render_readme(hostile_spec(value), {"images": 1, "tolerance": 1e-4,
                                                "max_abs_diff": {"detection_boxes": 0.0}}, "2.x")
    assert "\n# Injected heading" not in text


@pytest.mark.parametrize("value", [HOSTILE[2], HOSTILE[-2], HOSTILE[-1]])
def test_emitted_runner_passes_ruff_and_py_compile(tmp_path, value):
    path = tmp_path / "run_inference.py"
    src = render_runner(hostile_spec(value))
    block = src[src.index(BEGIN):src.index(END)]
    assert max(len(line) for line in block.splitlines()) <= 88  # long names are wrapped, not one line
    path.write_text(src, encoding="utf-8")
    py_compile.compile(str(path), doraise=True)
    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    # With the project's rule set, and with ruff's defaults (how a user's CI would see it).
    for extra in (["--config", str(REPO / "pyproject.toml")], ["--isolated"]):
        proc = subprocess.run([ruff, "check", *extra, str(path)], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr


def test_runner_needs_only_tensorflow_numpy_and_the_stdlib():
    tree = ast.parse(render_runner(hostile_spec("m")))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    third_party = {m for m in imported if m not in sys.stdlib_module_names}
    assert third_party == {"tensorflow", "numpy"}, third_party
    try:
        requires = importlib.metadata.requires("tensorflow") or []
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("TensorFlow not installed: cannot read its requirements")
    # numpy comes with `pip install tensorflow`: the runner needs nothing TensorFlow does not bring.
    assert any(r.split(";")[0].strip().lower().startswith("numpy") for r in requires), requires


@pytest.mark.parametrize("name", ["my model.pb", "%(prog)s %d %", HOSTILE[2]])
def test_runner_help_explains_every_option_without_importing_tensorflow(tmp_path, name):
    path = tmp_path / "run_inference.py"
    path.write_text(render_runner(hostile_spec(name)), encoding="utf-8")
    code = ("import runpy, sys\nsys.argv = ['run_inference.py', '--help']\n"
            f"try:\n    runpy.run_path({str(path)!r}, run_name='__main__')\n"
            "except SystemExit as e:\n    assert e.code == 0, e.code\n"
            "print('TF_IMPORTED' if 'tensorflow' in sys.modules else 'NO_TF')\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.rstrip().endswith("NO_TF")
    for opt in ("--model", "--out", "--score-threshold", "--max-side", "--batch-size", "--gpu",
                "--memory-limit-mb", "--xla", "--threads", "--prefetch", "--parallel-decode",
                "--no-masks", "--summary-json", "--recursive", "--jpeg-dct"):
        assert opt in out
    assert repr(name) in out  # the source model, shown as data


def test_runner_rejects_bad_options_with_exit_2(tmp_path):
    path = tmp_path / "run_inference.py"
    path.write_text(render_runner(hostile_spec("m")), encoding="utf-8")
    for args in (["x", "--batch-size", "0"], ["x", "--max-side", "-1"], []):
        proc = subprocess.run([sys.executable, str(path), *args], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2, (args, proc.stderr)
    proc = subprocess.run([sys.executable, str(path), str(tmp_path / "empty")], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2 and "no images found" in proc.stderr


# --- COCO RLE -------------------------------------------------------------------------------

def rle_decode(rle: dict) -> list[list[int]]:
    """Reference decoder: a direct port of pycocotools' rleFrString + rleDecode."""
    s, (h, w) = rle["counts"], rle["size"]
    counts: list[int] = []
    p = 0
    while p < len(s):
        x = k = 0
        more = True
        while more:
            c = ord(s[p]) - 48
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and (c & 0x10):
                x |= -1 << (5 * k)
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    flat: list[int] = []
    value = 0
    for c in counts:
        flat += [value] * c
        value ^= 1
    assert len(flat) == h * w, (len(flat), h, w)
    return [[flat[x * h + y] for x in range(w)] for y in range(h)]  # column-major


@pytest.fixture(scope="module")
def runner_module():
    pytest.importorskip("numpy")
    from oddoctor.migrate import run_inference

    return run_inference


@pytest.fixture(scope="module")
def rle_encode():
    np = pytest.importorskip("numpy")
    from oddoctor.migrate import run_inference

    return lambda m: run_inference.rle_encode(np.asarray(m, dtype=np.uint8))


def test_rle_known_values(rle_encode):
    # pycocotools: zeros -> "4"; ones -> a zero-length run of 0s first -> "04".
    assert rle_encode([[0, 0], [0, 0]]) == {"size": [2, 2], "counts": "4"}
    assert rle_encode([[1, 1], [1, 1]]) == {"size": [2, 2], "counts": "04"}
    # Column-major: [[0, 1], [0, 1]] is 2 zeros (first column) then 2 ones.
    assert rle_encode([[0, 1], [0, 1]])["counts"] == "22"


def test_rle_round_trips_random_and_large_masks(rle_encode):
    np = pytest.importorskip("numpy")
    rng = np.random.default_rng(0)
    masks = [rng.random((37, 53)) < p for p in (0.02, 0.5, 0.97)]
    big = np.zeros((300, 400), np.uint8)
    big[40:260, 10:390] = 1  # long runs: multi-character counts and negative deltas
    big[100:120, 50:70] = 0
    masks += [big, np.ones((1, 1)), np.zeros((5, 1))]
    for m in masks:
        m = np.asarray(m, np.uint8)
        rle = rle_encode(m)
        json.dumps(rle)
        assert rle["size"] == list(m.shape)
        assert rle_decode(rle) == m.tolist()


def test_rle_of_a_box_region_equals_rle_of_the_full_mask(runner_module):
    np = pytest.importorskip("numpy")
    rng = np.random.default_rng(1)
    h, w = 23, 31
    placements = [(0, 0, 5, 7), (18, 24, 5, 7), (10, 3, 13, 28), (0, 0, 23, 31), (22, 30, 1, 1), (4, 5, 0, 3),
                  (0, 4, 23, 9)]  # full height: runs continue from one column into the next
    for top, left, rows, cols in placements:
        for ones in (False, True):
            local = np.ones((rows, cols), np.uint8) if ones else (rng.random((rows, cols)) < 0.5).astype(np.uint8)
            full = np.zeros((h, w), np.uint8)
            full[top:top + rows, left:left + cols] = local
            got = runner_module.rle_encode_box(local, top, left, h, w)
            assert got == runner_module.rle_encode(full), (top, left, rows, cols, ones)
            assert rle_decode(got) == full.tolist()
    # A grid larger than the image is cut at the image's edge (boxes may extend past it).
    local = np.ones((10, 10), np.uint8)
    full = np.zeros((h, w), np.uint8)
    full[20:, 25:] = 1
    assert runner_module.rle_encode_box(local, 20, 25, h, w) == runner_module.rle_encode(full)


@pytest.mark.tf
def test_paste_mask_equals_the_od_api_reframe(runner_module):
    """The numpy paste over each box gives crop_and_resize's mask exactly, edge boxes included."""
    np = pytest.importorskip("numpy")
    pytest.importorskip("tensorflow")
    from oddoctor_legacy_tf1.patterns import reframe_box_masks_to_image_masks

    rng = np.random.default_rng(2)
    h, w = 61, 87
    boxes = np.array([[0.1, 0.2, 0.6, 0.9], [-0.2, -0.1, 0.4, 0.3], [0.7, 0.8, 1.3, 1.1],
                      [0.0, 0.0, 1.0, 1.0], [0.5, 0.5, 0.52, 0.51], [0.33, 0.05, 0.34, 0.95]], np.float32)
    masks = rng.random((len(boxes), 15, 15)).astype(np.float32)
    ref = reframe_box_masks_to_image_masks(masks, boxes, h, w).numpy() > 0.5
    nonempty = 0
    for mask, box, want in zip(masks, boxes, ref):
        local, top, left = runner_module.paste_mask(mask, box, h, w, 0.5)
        full = np.zeros((h, w), bool)
        full[top:top + local.shape[0], left:left + local.shape[1]] = local
        assert (full == want).all(), box
        nonempty += int(want.any())
    assert nonempty >= 5  # real masks were compared (the tiny box may cover no pixel centre)


@pytest.mark.tf
def test_stop_message_names_the_next_step(runner_module):
    """Out of GPU memory or Ctrl-C: one line saying what happened to the output and what to try."""
    import argparse

    tf = pytest.importorskip("tensorflow")
    oom = tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor with shape[8,1024,1024,3]")
    args = argparse.Namespace(out="det.jsonl", batch_size=8, max_side=1024)
    msg = runner_module.stop_message(tf, oom, args, 16)
    assert msg.startswith("out of memory after 16 images at --batch-size 8; det.jsonl not written")
    assert "Re-run with --batch-size 4 " in msg
    args.batch_size = 1
    assert "Re-run with --max-side 512 " in runner_module.stop_message(tf, oom, args, 0)
    args.out = "-"
    assert "the lines already on stdout are complete" in runner_module.stop_message(tf, KeyboardInterrupt(), args, 3)
    assert runner_module.stop_message(tf, ValueError("a bug"), args, 3) is None  # bugs keep their traceback


def test_the_shipped_runner_is_what_emit_writes_for_its_own_constants(runner_module):
    """oddoctor/migrate/run_inference.py, imported by the tests, is the emitted runner (same code)."""
    from oddoctor.migrate.emit import runner_source

    spec = RunnerSpec(source_model=runner_module.SOURCE_MODEL, source_input=runner_module.SOURCE_INPUT,
                      source_outputs=runner_module.SOURCE_OUTPUTS, oddoctor_version=runner_module.ODDOCTOR_VERSION)
    assert ast.dump(ast.parse(render_runner(spec))) == ast.dump(ast.parse(runner_source()))


# --- image decoding: JPEGs as PIL decodes them ----------------------------------------------

def pil_jpeg(path: Path, seed: int = 5, size: tuple[int, int] = (48, 64), **save):
    """A noisy JPEG written by PIL (where the fast and accurate IDCTs differ) and PIL's pixels of it."""
    np = pytest.importorskip("numpy")
    from PIL import Image

    rng = np.random.default_rng(seed)
    Image.fromarray((rng.random((*size, 3)) * 255).astype(np.uint8)).save(path, format="JPEG", quality=90, **save)
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


@pytest.mark.tf
@pytest.mark.parametrize("subsampling", [0, 2], ids=["4:4:4", "4:2:0"])
def test_jpeg_decodes_to_pils_pixels_by_default(runner_module, tmp_path, subsampling):
    tf = pytest.importorskip("tensorflow")
    path = tmp_path / "photo.jpg"
    pil = pil_jpeg(path, subsampling=subsampling)
    data = tf.constant(path.read_bytes())
    assert (runner_module.decode_image_bytes(tf, data).numpy() == pil).all()
    fast = runner_module.decode_image_bytes(tf, data, "fast").numpy()
    # "fast" is what the runner did before (decode_image), and this image is one where it matters.
    assert (fast == tf.io.decode_image(data, channels=3, expand_animations=False).numpy()).all()
    assert (fast != pil).any()


@pytest.mark.tf
def test_jpeg_dct_option_reaches_the_decoder(runner_module, tmp_path):
    tf = pytest.importorskip("tensorflow")
    path = tmp_path / "photo.jpg"
    want = {"accurate": pil_jpeg(path),
            "fast": tf.io.decode_image(path.read_bytes(), channels=3, expand_animations=False).numpy()}
    assert runner_module.parse_args(["x"]).jpeg_dct == "accurate"
    for option in ("accurate", "fast"):
        args = runner_module.parse_args([str(path), "--jpeg-dct", option, "--max-side", "0"])
        assert args.jpeg_dct == option
        ds = runner_module.make_dataset(tf, [str(path)], args.max_side, 1, 1, 0, args.jpeg_dct)
        [(_, images, _, _)] = list(ds)
        assert (images[0].numpy() == want[option]).all(), option


@pytest.mark.tf
def test_images_are_decoded_by_their_bytes_not_their_names(runner_module, tmp_path):
    """PNG, BMP and GIF (its first frame) still decode; a JPEG named .png still gets PIL's pixels."""
    tf = pytest.importorskip("tensorflow")
    np = pytest.importorskip("numpy")
    from PIL import Image

    rng = np.random.default_rng(6)
    pixels = (rng.random((24, 32, 3)) * 255).astype(np.uint8)
    want = {}
    for name, fmt in (("a.png", "PNG"), ("b.bmp", "BMP"), ("c_png_named.jpg", "PNG")):
        Image.fromarray(pixels).save(tmp_path / name, format=fmt)
        want[name] = pixels
    frames = [Image.fromarray(pixels).convert("P"), Image.fromarray(255 - pixels).convert("P")]
    frames[0].save(tmp_path / "d.gif", save_all=True, append_images=frames[1:])
    with Image.open(tmp_path / "d.gif") as im:
        assert im.n_frames == 2
        want["d.gif"] = np.asarray(im.convert("RGB"))
    want["e_jpeg_named.png"] = pil_jpeg(tmp_path / "e_jpeg_named.png")
    (tmp_path / "f_not_an_image.jpg").write_bytes(b"\xff\xd8\xff but not a JPEG")
    (tmp_path / "g_tiny.png").write_bytes(b"\xff")
    names = sorted(p.name for p in tmp_path.iterdir())
    ds = runner_module.make_dataset(tf, [str(tmp_path / n) for n in names], 0, 1, 2, 0)
    got = {names[int(index[0])]: images[0].numpy() for index, images, _, _ in ds}
    assert set(got) == set(want)  # the two unreadable files drop out (the runner lists them as skipped)
    for name, pixels in want.items():
        assert got[name].shape == pixels.shape and (got[name] == pixels).all(), name
