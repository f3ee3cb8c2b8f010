"""The ``oddoctor`` Typer app. Command modules must not import TensorFlow at import time.

The app is built on first use (``from oddoctor.cli.main import app``, or any command line): importing
Typer and building every command costs more than ``oddoctor check --from`` itself, so ``main()`` runs
``check`` with plain options without them (``_fast_check``) and leaves everything else to Typer.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

from oddoctor import __version__
from oddoctor.cli import _common
from oddoctor.cli._common import EXIT_FAIL, EXIT_USAGE, UsageError
from oddoctor.interrupts import Terminated, install_signal_handlers, reraise_signal, signal_in

if TYPE_CHECKING:
    import typer
else:
    from oddoctor.cli._common import typer_on_demand as typer

app: typer.Typer  # made by _build_app() on first use (module __getattr__)


def _build_app() -> typer.Typer:
    global app
    app = typer.Typer(
        name="oddoctor",
        help="The doctor for TensorFlow object detection: will this machine run my model, "
        "why does my TF1 Mask R-CNN leak, and how do I get off TF1.",
        no_args_is_help=True,
        add_completion=True,  # --install-completion / --show-completion SHELL
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
    )
    app.callback()(_root)
    _register()
    return app


def __getattr__(name: str) -> Any:
    if name == "app":
        return _build_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _app() -> typer.Typer:
    built = globals().get("app")
    return built if built is not None else _build_app()


def _version(value: bool) -> None:
    if value:
        print(f"oddoctor {__version__}")
        raise typer.Exit(0)


def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for unexpected errors.")] = False,
    version: Annotated[
        Optional[bool],
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit."),
    ] = None,
    color: Annotated[
        Optional[str],
        _common.choice_option("--color", choices=_common.COLOR_CHOICES, show_default=False,
                              help="Colour for every command: auto (default: a terminal, unless NO_COLOR is set; "
                                   "FORCE_COLOR forces it), always or never."),
    ] = None,
) -> None:
    _common.state.debug = debug or os.environ.get("ODDOCTOR_DEBUG", "") not in ("", "0")
    _common.state.color = color or "auto"


def _register() -> None:
    # Imported here, not at the top, so that each command module stays import-light.
    from oddoctor.cli import budget as budget_cmd
    from oddoctor.cli import check as check_cmd
    from oddoctor.cli import compat, leak_test, migrate
    from oddoctor.cli import eval as eval_cmd
    from oddoctor.cli import lint as lint_cmd

    app.command("check")(check_cmd.check)
    app.command("collect")(check_cmd.collect)
    app.command("checks")(check_cmd.list_checks)
    app.command("compat")(compat.compat)
    app.command("leak-test")(leak_test.leak_test)
    app.command("migrate")(migrate.migrate)
    app.command("eval")(eval_cmd.eval_command)
    app.command("lint")(lint_cmd.lint)
    app.command("budget")(budget_cmd.budget)


def _safe_stdio() -> None:
    """Text that the terminal's encoding cannot show (PYTHONIOENCODING=ascii, a lone surrogate in a snapshot)
    is escaped, never a crash."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            with contextlib.suppress(ValueError, OSError):  # a detached or closed stream: leave it
                reconfigure(errors="backslashreplace")


def main(argv: Optional[list[str]] = None) -> None:
    """Console-script entry point: usage errors exit 2, unexpected errors exit 1, no tracebacks; SIGINT,
    SIGTERM and SIGHUP clean up (temp files, child processes) and exit 130 / 128+N."""
    restore = install_signal_handlers()
    _safe_stdio()
    try:
        _main(argv)
    finally:
        restore()


def _main(argv: Optional[list[str]]) -> None:
    try:
        try:
            args = _fast_check_args(sys.argv[1:] if argv is None else list(argv))
            if args is not None:
                _fast_check(args)
            else:
                _app()(args=argv, prog_name="oddoctor", standalone_mode=True)
        except Exception as e:  # a signal that Python wrapped (a RuntimeError from __set_name__) is the signal
            reraise_signal(e)
            raise
    except Terminated as e:
        import signal

        print(f"oddoctor: terminated by {signal.Signals(e.signum).name}", file=sys.stderr)
        sys.exit(128 + e.signum)
    except UsageError as e:
        print(f"oddoctor: error: {e}", file=sys.stderr)
        sys.exit(EXIT_USAGE)
    except KeyboardInterrupt:
        print("oddoctor: interrupted", file=sys.stderr)
        sys.exit(130)
    except SystemExit as e:
        if e.code == 130 and isinstance(signal_in(e), KeyboardInterrupt):  # Typer turns Ctrl-C into a silent 130
            print("oddoctor: interrupted", file=sys.stderr)
        raise
    except Exception as e:  # noqa: BLE001 - last resort: one line, no traceback
        if _common.state.debug:
            import traceback

            traceback.print_exc()
        else:
            print(f"oddoctor: internal error: {type(e).__name__}: {e} (run with --debug for the traceback)",
                  file=sys.stderr)
        sys.exit(EXIT_FAIL)


#: ``check``'s options that the fast path reads itself: option -> (parameter, kind). Anything else on the
#: command line (--help, --no-json, -pNAME, an unknown or repeated option, a value that Typer would refuse or
#: that starts with "-") goes to Typer, which gives the same result with its own messages.
_FAST_CHECK_OPTIONS: dict[str, tuple[str, str]] = {
    "--from": ("from_file", "file"),
    "--json": ("json_out", "flag"),
    "--format": ("output_format", "format"),
    "--color": ("color", "color"),
    "--verbose": ("verbose", "flag"),
    "-v": ("verbose", "flag"),
    "--strict": ("strict", "flag"),
    "--only": ("only", "list"),
    "--skip": ("skip", "list"),
    "--plugin": ("plugin", "list"),
    "-p": ("plugin", "list"),
    "--min-vram": ("min_vram", "text"),
    "--cpu": ("cpu", "flag"),
    "--gpu": ("gpu", "flag"),
    "--log": ("log", "path"),
    "--tf": ("tf", "text"),
    "--tf-timeout": ("tf_timeout", "float"),
    "--active": ("active", "flag"),
}


def _fast_check_args(argv: list[str]) -> Optional[dict[str, Any]]:
    """``check``'s keyword arguments when ``argv`` is ``check`` with plain options only; else None (Typer)."""
    if not argv or argv[0] != "check" or os.name == "nt" or os.environ.get("_ODDOCTOR_COMPLETE"):
        return None
    kwargs: dict[str, Any] = {}
    rest = argv[1:]
    while rest:
        token = rest.pop(0)
        name, eq, inline = token.partition("=") if token.startswith("--") else (token, "", "")
        if name not in _FAST_CHECK_OPTIONS:
            return None
        param, kind = _FAST_CHECK_OPTIONS[name]
        if kind == "flag":
            if eq or param in kwargs:
                return None
            kwargs[param] = True
            continue
        if not eq:
            if not rest:
                return None
            inline = rest.pop(0)
        value = _fast_value(kind, inline)
        if value is None:
            return None
        if kind == "list":
            kwargs.setdefault(param, []).append(value)
        elif param in kwargs:
            return None
        else:
            kwargs[param] = value
    return kwargs


def _fast_value(kind: str, text: str) -> Any:
    """An option value as Typer would convert it, or None where Typer should judge it (its own error message)."""
    if text == "" or (text.startswith("-") and not (text == "-" and kind in ("file", "path"))):
        return None
    if kind == "float":
        try:
            number = float(text)
        except ValueError:
            return None
        return number if number >= 1.0 else None  # --tf-timeout's min=1.0
    if kind in ("format", "color"):  # a choice: a typo goes to Typer, which suggests the closest
        from oddoctor.cli.check import CHECK_FORMATS

        return text if text in (CHECK_FORMATS if kind == "format" else _common.COLOR_CHOICES) else None
    if kind in ("file", "path"):
        if os.path.exists(text) and (not os.access(text, os.R_OK) or (kind == "file" and os.path.isdir(text))):
            return None
        return Path(text)
    return text


def _fast_check(kwargs: dict[str, Any]) -> None:
    """``oddoctor check`` without Typer, as Typer would run it (the root callback, then the command)."""
    import errno

    from oddoctor.cli.check import check

    _common.state.debug = os.environ.get("ODDOCTOR_DEBUG", "") not in ("", "0")
    try:
        check(**kwargs)
    except EOFError:
        print(file=sys.stderr)
        print("Aborted!", file=sys.stderr)
        sys.exit(1)
    except OSError as e:
        if e.errno != errno.EPIPE:
            raise
        with contextlib.suppress(OSError, ValueError):  # the reader went away: say nothing more, like Typer
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.dup2(devnull, sys.stderr.fileno())
        sys.exit(1)
    sys.exit(0)
