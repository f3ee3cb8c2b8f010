"""Ctrl-C, SIGTERM and SIGHUP as exceptions that Python cannot lose on the way to ``main()``.

The CLI's handlers (:func:`install_signal_handlers`) raise :class:`Interrupted` for SIGINT and :class:`Terminated`
for SIGTERM and SIGHUP, in the main thread, wherever it is. Two things in CPython can lose them there, both seen
when a Ctrl-C landed while ``oddoctor check`` was still importing its plugins:

- A plain ``KeyboardInterrupt`` that unwinds through code run from a string (``dataclasses`` and ``namedtuple``
  ``exec`` their methods while a module is imported) is marked "unhandled" even when a caller catches it; under
  ``python -m`` the interpreter then kills itself with SIGINT at exit (status -2, not 130). CPython 3.11 and 3.12
  compare the exact type, so a subclass is never marked.
- Raised inside a ``__set_name__`` (``dataclasses.field``), Python 3.11 wraps it in a ``RuntimeError``, which the
  code that records a broken plugin caught: the Ctrl-C became "plugin failed to load" and ``check`` ran on for a
  minute. :func:`reraise_signal` takes it out of such a wrapper, and :func:`raise_pending` raises it again at the
  next place that waits, in case it was swallowed where nobody could see it.
"""

from __future__ import annotations

import signal
from typing import Any, Callable, Optional

__all__ = ["Interrupted", "Terminated", "install_signal_handlers", "raise_pending", "reraise_signal",
           "signal_in"]


class Interrupted(KeyboardInterrupt):
    """Ctrl-C (SIGINT): caught by every ``except KeyboardInterrupt`` like the plain one."""


class Terminated(BaseException):
    """SIGTERM or SIGHUP (kill, timeout, systemd, Kubernetes, a cancelled CI job): unwinds like Ctrl-C, so that
    every ``finally`` and ``except BaseException`` cleans up (temp files, child processes), then exits 128+N."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


#: The signal received since the handlers were installed (its exception is raised again by raise_pending).
_pending: Optional[BaseException] = None


def install_signal_handlers() -> Callable[[], None]:
    """Turn SIGINT into :class:`Interrupted` and SIGTERM and SIGHUP into :class:`Terminated`, in the main thread
    (where Python runs handlers). A handler that the caller installed itself is left alone.

    Returns what puts the previous handlers back and forgets a pending signal (``main()`` calls it, so an
    in-process caller keeps its own)."""
    global _pending

    def raising(exc: BaseException) -> None:
        global _pending
        _pending = exc
        raise exc

    def interrupted(_signum: int, _frame: object) -> None:
        raising(Interrupted())

    def terminated(signum: int, _frame: object) -> None:
        raising(Terminated(signum))

    _pending = None
    previous: dict[int, Any] = {}
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        previous[signal.SIGINT] = signal.signal(signal.SIGINT, interrupted)
    for name in ("SIGTERM", "SIGHUP"):
        sig = getattr(signal, name, None)
        if sig is not None and signal.getsignal(sig) in (signal.SIG_DFL, None):
            previous[sig] = signal.signal(sig, terminated)

    def restore() -> None:
        global _pending
        for sig, old in previous.items():
            signal.signal(sig, old)
        _pending = None

    return restore


def signal_in(error: BaseException) -> Optional[BaseException]:
    """The Ctrl-C (any ``KeyboardInterrupt``) or :class:`Terminated` in ``error``'s cause/context chain, or None."""
    seen: set[int] = set()
    current: Optional[BaseException] = error
    while current is not None and id(current) not in seen:
        if isinstance(current, (KeyboardInterrupt, Terminated)):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def reraise_signal(error: BaseException) -> None:
    """Raise the signal inside ``error`` (see :func:`signal_in`), if there is one; else return. For the places
    that record a broken plugin or probe instead of raising: a Ctrl-C that arrived there is not its fault."""
    found = signal_in(error)
    if found is not None and found is not error:
        raise found from None


def raise_pending() -> None:
    """Raise the signal received since :func:`install_signal_handlers`, if any: for loops that wait, so that a
    signal swallowed earlier still stops the command."""
    if _pending is not None:
        raise _pending
