"""Live feedback on a terminal: a spinner naming the stage while something slow runs (TensorFlow's import, a
model load, a migration), and a progress bar with the count and the time left (leak-test's images).

Only when stderr is a terminal (and not ``TERM=dumb``): in a pipe, a CI log or with ``--json`` nothing here runs
and the commands print their plain progress lines as before. rich (installed with Typer) is imported only then,
so the commands that must start fast (``check --from``) never pay for it. Colour follows ``--color`` /
``NO_COLOR`` / ``FORCE_COLOR`` (:func:`oddoctor.cli._common.use_color`).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import Any, Callable, Optional


def enabled() -> bool:
    """Whether stderr is a terminal that can take a spinner or a bar."""
    isatty = getattr(sys.stderr, "isatty", None)
    return bool(isatty and isatty()) and os.environ.get("TERM") != "dumb"


def _console() -> Any:
    """A rich console on a duplicate of the terminal's stderr: what a command does to file descriptor 2 while it
    runs (``migrate`` keeps TensorFlow's import-time lines out of the terminal that way) does not catch the
    spinner's frames. Close its ``file`` when done."""
    from rich.console import Console

    from oddoctor.cli._common import use_color

    color = use_color(sys.stderr)
    sys.stderr.flush()
    stream = open(os.dup(sys.stderr.fileno()), "w", buffering=1, encoding=getattr(sys.stderr, "encoding", None)  # noqa: SIM115
                  or "utf-8", errors="replace")
    return Console(file=stream, highlight=False, color_system="auto" if color else None, force_terminal=True)


class Stage:
    """What a ``with spinner(...)`` block gets: ``update`` the stage shown beside the spinner, ``log`` a line
    that stays (printed above it)."""

    def __init__(self, status: Any = None, console: Any = None) -> None:
        self._status, self._console = status, console

    def update(self, message: str) -> None:
        if self._status is not None:
            self._status.update(_escape(message))
        else:
            print(f"oddoctor: {message} ...", file=sys.stderr, flush=True)

    def log(self, message: str) -> None:
        if self._console is not None:
            self._console.print(_escape(message), soft_wrap=True)
        else:
            print(message, file=sys.stderr, flush=True)


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


@contextlib.contextmanager
def spinner(message: str) -> Iterator[Optional[Stage]]:
    """A spinner with ``message`` on a terminal, yielding its :class:`Stage`; None elsewhere (print as before)."""
    if not enabled():
        yield None
        return
    console = _console()
    try:
        with console.status(_escape(message), spinner="dots") as status:
            yield Stage(status, console)
    finally:
        console.file.close()


class Bar:
    """A progress bar (description, bar, done/total, time left) on a terminal; :meth:`log` prints above it."""

    def __init__(self, total: int, description: str) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeRemainingColumn,
        )

        self.console = _console()
        self._progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                                  MofNCompleteColumn(), TimeRemainingColumn(), TextColumn("{task.fields[note]}"),
                                  console=self.console, transient=True)
        self._progress.start()
        self._task = self._progress.add_task(_escape(description), total=total, note="")

    def advance(self, note: str = "", description: Optional[str] = None) -> None:
        fields: dict[str, Any] = {"note": _escape(note)}
        if description is not None:
            fields["description"] = _escape(description)
        self._progress.update(self._task, advance=1, **fields)

    def log(self, message: str) -> None:
        self.console.print(_escape(message), soft_wrap=True)

    def close(self) -> None:
        self._progress.stop()
        self.console.file.close()


def say_with(stage: Optional[Stage], fallback: Optional[Callable[[str], None]]) -> Optional[Callable[[str], None]]:
    """The progress callback for a stage: the spinner's text on a terminal, else ``fallback``."""
    return stage.update if stage is not None else fallback
