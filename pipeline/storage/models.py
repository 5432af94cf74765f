"""SQLModel tables: who we write to, what we sent them, and what came back.

Schema changes go through Alembic (pipeline/storage/migrations); these classes are the
source the migrations are written from. Columns must work on SQLite and
PostgreSQL alike: JSON for attributes, timezone-aware UTC timestamps.
"""

from __future__ import annotations

import enum
import hashlib
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Index, LargeBinary, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from pipeline.storage.statuses import DeliveryStatus, RunStatus
from pipeline.types import Templates


def utcnow() -> datetime:
    return datetime.now(UTC)


def _ts(nullable: bool = True, index: bool = False) -> Any:
    """A timezone-aware timestamp; required ones default to now, in core inserts (executemany) too."""
    if nullable:
        return Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True, index=index))
    column = Column(DateTime(timezone=True), nullable=False, index=index, default=utcnow)
    return Field(default_factory=utcnow, sa_column=column)


def _json() -> Column[Any]:
    return Column(JSON, nullable=False, default=dict)


def email_hash(email_key: str) -> str:
    """sha256 hex of a normalised address: what a suppression keeps once the address itself is erased."""
    return hashlib.sha256(email_key.encode()).hexdigest()


def _contact_email_hash(context: Any) -> str:
    return email_hash(context.get_current_parameters()["email_key"])


class SubscriptionStatus(enum.StrEnum):
    subscribed = "subscribed"
    unsubscribed = "unsubscribed"


class EventKind(enum.StrEnum):
    open = "open"
    click = "click"
    unsubscribe = "unsubscribe"
    bounce = "bounce"
    complaint = "complaint"


class Contact(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    # As given (local part case kept, domain lower-cased and IDNA-normalised) ...
    email: str = Field(max_length=320)
    # ... and the case-folded key that makes addresses unique case-insensitively.
    email_key: str = Field(max_length=320, unique=True, index=True)
    # email_hash(email_key), filled in by default: lets the audience query leave out suppressed
    # addresses with an indexed equality join (SQLite has no sha256 function to compute it in SQL).
    email_hash: str | None = Field(
        default=None,
        sa_column=Column(String(64), nullable=False, index=True, default=_contact_email_hash),
    )
    first_name: str | None = Field(default=None, max_length=200)
    last_name: str | None = Field(default=None, max_length=200)
    locale: str | None = Field(default=None, max_length=35)
    timezone: str | None = Field(default=None, max_length=64)
    attributes: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False, default=dict)
    )
    created_at: datetime | None = _ts(nullable=False)
    updated_at: datetime | None = _ts(nullable=False)


class MailingList(SQLModel, table=True):
    __tablename__ = "mailing_list"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100, unique=True)
    # What people see (preferences page, sign-up form); the name when empty.
    display_name: str = Field(default="", max_length=200)
    description: str = ""
    created_at: datetime | None = _ts(nullable=False)


class ContactField(SQLModel, table=True):
    """The type of one attribute (text, number, bool, date), fixed by the first import that had it,
    so later imports and audience files agree with what is stored."""

    __tablename__ = "contact_field"

    name: str = Field(primary_key=True, max_length=200)
    type: str = Field(max_length=10)
    updated_at: datetime | None = _ts(nullable=False)


class SignupStatus(enum.StrEnum):
    pending = "pending"  # the confirmation email went out; nothing is subscribed yet
    confirmed = "confirmed"  # the signed link was followed: the subscription exists


class Signup(SQLModel, table=True):
    """A double opt-in sign-up, kept after confirmation as the evidence of consent."""

    id: int | None = Field(default=None, primary_key=True)
    list_id: int = Field(foreign_key="mailing_list.id", ondelete="CASCADE", index=True)
    email: str = Field(max_length=320)
    email_key: str = Field(max_length=320, index=True)
    first_name: str | None = Field(default=None, max_length=200)
    status: str = Field(default=SignupStatus.pending, max_length=20)
    source: str = Field(default="", max_length=200)  # the form's URL path, or "embedded"
    # HMAC of the address the request came from: evidence without keeping the IP itself.
    ip_hash: str = Field(default="", max_length=64)
    user_agent: str | None = None
    created_at: datetime | None = _ts(nullable=False)
    expires_at: datetime | None = _ts(nullable=False, index=True)
    confirmed_at: datetime | None = _ts()
    confirmed_ip_hash: str = Field(default="", max_length=64)


class Subscription(SQLModel, table=True):
    contact_id: int = Field(foreign_key="contact.id", primary_key=True, ondelete="CASCADE")
    list_id: int = Field(foreign_key="mailing_list.id", primary_key=True, ondelete="CASCADE")
    status: str = Field(default=SubscriptionStatus.subscribed, max_length=20)
    created_at: datetime | None = _ts(nullable=False)
    updated_at: datetime | None = _ts(nullable=False)


class Suppression(SQLModel, table=True):
    """Email-level do-not-send. Looked up by hash so an erased person stays suppressed."""

    id: int | None = Field(default=None, primary_key=True)
    # sha256 hex of the email key; the address itself is dropped on erasure.
    email_hash: str = Field(max_length=64, unique=True, index=True)
    email: str | None = Field(default=None, max_length=320)
    reason: str = Field(max_length=20)
    note: str = ""
    created_at: datetime | None = _ts(nullable=False)


class Approval(SQLModel, table=True):
    """Someone's sign-off of one campaign's exact content: valid while the content still has this hash."""

    __table_args__ = (
        UniqueConstraint("campaign", "content_hash", "approver", "approved_at", name="uq_approval"),
    )

    id: int | None = Field(default=None, primary_key=True)
    campaign: str = Field(max_length=200, index=True)
    content_hash: str = Field(max_length=64)
    approver: str = Field(max_length=320)
    note: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    approved_at: datetime | None = _ts(nullable=False)
    # HEAD when the approved files were committed as approved (the review pack diffs against it).
    git_commit: str | None = Field(default=None, max_length=64)
    # The hash of each part (content, audience:NAME, schedule:NAME) and the approved source files.
    parts: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False, default=dict))
    sources: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False, default=dict)
    )


class Run(SQLModel, table=True):
    """One execution of a campaign, with the frozen template it sends."""

    __table_args__ = (UniqueConstraint("schedule", "occurrence", name="uq_run_occurrence"),)

    id: int | None = Field(default=None, primary_key=True)
    campaign: str = Field(max_length=200, index=True)
    department: str = Field(default="", max_length=100)
    audience: str = Field(max_length=200)
    status: str = Field(default=RunStatus.planned, max_length=20, index=True)
    started_by: str = Field(default="", max_length=200)
    # Set for runs started by the daemon: one run per (schedule, occurrence).
    schedule: str | None = Field(default=None, max_length=200)
    occurrence: datetime | None = _ts()
    # The frozen campaign: recipient-scope Jinja sources and their hash.
    template_hash: str = Field(default="", max_length=64)
    subject_template: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    html_template: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    text_template: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    meta: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False, default=dict))
    recipient_count: int = 0
    status_reason: str = ""
    # The approval the run was started under (None: approvals off, or blocked).
    approval_id: int | None = Field(default=None, foreign_key="approval.id", ondelete="SET NULL")
    # An A/B test's decision time (meta["ab"] holds the test); cleared once it is decided.
    ab_decide_at: datetime | None = _ts(index=True)
    created_at: datetime | None = _ts(nullable=False)
    started_at: datetime | None = _ts(index=True)
    finished_at: datetime | None = _ts()

    @property
    def templates(self) -> Templates:
        return Templates(self.subject_template, self.html_template, self.text_template)

    def variant_templates(self, variant: str) -> Templates:
        """What a delivery of VARIANT is rendered from: an A/B variant's frozen templates (meta["ab"]),
        or the run's own (the control's) for "" and for the control."""
        frozen = (self.meta.get("ab") or {}).get("templates", {}).get(variant)
        return Templates(*frozen) if frozen else self.templates


class Delivery(SQLModel, table=True):
    """The outbox row for one recipient of one run: the truth about who got what."""

    __table_args__ = (
        UniqueConstraint("run_id", "contact_id", name="uq_delivery_run_contact"),
        Index("ix_delivery_claim", "run_id", "status", "next_attempt_at"),
        # Reports group a run's deliveries by their frozen department.
        Index("ix_delivery_report", "run_id", "department"),
    )

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="run.id", ondelete="CASCADE")
    # Null once the contact is erased; the row stays for the counts.
    contact_id: int | None = Field(default=None, foreign_key="contact.id", ondelete="SET NULL", index=True)
    email: str | None = Field(default=None, max_length=320)
    status: str = Field(default=DeliveryStatus.queued, max_length=20)
    attempts: int = 0
    next_attempt_at: datetime | None = _ts()
    lease_until: datetime | None = _ts()
    leased_by: str | None = Field(default=None, max_length=100)
    message_id: str = Field(default="", max_length=255, index=True)
    last_code: int | None = None
    last_reply: str = ""
    skip_reason: str = ""
    first_attempt_at: datetime | None = _ts()
    sent_at: datetime | None = _ts(index=True)
    updated_at: datetime | None = _ts()
    # Grouping attributes frozen at snapshot, so a reorganisation or a move does not rewrite history:
    # the contact attribute named by [reports] department_field, the mailbox domain, locale, timezone.
    department: str = Field(default="", max_length=100)
    domain: str = Field(default="", max_length=255)
    locale: str = Field(default="", max_length=35)
    timezone: str = Field(default="", max_length=64)
    # A seed (inbox-placement) address: sent to like anyone, left out of every rate.
    seed: bool = False
    # The A/B variant this delivery is sent (frozen at snapshot; a held one gets the winner's at the
    # decision); "" outside a test.
    variant: str = Field(default="", max_length=100)


class Event(SQLModel, table=True):
    # Reports aggregate a delivery's events by kind and machine flag: a covering index serves them.
    __table_args__ = (Index("ix_event_report", "delivery_id", "kind", "machine", "reason"),)

    id: int | None = Field(default=None, primary_key=True)
    # Null for an event that could not be tied to a delivery (kept, not dropped).
    delivery_id: int | None = Field(default=None, foreign_key="delivery.id", ondelete="SET NULL", index=True)
    kind: str = Field(max_length=20, index=True)
    url: str | None = None
    link_index: int | None = None
    user_agent: str | None = None
    # Privacy-proxy opens and link-scanner clicks: kept apart from human engagement.
    machine: bool = False
    # Why: for machine traffic the rule that caught it (honeypot, scanner-burst, apple-privacy-proxy...),
    # for a bounce its class (hard, soft, delayed), for a complaint its feedback type, for an
    # unsubscribe its source. Kept as a column so reports can group by it in SQL.
    reason: str = Field(default="", max_length=60)
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False, default=dict))
    created_at: datetime | None = _ts(nullable=False, index=True)


class UnreadableMessage(SQLModel, table=True):
    """A message in the bounce mailbox that could not be read, kept for an operator (issue 9).

    Its bytes are kept whenever they were read (an oversized IMAP message is not even downloaded);
    LOCATION says where the message itself was moved aside (an IMAP folder, a Maildir subfolder) or
    where it still is (an mbox).
    """

    __tablename__ = "unreadable_message"
    id: int | None = Field(default=None, primary_key=True)
    # sha256 of the bytes: the same message read again is not recorded twice.
    sha256: str = Field(max_length=64, sa_column_kwargs={"unique": True})
    source: str = Field(max_length=300)
    location: str | None = None
    reason: str
    size: int
    raw: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    created_at: datetime | None = _ts(nullable=False, index=True)


class MailingStatus(enum.StrEnum):
    sending = "sending"  # claimed: this fire's report is being built and sent (or the sender died)
    sent = "sent"  # the server took it
    failed = "failed"  # not sent; reason says why (the server's reply, or what stopped the build)


class ReportMailing(SQLModel, table=True):
    """One fire of a report's schedule: claimed before the report is sent, so it is mailed once.

    (schedule, occurrence) is unique: a restart within the misfire grace, or a second daemon,
    finds the fire claimed and sends nothing. A claim whose sender died stays `sending`.
    """

    __tablename__ = "report_mailing"
    __table_args__ = (UniqueConstraint("schedule", "occurrence", name="uq_report_mailing_occurrence"),)

    id: int | None = Field(default=None, primary_key=True)
    schedule: str = Field(max_length=200)
    occurrence: datetime | None = _ts(nullable=False)  # the fire time, UTC
    report: str = Field(max_length=50)
    period: str = Field(max_length=30)  # the period's label, as the subject gives it
    status: str = Field(default=MailingStatus.sending, max_length=20)
    reason: str = ""
    claimed_at: datetime | None = _ts(nullable=False)
    finished_at: datetime | None = _ts()
