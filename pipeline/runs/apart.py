"""Work done in a fresh interpreter of its own, so that the process that waits for it never holds
what the work loads.

`comms send` prepares its run's content here (pipeline.runs.prepare: assembly and the checks, 25 MB
of libraries) and starts and sends the run itself: memory a process has once used stays its
peak, and neither then holds both the content's libraries and the database's. A fresh
interpreter, not a fork: a forked child starts with its parent's pages counted as its own, and
loads only what its work imports. The work is named ("module:function"), so that this process
never imports it either; its arguments go pickled, and what it returns or raises comes back
pickled (delivery.channel.portable for what does not pickle). While it runs, this process leaves
Ctrl-C to it, as a shell does for the command it waits on: the child gets the signal too, and
its answer is raised here.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import pickle
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

from pipeline.delivery.channel import portable
from pipeline.errors import RunError


def in_fresh_process(work: str, *args: Any) -> Any:
    """WORK(*ARGS) computed in a new interpreter: its result, or its exception raised here. WORK
    names a module-level function, "package.module:function"."""
    readable, writable = os.pipe()
    try:
        child = subprocess.Popen(
            [sys.executable, "-m", "pipeline.runs.apart", str(writable)],
            stdin=subprocess.PIPE,
            pass_fds=(writable,),
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},  # it imports what this one can
        )
    finally:
        os.close(writable)
    with _ctrl_c_left_to_child(), os.fdopen(readable, "rb") as answer:
        assert child.stdin is not None
        with contextlib.suppress(BrokenPipeError), child.stdin:  # one that died early is told below
            pickle.dump((work, args), child.stdin)
        outcome = answer.read()
        code = child.wait()
    if not outcome:
        how = f"signal {-code}" if code < 0 else f"exit code {code}"
        raise RunError(f"the process running {work} ended ({how}) before it answered")
    kind, value = pickle.loads(outcome)
    if kind == "error":
        raise value
    return value


def _child(writable: int) -> None:
    """Run the work pickled on stdin and answer on WRITABLE (`python -m pipeline.runs.apart FD`)."""
    try:
        work, args = pickle.load(sys.stdin.buffer)
        module, _, function = work.partition(":")
        outcome: tuple[str, object] = ("ok", getattr(importlib.import_module(module), function)(*args))
    except BaseException as exc:  # the parent raises it: Ctrl-C included
        outcome = ("error", portable(exc))
    with os.fdopen(writable, "wb") as answer:
        pickle.dump(outcome, answer)


@contextlib.contextmanager
def _ctrl_c_left_to_child() -> Iterator[None]:
    """SIGINT ignored here until the block ends (after the child started: it would inherit it)."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread handles signals
        return
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)


if __name__ == "__main__":
    _child(int(sys.argv[1]))
