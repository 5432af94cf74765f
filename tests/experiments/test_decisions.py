"""A/B tests end to end: arms sent first, human clicks through the real tracking server, the decision,
and the rest of the audience sent the winner (or the control), each recipient once."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select, update

from pipeline.experiments.decision import decide_due
from pipeline.runs.dispatch import dispatch_run
from pipeline.storage.engines import session
from pipeline.storage.models import Delivery, Event, Run, utcnow
from pipeline.storage.outbox import aware
from pipeline.storage.statuses import DeliveryStatus, RunStatus
from tests.experiments.conftest import (
    OFFER_SUBJECT,
    QUESTION_SUBJECT,
    Lab,
    messages,
    variants,
)
from tests.support.cli import comms
from tests.support.workspace import configure


def _assert_each_once_with_their_variant(lab: Lab, run_id: int, rest_subject: str) -> dict:
    received = messages(lab.smtp)
    frozen = variants(lab.engine, run_id)
    assert all(len(got) == 1 for got in received.values())  # nobody twice
    expected = {"offer": OFFER_SUBJECT, "question": QUESTION_SUBJECT}
    for email, (variant, status) in frozen.items():
        if status == DeliveryStatus.skipped:  # unsubscribed in the test phase
            continue
        assert status == DeliveryStatus.sent, (email, status)
        assert expected[variant] in str(received[email][0]["Subject"]), (email, variant)
    return frozen


def test_arms_go_first_stratified_and_the_rest_waits_held(lab: Lab) -> None:
    run = lab.send_arms()
    frozen = variants(lab.engine, run.id)
    by_status: dict[str, int] = {}
    for variant, status in frozen.values():
        by_status[f"{variant or '-'}:{status}"] = by_status.get(f"{variant or '-'}:{status}", 0) + 1
    assert by_status == {"offer:sent": 40, "question:sent": 40, "-:held": 80}
    assert len(lab.smtp.messages) == 80  # nobody held got anything
    received = messages(lab.smtp)
    for email, (variant, _) in frozen.items():
        if variant:
            subject = str(received[email][0]["Subject"])
            assert (OFFER_SUBJECT if variant == "offer" else QUESTION_SUBJECT) in subject
    # Stratified: each department x domain cell is split between the arms within one person.
    with session(lab.engine) as db:
        rows = db.scalars(select(Delivery).where(Delivery.run_id == run.id)).all()
    cells: dict[tuple[str, str], list[int]] = {}
    for row in rows:
        if row.variant:
            cell = cells.setdefault((row.department, row.domain), [0, 0])
            cell[row.variant == "question"] += 1
    assert len(cells) == 9 and all(abs(a - b) <= 1 for a, b in cells.values())


def test_a_clear_winner_is_sent_to_the_rest(lab: Lab) -> None:
    run = lab.send_arms()
    lab.engage(run, {"offer": 4, "question": 24})
    with session(lab.engine) as db:
        clicks = db.scalars(select(Event).where(Event.kind == "click")).all()
    assert len(clicks) == 28 and not any(e.machine for e in clicks)  # people, as the tracker sees them

    decided = comms("ab", "decide", str(run.id), cwd=lab.root)

    assert decided.returncode == 0, decided.stderr
    assert "(rule): winner question, 80 released" in decided.stdout
    _assert_each_once_with_their_variant(lab, run.id, QUESTION_SUBJECT)
    frozen = variants(lab.engine, run.id)
    assert sum(1 for v, _ in frozen.values() if v == "question") == 40 + 80
    with session(lab.engine) as db:
        stored = db.get(Run, run.id)
    assert stored is not None and stored.status == RunStatus.finished
    decision = stored.meta["ab"]["decision"]
    assert decision["winner"] == "question" and decision["chosen_by"] == "rule"
    assert decision["released"] == 80 and decision["needed_per_arm"] == 32
    arms = {arm["variant"]: arm for arm in decision["arms"]}
    assert (arms["offer"]["n"], arms["offer"]["k"]) == (40, 4)
    assert (arms["question"]["n"], arms["question"]["k"]) == (40, 24)
    assert arms["question"]["p_best"] > 0.999

    report = comms("report", "run", str(run.id), cwd=lab.root)
    assert report.returncode == 0, report.stderr
    assert "A/B test: offer vs question" in report.stdout
    assert "winner question, 80 released to it" in report.stdout
    assert "rule: winner: P(best) ≥ 0.95" in report.stdout
    page = lab.root / "run.html"
    assert comms("report", "run", str(run.id), "--html", str(page), cwd=lab.root).returncode == 0
    assert "A/B test: question (rule): P(best) 1.000" in page.read_text(encoding="utf-8")

    log = (lab.root / "reports" / "ab-log.md").read_text(encoding="utf-8").splitlines()
    [line] = [entry for entry in log if entry.startswith("- ")]
    assert re.match(r"- \d{4}-\d{2}-\d{2} \*\*tooling-offer\*\*", line)
    assert "offer: n=40, 10.0%, P(best) 0.000" in line and "question: n=40, 60.0%, P(best) 1.000" in line
    assert "human click rate" in line and "decision: **question** (rule; sent to the other 80)" in line


def test_a_tie_sends_the_control_at_decision_time(lab: Lab) -> None:
    run = lab.send_arms()
    lab.engage(run, {"offer": 6, "question": 6})

    # What the daemon does every few seconds: nothing before the decision time (24h after the start) ...
    assert run.ab_decide_at is not None and aware(run.ab_decide_at) > utcnow() + timedelta(hours=23)
    assert decide_due(lab.ws, lab.engine) == []
    with lab.engine.begin() as conn:  # ... and once it has come (the day passes)
        conn.execute(update(Run).where(Run.id == run.id).values(ab_decide_at=utcnow()))
    [decision] = decide_due(lab.ws, lab.engine)

    assert decision["winner"] == "offer" and decision["chosen_by"] == "rule"
    assert "no clear winner" in decision["reason"]
    assert 0.3 < decision["arms"][1]["p_best"] < 0.7
    assert decide_due(lab.ws, lab.engine) == []  # decided once
    dispatch_run(lab.ws, run.id)
    _assert_each_once_with_their_variant(lab, run.id, OFFER_SUBJECT)
    frozen = variants(lab.engine, run.id)
    assert sum(1 for v, _ in frozen.values() if v == "offer") == 40 + 80


def test_a_guardrail_breach_blocks_the_winner(lab: Lab) -> None:
    run = lab.send_arms()
    lab.engage(run, {"offer": 4, "question": 24}, unsubscribes={"question": 3})

    decided = comms("ab", "decide", str(run.id), cwd=lab.root)

    assert decided.returncode == 0, decided.stderr
    assert "(rule): winner offer, 80 released" in decided.stdout
    assert "guardrail: question's unsubscribe rate 7.50% > 2.00%" in decided.stdout
    frozen = _assert_each_once_with_their_variant(lab, run.id, OFFER_SUBJECT)
    assert sum(1 for v, _ in frozen.values() if v == "offer") == 40 + 80


def test_a_manual_override_needs_a_reason_and_is_kept(lab: Lab) -> None:
    run = lab.send_arms()

    refused = comms("ab", "decide", str(run.id), "--winner", "question", cwd=lab.root)
    assert refused.returncode != 0 and "--reason" in refused.stderr
    decided = comms(
        "ab",
        "decide",
        str(run.id),
        "--winner",
        "question",
        "--reason",
        "brand prefers it",
        "--no-send",
        cwd=lab.root,
    )

    assert decided.returncode == 0, decided.stderr
    assert "(manual): winner question" in decided.stdout and "manual: brand prefers it" in decided.stdout
    again = comms("ab", "decide", str(run.id), cwd=lab.root)
    assert again.returncode == 1 and "was decided on" in again.stderr and "Traceback" not in again.stderr
    assert len(lab.smtp.messages) == 80  # --no-send: the rest is queued for a worker
    with session(lab.engine) as db:
        stored = db.get(Run, run.id)
    assert stored is not None and stored.meta["ab"]["decision"]["chosen_by"] == "manual"


def test_aggregate_mode_suppresses_small_arms_in_comms_ab_decide_and_the_log(lab: Lab) -> None:
    run = lab.send_arms()
    lab.engage(run, {"offer": 4, "question": 24})
    configure(lab.root, {"reports": 'mode = "aggregate"\nmin_cell = 41'})  # arms of 40

    decided = comms("ab", "decide", str(run.id), "--no-send", cwd=lab.root)

    assert decided.returncode == 0, decided.stderr
    assert "(rule): winner question, 80 released" in decided.stdout
    assert decided.stdout.count("suppressed (fewer than [reports] min_cell recipients)") == 2
    assert "n=40" not in decided.stdout and "P(best) 0.000" not in decided.stdout
    log = (lab.root / "reports" / "ab-log.md").read_text(encoding="utf-8")
    assert "offer: suppressed (fewer than min_cell); question: suppressed (fewer than min_cell)" in log
    assert "n=40" not in log
    with session(lab.engine) as db:  # the run keeps the figures: only what is shown changes
        stored = db.get(Run, run.id)
    assert stored is not None and [arm["n"] for arm in stored.meta["ab"]["decision"]["arms"]] == [40, 40]
