"""Starting a run in a process of its own, so that the process that then sends it never holds what
starting needs.

Starting (plan, checks, freeze, snapshot) imports assembly and the checks (premailer, lxml, cssutils,
mjml: 25 MB) and builds the campaign; sending needs none of it, and memory a process has once used
stays its peak. So `comms send` starts its run in a forked child, which asks for confirmation on
the same terminal and ends once the run is written; the parent, which imported none of it, sends.

Forked, not spawned, so that the work is any callable of this process (the CLI's confirmation
among it): the caller forks before it has opened a database or started a thread. What the child
returns or raises comes back pickled (delivery.channel.portable for what does not pickle). While it
runs, this process leaves Ctrl-C to it, as a shell does for the command it waits on: the child
gets the signal too, and its answer (an abort at the prompt, an interrupted start) is raised here.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from typing import TypeVar

from pipeline.delivery.channel import portable
from pipeline.errors import RunError

T = TypeVar("T")


def in_child(work: Callable[[], T]) -> T:
    """WORK() computed in a forked child process: its result, or its exception raised here."""
    readable, writable = os.pipe()
    for stream in (sys.stdout, sys.stderr):  # nothing written so far is written twice
        stream.flush()
    with _ctrl_c_left_to_child() as as_before:  # from before the fork: no moment without it
        pid = os.fork()
        if pid == 0:
            as_before()  # the child answers Ctrl-C as this process did
            os.close(readable)
            _child(work, writable)
        os.close(writable)
        with os.fdopen(readable, "rb") as answer:
            outcome = answer.read()
        _, status = os.waitpid(pid, 0)
    if not outcome:
        code = os.waitstatus_to_exitcode(status)
        how = f"signal {-code}" if code < 0 else f"exit code {code}"
        raise RunError(f"the process starting the run ended ({how}) before it answered")
    kind, value = pickle.loads(outcome)
    if kind == "error":
        raise value
    return value  # type: ignore[no-any-return]


def _child(work: Callable[[], T], writable: int) -> None:
    """Run WORK, answer on WRITABLE and end, without the parent's exit handlers (os._exit)."""
    status = 0
    try:
        try:
            outcome: tuple[str, object] = ("ok", work())
        except BaseException as exc:  # the parent raises it: an abort and Ctrl-C included
            outcome = ("error", portable(exc))
        with os.fdopen(writable, "wb") as answer:
            pickle.dump(outcome, answer)
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
    except BaseException:
        status = 1
    finally:
        os._exit(status)


@contextlib.contextmanager
def _ctrl_c_left_to_child() -> Iterator[Callable[[], None]]:
    """SIGINT ignored here until the block ends; what it yields puts the handler back (in the child)."""
    if threading.current_thread() is not threading.main_thread():
        yield lambda: None  # only the main thread handles signals
        return
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)

    def as_before() -> None:
        signal.signal(signal.SIGINT, before)

    try:
        yield as_before
    finally:
        as_before()


__all__ = ["in_child"]
