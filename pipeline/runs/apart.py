"""Work done in a fresh interpreter of its own, so that the process that waits for it never holds
what the work loads.

Memory a process has once used stays its peak. So `comms send` starts its run in one of these
(pipeline.runs.start: the audience, the approval, the confirmation, the snapshot), which has its
content prepared in another (pipeline.runs.prepare: assembly and the checks, 25 MB of libraries,
without the database's 30 MB), and itself only sends. A fresh interpreter, not a fork: a forked
child starts with its parent's pages counted as its own, and loads only what its work imports.
The work is named ("module:function"), so that this process never imports it either; its
arguments go pickled, and what it returns or raises comes back pickled
(delivery.channel.portable for what does not pickle). While it runs, this process leaves Ctrl-C
to it, as a shell does for the command it waits on: the child gets the signal too, and its
answer is raised here.
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

from pipeline.delivery.channel import child_environment, portable
from pipeline.errors import RunError


def in_fresh_process(work: str, *args: Any, **kwargs: Any) -> Any:
    """WORK(*ARGS, **KWARGS) computed in a new interpreter: its result, or its exception raised here.

    WORK names a module-level function, "package.module:function". The child has this process's
    standard streams, so that it can ask on the terminal; the work and its answer go over pipes."""
    work_out, work_in = os.pipe()
    answer_out, answer_in = os.pipe()
    for stream in (sys.stdout, sys.stderr):  # what was written here comes before the child's
        stream.flush()
    try:
        child = subprocess.Popen(
            [sys.executable, "-m", "pipeline.runs.apart", str(work_out), str(answer_in)],
            pass_fds=(work_out, answer_in),
            env=child_environment(),
        )
    except BaseException:
        os.close(work_in)
        os.close(answer_out)
        raise
    finally:
        os.close(work_out)
        os.close(answer_in)
    with _ctrl_c_left_to_child():
        with contextlib.suppress(BrokenPipeError), os.fdopen(work_in, "wb") as request:
            pickle.dump((work, args, kwargs), request)  # one that died early is told below
        with os.fdopen(answer_out, "rb") as answer:
            outcome = answer.read()
        code = child.wait()
    if not outcome:
        how = f"signal {-code}" if code < 0 else f"exit code {code}"
        raise RunError(f"the process running {work} ended ({how}) before it answered")
    kind, value = pickle.loads(outcome)
    if kind == "error":
        raise value
    return value


def _child(work_out: int, answer_in: int) -> None:
    """`python -m pipeline.runs.apart WORK_FD ANSWER_FD`: the work read from one, its outcome written
    to the other."""
    try:
        with os.fdopen(work_out, "rb") as request:
            work, args, kwargs = pickle.load(request)
        module, _, name = work.partition(":")
        function = getattr(importlib.import_module(module), name)
        outcome: tuple[str, object] = ("ok", function(*args, **kwargs))
    except BaseException as exc:  # the parent raises it: an abort at a prompt and Ctrl-C included
        outcome = ("error", portable(exc))
    try:
        data = pickle.dumps(outcome)
    except Exception as exc:  # an answer that cannot cross is an error that can
        data = pickle.dumps(("error", RuntimeError(f"the answer does not pickle: {exc}")))
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    with os.fdopen(answer_in, "wb") as answer:
        answer.write(data)


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
    _child(int(sys.argv[1]), int(sys.argv[2]))
