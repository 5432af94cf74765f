"""The gate at run start: a campaign with an error finding is never sent, to its audience or as a test."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from pipeline.errors import CheckFailed
from pipeline.runs import rehearsal
from pipeline.storage.engines import session
from pipeline.storage.models import Delivery, Run
from tests.support.cli import assert_one_line_error, comms
from tests.support.workspace import CAMPAIGN, configure, open_ws, smtp_sections

COPY = "templates/copy/spring-launch.md"


def _break(root: Path) -> int:
    """Put Lorem ipsum (content.lorem-ipsum, an error) into the sample copy; the line it is on."""
    path = root / COPY
    text = path.read_text(encoding="utf-8")
    at = text.index("What that means for your parts:")
    path.write_text(text[:at] + "Lorem ipsum dolor sit amet.\n\n" + text[at:], encoding="utf-8")
    return text.count("\n", 0, at) + 1


def _count(engine: Engine, model: type) -> int:
    with session(engine) as db:
        return db.exec(select(func.count()).select_from(model)).one()[0]


def test_comms_send_refuses_a_campaign_with_an_error_and_sends_nothing(
    ws_root: Path, engine: Engine, add_contacts, smtp
) -> None:
    add_contacts(5)
    configure(ws_root, smtp_sections(smtp.port))
    line = _break(ws_root)

    result = comms("send", CAMPAIGN, "--yes", cwd=ws_root)

    assert_one_line_error(result, f"{COPY}:{line}: content.lorem-ipsum")
    assert smtp.messages == []
    assert _count(engine, Run) == 0 and _count(engine, Delivery) == 0


def test_a_test_send_is_refused_too_and_a_waiver_lets_it_through(
    ws_root: Path, engine: Engine, add_contacts, smtp
) -> None:
    add_contacts(2)
    configure(ws_root, smtp_sections(smtp.port))
    line = _break(ws_root)

    with pytest.raises(CheckFailed) as refused:
        rehearsal.test_send(open_ws(ws_root), CAMPAIGN, ["reviewer@agency.example"])
    assert (str(refused.value.path), refused.value.line) == (COPY, line)
    assert smtp.messages == []

    path = ws_root / COPY
    path.write_text(
        path.read_text().replace(
            "layout: promotion\n", 'layout: promotion\nwaive:\n  content.lorem-ipsum: "layout mock-up"\n'
        )
    )
    sent = rehearsal.test_send(open_ws(ws_root), CAMPAIGN, ["reviewer@agency.example"])
    assert [s.result.code for s in sent] == [250] and len(smtp.messages) == 1
