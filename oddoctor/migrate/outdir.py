"""Build an output directory atomically: a temporary sibling, then one rename.

A reader (or a crash) never sees a half-written ``DIR``: until :meth:`StagedDir.commit` the work
lives in ``.DIR.<random>.tmp`` next to it, and any failure (a signal included) removes that and the
parent folders it had to create. An existing ``DIR`` is replaced only with ``force=True``, and only
after the new one is complete. A ``DIR`` that is a symlink is written through: its target is built
and replaced, the link stays.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Optional


class OutputDirError(Exception):
    """The output directory cannot be used (exists without --force, is a file or a device, holds the input)."""


def output_target(out: Path) -> Path:
    """Where ``out`` really is: a symlink is written through to its target, never replaced by a directory."""
    out = Path(out)
    if not out.is_symlink():
        return out
    try:
        return out.resolve(strict=False)
    except (OSError, RuntimeError) as e:  # RuntimeError: a symlink loop
        raise OutputDirError(f"{out}: cannot follow the symlink: {e}") from None


def check_output_dir(out: Path, force: bool, protect: tuple[Path, ...] = ()) -> None:
    """Refuse early (before any work) when writing ``out`` would overwrite or destroy something."""
    out = Path(out)
    target = output_target(out)
    resolved = target.resolve()
    for p in protect:
        pr = Path(p).resolve()
        # Replacing DIR deletes it: never when the input model lives inside it (or is it).
        if pr == resolved or resolved in pr.parents:
            raise OutputDirError(f"{out}: the output directory would contain or replace the input {p}")
    if target.exists() and not target.is_dir():
        what = "a file" if target.is_file() else "a device, FIFO or socket"
        raise OutputDirError(f"{out}: exists and is {what}, not a directory; choose another --out")
    if target.exists() and not force:
        raise OutputDirError(f"{out}: already exists; pass --force to replace it")


def _missing_parents(path: Path) -> list[Path]:
    """The ancestors of ``path`` that do not exist yet, deepest first (what ``mkdir(parents=True)`` creates)."""
    missing = []
    for parent in path.parents:
        if parent.exists() or parent.is_symlink():
            break
        missing.append(parent)
    return missing


class StagedDir:
    """Context manager: ``with StagedDir(out, force) as tmp: ...; staged.commit()``.

    Leaving the block without ``commit()`` (an exception, a failed check) deletes the temporary
    directory and leaves ``out`` exactly as it was.
    """

    def __init__(self, out: Path, force: bool = False, protect: tuple[Path, ...] = ()) -> None:
        self.out = Path(out)
        self.force = force
        self.protect = protect
        self.path: Optional[Path] = None
        self.committed = False
        self.target = self.out  # where the directory lands: out, or the target of a symlink out
        self._created: list[Path] = []  # parent folders this made, deepest first: removed again on failure

    def __enter__(self) -> StagedDir:
        check_output_dir(self.out, self.force, self.protect)
        self.target = output_target(self.out)
        parent = self.target.parent
        self._created = _missing_parents(self.target)
        try:
            parent.mkdir(parents=True, exist_ok=True)
            # Same parent directory, so the final os.rename stays on one filesystem and is atomic.
            self.path = Path(tempfile.mkdtemp(prefix=f".{self.target.name}.", suffix=".tmp", dir=parent))
        except BaseException:
            self._remove_created()
            raise
        # mkdtemp makes it 0700; the result should look like any directory the user creates.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(self.path, 0o777 & ~umask)
        return self

    def commit(self) -> Path:
        """Move the finished temporary directory to ``out`` (replacing it when forced)."""
        assert self.path is not None, "commit() outside the with block"
        check_output_dir(self.out, self.force, self.protect)  # it may have appeared meanwhile
        target = self.target
        old: Optional[Path] = None
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
            os.rmdir(old)
            os.rename(target, old)
        try:
            os.rename(self.path, target)
        except BaseException:
            if old is not None:
                os.rename(old, target)
            raise
        self.committed = True
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return self.out

    def _remove_created(self) -> None:
        for folder in self._created:
            try:
                folder.rmdir()
            except OSError:  # no longer empty (someone else wrote there) or already gone: leave it
                break

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        if not self.committed:
            if self.path is not None:
                shutil.rmtree(self.path, ignore_errors=True)
            self._remove_created()
