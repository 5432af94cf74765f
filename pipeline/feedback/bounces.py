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
- complaint (ARF): ``complaint`` suppression and an event. An unattributed complaint still suppresses
  the complaining address when the report names it: mailing someone who complained costs more than
  missing them.

The same mailbox may receive the mailto: unsubscribe requests of List-Unsubscribe (subject
"unsubscribe TOKEN", RFC 2369); those unsubscribe the token's delivery like a one-click POST.

Sources: one message (a file, or stdin as an MTA pipe target), an mbox file, a Maildir, or an IMAP
folder (processed messages are moved to ``[bounces] processed_folder``). Each message is its own
transaction, so one bad message never loses the others. Ingesting the same report twice changes
nothing the second time (one bounce event per delivery and class, one complaint per delivery).
"""

from __future__ import annotations

import contextlib
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
from sqlmodel import Session

from pipeline.audience.contacts import suppress
from pipeline.errors import CommsError, SettingsError, TransportError
from pipeline.feedback.dsn import Failure, Report, Severity, parse_message, read_report
from pipeline.feedback.events import has_event, record_event
from pipeline.feedback.preferences import delivery_address, unsubscribe
from pipeline.message.tokens import read_token
from pipeline.storage.engines import session
from pipeline.storage.models import Delivery, DeliveryStatus, Event, EventKind, utcnow
from pipeline.types import SuppressionReason
from pipeline.workspace.settings import Settings, shown_url

_VERP_TOKEN = re.compile(r"\+([A-Za-z0-9_-]{22,64})@")
_UNSUBSCRIBE_SUBJECT = re.compile(r"\s*unsubscribe\s+([A-Za-z0-9_-]{22,64})\s*", re.IGNORECASE)
_WORST_FIRST = (Severity.hard, Severity.sender, Severity.soft, Severity.delayed)
_DIAGNOSTIC_CHARS = 1000


@dataclass(frozen=True)
class Outcome:
    """What one message did, for the command's summary."""

    kind: str  # bounce, complaint, unsubscribe, ignored
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
        delivery = db.scalars(select(Delivery).where(Delivery.message_id == message_id.strip())).first()
        if delivery is not None:
            return delivery, "message-id"
        return None, f"no VERP token, and Message-ID {message_id.strip()} matches no delivery"
    return None, "no VERP token and no original Message-ID"


# -- effects ---------------------------------------------------------------------------------------


def _bounce_classes(db: Session, delivery_id: int) -> set[str]:
    details = db.scalars(select(Event.detail).where(Event.delivery_id == delivery_id, Event.kind == "bounce"))
    return {str(detail.get("class")) for detail in details}


def _mark_bounced(db: Session, delivery: Delivery, failure: Failure) -> None:
    """A sent delivery that bounced later did not arrive: it fails, keeping its sent_at."""
    reply = " ".join(p for p in (failure.status, failure.diagnostic) if p)[:_DIAGNOSTIC_CHARS]
    db.execute(
        update(Delivery)
        .where(Delivery.id == delivery.id, Delivery.status == DeliveryStatus.sent)
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
            select(Delivery.id)
            .where(Delivery.contact_id == contact_id, Delivery.sent_at.is_not(None))  # type: ignore[union-attr]
            .order_by(Delivery.sent_at.desc(), Delivery.id.desc())  # type: ignore[union-attr]
            .limit(limit)
        )
    )
    if len(latest) < limit:
        return False
    rows = db.execute(
        select(Event.delivery_id, Event.detail).where(Event.delivery_id.in_(latest), Event.kind == "bounce")  # type: ignore[union-attr]
    )
    soft = {delivery_id for delivery_id, detail in rows if detail.get("class") == Severity.soft}
    return soft == set(latest)


def _worst(failures: Sequence[Failure]) -> Failure | None:
    return min(failures, key=lambda f: _WORST_FIRST.index(f.severity), default=None)


def apply_bounce(
    db: Session, settings: Settings, report: Report, *, source: str, secrets: Sequence[bytes]
) -> Outcome:
    failure = _worst(report.failures)
    if failure is None:
        return Outcome("ignored", None, None, None, f"{report.format} report with no failed recipient")
    delivery, how = find_delivery(db, secrets, report.envelope_addresses, report.original_message_id)
    detail: dict[str, Any] = {
        "class": str(failure.severity),
        "status": failure.status,
        "smtp_code": failure.smtp_code,
        "diagnostic": failure.diagnostic[:_DIAGNOSTIC_CHARS],
        "recipient": failure.recipient,
        "format": report.format,
        "source": source,
    }
    if delivery is None:
        record_event(db, EventKind.bounce, None, detail=detail | {"unattributed": how})
        return Outcome("bounce", None, failure.severity, None, f"unattributed: {how}")
    assert delivery.id is not None
    if str(failure.severity) in _bounce_classes(db, delivery.id):
        return Outcome("bounce", delivery.id, failure.severity, None, "already recorded")
    record_event(db, EventKind.bounce, delivery.id, detail=detail | {"attributed_by": how})
    if failure.severity is Severity.delayed:
        return Outcome("bounce", delivery.id, failure.severity, None, "delivery delayed, still being tried")
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
    return Outcome("bounce", delivery.id, failure.severity, reason, failure.diagnostic[:120])


def apply_complaint(db: Session, report: Report, *, source: str, secrets: Sequence[bytes]) -> Outcome:
    delivery, how = find_delivery(db, secrets, report.envelope_addresses, report.original_message_id)
    detail = {"feedback_type": report.feedback_type, "format": report.format, "source": source}
    if delivery is None:
        # Kept for a person to look at, but acted on only when tied to a message we sent: anyone can
        # mail a report naming any address to the bounce mailbox.
        unattributed = {"unattributed": how, "complainant": report.complainant}
        record_event(db, EventKind.complaint, None, detail=detail | unattributed)
        return Outcome("complaint", None, None, None, f"unattributed: {how}")
    assert delivery.id is not None
    if has_event(db, EventKind.complaint, delivery.id):
        return Outcome("complaint", delivery.id, None, None, "already recorded")
    record_event(db, EventKind.complaint, delivery.id, detail=detail | {"attributed_by": how})
    address = delivery_address(db, delivery) or report.complainant
    if address is not None:
        suppress(db, address, SuppressionReason.complaint, note=f"{source}, delivery {delivery.id}")
    return Outcome("complaint", delivery.id, None, SuppressionReason.complaint, report.feedback_type or "")


def apply_report(db: Session, settings: Settings, report: Report, *, source: str) -> Outcome:
    secrets = settings.verifying_keys
    if report.kind == "complaint":
        return apply_complaint(db, report, source=source, secrets=secrets)
    return apply_bounce(db, settings, report, source=source, secrets=secrets)


def _unsubscribe_by_mail(engine: Engine, settings: Settings, token: str) -> Outcome:
    """The mailto: half of List-Unsubscribe (RFC 2369): subject "unsubscribe TOKEN" from our own header."""
    found = read_token(settings.verifying_keys, "u", token)
    if found is None:
        return Outcome("ignored", None, None, None, "unsubscribe request with an invalid token")
    with session(engine) as db:
        delivery = db.get(Delivery, found[0])
        if delivery is None:
            return Outcome("ignored", None, None, None, "unsubscribe request for an unknown delivery")
        new = unsubscribe(db, delivery, source="mailto", user_agent=None)
        return Outcome(
            "unsubscribe", delivery.id, None, SuppressionReason.unsubscribe if new else None, "mailto"
        )


def ingest_message(engine: Engine, settings: Settings, raw: bytes, *, source: str) -> Outcome:
    """Read one message and apply what it reports, in its own transaction."""
    message = parse_message(raw)
    request = _UNSUBSCRIBE_SUBJECT.fullmatch(str(message.get("Subject", "")))
    if request is not None:
        return _unsubscribe_by_mail(engine, settings, request.group(1))
    report = read_report(message)
    if report is None:
        return Outcome("ignored", None, None, None, "neither a bounce nor a complaint")
    with session(engine) as db:
        return apply_report(db, settings, report, source=source)


# -- sources ---------------------------------------------------------------------------------------


def _messages_at(path: Path) -> Iterator[bytes]:
    """Messages in a Maildir folder, an mbox file, or a file holding one message."""
    if path.is_dir():
        if not (path / "cur").is_dir() or not (path / "new").is_dir():
            raise CommsError("not a Maildir (no cur/ and new/ inside)", path=path)
        maildir = mailbox.Maildir(path, factory=None, create=False)
        for key in maildir.iterkeys():
            yield maildir.get_bytes(key)
        return
    with path.open("rb") as handle:
        is_mbox = handle.read(5) == b"From "
    if is_mbox:
        box = mailbox.mbox(path, create=False)
        try:
            for key in box.iterkeys():
                yield box.get_bytes(key, from_=False)
        finally:
            box.close()
        return
    yield path.read_bytes()


def ingest_path(engine: Engine, settings: Settings, path: Path) -> list[Outcome]:
    if not path.exists():
        raise CommsError("no such file or folder", path=path)
    try:
        return [
            ingest_message(engine, settings, raw, source=f"file:{path.name}") for raw in _messages_at(path)
        ]
    except OSError as exc:
        raise CommsError(f"cannot read it: {exc.strerror or exc}", path=path) from None


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


def poll_imap(engine: Engine, settings: Settings, *, timeout_s: float = 30.0) -> list[Outcome]:
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


def _drain(client: imaplib.IMAP4, engine: Engine, settings: Settings, target: ImapTarget) -> list[Outcome]:
    processed = _quoted(settings.bounces.processed_folder)
    client.create(processed)  # "already exists" is a NO we can ignore
    _check(client.select(_quoted(target.folder)), f"SELECT {target.folder}")
    uids = _check(client.uid("SEARCH", "ALL"), "SEARCH")[0].split()
    can_move = "MOVE" in client.capabilities
    outcomes = []
    for uid in uids:
        data = _check(client.uid("FETCH", uid, "(BODY.PEEK[])"), "FETCH")
        raw = next(item[1] for item in data if isinstance(item, tuple))
        outcomes.append(ingest_message(engine, settings, raw, source=f"imap:{target.folder}"))
        if can_move:
            _check(client.uid("MOVE", uid, processed), "MOVE")
        else:
            _check(client.uid("COPY", uid, processed), "COPY")
            _check(client.uid("STORE", uid, "+FLAGS", "(\\Deleted)"), "STORE")
    if not can_move and uids:
        client.expunge()
    return outcomes
