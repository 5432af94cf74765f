"""Bounces and complaints: tying each report to its delivery, what it does there, and where reports come from.

Attribution, most reliable first: the VERP envelope sender ``bounces+TOKEN@domain`` (a signed "b"
token naming the delivery, found in the addresses the report was delivered to, or ARF's
Original-Mail-From), then the returned message's Message-ID (deterministic per delivery). A report
that matches no delivery is recorded as an event without a delivery, its detail saying why.

What a report does (rules from DESIGN.md "Dispatch rules"):

- hard (5.1.x): the delivery fails, the address gets a ``hard_bounce`` suppression;
- soft (4.x.x and other 5.x.x): the delivery fails; the address is suppressed (``soft_bounce``) once
  its latest ``[bounces] soft_bounce_limit`` sent deliveries all soft-bounced;
- sender (5.7.x): the delivery fails, the recipient is not suppressed (it was our reputation);
- delayed: only recorded;
- auto-replies and vacation notices: not bounces, left alone;
- complaint (ARF): ``complaint`` suppression and an event. An unattributed complaint is recorded
  for a person to look at and suppresses nobody: anyone can mail a report naming any address.

The same mailbox may receive the mailto: unsubscribe requests of List-Unsubscribe (RFC 2369), sent
to ``unsubscribe+TOKEN@domain``; those unsubscribe the token's delivery like a one-click POST. The
token rides in the local part so the header line stays under 78 characters (see message/mime.py);
messages sent before that carried it in the subject ("unsubscribe TOKEN"), which is still read.

Sources: one message (a file, or stdin as an MTA pipe target), an mbox file, a Maildir, or an IMAP
folder (processed messages are moved to ``[bounces] processed_folder``). Each message is its own
transaction, so one bad message never loses the others. Ingesting the same report twice changes
nothing the second time (one bounce event per delivery and class, one complaint per delivery).

A message that cannot be read (over ``[bounces] max_message_bytes``, nested past any real report, or
anything the reader trips on) is recorded as unreadable with its bytes (``comms bounces unreadable``
lists them), moved aside (IMAP ``[bounces] unreadable_folder``, Maildir subfolder ``.unreadable``),
and the next message is read: one poison message must not stop the mailbox.
"""

from __future__ import annotations

import contextlib
import hashlib
import imaplib
import ipaddress
import mailbox
import re
import ssl
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from sqlalchemy import Engine, select, update
from sqlmodel import Session, col

from pipeline.audience.contacts import suppress
from pipeline.delivery.status import Severity
from pipeline.errors import CommsError, SettingsError, TransportError
from pipeline.feedback.dsn import Failure, Report, Unreadable, header_addresses, parse_message, read_report
from pipeline.feedback.events import has_event, record_event
from pipeline.feedback.preferences import delivery_address, unsubscribe
from pipeline.message.tokens import read_token
from pipeline.storage.engines import session
from pipeline.storage.models import Delivery, Event, EventKind, UnreadableMessage, utcnow
from pipeline.storage.statuses import DeliveryStatus
from pipeline.types import SuppressionReason
from pipeline.workspace.settings import Settings, shown_url

_VERP_TOKEN = re.compile(r"\+([A-Za-z0-9_-]{22,64})@")
_UNSUBSCRIBE_SUBJECT = re.compile(r"\s*unsubscribe\s+([A-Za-z0-9_-]{22,64})\s*", re.IGNORECASE)
_DIAGNOSTIC_CHARS = 1000


@dataclass(frozen=True)
class Ingested:
    """What one message did, for the command's summary."""

    kind: str  # bounce, complaint, unsubscribe, ignored, unreadable
    delivery_id: int | None
    severity: str | None  # hard, soft, sender, delayed for a bounce
    suppressed: str | None  # the suppression reason added, if any
    note: str  # one line for a person


# -- attribution -----------------------------------------------------------------------------------


def find_delivery(
    db: Session, secrets: Sequence[bytes], addresses: Sequence[str], message_id: str | None
) -> tuple[Delivery | None, str]:
    """(delivery, how it was found) or (None, why not)."""
    for address in addresses:
        for token in _VERP_TOKEN.findall(address):
            found = read_token(secrets, "b", token)
            if found is not None and (delivery := db.get(Delivery, found[0])) is not None:
                return delivery, "verp"
    if message_id:
        delivery = db.scalars(select(Delivery).where(col(Delivery.message_id) == message_id.strip())).first()
        if delivery is not None:
            return delivery, "message-id"
        return None, f"no VERP token, and Message-ID {message_id.strip()} matches no delivery"
    return None, "no VERP token and no original Message-ID"


# -- effects ---------------------------------------------------------------------------------------


def _bounce_classes(db: Session, delivery_id: int) -> set[str]:
    details = db.scalars(
        select(col(Event.detail)).where(col(Event.delivery_id) == delivery_id, col(Event.kind) == "bounce")
    )
    return {str(detail.get("class")) for detail in details}


def _mark_bounced(db: Session, delivery: Delivery, failure: Failure) -> None:
    """A sent delivery that bounced later did not arrive: it fails, keeping its sent_at."""
    reply = " ".join(p for p in (failure.status, failure.diagnostic) if p)[:_DIAGNOSTIC_CHARS]
    db.execute(
        update(Delivery)
        .where(col(Delivery.id) == delivery.id, col(Delivery.status) == DeliveryStatus.sent)
        .values(
            status=DeliveryStatus.failed,
            last_code=failure.smtp_code,
            last_reply=f"bounced: {reply}",
            updated_at=utcnow(),
        )
    )


def _soft_streak(db: Session, contact_id: int, limit: int) -> bool:
    """True when the contact's latest LIMIT sent deliveries all soft-bounced."""
    latest = list(
        db.scalars(
            select(col(Delivery.id))
            .where(col(Delivery.contact_id) == contact_id, col(Delivery.sent_at).is_not(None))
            .order_by(col(Delivery.sent_at).desc(), col(Delivery.id).desc())
            .limit(limit)
        )
    )
    if len(latest) < limit:
        return False
    rows = db.execute(
        select(col(Event.delivery_id), col(Event.detail)).where(
            col(Event.delivery_id).in_(latest), col(Event.kind) == "bounce"
        )
    )
    soft = {delivery_id for delivery_id, detail in rows if detail.get("class") == Severity.soft}
    return soft == set(latest)


def apply_bounce(
    db: Session, settings: Settings, report: Report, *, source: str, secrets: Sequence[bytes]
) -> Ingested:
    failure = report.worst()
    if failure is None:
        return Ingested("ignored", None, None, None, f"{report.format} report with no failed recipient")
    delivery, how = find_delivery(db, secrets, report.envelope_addresses, report.original_message_id)
    if delivery is not None and len(report.failures) > 1:
        # A report naming several recipients: what it says about this delivery's address decides.
        email = (delivery_address(db, delivery) or delivery.email or "").lower()
        failure = next((f for f in report.failures if f.recipient == email), failure)
    detail: dict[str, Any] = {
        "class": str(failure.severity),
        "status": failure.status,
        "smtp_code": failure.smtp_code,
        "diagnostic": failure.diagnostic[:_DIAGNOSTIC_CHARS],
        "recipient": failure.recipient,
        "recipients": [f.recipient for f in report.failures if f.recipient],
        "format": report.format,
        "source": source,
    }
    if delivery is None:
        record_event(db, EventKind.bounce, None, detail=detail | {"unattributed": how})
        return Ingested("bounce", None, failure.severity, None, f"unattributed: {how}")
    assert delivery.id is not None
    if str(failure.severity) in _bounce_classes(db, delivery.id):
        return Ingested("bounce", delivery.id, failure.severity, None, "already recorded")
    record_event(
        db,
        EventKind.bounce,
        delivery.id,
        reason=str(failure.severity),
        detail=detail | {"attributed_by": how},
    )
    if failure.severity is Severity.delayed:
        return Ingested("bounce", delivery.id, failure.severity, None, "delivery delayed, still being tried")
    _mark_bounced(db, delivery, failure)
    reason = None
    if failure.severity is Severity.hard:
        reason = SuppressionReason.hard_bounce
    elif (
        failure.severity is Severity.soft
        and delivery.contact_id is not None
        and _soft_streak(db, delivery.contact_id, settings.bounces.soft_bounce_limit)
    ):
        reason = SuppressionReason.soft_bounce
    address = delivery_address(db, delivery)
    if reason is not None and address is not None:
        suppress(db, address, reason, note=f"{failure.status or failure.smtp_code}, delivery {delivery.id}")
    return Ingested("bounce", delivery.id, failure.severity, reason, failure.diagnostic[:120])


def apply_complaint(db: Session, report: Report, *, source: str, secrets: Sequence[bytes]) -> Ingested:
    delivery, how = find_delivery(db, secrets, report.envelope_addresses, report.original_message_id)
    detail = {"feedback_type": report.feedback_type, "format": report.format, "source": source}
    if delivery is None:
        # Kept for a person to look at, but acted on only when tied to a message we sent: anyone can
        # mail a report naming any address to the bounce mailbox.
        unattributed = {"unattributed": how, "complainant": report.complainant}
        record_event(db, EventKind.complaint, None, detail=detail | unattributed)
        return Ingested("complaint", None, None, None, f"unattributed: {how}")
    assert delivery.id is not None
    if has_event(db, EventKind.complaint, delivery.id):
        return Ingested("complaint", delivery.id, None, None, "already recorded")
    record_event(
        db,
        EventKind.complaint,
        delivery.id,
        reason=report.feedback_type or "abuse",
        detail=detail | {"attributed_by": how},
    )
    address = delivery_address(db, delivery) or report.complainant
    if address is not None:
        suppress(db, address, SuppressionReason.complaint, note=f"{source}, delivery {delivery.id}")
    return Ingested("complaint", delivery.id, None, SuppressionReason.complaint, report.feedback_type or "")


def apply_report(db: Session, settings: Settings, report: Report, *, source: str) -> Ingested:
    secrets = settings.verifying_keys
    if report.kind == "auto-reply":
        return Ingested("ignored", None, None, None, "an auto-reply, not a bounce")
    if report.kind == "complaint":
        return apply_complaint(db, report, source=source, secrets=secrets)
    return apply_bounce(db, settings, report, source=source, secrets=secrets)


def _unsubscribe_by_mail(engine: Engine, settings: Settings, token: str) -> Ingested:
    """The mailto: half of List-Unsubscribe (RFC 2369): a "u" token from our own header."""
    found = read_token(settings.verifying_keys, "u", token)
    if found is None:
        return Ingested("ignored", None, None, None, "unsubscribe request with an invalid token")
    with session(engine) as db:
        delivery = db.get(Delivery, found[0])
        if delivery is None:
            return Ingested("ignored", None, None, None, "unsubscribe request for an unknown delivery")
        new = unsubscribe(db, delivery, source="mailto", user_agent=None)
        return Ingested(
            "unsubscribe", delivery.id, None, SuppressionReason.unsubscribe if new else None, "mailto"
        )


def _unsubscribe_token(settings: Settings, message: Any) -> str | None:
    """The token of a mailto: unsubscribe request: in the address it was sent to, or (older messages)
    its subject. A bounce's "b" token in the same place is not a "u" token, so it never matches."""
    for address in header_addresses(message):
        for token in _VERP_TOKEN.findall(address):
            if read_token(settings.verifying_keys, "u", token) is not None:
                return str(token)
    request = _UNSUBSCRIBE_SUBJECT.fullmatch(str(message.get("Subject", "")))
    return request.group(1) if request else None


def own_addresses(settings: Settings) -> tuple[str, ...]:
    """Our sending addresses: a text bounce naming them is never about them."""
    sender = settings.sender
    return tuple(a for a in (sender.from_email, sender.reply_to, sender.bounce_address) if a)


@dataclass(frozen=True)
class Reading:
    """What one message asks for, before anything is applied: an unsubscribe token or a report."""

    unsubscribe_token: str | None
    report: Report | None


def read_raw(settings: Settings, raw: bytes) -> Reading:
    """Parse RAW and read it; Unreadable (never another exception) when that cannot be done."""
    message = parse_message(raw, max_bytes=settings.bounces.max_message_bytes)
    try:
        token = _unsubscribe_token(settings, message)
        if token is not None:
            return Reading(token, None)
        return Reading(None, read_report(message, own=own_addresses(settings)))
    except Exception as exc:  # whatever a hostile message trips in the email package: it is unreadable
        raise Unreadable(f"{type(exc).__name__}: {exc}"[:_DIAGNOSTIC_CHARS]) from None


def record_unreadable(
    engine: Engine,
    raw: bytes | None,
    *,
    source: str,
    location: str | None,
    reason: str,
    size: int | None = None,
    fingerprint: bytes | None = None,
) -> Ingested:
    """Keep RAW for an operator (an MTA pipe has no other copy); the same message only once.

    RAW is None for a message that was not even downloaded (IMAP, over the size limit): FINGERPRINT
    (where it was) identifies it, and it waits in the unreadable folder.
    """
    digest = hashlib.sha256(raw if raw is not None else fingerprint or b"").hexdigest()
    with session(engine) as db:
        known = db.scalars(
            select(col(UnreadableMessage.id)).where(col(UnreadableMessage.sha256) == digest)
        ).first()
        if known is None:
            row = UnreadableMessage(
                sha256=digest,
                source=source,
                location=location,
                reason=reason,
                size=size if size is not None else len(raw or b""),
                raw=raw,
            )
            db.add(row)
            db.flush()
            known = row.id
    return Ingested("unreadable", None, None, None, f"unreadable #{known}: {reason}")


def ingest_message(
    engine: Engine, settings: Settings, raw: bytes, *, source: str, location: str | None = None
) -> Ingested:
    """Read one message and apply what it reports, in its own transaction.

    LOCATION: where the message will be if it turns out unreadable (moved aside, or left in its mbox).
    """
    try:
        reading = read_raw(settings, raw)
    except Unreadable as exc:
        return record_unreadable(engine, raw, source=source, location=location, reason=str(exc))
    if reading.unsubscribe_token is not None:
        return _unsubscribe_by_mail(engine, settings, reading.unsubscribe_token)
    if reading.report is None:
        return Ingested("ignored", None, None, None, "neither a bounce nor a complaint")
    with session(engine) as db:
        return apply_report(db, settings, reading.report, source=source)


@dataclass(frozen=True)
class Preview:
    """What ingesting one message would do, for `comms bounces ingest --dry-run`."""

    kind: str  # hard, soft, sender, delayed, complaint, auto-reply, unsubscribe, ignored, unreadable
    format: str | None
    recipients: tuple[str, ...]
    status: str | None
    delivery_id: int | None
    why: str  # how it was tied to its delivery, or why it was not


def preview_message(engine: Engine, settings: Settings, raw: bytes) -> Preview:
    """Read RAW and find its delivery, writing nothing."""
    try:
        reading = read_raw(settings, raw)
    except Unreadable as exc:
        return Preview("unreadable", None, (), None, None, str(exc))
    if reading.unsubscribe_token is not None:
        found = read_token(settings.verifying_keys, "u", reading.unsubscribe_token)
        return Preview(
            "unsubscribe",
            "mailto",
            (),
            None,
            found[0] if found else None,
            "unsubscribe token" if found else "invalid unsubscribe token",
        )
    report = reading.report
    if report is None or report.kind == "auto-reply":
        what = "an auto-reply, not a bounce" if report else "neither a bounce nor a complaint"
        return Preview("auto-reply" if report else "ignored", None, (), None, None, what)
    worst = report.worst()
    if report.kind == "complaint":
        kind, recipients = "complaint", tuple(a for a in (report.complainant,) if a)
    elif worst is None:
        return Preview("ignored", report.format, (), None, None, "no failed recipient in the report")
    else:
        kind, recipients = str(worst.severity), tuple(f.recipient for f in report.failures if f.recipient)
    with Session(engine) as db:  # only reads; closed without commit
        delivery, how = find_delivery(
            db, settings.verifying_keys, report.envelope_addresses, report.original_message_id
        )
    return Preview(
        kind,
        report.format,
        recipients,
        worst.status if worst else None,
        delivery.id if delivery else None,
        how if delivery else f"unattributed: {how}",
    )


# -- sources ---------------------------------------------------------------------------------------

UNREADABLE_MAILDIR_FOLDER = "unreadable"  # Maildir++ subfolder ".unreadable" inside the Maildir read


def _maildir(path: Path) -> mailbox.Maildir:
    if not (path / "cur").is_dir() or not (path / "new").is_dir():
        raise CommsError("not a Maildir (no cur/ and new/ inside)", path=path)
    return mailbox.Maildir(path, factory=None, create=False)


def _messages_at(path: Path) -> Iterator[tuple[str, bytes]]:
    """(where, bytes) of each message in a Maildir folder, an mbox file, or a file holding one message."""
    if path.is_dir():
        maildir = _maildir(path)
        for key in maildir.iterkeys():
            yield key, maildir.get_bytes(key)
        return
    with path.open("rb") as handle:
        is_mbox = handle.read(5) == b"From "
    if is_mbox:
        box = mailbox.mbox(path, create=False)
        try:
            for number, key in enumerate(box.iterkeys(), start=1):
                yield f"{path}, message {number}", box.get_bytes(key, from_=False)
        finally:
            box.close()
        return
    yield str(path), path.read_bytes()


def _read_failure(path: Path, exc: OSError) -> CommsError:
    return CommsError(f"cannot read it: {exc.strerror or exc}", path=path)


def ingest_path(engine: Engine, settings: Settings, path: Path) -> list[Ingested]:
    """Ingest every message at PATH; a Maildir's unreadable ones are moved to its .unreadable folder."""
    if not path.exists():
        raise CommsError("no such file or folder", path=path)
    source = f"file:{path.name}"
    try:
        if not path.is_dir():
            return [
                ingest_message(engine, settings, raw, source=source, location=where)
                for where, raw in _messages_at(path)
            ]
        maildir = _maildir(path)
        aside = path / f".{UNREADABLE_MAILDIR_FOLDER}"
        outcomes = []
        for key, raw in _messages_at(path):
            outcome = ingest_message(engine, settings, raw, source=source, location=str(aside))
            if outcome.kind == "unreadable":
                maildir.add_folder(UNREADABLE_MAILDIR_FOLDER).add(raw)
                maildir.remove(key)
            outcomes.append(outcome)
        return outcomes
    except OSError as exc:
        raise _read_failure(path, exc) from None


def preview_path(engine: Engine, settings: Settings, path: Path) -> list[tuple[str, Preview]]:
    """(where, what it would do) for every message at PATH; nothing is written or moved."""
    if not path.exists():
        raise CommsError("no such file or folder", path=path)
    try:
        return [(where, preview_message(engine, settings, raw)) for where, raw in _messages_at(path)]
    except OSError as exc:
        raise _read_failure(path, exc) from None


def list_unreadable(engine: Engine) -> list[UnreadableMessage]:
    with session(engine) as db:
        return list(db.scalars(select(UnreadableMessage).order_by(col(UnreadableMessage.id))))


@dataclass(frozen=True)
class ImapTarget:
    host: str
    port: int
    user: str
    folder: str
    tls: bool


def imap_target(settings: Settings) -> ImapTarget:
    """[bounces] imap_url parsed; plain imap:// only to a loopback host."""
    url = settings.bounces.imap_url
    if not url:
        raise SettingsError("[bounces] imap_url is not set in comms.toml")
    parts = urlsplit(url)
    if parts.scheme not in ("imap", "imaps") or not parts.hostname or not parts.username:
        raise SettingsError(
            f"bounces.imap_url must look like imaps://user@host[:port]/FOLDER, not {shown_url(url)!r}"
        )
    tls = parts.scheme == "imaps"
    if not tls:
        try:
            loopback = ipaddress.ip_address(parts.hostname).is_loopback
        except ValueError:
            loopback = parts.hostname == "localhost"
        if not loopback:
            raise SettingsError(
                "bounces.imap_url: plain imap:// is only allowed to a loopback host; use imaps://"
            )
    return ImapTarget(
        host=parts.hostname,
        port=parts.port or (993 if tls else 143),
        user=unquote(parts.username),
        folder=unquote(parts.path.lstrip("/")) or "INBOX",
        tls=tls,
    )


def _quoted(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _check(reply: tuple[str, Any], doing: str) -> Any:
    status, data = reply
    if status != "OK":
        raise TransportError(f"IMAP {doing} failed: {data!r}")
    return data


def poll_imap(engine: Engine, settings: Settings, *, timeout_s: float = 30.0) -> list[Ingested]:
    """Ingest every message in the configured IMAP folder and move each one processed."""
    target = imap_target(settings)
    if settings.imap_password is None:
        raise SettingsError("COMMS_IMAP_PASSWORD is not set")
    try:
        if target.tls:
            client: imaplib.IMAP4 = imaplib.IMAP4_SSL(
                target.host, target.port, ssl_context=ssl.create_default_context(), timeout=timeout_s
            )
        else:
            client = imaplib.IMAP4(target.host, target.port, timeout=timeout_s)
    except OSError as exc:
        raise TransportError(f"cannot reach IMAP server {target.host}:{target.port}: {exc}") from None
    try:
        client.login(target.user, settings.imap_password)
        return _drain(client, engine, settings, target)
    except imaplib.IMAP4.error as exc:
        raise TransportError(f"IMAP {target.host}: {exc}") from None
    finally:
        with contextlib.suppress(imaplib.IMAP4.error, OSError):
            client.logout()


def _drain(client: imaplib.IMAP4, engine: Engine, settings: Settings, target: ImapTarget) -> list[Ingested]:
    processed = _quoted(settings.bounces.processed_folder)
    client.create(processed)  # "already exists" is a NO we can ignore
    unreadable_folder = settings.bounces.unreadable_folder
    unreadable = _quoted(unreadable_folder)
    client.create(unreadable)
    _check(client.select(_quoted(target.folder)), f"SELECT {target.folder}")
    uids = [uid.decode() for uid in _check(client.uid("SEARCH", "ALL"), "SEARCH")[0].split()]
    can_move = "MOVE" in client.capabilities
    source = f"imap:{target.folder}"
    limit = settings.bounces.max_message_bytes
    outcomes = []
    for uid in uids:
        size = _message_size(client, uid)
        if size is not None and size > limit:
            # Not even downloaded: the row points at the folder it was moved to.
            outcome = record_unreadable(
                engine,
                None,
                source=source,
                location=unreadable_folder,
                reason=f"{size} bytes, over the limit of {limit}",
                size=size,
                fingerprint=f"{target.host} {target.folder} UID {uid} {size}".encode(),
            )
        else:
            data = _check(client.uid("FETCH", uid, "(BODY.PEEK[])"), "FETCH")
            raw = next(item[1] for item in data if isinstance(item, tuple))
            outcome = ingest_message(engine, settings, raw, source=source, location=unreadable_folder)
        outcomes.append(outcome)
        destination = unreadable if outcome.kind == "unreadable" else processed
        if can_move:
            _check(client.uid("MOVE", uid, destination), "MOVE")
        else:
            _check(client.uid("COPY", uid, destination), "COPY")
            _check(client.uid("STORE", uid, "+FLAGS", "(\\Deleted)"), "STORE")
    if not can_move and uids:
        client.expunge()
    return outcomes


def _message_size(client: imaplib.IMAP4, uid: str) -> int | None:
    """RFC822.SIZE of message UID, so an oversized one is never downloaded."""
    data = _check(client.uid("FETCH", uid, "(RFC822.SIZE)"), "FETCH")
    for item in data:
        text = item[0] if isinstance(item, tuple) else item
        found = re.search(rb"RFC822\.SIZE (\d+)", text or b"")
        if found:
            return int(found.group(1))
    return None
