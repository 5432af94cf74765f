"""An A/B test is approved whole: editing a variant the control does not show, or the test itself,
voids the approval as an edit of the copy does."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine

from pipeline.approvals.ledger import approve
from pipeline.audience.importer import import_contacts
from pipeline.errors import RunBlocked
from pipeline.runs import start
from pipeline.storage.statuses import RunStatus
from pipeline.workspace.folders import Workspace
from tests.approvals.conftest import LEAD

CAMPAIGN = "tooling-offer"


@pytest.mark.parametrize(
    ("old", "new", "changed"),
    [
        ("is your tooling ready for the KF-9?", "is your tooling ready?", "variant question changed"),
        ("  share: 50% ", "  share: 30% ", "the A/B test changed"),
    ],
)
def test_editing_a_variant_or_the_test_after_approval_blocks_the_run(
    approving_root: Path, engine: Engine, old: str, new: str, changed: str
) -> None:
    people = approving_root / "people.csv"
    people.write_text("email,marketing_consent\n" + "".join(f"p{i}@example.com,true\n" for i in range(4)))
    import_contacts(engine, people, list_name="customers")
    approve(Workspace.open(approving_root), CAMPAIGN, by=LEAD)
    copy = approving_root / "templates" / "copy" / f"{CAMPAIGN}.md"
    text = copy.read_text(encoding="utf-8")
    assert old in text
    copy.write_text(text.replace(old, new, 1), encoding="utf-8")

    with pytest.raises(RunBlocked, match=rf"has changed since \({changed}\)"):
        start.start_run(Workspace.open(approving_root), CAMPAIGN, started_by="test")

    copy.write_text(text, encoding="utf-8")  # as approved: it goes, under that approval
    run = start.start_run(Workspace.open(approving_root), CAMPAIGN, started_by="test")
    assert run.status == RunStatus.sending and run.approval_id is not None
