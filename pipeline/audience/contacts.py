"""People and suppressions: address normalisation, do-not-send, data-access and erasure requests.

An address is stored as given except for its domain, which is lower-cased and
IDNA-encoded (``user@bücher.de`` is kept as ``user@xn--bcher-kva.de``) so every
SMTP server can take it and both spellings are the same contact. Uniqueness is
case-insensitive through ``Contact.email_key``. Suppressions are keyed by a
sha256 of that key, so an erased person stays suppressed without their address
being kept anywhere.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, cast

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import CursorResult, delete, exists, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col

from pipeline.errors import ContactError
from pipeline.storage.models import (
    Contact,
    Delivery,
    Event,
    MailingList,
    Subscription,
    Suppression,
    email_hash,
    utcnow,
)
from pipeline.types import SuppressionReason

# Contact columns a CSV or an audience names directly; every other name is an attribute.
PERSONAL_FIELDS = ("first_name", "last_name", "locale", "timezone")
# Contact columns that are comms' bookkeeping: never a CSV column or attribute.
RESERVED_NAMES = frozenset({"id", "email_key", "email_hash", "attributes", "created_at", "updated_at"})
# What an attribute (a CSV column name) may look like; also what audiences may name.
ATTRIBUTE_NAME = re.compile(r"^\w[\w .-]*$")

__all__ = [
    "ATTRIBUTE_NAME",
    "PERSONAL_FIELDS",
    "RESERVED_NAMES",
    "ContactReport",
    "email_hash",
    "erase",
    "find_contact",
    "is_suppressed",
    "needs_smtputf8",
    "normalize_email",
    "report",
    "suppress",
    "unsuppress",
]


# An ASCII dot-atom (RFC 5322 3.2.3): email-validator returns such a local part unchanged ...
_PLAIN_LOCAL = re.compile(r"[A-Za-z0-9_!#$%&'*+/=?^`{|}~-]+(?:\.[A-Za-z0-9_!#$%&'*+/=?^`{|}~-]+)*")
# ... except these RFC 2142 role mailboxes, which it lower-cases.
_ROLE_MAILBOXES = frozenset(
    [
        "info",
        "marketing",
        "sales",
        "support",
        "abuse",
        "noc",
        "security",
        "postmaster",
        "hostmaster",
        "usenet",
        "news",
        "webmaster",
        "www",
        "uucp",
        "ftp",
    ]
)
# RFC 3696 errata 1690 / RFC 5321 4.5.3.1.3, the limit email-validator applies to the whole address.
_MAX_ADDRESS = 254


@lru_cache(maxsize=16384)
def _ascii_domain(domain: str) -> str | None:
    """The domain's IDNA form if email-validator accepts it, else None. Cached: lists share few domains."""
    try:
        return validate_email("a@" + domain, check_deliverability=False).ascii_domain
    except EmailNotValidError:
        return None


def normalize_email(raw: str) -> tuple[str, str]:
    """(email, email_key) for RAW: trimmed, syntax-checked without DNS, domain lower-case ASCII.

    email-validator decides. Most addresses are a plain ASCII local part at a domain already
    seen, and for those its answer is known without asking it again (it validates
    the two halves independently); that halves the cost of an import. Anything else is
    validated whole.
    """
    candidate = raw.strip()
    if not candidate:
        raise ContactError("empty email")
    local, _, domain = candidate.rpartition("@")
    plain = _PLAIN_LOCAL.fullmatch(local) and local.lower() not in _ROLE_MAILBOXES
    ascii_domain = _ascii_domain(domain) if plain else None
    if ascii_domain is not None and len(local) + 1 + len(ascii_domain) <= _MAX_ADDRESS:
        email = f"{local}@{ascii_domain}"
    else:
        try:
            valid = validate_email(candidate, check_deliverability=False)
        except EmailNotValidError as exc:
            raise ContactError(f"invalid email {candidate!r}: {exc}") from None
        email = f"{valid.local_part}@{valid.ascii_domain}"
    return email, email.lower()


def needs_smtputf8(email: str) -> bool:
    """Whether a normalised address can only be sent with SMTPUTF8 (RFC 6531): its domain is always
    ASCII (IDNA), so this is a local part such as ``zoë``, which no ASCII form can stand for."""
    return not email.isascii()


def _key_of(email: str) -> str:
    return normalize_email(email)[1]


def find_contact(session: Session, email: str) -> Contact | None:
    return session.scalars(select(Contact).where(col(Contact.email_key) == _key_of(email))).first()


def search_contacts(session: Session, text: str, limit: int = 10) -> list[Contact]:
    """Contacts whose address contains TEXT (case-insensitive), by address: the studio's contact search."""
    query = (
        select(Contact)
        .where(col(Contact.email_key).contains(text.strip().casefold(), autoescape=True))
        .order_by(col(Contact.email_key))
        .limit(limit)
    )
    return list(session.scalars(query))


def is_suppressed(session: Session, email_key: str) -> bool:
    """True when the address behind EMAIL_KEY must not be mailed (checked again at send time)."""
    query = select(exists().where(col(Suppression.email_hash) == email_hash(email_key)))
    return bool(session.scalar(query))


def suppress(session: Session, email: str, reason: SuppressionReason, note: str = "") -> None:
    """Stop all mail to EMAIL. Idempotent and safe under concurrency: an existing suppression is kept."""
    address, key = normalize_email(email)
    values = {
        "email_hash": email_hash(key),
        "email": address,
        "reason": str(reason),
        "note": note,
        "created_at": utcnow(),
    }
    # Two unsubscribe clicks may race: let the database drop the second insert instead of failing.
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = dialect.insert(Suppression).values(values).on_conflict_do_nothing()
    session.execute(statement)


def unsuppress(session: Session, email: str) -> bool:
    """Lift the suppression on EMAIL (also one left by an erasure); False if there was none."""
    statement = delete(Suppression).where(col(Suppression.email_hash) == email_hash(_key_of(email)))
    # A DELETE's result is a CursorResult (it has the rowcount); Session.execute is typed for any statement.
    return bool(cast(CursorResult[Any], session.execute(statement)).rowcount)


@dataclass(frozen=True)
class ContactReport:
    """Everything stored about one address: the answer to a data-access request."""

    email: str
    contact: Contact | None
    subscriptions: list[tuple[str, str, datetime | None]]  # (list, status, since)
    suppression: Suppression | None
    deliveries: list[tuple[Delivery, list[Event]]]

    def as_dict(self) -> dict[str, Any]:
        contact = self.contact
        return {
            "email": self.email,
            "contact": contact.model_dump(mode="json", exclude={"id", "email_hash"}) if contact else None,
            "subscriptions": [
                {"list": name, "status": status, "since": since.isoformat() if since else None}
                for name, status, since in self.subscriptions
            ],
            "suppression": self.suppression.model_dump(mode="json", exclude={"id", "email_hash"})
            if self.suppression
            else None,
            "deliveries": [
                delivery.model_dump(mode="json", exclude={"contact_id"})
                | {"events": [event.model_dump(mode="json") for event in events]}
                for delivery, events in self.deliveries
            ],
        }


def report(session: Session, email: str) -> ContactReport:
    """Everything about EMAIL; ContactError when nothing at all is stored about it."""
    address, key = normalize_email(email)
    contact = session.scalars(select(Contact).where(col(Contact.email_key) == key)).first()
    suppression = session.scalars(
        select(Suppression).where(col(Suppression.email_hash) == email_hash(key))
    ).first()
    if contact is None and suppression is None:
        raise ContactError(f"nothing is stored about {address}")
    subscriptions: list[tuple[str, str, datetime | None]] = []
    deliveries: list[tuple[Delivery, list[Event]]] = []
    if contact is not None:
        rows = session.execute(
            # The status's time: when it last changed (an unsubscribe updates the row), not its creation.
            select(col(MailingList.name), col(Subscription.status), col(Subscription.updated_at))
            .join(MailingList, col(MailingList.id) == col(Subscription.list_id))
            .where(col(Subscription.contact_id) == contact.id)
            .order_by(MailingList.name)
        )
        # SQLite hands timestamps back without their zone; they were written in UTC.
        subscriptions = [
            (name, status, since if since is None or since.tzinfo else since.replace(tzinfo=UTC))
            for name, status, since in rows
        ]
        for delivery in session.scalars(
            select(Delivery).where(col(Delivery.contact_id) == contact.id).order_by(col(Delivery.id))
        ):
            events = session.scalars(
                select(Event).where(col(Event.delivery_id) == delivery.id).order_by(col(Event.id))
            ).all()
            deliveries.append((delivery, list(events)))
    return ContactReport(address, contact, subscriptions, suppression, deliveries)


def erase(session: Session, email: str) -> None:
    """Erasure request: delete the person's data and keep only a hashed suppression.

    Deliveries stay (without address or contact) so campaign counts do not change;
    the user agents recorded on their events go with the person.
    """
    address, key = normalize_email(email)
    contact = session.scalars(select(Contact).where(col(Contact.email_key) == key)).first()
    if contact is None:
        raise ContactError(f"no contact {address}")
    their_deliveries = select(col(Delivery.id)).where(col(Delivery.contact_id) == contact.id)
    session.execute(
        update(Event).where(col(Event.delivery_id).in_(their_deliveries)).values(user_agent=None, detail={})
    )
    session.execute(
        update(Delivery).where(col(Delivery.contact_id) == contact.id).values(email=None, contact_id=None)
    )
    session.execute(delete(Subscription).where(col(Subscription.contact_id) == contact.id))
    session.execute(delete(Contact).where(col(Contact.id) == contact.id))
    suppress(session, address, SuppressionReason.erased)
    session.execute(
        update(Suppression).where(col(Suppression.email_hash) == email_hash(key)).values(email=None)
    )
    session.expunge(contact)
