"""Value types that cross layers, so the store, the transports and message building share them
without importing the stage that makes them (a transport never needs Jinja to know what a message is).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


@dataclass(frozen=True)
class Recipient:
    """What recipient-scope templates see as `contact`."""

    email: str
    first_name: str | None = None
    last_name: str | None = None
    locale: str | None = None
    timezone: str | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, person: Any) -> Recipient:
        """From anything with a person's fields: a stored Contact, or the [preview] sample."""
        return cls(
            email=person.email,
            first_name=person.first_name,
            last_name=person.last_name,
            locale=person.locale,
            timezone=person.timezone,
            attributes=dict(person.attributes),
        )

    @property
    def display_name(self) -> str | None:
        """The To header's display name: first and last name, when the contact has either."""
        return " ".join(part for part in (self.first_name, self.last_name) if part) or None


@dataclass(frozen=True)
class Links:
    """The per-recipient URLs every message carries, each with its own signed token."""

    unsubscribe_url: str
    preferences_url: str
    view_online_url: str
    confirm_url: str = ""  # a sign-up's confirmation link (templates/copy/_confirm.md)
    unsubscribe_token: str = ""  # the one in unsubscribe_url, which the mailto: unsubscribe carries too


@dataclass(frozen=True)
class Templates:
    """A run's frozen recipient-scope templates: what assembly hands on and what a run stores."""

    subject: str
    html: str
    text: str


@dataclass(frozen=True)
class Rendered:
    """One recipient's subject and bodies, before MIME."""

    subject: str
    html: str
    text: str
    # The HTML as its template rendered it, piece by piece (message.mime encodes the template's
    # own pieces once a run); empty when it came some other way.
    html_parts: tuple[str, ...] = ()


@dataclass(frozen=True)
class Outgoing:
    """A finished message as a transport takes it: envelope and the exact bytes of the wire.

    DATA is SMTP-ready: CRLF line ends, ending in CRLF, and no line starting with "." (the
    message builder writes such a dot as quoted-printable =2E), so it needs no dot-stuffing and
    every transport writes it as is."""

    envelope_from: str
    recipients: tuple[str, ...]
    data: bytes
    message_id: str


class SendStatus(StrEnum):
    sent = "sent"
    retry = "retry"  # try again later: 4xx, timeout, refused or dropped connection
    permanent = "permanent"  # do not retry this message: 5xx


@dataclass(frozen=True)
class SendResult:
    status: SendStatus
    code: int | None  # the SMTP reply code; None when no reply came (no connection, timeout, drop)
    reply: str  # the server's text, enhanced status code included ("5.1.1 user unknown")
    # The failure came while opening the connection (greeting, EHLO, STARTTLS, AUTH), before this
    # message was offered: it says something about the server or our account, not the recipient.
    at_connect: bool = False


class SuppressionReason(StrEnum):
    unsubscribe = "unsubscribe"
    hard_bounce = "hard_bounce"
    soft_bounce = "soft_bounce"
    complaint = "complaint"
    manual = "manual"
    erased = "erased"
