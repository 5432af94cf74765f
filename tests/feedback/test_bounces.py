"""Bounce and complaint ingestion: real DSN, ARF and plain-text reports against a real database."""

from __future__ import annotations

import mailbox
import re
import subprocess
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from pipeline.errors import SettingsError
from pipeline.feedback.bounces import ingest_message, ingest_path, poll_imap
from pipeline.message.mime import MessageBuilder
from pipeline.message.tokens import make_token
from pipeline.message.urls import recipient_links
from pipeline.storage.engines import session
from pipeline.storage.models import Delivery, Event, Suppression
from pipeline.workspace.settings import Settings
from tests.feedback import reports
from tests.feedback.conftest import SECRET, Sent, World
from tests.support.cli import comms_bytes
from tests.support.imap_server import ImapServer

BOUNCES = "bounces@kestrelforge.example"


def verp(settings: Settings, sent: Sent) -> str:
    return f"bounces+{make_token(settings.secret, 'b', sent.delivery_id)}@kestrelforge.example"


def returned(
    world: World,
    sent: Sent,
    recipient: str,
    status: str = "5.1.1",
    diagnostic: str = "550 5.1.1 user unknown",
    **more: str,
) -> bytes:
    """An RFC 3464 report on SENT as the recipient's side returns it: to its VERP address, naming its
    Message-ID (MORE: other reports.dsn arguments)."""
    given = {"to": verp(world.settings, sent), "original_message_id": sent.message_id} | more
    return reports.dsn(recipient=recipient, status=status, diagnostic=diagnostic, **given)


def delivery(engine: Engine, sent: Sent) -> Delivery:
    with session(engine) as db:
        found = db.get(Delivery, sent.delivery_id)
        assert found is not None
        return found


def suppression_reasons(engine: Engine) -> dict[str | None, str]:
    with session(engine) as db:
        return {s.email: s.reason for s in db.scalars(select(Suppression))}


def all_events(engine: Engine) -> list[Event]:
    with session(engine) as db:
        return list(db.scalars(select(Event).order_by(Event.id)))


def test_rfc3464_hard_bounce_through_verp_fails_the_delivery_and_suppresses(
    world: World, engine: Engine
) -> None:
    sent = world.send(world.add_contact("gone@example.org"))
    bystander = world.send(world.add_contact("here@example.org"))
    raw = returned(
        world,
        sent,
        "gone@example.org",
        diagnostic="550 5.1.1 <gone@example.org>: Recipient address rejected: User unknown",
        original_message_id="<not-ours@elsewhere.example>",  # VERP wins over a mangled Message-ID
    )
    outcome = ingest_message(engine, world.settings, raw, source="test")
    assert (outcome.kind, outcome.delivery_id, outcome.severity) == ("bounce", sent.delivery_id, "hard")

    bounced = delivery(engine, sent)
    assert bounced.status == "failed" and bounced.last_code == 550
    assert bounced.last_reply.startswith("bounced: 5.1.1 smtp; 550 5.1.1")
    assert delivery(engine, bystander).status == "sent"
    assert suppression_reasons(engine) == {"gone@example.org": "hard_bounce"}
    [event] = all_events(engine)
    assert event.kind == "bounce" and event.delivery_id == sent.delivery_id
    assert event.detail["class"] == "hard" and event.detail["attributed_by"] == "verp"
    assert event.detail["status"] == "5.1.1" and event.detail["format"] == "rfc3464"


def test_dsn_without_verp_is_tied_by_the_returned_message_id(world: World, engine: Engine) -> None:
    sent = world.send(world.add_contact("gone@example.org"))
    raw = reports.dsn(
        to=BOUNCES,
        recipient="gone@example.org",
        status="5.1.2",
        diagnostic="550 5.1.2 bad destination system address",
        original_message_id=sent.message_id,
        returned="message",
    )
    outcome = ingest_message(engine, world.settings, raw, source="test")
    assert outcome.delivery_id == sent.delivery_id
    assert all_events(engine)[0].detail["attributed_by"] == "message-id"
    assert suppression_reasons(engine) == {"gone@example.org": "hard_bounce"}


def test_postfix_style_plain_text_bounce(world: World, engine: Engine) -> None:
    sent = world.send(world.add_contact("nobody@example.org"))
    raw = reports.postfix_text(
        to=verp(world.settings, sent),
        recipient="nobody@example.org",
        reply="550 5.1.1 <nobody@example.org>: Recipient address rejected: User unknown in virtual table",
        original_message_id=sent.message_id,
    )
    outcome = ingest_message(engine, world.settings, raw, source="test")
    assert (outcome.delivery_id, outcome.severity) == (sent.delivery_id, "hard")
    [event] = all_events(engine)
    assert event.detail["format"] == "postfix-text" and event.detail["recipient"] == "nobody@example.org"
    assert event.detail["status"] == "5.1.1" and event.detail["smtp_code"] == 550
    assert suppression_reasons(engine) == {"nobody@example.org": "hard_bounce"}


def test_exchange_style_plain_text_bounce_tied_by_quoted_message_id(world: World, engine: Engine) -> None:
    sent = world.send(world.add_contact("left@contoso.example"))
    raw = reports.exchange_text(
        to=BOUNCES, recipient="left@contoso.example", original_message_id=sent.message_id
    )
    outcome = ingest_message(engine, world.settings, raw, source="test")
    assert (outcome.delivery_id, outcome.severity) == (sent.delivery_id, "hard")
    [event] = all_events(engine)
    assert event.detail["format"] == "exchange-text" and event.detail["recipient"] == "left@contoso.example"
    assert event.detail["diagnostic"].endswith("returned '550 5.1.1 RESOLVER.ADR.RecipNotFound; not found'")
    assert delivery(engine, sent).status == "failed"
    assert suppression_reasons(engine) == {"left@contoso.example": "hard_bounce"}


@pytest.mark.parametrize(
    ("status", "diagnostic"),
    [
        ("5.7.1", "554 5.7.1 Service unavailable; client host blocked using zen.spamhaus.example"),
        ("5.1.7", "553 5.1.7 <{verp}>: Sender address rejected: Domain not found"),
        ("5.1.8", "553 5.1.8 <{verp}>: Sender address rejected: Domain not found"),
    ],
)
def test_a_refusal_of_our_side_is_recorded_without_suppressing_the_recipient(
    world: World, engine: Engine, status: str, diagnostic: str
) -> None:
    # A blocklisted server (5.7.1) or a refused sender address (5.1.7, 5.1.8): nothing about the recipient.
    sent = world.send(world.add_contact("fine@example.org"))
    raw = returned(
        world, sent, "fine@example.org", status, diagnostic.format(verp=verp(world.settings, sent))
    )
    outcome = ingest_message(engine, world.settings, raw, source="test")
    assert (outcome.delivery_id, outcome.severity, outcome.suppressed) == (sent.delivery_id, "sender", None)
    assert delivery(engine, sent).status == "failed"
    assert suppression_reasons(engine) == {}
    assert all_events(engine)[0].detail["class"] == "sender"


def test_three_soft_bounces_in_a_row_suppress_the_address(world: World, engine: Engine) -> None:
    contact = world.add_contact("full@example.org")
    runs = [world.send(contact) for _ in range(3)]
    for number, sent in enumerate(runs, start=1):
        raw = returned(world, sent, "full@example.org", "4.2.2", "452 4.2.2 Mailbox full")
        outcome = ingest_message(engine, world.settings, raw, source="test")
        assert outcome.severity == "soft"
        expected = {"full@example.org": "soft_bounce"} if number == 3 else {}
        assert suppression_reasons(engine) == expected, number


def test_a_delivered_message_between_soft_bounces_breaks_the_streak(world: World, engine: Engine) -> None:
    contact = world.add_contact("full@example.org")
    first, _delivered, third, fourth = (world.send(contact) for _ in range(4))
    for sent in (first, third, fourth):
        raw = returned(world, sent, "full@example.org", "4.2.2", "452 4.2.2 Mailbox full")
        ingest_message(engine, world.settings, raw, source="test")
    assert suppression_reasons(engine) == {}


def test_delayed_notice_is_recorded_and_changes_nothing(world: World, engine: Engine) -> None:
    sent = world.send(world.add_contact("slow@example.org"))
    raw = returned(
        world, sent, "slow@example.org", "4.4.1", "421 4.4.1 connection timed out", action="delayed"
    )
    assert ingest_message(engine, world.settings, raw, source="test").severity == "delayed"
    assert delivery(engine, sent).status == "sent" and suppression_reasons(engine) == {}


def test_arf_complaint_suppresses_and_records(world: World, engine: Engine) -> None:
    sent = world.send(world.add_contact("angry@example.net"))
    raw = reports.arf(
        to="fbl@kestrelforge.example",
        original_mail_from=verp(world.settings, sent),
        complainant="angry@example.net",
        original_message_id=sent.message_id,
    )
    outcome = ingest_message(engine, world.settings, raw, source="test")
    assert (outcome.kind, outcome.delivery_id, outcome.suppressed) == (
        "complaint",
        sent.delivery_id,
        "complaint",
    )
    [event] = all_events(engine)
    assert event.kind == "complaint" and event.detail["feedback_type"] == "abuse"
    assert suppression_reasons(engine) == {"angry@example.net": "complaint"}
    assert delivery(engine, sent).status == "sent"  # it was delivered; the person objected


def test_unattributable_bounce_is_recorded_not_dropped(world: World, engine: Engine) -> None:
    world.send(world.add_contact("someone@example.org"))
    raw = reports.dsn(
        to=BOUNCES,
        recipient="stranger@example.org",
        status="5.1.1",
        diagnostic="550 5.1.1 user unknown",
        original_message_id="<never-sent@kestrelforge.example>",
    )
    outcome = ingest_message(engine, world.settings, raw, source="test")
    assert (outcome.kind, outcome.delivery_id) == ("bounce", None)
    [event] = all_events(engine)
    assert event.delivery_id is None and event.kind == "bounce"
    assert event.detail["unattributed"] == (
        "no VERP token, and Message-ID <never-sent@kestrelforge.example> matches no delivery"
    )
    assert event.detail["recipient"] == "stranger@example.org"
    assert suppression_reasons(engine) == {}


def test_forged_verp_token_does_not_attribute(world: World, engine: Engine) -> None:
    sent = world.send(world.add_contact("someone@example.org"))
    forged = f"bounces+{make_token(b'not-our-key', 'b', sent.delivery_id)}@kestrelforge.example"
    raw = reports.dsn(
        to=forged,
        recipient="someone@example.org",
        status="5.1.1",
        diagnostic="550 5.1.1",
        original_message_id="<x@y>",
    )
    assert ingest_message(engine, world.settings, raw, source="test").delivery_id is None
    assert suppression_reasons(engine) == {} and delivery(engine, sent).status == "sent"


def test_ingesting_the_same_report_twice_changes_nothing_more(world: World, engine: Engine) -> None:
    sent = world.send(world.add_contact("gone@example.org"))
    raw = returned(world, sent, "gone@example.org")
    ingest_message(engine, world.settings, raw, source="test")
    assert ingest_message(engine, world.settings, raw, source="test").note == "already recorded"
    assert len(all_events(engine)) == 1


def test_an_auto_reply_is_not_a_bounce(world: World, engine: Engine) -> None:
    assert (
        ingest_message(engine, world.settings, reports.auto_reply(to=BOUNCES), source="test").kind
        == "ignored"
    )
    assert all_events(engine) == []


@pytest.mark.parametrize("kind", ["mbox", "maildir"])
def test_mbox_and_maildir_are_read_whole(world: World, engine: Engine, tmp_path: Path, kind: str) -> None:
    first = world.send(world.add_contact("a@example.org"))
    second = world.send(world.add_contact("b@example.org"))
    messages = [
        reports.postfix_text(
            to=verp(world.settings, sent),
            recipient=email,
            reply="550 5.1.1 unknown",
            original_message_id="<x@y>",
        )
        for sent, email in ((first, "a@example.org"), (second, "b@example.org"))
    ] + [reports.auto_reply(to=BOUNCES)]
    path = write_mailbox(tmp_path / kind, kind, messages)
    outcomes = ingest_path(engine, world.settings, path)
    # A Maildir has no order; an mbox keeps its own.
    assert sorted((o.kind, o.delivery_id or 0) for o in outcomes) == [
        ("bounce", first.delivery_id),
        ("bounce", second.delivery_id),
        ("ignored", 0),
    ]
    assert suppression_reasons(engine) == {"a@example.org": "hard_bounce", "b@example.org": "hard_bounce"}


def write_mailbox(path: Path, kind: str, messages: list[bytes]) -> Path:
    """A real mbox file or Maildir folder at PATH holding MESSAGES."""
    box: mailbox.Mailbox = mailbox.mbox(path) if kind == "mbox" else mailbox.Maildir(path)  # type: ignore[type-arg]
    for raw in messages:
        box.add(raw)
    box.close()
    return path


def _ingest_stdin(workspace_dir: Path, raw: bytes, database_url: str) -> subprocess.CompletedProcess[bytes]:
    """`comms bounces ingest -` with RAW on stdin, as an MTA's pipe delivery runs it."""
    env = {"COMMS_SECRET": SECRET, "COMMS_DATABASE_URL": database_url}
    return comms_bytes(
        "bounces", "ingest", "-", "-w", str(workspace_dir), cwd=workspace_dir, env=env, input=raw
    )


def test_cli_reads_one_message_on_stdin_like_an_mta_pipe(
    world: World, engine: Engine, workspace_dir: Path
) -> None:
    sent = world.send(world.add_contact("gone@example.org"))
    raw = returned(world, sent, "gone@example.org")
    result = _ingest_stdin(workspace_dir, raw, world.settings.database.url)
    assert result.returncode == 0, result.stderr
    shown = result.stdout.decode()
    assert "class=hard" in shown and "suppressed=hard_bounce" in shown
    assert suppression_reasons(engine) == {"gone@example.org": "hard_bounce"}


def test_cli_pipe_asks_the_mta_to_retry_when_the_database_is_down(
    workspace_dir: Path, tmp_path: Path
) -> None:
    result = _ingest_stdin(
        workspace_dir, reports.auto_reply(to=BOUNCES), f"sqlite:///{tmp_path}/no/such/dir/comms.db"
    )
    assert result.returncode == 75


@pytest.mark.parametrize("offer_move", [True, False])
def test_poll_reads_an_imap_folder_and_moves_what_it_processed(
    world: World, engine: Engine, offer_move: bool
) -> None:
    sent = world.send(world.add_contact("gone@example.org"))
    bounce = returned(world, sent, "gone@example.org")
    with ImapServer(credentials=("bounce-reader", "s3cret pass"), offer_move=offer_move) as imap:
        imap.add("Bounces", bounce)
        imap.add("Bounces", reports.auto_reply(to=BOUNCES))
        world.settings.bounces.imap_url = f"imap://bounce-reader@127.0.0.1:{imap.port}/Bounces"
        world.settings.bounces.processed_folder = "Bounces/Done"
        world.settings.imap_password = "s3cret pass"
        outcomes = poll_imap(engine, world.settings)
        assert [o.kind for o in outcomes] == ["bounce", "ignored"]
        assert imap.folders["Bounces"] == {}
        assert sorted(imap.folders["Bounces/Done"].values()) == sorted(
            [bounce, reports.auto_reply(to=BOUNCES)]
        )
    assert suppression_reasons(engine) == {"gone@example.org": "hard_bounce"}


def test_poll_refuses_plain_imap_to_a_remote_host(world: World, engine: Engine) -> None:
    world.settings.bounces.imap_url = "imap://reader@mail.example.org/INBOX"
    world.settings.imap_password = "x"
    with pytest.raises(SettingsError, match="only allowed to a loopback host"):
        poll_imap(engine, world.settings)


def test_mailto_unsubscribe_request_from_our_own_header(world: World, engine: Engine) -> None:
    sent = world.send(world.add_contact("ada@example.com"))
    builder = MessageBuilder(world.settings, campaign="spring", department="sales", run_id=sent.run_id)
    outgoing = builder.build(
        sent.rendered,
        to_email="ada@example.com",
        to_name=None,
        message_id=sent.message_id,
        links=recipient_links(world.settings, sent.delivery_id),
        delivery_id=sent.delivery_id,
    )
    header = str(message_from_bytes(outgoing.data, policy=policy.default)["List-Unsubscribe"])
    [address] = re.findall(r"<mailto:([^>]+)>", header)
    assert address.startswith("unsubscribe+") and "?" not in address
    request = f"From: ada@example.com\r\nTo: {address}\r\nSubject: unsubscribe\r\n\r\nplease\r\n".encode()

    outcome = ingest_message(engine, world.settings, request, source="test")
    assert (outcome.kind, outcome.delivery_id, outcome.suppressed) == (
        "unsubscribe",
        sent.delivery_id,
        "unsubscribe",
    )
    assert suppression_reasons(engine) == {"ada@example.com": "unsubscribe"}
    assert [e.detail["source"] for e in all_events(engine)] == ["mailto"]
    token = address.partition("+")[2].partition("@")[0]
    forged = request.replace(token.encode(), token[:-6].encode() + b"AAAAAA")
    assert ingest_message(engine, world.settings, forged, source="test").kind == "ignored"


def test_a_report_naming_several_recipients_acts_on_what_it_says_about_ours(
    world: World, engine: Engine
) -> None:
    sent = world.send(world.add_contact("full@example.org"))
    raw = returned(world, sent, "full@example.org", "5.2.2", "552 5.2.2 Mailbox full").replace(
        b"Final-Recipient: rfc822; full@example.org",
        b"Final-Recipient: rfc822; other@example.org\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n"
        b"Final-Recipient: rfc822; full@example.org",
    )
    outcome = ingest_message(engine, world.settings, raw, source="test")
    assert outcome.severity == "soft"  # full@ is full; the unknown other@ is not this delivery's address
    assert suppression_reasons(engine) == {}
    [event] = all_events(engine)
    assert event.detail["recipients"] == ["other@example.org", "full@example.org"]


def test_a_vacation_notice_with_a_null_return_path_is_no_bounce(world: World, engine: Engine) -> None:
    sent = world.send(world.add_contact("away@example.org"))
    raw = (
        f"Return-Path: <>\r\nFrom: away@example.org\r\nTo: {verp(world.settings, sent)}\r\n"
        "Subject: Out of office\r\nAuto-Submitted: auto-replied\r\n\r\n"
        "Back on 5.1.26; for 550 5.1.1 questions call reception.\r\n"
    ).encode()
    outcome = ingest_message(engine, world.settings, raw, source="test")
    assert (outcome.kind, outcome.note) == ("ignored", "an auto-reply, not a bounce")
    assert all_events(engine) == [] and delivery(engine, sent).status == "sent"
