"""Build an output directory atomically: a temporary sibling, then one rename.

A reader (or a crash) never sees a half-written ``DIR``: until :meth:`StagedDir.commit` the work
lives in ``.DIR.<random>.tmp`` next to it, and any failure removes that. An existing ``DIR`` is
replaced only with ``force=True``, and only after the new one is complete.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Optional


class OutputDirError(Exception):
    """The output directory cannot be used (exists without --force, is a file, holds the input)."""


def check_output_dir(out: Path, force: bool, protect: tuple[Path, ...] = ()) -> None:
    """Refuse early (before any work) when writing ``out`` would overwrite or destroy something."""
    out = Path(out)
    resolved = out.resolve()
    for p in protect:
        pr = Path(p).resolve()
        # Replacing DIR deletes it: never when the input model lives inside it (or is it).
        if pr == resolved or resolved in pr.parents:
            raise OutputDirError(f"{out}: the output directory would contain or replace the input {p}")
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise OutputDirError(f"{out}: exists and is not a directory; choose another --out")
    if out.exists() and not force:
        raise OutputDirError(f"{out}: already exists; pass --force to replace it")


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

    def __enter__(self) -> StagedDir:
        check_output_dir(self.out, self.force, self.protect)
        parent = self.out.parent
        parent.mkdir(parents=True, exist_ok=True)
        # Same parent directory, so the final os.rename stays on one filesystem and is atomic.
        self.path = Path(tempfile.mkdtemp(prefix=f".{self.out.name}.", suffix=".tmp", dir=parent))
        # mkdtemp makes it 0700; the result should look like any directory the user creates.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(self.path, 0o777 & ~umask)
        return self

    def commit(self) -> Path:
        """Move the finished temporary directory to ``out`` (replacing it when forced)."""
        assert self.path is not None, "commit() outside the with block"
        check_output_dir(self.out, self.force, self.protect)  # it may have appeared meanwhile
        old: Optional[Path] = None
        if self.out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{self.out.name}.", suffix=".old", dir=self.out.parent))
            os.rmdir(old)
            os.rename(self.out, old)
        try:
            os.rename(self.path, self.out)
        except BaseException:
            if old is not None:
                os.rename(old, self.out)
            raise
        self.committed = True
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return self.out

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        if not self.committed and self.path is not None:
            shutil.rmtree(self.path, ignore_errors=True)
