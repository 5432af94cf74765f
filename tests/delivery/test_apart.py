"""Starting a run in a process of its own (pipeline.runs.apart): what comes back, and from a child
that dies or is interrupted."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from pipeline.errors import CheckFailed, RunError
from pipeline.runs.apart import in_child


def test_the_childs_result_and_its_errors_come_back_whole() -> None:
    assert in_child(lambda: ("run", os.getpid())) != ("run", os.getpid())  # it ran elsewhere

    def refused() -> None:
        raise CheckFailed(
            "content.lorem-ipsum: placeholder text", path=Path("copy.md"), line=32, findings=(1,)
        )

    with pytest.raises(CheckFailed) as caught:
        in_child(refused)
    assert str(caught.value) == "copy.md:32: content.lorem-ipsum: placeholder text"
    assert caught.value.findings == (1,)


def test_a_child_killed_before_it_answers_is_one_error_naming_the_signal() -> None:
    with pytest.raises(RunError, match=r"the process starting the run ended \(signal 9\)"):
        in_child(lambda: os.kill(os.getpid(), signal.SIGKILL))


def test_ctrl_c_is_left_to_the_child_while_it_runs() -> None:
    """A terminal's Ctrl-C reaches both processes: the waiting one carries on and gets the
    child's answer (here the child took no notice of it)."""

    def interrupted_parent() -> str:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the child's own choice
        os.kill(os.getppid(), signal.SIGINT)
        return "started"

    before = signal.getsignal(signal.SIGINT)
    assert in_child(interrupted_parent) == "started"
    assert signal.getsignal(signal.SIGINT) is before
