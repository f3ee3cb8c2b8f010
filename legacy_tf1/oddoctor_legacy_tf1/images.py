"""Images for the leak test and migration checks: seeded synthetic ones, or a folder of jpg/png.

Public API:

- ``synthetic_images(count, *, seed=0, sizes=DEFAULT_SIZES) -> list[np.ndarray]``: uint8 HxWx3,
  cycling through ``sizes`` (several sizes on purpose: the legacy pattern bakes the size in);
  ``iter_synthetic_images`` makes the same images one at a time.
- ``load_image_dir(path, *, limit=None) -> ImageFolder``: every ``*.jpg/*.jpeg/*.png`` (any
  case, sorted) converted to uint8 HxWx3: grayscale and palette expanded, alpha dropped, 16-bit
  scaled to 8-bit. Truncated or unreadable files are skipped and listed, never raised.
- ``ImageError``: the folder itself is unusable (missing, not a directory), meant to become exit 2.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

DEFAULT_SIZES: tuple[tuple[int, int], ...] = ((480, 640), (512, 512), (375, 500), (600, 400))
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


class ImageError(Exception):
    """The image folder cannot be used at all (missing or not a directory)."""


@dataclass
class ImageFolder:
    """Images read from a folder: ``images[i]`` came from ``files[i]``; ``skipped`` = (file, reason)."""

    images: list[np.ndarray] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)


def synthetic_image(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """One photo-like image: smooth gradient background, a few filled shapes, sensor noise."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = rng.uniform(40, 200, size=3).astype(np.float32)
    tilt = rng.uniform(-0.15, 0.15, size=(2, 3)).astype(np.float32)
    img = base + yy[..., None] * tilt[0] + xx[..., None] * tilt[1]
    for _ in range(int(rng.integers(3, 7))):
        cy, cx = rng.uniform(0, height), rng.uniform(0, width)
        ry, rx = rng.uniform(0.05, 0.25) * height, rng.uniform(0.05, 0.25) * width
        colour = rng.uniform(0, 255, size=3).astype(np.float32)
        inside = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0
        if rng.random() < 0.5:  # rectangles as well as ellipses, like boxes and balls
            inside = (np.abs(yy - cy) <= ry) & (np.abs(xx - cx) <= rx)
        img[inside] = colour
    img += rng.normal(0, 6, size=img.shape).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def iter_synthetic_images(count: int, *, seed: int = 0,
                          sizes: tuple[tuple[int, int], ...] = DEFAULT_SIZES) -> Iterator[np.ndarray]:
    """The images of :func:`synthetic_images`, made one at a time: a long run never holds them all."""
    rng = np.random.default_rng(seed)
    for i in range(count):
        yield synthetic_image(sizes[i % len(sizes)][0], sizes[i % len(sizes)][1], rng)


def synthetic_images(count: int, *, seed: int = 0,
                     sizes: tuple[tuple[int, int], ...] = DEFAULT_SIZES) -> list[np.ndarray]:
    """``count`` seeded uint8 HxWx3 images cycling through ``sizes`` (height, width)."""
    return list(iter_synthetic_images(count, seed=seed, sizes=sizes))


def _to_rgb8(img: object) -> np.ndarray:
    """A PIL image of any mode as uint8 HxWx3."""
    mode = img.mode  # type: ignore[attr-defined]
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img).astype(np.float64)
        if mode.startswith("I;16") or (mode == "I" and arr.max(initial=0) > 255):
            arr = arr / 257.0  # 16-bit range to 8-bit
        elif mode == "F":
            lo, hi = float(arr.min(initial=0)), float(arr.max(initial=0))
            arr = (arr - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(arr)
        gray = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if mode != "RGB":
        img = img.convert("RGB")  # type: ignore[attr-defined]
    return np.ascontiguousarray(np.asarray(img, dtype=np.uint8))


def _read_pil(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as img:
        img.load()  # decode now: truncated files fail here, not later
        return _to_rgb8(img)


def _read_tf(path: Path) -> np.ndarray:
    import tensorflow as tf

    data = tf.io.read_file(str(path))
    img = tf.io.decode_image(data, channels=3, dtype=tf.uint8, expand_animations=False)
    return img.numpy()


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Read one jpg/png as uint8 HxWx3 (Pillow, or TensorFlow's decoder without Pillow); raises on failure."""
    path = Path(path)
    try:
        import PIL  # noqa: F401 - only checking that Pillow is there
    except ImportError:
        arr = _read_tf(path)
    else:
        arr = _read_pil(path)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"unexpected image shape {arr.shape}")
    return arr


def load_image_dir(path: str | os.PathLike[str], *, limit: int | None = None) -> ImageFolder:
    """Read the jpg/png files of a folder; unreadable ones are skipped with a reason, never raised."""
    folder = Path(path)
    if not folder.exists():
        raise ImageError(f"{folder}: no such directory")
    if not folder.is_dir():
        raise ImageError(f"{folder}: not a directory")
    result = ImageFolder()
    for file in sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES):
        if limit is not None and len(result.images) >= limit:
            break
        try:
            arr = read_image(file)
        except Exception as e:  # noqa: BLE001 - any decoder failure means "skip this file", not a crash
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            result.skipped.append((file, f"{type(e).__name__}: {reason}"[:200]))
            continue
        result.images.append(arr)
        result.files.append(file)
    return result
