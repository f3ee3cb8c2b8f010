"""What every command shares: option aliases, output conventions and exit codes.

Conventions (docs/cli.md):
- ``--json`` prints exactly one JSON document on stdout, with a ``schema_version``; logs and
  progress go to stderr.
- Exit 0: nothing failed. 1: a check failed or errored / the measured thing is bad. 2: usage or
  input error (bad option value, missing or malformed file), reported in one line without a
  traceback unless ``--debug``.
"""

from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING, Annotated, Any, Callable, NoReturn, Optional, TextIO

from oddoctor import units

EXIT_OK = 0
EXIT_FAIL = 1
EXIT_USAGE = 2


class _TyperOnDemand:
    """Stands for the ``typer`` module and imports it on first use: importing Typer costs more than
    ``check --from`` itself, and ``check`` with plain options runs without it (``main._fast_check``)."""

    def __getattr__(self, name: str) -> Any:
        import typer

        return getattr(typer, name)


#: ``typer`` for modules that must import without it (option annotations are strings, read when the app is built).
typer_on_demand: Any = _TyperOnDemand()

if TYPE_CHECKING:  # what the aliases below are to a type checker; at run time ``__getattr__`` makes them
    JsonOpt = bool
    VerboseOpt = bool
    StrictOpt = bool
    PluginOpt = Optional[list[str]]
    IdsOpt = Optional[list[str]]
    TfTimeoutOpt = float
    ActiveOpt = bool


def _option_aliases() -> dict[str, Any]:
    import typer

    return {
        "JsonOpt": Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")],
        "VerboseOpt": Annotated[bool, typer.Option("--verbose", "-v", help="Show details under each result.")],
        "StrictOpt": Annotated[bool, typer.Option("--strict", help="Treat warnings as failures (exit 1).")],
        "PluginOpt": Annotated[
            Optional[list[str]],
            typer.Option("--plugin", "-p", help="Load one more plugin module (dotted name). Repeatable."),
        ],
        "IdsOpt": Annotated[Optional[list[str]], typer.Option(help="Comma-separated check ids or id prefixes.")],
        "TfTimeoutOpt": Annotated[
            float,
            typer.Option("--tf-timeout", min=1.0, help="Seconds the child process may take to import TensorFlow."),
        ],
        "ActiveOpt": Annotated[
            bool,
            typer.Option("--active", help="After the import, run a conv2d (cuDNN), a matmul (cuBLAS), crop_and_resize "
                         "and non-max suppression on each visible GPU (or the CPU), timing the first call: failures "
                         "that only show at the first kernel. Within --tf-timeout."),
        ],
    }


def __getattr__(name: str) -> Any:
    """The shared option aliases (``JsonOpt`` ...), made with Typer on first use, so that importing this module
    does not import Typer."""
    if name.endswith("Opt"):
        aliases = _option_aliases()
        if name in aliases:
            globals().update(aliases)
            return aliases[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit 2."""


class Terminated(BaseException):
    """SIGTERM or SIGHUP (kill, timeout, systemd, Kubernetes, a cancelled CI job): unwinds like Ctrl-C, so that
    every ``finally`` and ``except BaseException`` cleans up (temp files, child processes), then exits 128+N."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def install_signal_handlers() -> Callable[[], None]:
    """Turn SIGTERM and SIGHUP into :class:`Terminated` in the main thread (where Python runs handlers).

    Returns what puts the previous handlers back (``main()`` does, so an in-process caller keeps its own)."""
    import signal

    def handler(signum: int, _frame: object) -> None:
        raise Terminated(signum)

    previous: dict[int, Any] = {}
    for name in ("SIGTERM", "SIGHUP"):
        sig = getattr(signal, name, None)
        if sig is not None and signal.getsignal(sig) in (signal.SIG_DFL, None):
            previous[sig] = signal.signal(sig, handler)

    def restore() -> None:
        for sig, old in previous.items():
            signal.signal(sig, old)

    return restore


def finite_float(value: float, option: str, low: float, high: float) -> float:
    """A numeric option that must be finite and within bounds (``inf`` and ``nan`` are usage errors)."""
    import math

    if not math.isfinite(value) or not low <= value <= high:
        raise UsageError(f"{option} {value}: give a number from {low:g} to {high:g}")
    return value


class State:
    debug: bool = False


state = State()


def die(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """Print ``oddoctor: error: message`` on stderr and exit (no traceback)."""
    import typer

    print(f"oddoctor: error: {message}", file=sys.stderr)
    raise typer.Exit(code)


def use_color(stream: TextIO) -> bool:
    """Colour only for a TTY, and never when NO_COLOR is set (https://no-color.org)."""
    if os.environ.get("NO_COLOR", "") != "":
        return False
    if os.environ.get("TERM") == "dumb":
        return False
    return hasattr(stream, "isatty") and stream.isatty()


def emit_json(doc: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(doc, indent=2, default=str) + "\n")
    sys.stdout.flush()


def progress(message: str) -> None:
    """A progress line on stderr (stdout stays clean for --json)."""
    print(message, file=sys.stderr, flush=True)


def parse_size(text: str) -> int:
    """Parse a size option ('8GiB'); bad input is a UsageError (exit 2)."""
    try:
        return units.parse_size(text)
    except ValueError as e:
        raise UsageError(str(e)) from None


format_bytes = units.format_bytes
