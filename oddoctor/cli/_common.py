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
from collections.abc import Sequence
from pathlib import Path
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
    ColorOpt = Optional[str]


def _option_aliases() -> dict[str, Any]:
    import typer

    return {
        "ColorOpt": Annotated[
            Optional[str],
            choice_option("--color", choices=COLOR_CHOICES, show_default=False,
                          help="Colour: auto (a terminal, unless NO_COLOR is set; FORCE_COLOR forces it), always "
                               "or never. Default: the root --color (oddoctor --color ... COMMAND), else auto."),
        ],
        "JsonOpt": Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")],
        "VerboseOpt": Annotated[bool, typer.Option("--verbose", "-v", help="Show details under each result.")],
        "StrictOpt": Annotated[bool, typer.Option("--strict", help="Treat warnings as failures (exit 1).")],
        "PluginOpt": Annotated[
            Optional[list[str]],
            typer.Option("--plugin", "-p", metavar="MODULE",
                         help="Load one more plugin module (dotted name). Repeatable."),
        ],
        "IdsOpt": Annotated[Optional[list[str]], typer.Option(metavar="ID,...", autocompletion=complete_check_ids,
                                                               help="Comma-separated check ids or id prefixes.")],
        "TfTimeoutOpt": Annotated[
            float,
            typer.Option("--tf-timeout", min=1.0, metavar="SECONDS",
                         help="Seconds the child process may take to import TensorFlow."),
        ],
        "ActiveOpt": Annotated[
            bool,
            typer.Option("--active", help="After the import, run a conv2d (cuDNN), a matmul (cuBLAS), crop_and_resize "
                         "and non-max suppression on each visible GPU (or the CPU), timing the first call: failures "
                         "that only show at the first kernel. Within --tf-timeout."),
        ],
    }


def complete_check_ids(incomplete: str) -> list[str]:
    """Shell completion of ``--only`` / ``--skip``: the check ids and areas (``gpu``) that start with the last
    comma-separated entry of ``incomplete``; the entries before it are kept."""
    from oddoctor.manager import collect_checks, make_plugin_manager

    head, comma, last = incomplete.rpartition(",")
    ids = {c.id for c in collect_checks(make_plugin_manager())}
    names = ids | {i.split(".", 1)[0] for i in ids}
    return [head + comma + n for n in sorted(names) if n.startswith(last)]


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


def finite_float(value: float, option: str, low: float, high: float) -> float:
    """A numeric option that must be finite and within bounds (``inf`` and ``nan`` are usage errors)."""
    import math

    if not math.isfinite(value) or not low <= value <= high:
        raise UsageError(f"{option} {value}: give a number from {low:g} to {high:g}")
    return value


class State:
    debug: bool = False
    color: str = "auto"  # the root --color (auto, always, never); a command's own --color replaces it


state = State()


def die(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """Print ``oddoctor: error: message`` on stderr and exit (no traceback)."""
    import typer

    print(f"oddoctor: error: {message}", file=sys.stderr)
    raise typer.Exit(code)


COLOR_CHOICES = ("auto", "always", "never")


def use_color(stream: TextIO, mode: Optional[str] = None) -> bool:
    """Whether to write colour (escape codes) to ``stream``.

    ``--color always`` / ``never`` decide (``mode``, else the root option in ``state.color``). With ``auto``: never
    when ``NO_COLOR`` is set to anything but "" (https://no-color.org); always when ``FORCE_COLOR`` is (CI logs are
    not terminals but show colour; ``FORCE_COLOR=0`` or ``false`` does not force); else only for a terminal that is
    not ``TERM=dumb``."""
    mode = mode or state.color
    if mode in ("always", "never"):
        return mode == "always"
    if os.environ.get("NO_COLOR", "") != "":
        return False
    if os.environ.get("FORCE_COLOR", "").strip().lower() not in ("", "0", "false", "no"):
        return True
    if os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def check_choice(option: str, value: str, choices: Sequence[str]) -> str:
    """``value`` when it is one of ``choices``; else a UsageError that lists them and suggests the closest."""
    if value in choices:
        return value
    if value.strip().lower() in choices:  # --os Windows
        return value.strip().lower()
    import difflib

    close = difflib.get_close_matches(value.lower(), choices, n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise UsageError(f"{option} {value!r} is not one of {', '.join(choices)}{hint}")


def choice_option(*names: str, choices: Sequence[str], help: str, **kw: Any) -> Any:
    """A ``typer.Option`` that takes one of ``choices`` (or several, for a list option): ``--help`` shows them
    as the metavar, the shell completes them, and a typo is refused with exit 2 and the closest choice
    ("oddoctor: error: --format 'markdwn' is not one of human, json, markdown; did you mean 'markdown'?"), in one
    line like every input error. The value stays a plain ``str``, so a command runs the same without Typer."""
    import typer

    option = names[0]

    def validate(value):  # type: ignore[no-untyped-def]  # Typer passes the converted value (or None)
        # die(), not typer.BadParameter: one line (oddoctor: error: ...), exit 2, as every input error
        try:
            if isinstance(value, (list, tuple)):
                return [check_choice(option, v, choices) for v in value]
            return value if value is None else check_choice(option, value, choices)
        except UsageError as e:
            die(str(e))

    def complete(incomplete: str):  # type: ignore[no-untyped-def]
        return [c for c in choices if c.startswith(incomplete)]

    return typer.Option(*names, help=help, metavar="[" + "|".join(choices) + "]", callback=validate,
                        autocompletion=complete, **kw)


def check_plot_path(plot: Path) -> None:
    """``--plot``: a new or regular ``.png``, a symlink to one (written through), or a device or FIFO (written
    into); and matplotlib importable. Checked before any measuring starts."""
    import importlib.util

    if plot.is_dir():
        raise UsageError(f"--plot {plot}: is a directory")
    special = plot.exists() and not plot.is_file()
    if not special and plot.suffix.lower() != ".png":
        raise UsageError(f"--plot {plot}: the file name must end in .png")
    if importlib.util.find_spec("matplotlib") is None:
        raise UsageError("--plot needs matplotlib: pip install 'oddoctor[plot]'")


def write_plot(plot: Path, save: Callable[[Path], object], tool: str) -> str:
    """Draw with ``save(plot)``; a write that fails is one line, exit 2. Returns the path, for the report."""
    try:
        save(plot)
    except OSError as e:
        raise UsageError(f"--plot {plot}: cannot write: {e.strerror or e}") from None
    print(f"{tool}: plot written to {plot}", file=sys.stderr, flush=True)
    return str(plot)


def print_report(report: Any, json_out: bool, render_text: Callable[[Any], str]) -> None:
    """A measuring command's report: its ``to_dict()`` as one JSON document, or its text."""
    if json_out:
        emit_json(report.to_dict())
    else:
        sys.stdout.write(render_text(report))
        sys.stdout.flush()


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
