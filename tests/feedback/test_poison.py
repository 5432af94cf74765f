"""Poison messages in the bounce mailbox (issue 9 item 3): each is kept for an operator, moved aside, and
the messages after it are still read, from an mbox, a Maildir and a real IMAP server alike."""

from __future__ import annotations

import mailbox
import re
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from pipeline.feedback.bounces import ingest_path, list_unreadable, poll_imap
from pipeline.storage.engines import session
from pipeline.storage.models import Delivery, Event, Suppression, UnreadableMessage
from tests.feedback import reports
from tests.feedback.conftest import SECRET, Sent, World
from tests.feedback.test_bounces import BOUNCES, suppression_reasons, verp, write_mailbox
from tests.support.cli import assert_one_line_error, comms, comms_bytes
from tests.support.imap_server import ImapServer

LIMIT = 200_000  # [bounces] max_message_bytes for these tests


def deeply_nested(depth: int = 2_000) -> bytes:
    """A bounce-looking message with DEPTH nested multiparts: Python's parser recurses once per level."""
    lines = [
        "Return-Path: <>",
        "From: MAILER-DAEMON@mx.example.org",
        f"To: {BOUNCES}",
        "Subject: Undelivered Mail Returned to Sender",
        "MIME-Version: 1.0",
    ]
    for level in range(depth):
        lines += [f'Content-Type: multipart/mixed; boundary="b{level}"', "", f"--b{level}"]
    lines += ["Content-Type: text/plain", "", "<x@example.org>: 550 5.1.1 user unknown", ""]
    lines += [f"--b{level}--" for level in reversed(range(depth))]
    return "\r\n".join(lines).encode()


def unknown_charset_bounce(world: World, sent: Sent, recipient: str) -> bytes:
    """A Postfix text bounce whose part names a charset Python does not know."""
    raw = reports.postfix_text(
        to=verp(world.settings, sent),
        recipient=recipient,
        reply="550 5.1.1 user unknown",
        original_message_id=sent.message_id,
    )
    return raw.replace(b"charset=us-ascii", b"charset=x-klingon-2026")


def oversized() -> bytes:
    return reports.auto_reply(to=BOUNCES) + b"x" * (LIMIT + 1)


def _mailbox_messages(world: World) -> tuple[list[bytes], list[Sent]]:
    """good bounce, deep nesting, unknown charset bounce, oversized, good bounce."""
    first = world.send(world.add_contact("first@example.org"))
    charset = world.send(world.add_contact("charset@example.org"))
    last = world.send(world.add_contact("last@example.org"))

    def hard(sent: Sent, email: str) -> bytes:
        return reports.dsn(
            to=verp(world.settings, sent),
            recipient=email,
            status="5.1.1",
            diagnostic="550 5.1.1 user unknown",
            original_message_id=sent.message_id,
        )

    messages = [
        hard(first, "first@example.org"),
        deeply_nested(),
        unknown_charset_bounce(world, charset, "charset@example.org"),
        oversized(),
        hard(last, "last@example.org"),
    ]
    return messages, [first, charset, last]


EVERYONE = {
    "first@example.org": "hard_bounce",
    "charset@example.org": "hard_bounce",
    "last@example.org": "hard_bounce",
}


def _unreadable(engine: Engine) -> list[UnreadableMessage]:
    return list_unreadable(engine)


@pytest.mark.parametrize("kind", ["mbox", "maildir"])
def test_poison_messages_in_a_file_are_kept_and_the_rest_is_read(
    world: World, engine: Engine, tmp_path: Path, kind: str
) -> None:
    world.settings.bounces.max_message_bytes = LIMIT
    messages, _ = _mailbox_messages(world)
    path = write_mailbox(tmp_path / kind, kind, messages)

    outcomes = ingest_path(engine, world.settings, path)
    assert sorted(o.kind for o in outcomes) == ["bounce", "bounce", "bounce", "unreadable", "unreadable"]
    assert suppression_reasons(engine) == EVERYONE  # the unknown charset is read, not lost

    rows = _unreadable(engine)
    # (an mbox keeps a message with one more newline at its end)
    size = f"{len(oversized())}|{len(oversized()) + 1}"
    assert len(rows) == 2 and {r.reason for r in rows if "multipart" in r.reason} == {
        "more than 200 multipart and message/* parts"
    }
    assert [r for r in rows if re.fullmatch(rf"({size}) bytes, over the limit of {LIMIT}", r.reason)]
    deep = next(r for r in rows if "multipart" in r.reason)
    assert deep.raw is not None  # kept as read (a mailbox file may have changed its line ends)
    assert deep.raw.replace(b"\r\n", b"\n").strip() == deeply_nested().replace(b"\r\n", b"\n")
    assert next(r for r in rows if "over the limit" in r.reason).raw is not None  # read, so kept (not parsed)
    if kind == "maildir":
        aside = mailbox.Maildir(path / ".unreadable", create=False)
        assert len(aside) == 2 and len(mailbox.Maildir(path, create=False)) == 3
        assert all(r.location == str(path / ".unreadable") for r in rows)
    else:
        assert {r.location for r in rows} == {f"{path}, message 2", f"{path}, message 4"}

    # Read again: nothing new is recorded, nothing is lost.
    again = ingest_path(engine, world.settings, path)
    assert len(_unreadable(engine)) == 2
    assert len(again) == (3 if kind == "maildir" else 5)


def test_poll_moves_poison_aside_and_does_not_die_on_it_again(world: World, engine: Engine) -> None:
    world.settings.bounces.max_message_bytes = LIMIT
    messages, _ = _mailbox_messages(world)
    with ImapServer(credentials=("reader", "pw")) as imap:
        for raw in messages:
            imap.add("Bounces", raw)
        big_uid = max(imap.folders["Bounces"]) - 1  # the oversized one, fourth of five
        world.settings.bounces.imap_url = f"imap://reader@127.0.0.1:{imap.port}/Bounces"
        world.settings.bounces.processed_folder = "Bounces/Done"
        world.settings.bounces.unreadable_folder = "Bounces/Unreadable"
        world.settings.imap_password = "pw"

        outcomes = poll_imap(engine, world.settings)
        assert [o.kind for o in outcomes] == ["bounce", "unreadable", "bounce", "unreadable", "bounce"]
        assert imap.folders["Bounces"] == {}
        assert len(imap.folders["Bounces/Done"]) == 3
        assert sorted(imap.folders["Bounces/Unreadable"].values()) == sorted([messages[1], messages[3]])
        assert big_uid not in imap.fetched  # the oversized message was never downloaded
        assert poll_imap(engine, world.settings) == []  # the next poll does not meet them again
    assert suppression_reasons(engine) == EVERYONE
    rows = _unreadable(engine)
    assert {r.location for r in rows} == {"Bounces/Unreadable"}
    assert [r.raw is not None for r in rows] == [True, False]


def _cli(workspace_dir: Path, database_url: str, *args: str) -> subprocess.CompletedProcess[bytes]:
    env = {"COMMS_SECRET": SECRET, "COMMS_DATABASE_URL": database_url}
    return comms_bytes("bounces", *args, "-w", str(workspace_dir), cwd=workspace_dir, env=env)


def test_unreadable_command_lists_them_and_gives_back_the_bytes(
    world: World, engine: Engine, workspace_dir: Path, tmp_path: Path
) -> None:
    path = tmp_path / "deep.eml"
    path.write_bytes(deeply_nested())
    url = world.settings.database.url
    assert _cli(workspace_dir, url, "ingest", str(path)).returncode == 0
    listing = _cli(workspace_dir, url, "unreadable")
    assert listing.returncode == 0, listing.stderr
    shown = listing.stdout.decode()
    assert "more than 200 multipart" in shown and "1 unreadable messages" in shown
    [row] = _unreadable(engine)
    raw = _cli(workspace_dir, url, "unreadable", "--raw", str(row.id))
    assert raw.stdout == deeply_nested()
    env = {"COMMS_SECRET": SECRET, "COMMS_DATABASE_URL": url}
    missing = comms("bounces", "unreadable", "--raw", "999", "-w", str(workspace_dir), cwd=tmp_path, env=env)
    assert_one_line_error(missing, "no unreadable message #999")


def _counts(engine: Engine) -> dict[str, object]:
    with session(engine) as db:
        return {
            "events": db.scalar(select(func.count()).select_from(Event)),
            "suppressions": db.scalar(select(func.count()).select_from(Suppression)),
            "unreadable": db.scalar(select(func.count()).select_from(UnreadableMessage)),
            "deliveries": sorted((d.id, d.status, d.last_reply) for d in db.scalars(select(Delivery))),
        }


def test_dry_run_prints_each_message_and_changes_nothing(
    world: World, engine: Engine, workspace_dir: Path, tmp_path: Path
) -> None:
    messages, (first, charset, _last) = _mailbox_messages(world)
    write_mailbox(tmp_path / "box", "mbox", messages)
    complaint = tmp_path / "complaint.eml"
    complaint.write_bytes(
        reports.arf(
            to="fbl@kestrelforge.example",
            original_mail_from=BOUNCES,
            complainant="angry@example.net",
            original_message_id=first.message_id,
        )
    )
    before = _counts(engine)
    result = _cli(
        workspace_dir,
        world.settings.database.url,
        "ingest",
        "--dry-run",
        str(tmp_path / "box"),
        str(complaint),
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.decode().splitlines()
    assert lines[0] == (
        f"{tmp_path / 'box'}, message 1: hard format=rfc3464 recipients=first@example.org status=5.1.1 "
        f"delivery={first.delivery_id} (verp)"
    )
    assert lines[1].startswith(f"{tmp_path / 'box'}, message 2: unreadable ")
    assert lines[2] == (
        f"{tmp_path / 'box'}, message 3: hard format=postfix-text recipients=charset@example.org "
        f"status=5.1.1 delivery={charset.delivery_id} (verp)"
    )
    assert lines[5] == (
        f"{complaint}: complaint format=arf recipients=angry@example.net status=- "
        f"delivery={first.delivery_id} (message-id)"
    )
    assert lines[-1] == "6 messages read, nothing changed (dry run)"
    assert _counts(engine) == before
