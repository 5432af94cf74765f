"""Work in a fresh interpreter (pipeline.runs.apart): what comes back, from a child that dies or is
interrupted, and what the process that prepares a run's content loads.

The work each test gives is a function of this module, which imports nothing of the database
layer, so that what the child loads is the work's own."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any

import pytest

from pipeline.errors import CheckFailed, RunError
from pipeline.runs.apart import in_fresh_process

HERE = "tests.delivery.test_apart"


def _refused() -> None:
    raise CheckFailed("content.lorem-ipsum: placeholder text", path=Path("copy.md"), line=32, findings=(1,))


def _killed() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _unpicklable() -> object:
    return lambda: None


def _interrupted_parent() -> str:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the child's own choice
    os.kill(os.getppid(), signal.SIGINT)
    return "started"


def _prepared_and_loaded(root: Path, campaign: str) -> tuple[Any, set[str]]:
    from pipeline.runs.prepare import prepare_at

    return prepare_at(root, campaign), {name.partition(".")[0] for name in sys.modules}


def test_the_childs_result_and_its_errors_come_back_whole() -> None:
    assert in_fresh_process("os:getpid") != os.getpid()  # it ran elsewhere

    with pytest.raises(CheckFailed) as caught:
        in_fresh_process(f"{HERE}:_refused")
    assert str(caught.value) == "copy.md:32: content.lorem-ipsum: placeholder text"
    assert caught.value.findings == (1,)


def test_a_child_killed_before_it_answers_is_one_error_naming_the_signal() -> None:
    killed = r"the process running .*:_killed ended \(signal 9\) before it answered"
    with pytest.raises(RunError, match=killed):
        in_fresh_process(f"{HERE}:_killed")


def test_an_answer_that_does_not_pickle_comes_back_as_an_error() -> None:
    with pytest.raises(RuntimeError, match="the answer does not pickle"):
        in_fresh_process(f"{HERE}:_unpicklable")


def test_ctrl_c_is_left_to_the_child_while_it_runs() -> None:
    """A terminal's Ctrl-C reaches both processes: the waiting one carries on and gets the
    child's answer (here the child took no notice of it)."""
    before = signal.getsignal(signal.SIGINT)
    assert in_fresh_process(f"{HERE}:_interrupted_parent") == "started"
    assert signal.getsignal(signal.SIGINT) is before


def test_a_runs_content_is_prepared_in_a_process_that_never_loads_the_database_layer(ws_root: Path) -> None:
    """The half of starting a run that assembles and checks holds none of SQLAlchemy's 30 MB (the
    half that reads the database, in the process that sends, holds none of assembly's)."""
    from tests.support.workspace import CAMPAIGN

    prepared, loaded = in_fresh_process(f"{HERE}:_prepared_and_loaded", ws_root, CAMPAIGN)

    assert prepared.campaign.name == CAMPAIGN and prepared.tracked_html.links
    assert "{{ tracking[0] }}" in prepared.tracked.html  # frozen with its tracked links
    assert {"premailer", "mjml", "lxml"} <= loaded  # it did assemble
    assert loaded & {"sqlalchemy", "sqlmodel", "alembic", "psycopg"} == set()
