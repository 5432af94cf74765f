"""Double opt-in sign-up: a pending request, a confirmation email, and a subscription only once the
signed link is followed.

A pending sign-up creates no contact and no subscription, so no campaign can reach it; it expires
after ``[signup] expire_h`` and its link stops working. The confirmed row stays as the evidence
of consent: when, from which form, and from which address (an HMAC of the IP, not the IP). Only
lists named in ``[signup] lists`` take sign-ups. Bots are kept out by a honeypot field (filled in:
accepted-looking answer, nothing stored or sent) and a per-IP limit per hour.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from functools import cached_property
from urllib.parse import quote

from sqlalchemy import delete, select
from sqlmodel import Session, col

from pipeline.assembly.campaign import assemble
from pipeline.audience.contacts import is_suppressed, normalize_email
from pipeline.audience.editing import subscribe
from pipeline.audience.lists import ensure_list
from pipeline.message.compose import Composer
from pipeline.message.dkim import Signer
from pipeline.message.tokens import make_token
from pipeline.storage.models import Contact, MailingList, Signup, SignupStatus, utcnow
from pipeline.types import Outgoing, Recipient
from pipeline.workspace.folders import Workspace
from pipeline.workspace.settings import Settings

CONFIRM_CAMPAIGN = "_confirm"  # templates/copy/_confirm.md
HONEYPOT = "website"  # a field people never see; bots fill in every field
HOUR_S = 3600.0


def hash_ip(settings: Settings, ip: str | None) -> str:
    """Evidence of where consent came from that does not keep the address itself."""
    return hmac.new(settings.secret, f"ip:{ip or '-'}".encode(), hashlib.sha256).hexdigest()


def signup_form_url(settings: Settings, list_name: str) -> str:
    return f"{settings.tracking.base_url.rstrip('/')}/s/{quote(list_name, safe='')}"


def confirm_url(settings: Settings, signup_id: int) -> str:
    return f"{settings.tracking.base_url.rstrip('/')}/s/confirm/{make_token(settings.secret, 's', signup_id)}"


class RateLimit:
    """At most LIMIT requests per IP in the last hour, in this process (a sliding window)."""

    def __init__(self, limit: int, window_s: float = HOUR_S) -> None:
        self.limit = limit
        self.window_s = window_s
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, ip: str, now: float | None = None) -> bool:
        moment = time.monotonic() if now is None else now
        with self._lock:
            recent = self._seen.setdefault(ip, deque())
            while recent and recent[0] <= moment - self.window_s:
                recent.popleft()
            if len(recent) >= self.limit:
                return False
            recent.append(moment)
            if len(self._seen) > 100_000:  # forget quiet addresses rather than grow without bound
                self._seen = {key: value for key, value in self._seen.items() if value}
            return True


def signup_list(session: Session, settings: Settings, name: str) -> MailingList | None:
    """The list NAME if [signup] lists offers it (created on first use), else None."""
    if name not in settings.signup.lists:
        return None
    return ensure_list(session, name)


def start_signup(
    session: Session,
    settings: Settings,
    mailing_list: MailingList,
    email: str,
    *,
    first_name: str | None,
    ip: str | None,
    user_agent: str | None,
    source: str,
) -> Signup:
    """Record a pending sign-up (ContactError for an invalid address); drops expired ones first."""
    address, key = normalize_email(email)
    assert mailing_list.id is not None  # a stored list (the caller looked it up by name)
    now = utcnow()
    session.execute(
        delete(Signup).where(col(Signup.status) == SignupStatus.pending, col(Signup.expires_at) < now)
    )
    signup = Signup(
        list_id=mailing_list.id,
        email=address,
        email_key=key,
        first_name=(first_name or "").strip()[:200] or None,
        source=source[:200],
        ip_hash=hash_ip(settings, ip),
        user_agent=user_agent,
        created_at=now,
        expires_at=now + timedelta(hours=settings.signup.expire_h),
    )
    session.add(signup)
    session.flush()
    return signup


class Confirmed(StrEnum):
    subscribed = "subscribed"
    already = "already"  # the link was followed before: nothing changes
    expired = "expired"


@dataclass(frozen=True)
class Confirmation:
    outcome: Confirmed
    list_name: str


def confirm_signup(
    session: Session, settings: Settings, signup_id: int, *, ip: str | None, now: datetime | None = None
) -> Confirmation | None:
    """Subscribe the person behind a pending sign-up; None for no such sign-up."""
    signup = session.get(Signup, signup_id)
    if signup is None:
        return None
    mailing_list = session.get(MailingList, signup.list_id)
    assert mailing_list is not None  # the sign-up goes with its list (ON DELETE CASCADE)
    name = mailing_list.display_name or mailing_list.name
    if signup.status == SignupStatus.confirmed:
        return Confirmation(Confirmed.already, name)
    moment = now or utcnow()
    assert signup.expires_at is not None
    if _aware(signup.expires_at) < moment:
        session.delete(signup)
        return Confirmation(Confirmed.expired, name)
    contact = session.scalars(select(Contact).where(col(Contact.email_key) == signup.email_key)).first()
    if contact is None:
        contact = Contact(email=signup.email, email_key=signup.email_key, first_name=signup.first_name)
        session.add(contact)
        session.flush()
    subscribe(session, contact, mailing_list.name)
    signup.status = SignupStatus.confirmed
    signup.confirmed_at = moment
    signup.confirmed_ip_hash = hash_ip(settings, ip)
    session.add(signup)
    return Confirmation(Confirmed.subscribed, name)


def _aware(moment: datetime) -> datetime:
    """SQLite hands timestamps back without their zone; they were written in UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=utcnow().tzinfo)


class ConfirmationMail:
    """templates/copy/_confirm.md assembled once per process, then composed for each sign-up."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws

    @cached_property
    def _composer(self) -> Composer:
        settings = self.ws.settings
        campaign = assemble(self.ws, CONFIRM_CAMPAIGN)
        # Untracked: a confirmation belongs to no delivery, so tracked links in it would lead nowhere.
        return Composer(
            settings,
            campaign.templates,
            campaign=campaign.name,
            department=campaign.department,
            signer=Signer.from_settings(settings, self.ws.root),
            tracked=False,
        )

    def build(self, session: Session, signup: Signup) -> Outgoing | None:
        """The message for SIGNUP, or None when the address is suppressed (it gets nothing)."""
        if is_suppressed(session, signup.email_key):
            return None
        assert signup.id is not None
        recipient = Recipient(email=signup.email, first_name=signup.first_name)
        return self._composer.compose(
            recipient,
            delivery_id=None,
            contact_key=f"signup-{signup.id}-{uuid.uuid4()}",
            confirm_url=confirm_url(self.ws.settings, signup.id),
        ).outgoing
