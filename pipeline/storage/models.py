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

from sqlalchemy import JSON, Column, DateTime, Index, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

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


class RunStatus(enum.StrEnum):
    planned = "planned"
    sending = "sending"
    paused = "paused"
    finished = "finished"
    cancelled = "cancelled"
    failed = "failed"
    missed = "missed"
    blocked = "blocked"  # a gate at run start refused it (no valid approval...): nothing was queued


class DeliveryStatus(enum.StrEnum):
    queued = "queued"  # waiting to be claimed (also: waiting for its retry time)
    sending = "sending"  # claimed by a worker under a lease
    sent = "sent"  # 250 from the server
    failed = "failed"  # permanent refusal or gave up retrying
    skipped = "skipped"  # suppressed or capped at send time; skip_reason says why
    cancelled = "cancelled"  # the run was cancelled before it went


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
    description: str = ""
    created_at: datetime | None = _ts(nullable=False)


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
    created_at: datetime | None = _ts(nullable=False)
    started_at: datetime | None = _ts()
    finished_at: datetime | None = _ts()

    @property
    def templates(self) -> Templates:
        return Templates(self.subject_template, self.html_template, self.text_template)


class Delivery(SQLModel, table=True):
    """The outbox row for one recipient of one run: the truth about who got what."""

    __table_args__ = (
        UniqueConstraint("run_id", "contact_id", name="uq_delivery_run_contact"),
        Index("ix_delivery_claim", "run_id", "status", "next_attempt_at"),
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


class Event(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    # Null for an event that could not be tied to a delivery (kept, not dropped).
    delivery_id: int | None = Field(default=None, foreign_key="delivery.id", ondelete="SET NULL", index=True)
    kind: str = Field(max_length=20, index=True)
    url: str | None = None
    link_index: int | None = None
    user_agent: str | None = None
    # Privacy-proxy opens and link-scanner clicks: kept apart from human engagement.
    machine: bool = False
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False, default=dict))
    created_at: datetime | None = _ts(nullable=False, index=True)
