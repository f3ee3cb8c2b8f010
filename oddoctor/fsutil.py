"""Atomic file writes: a reader sees the old file or the new one, never half of one."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: Path | str, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _special_target(path: Path) -> bool:
    """An existing output that is not a regular file (``/dev/stdout``, ``/dev/null``, a FIFO): written through,
    never replaced (as root, replacing /dev/null with a file would break the machine)."""
    try:
        st = path.stat()
    except OSError:
        return False
    import stat

    return not stat.S_ISREG(st.st_mode) and not stat.S_ISDIR(st.st_mode)


def atomic_write_bytes(path: Path | str, data: bytes) -> None:
    """Write ``data`` atomically; through a symlink to its target; straight into a device or FIFO."""
    path = Path(path)
    if _special_target(path):
        with open(path, "wb") as f:
            f.write(data)
        return
    if path.is_symlink():
        path = path.resolve()
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: Path | str, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


class InputError(Exception):
    """An input file that cannot be read as asked: one line naming it and why."""


def read_input(path: Path | str, *, what: str, max_bytes: int) -> bytes:
    """Read a user-given file (``-``: stdin) as bytes: only regular files (a FIFO or a device would block or
    never end), at most ``max_bytes`` (a larger one is refused, not read into memory)."""
    import stat
    import sys

    if str(path) == "-":
        data = sys.stdin.buffer.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise InputError(f"{what} from stdin is larger than {max_bytes // 2**20} MiB")
        return data
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise InputError(f"{p}: no such file") from None
    except OSError as e:
        raise InputError(f"{p}: cannot read: {e.strerror or e}") from None
    if stat.S_ISDIR(st.st_mode):
        raise InputError(f"{p}: is a directory, expected {what}")
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"{p}: not a regular file (a FIFO or a device); expected {what}")
    if st.st_size > max_bytes:
        raise InputError(f"{p}: {st.st_size // 2**20} MiB is larger than the {max_bytes // 2**20} MiB {what} "
                         "oddoctor reads")
    try:
        with open(p, "rb") as f:
            return f.read(max_bytes + 1)
    except OSError as e:
        raise InputError(f"{p}: cannot read: {e.strerror or e}") from None
