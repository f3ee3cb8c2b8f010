"""The ``oddoctor`` Typer app. Command modules must not import TensorFlow at import time."""

from __future__ import annotations

import contextlib
import os
import sys
import traceback
from typing import Annotated, Optional

import typer

from oddoctor import __version__
from oddoctor.cli import _common
from oddoctor.cli._common import EXIT_FAIL, EXIT_USAGE, Terminated, UsageError, install_signal_handlers

app = typer.Typer(
    name="oddoctor",
    help="The doctor for TensorFlow object detection: will this machine run my model, "
    "why does my TF1 Mask R-CNN leak, and how do I get off TF1.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        print(f"oddoctor {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for unexpected errors.")] = False,
    version: Annotated[
        Optional[bool],
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit."),
    ] = None,
) -> None:
    _common.state.debug = debug or os.environ.get("ODDOCTOR_DEBUG", "") not in ("", "0")


def _register() -> None:
    # Imported here, not at the top, so that each command module stays import-light.
    from oddoctor.cli import check as check_cmd
    from oddoctor.cli import compat, leak_test, migrate
    from oddoctor.cli import lint as lint_cmd

    app.command("check")(check_cmd.check)
    app.command("collect")(check_cmd.collect)
    app.command("checks")(check_cmd.list_checks)
    app.command("compat")(compat.compat)
    app.command("leak-test")(leak_test.leak_test)
    app.command("migrate")(migrate.migrate)
    app.command("lint")(lint_cmd.lint)


_register()


def _from_ctrl_c(error: BaseException) -> bool:
    """True when a KeyboardInterrupt is in the exception's cause/context chain."""
    seen: set[int] = set()
    current: Optional[BaseException] = error
    while current is not None and id(current) not in seen:
        if isinstance(current, KeyboardInterrupt):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


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
        app(args=argv, prog_name="oddoctor", standalone_mode=True)
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
        if e.code == 130 and _from_ctrl_c(e):  # Typer turns Ctrl-C into a silent exit 130
            print("oddoctor: interrupted", file=sys.stderr)
        raise
    except Exception as e:  # noqa: BLE001 - last resort: one line, no traceback
        if _common.state.debug:
            traceback.print_exc()
        else:
            print(f"oddoctor: internal error: {type(e).__name__}: {e} (run with --debug for the traceback)",
                  file=sys.stderr)
        sys.exit(EXIT_FAIL)
