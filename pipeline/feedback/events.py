"""Engagement and feedback events: recording them, and telling machine traffic from people.

Machine traffic is kept (it is evidence the message arrived) but flagged, so reports can count
human opens and clicks apart:

- Apple Mail Privacy Protection fetches every image of every message through Apple's proxy,
  whether or not the person reads it. Those requests come from Apple's 17.0.0.0/8 and carry the
  bare user agent ``Mozilla/5.0`` (Mail.app itself, when it loads images directly, sends a full
  WebKit user agent and is a person).
- Gmail's image proxy (user agent containing ``GoogleImageProxy``) fetches when the person opens the
  message: a human open, noted as proxied because its address and timing are Google's.
- Link scanners (mail security gateways) follow every link before delivery or on arrival: a known
  scanner user agent, or a click within seconds of sending. Their HEAD requests are not recorded at
  all (the tracking server writes nothing for a HEAD).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import exists, select
from sqlmodel import Session

from pipeline.storage.models import Event, EventKind, utcnow

APPLE_PROXY_NETWORK = ipaddress.ip_network("17.0.0.0/8")
APPLE_PROXY_USER_AGENT = "Mozilla/5.0"
GOOGLE_PROXY_MARK = "googleimageproxy"
# No person clicks a link within this long of the message being handed over.
SCANNER_CLICK_WINDOW = timedelta(seconds=2)
# Substrings (lower case) of user agents that security gateways and bots send.
SCANNER_AGENTS = (
    "barracuda",
    "mimecast",
    "proofpoint",
    "messagelabs",
    "symantec",
    "trendmicro",
    "fortiguard",
    "sophos",
    "forcepoint",
    "safelinks",
    "urldefense",
    "linkchecker",
    "scanner",
    "bot",
    "spider",
    "crawler",
    "headlesschrome",
    "python-requests",
    "python-httpx",
    "go-http-client",
    "curl/",
    "wget/",
)


@dataclass(frozen=True)
class Verdict:
    machine: bool
    why: str  # empty for a plain human event; otherwise a short reason kept in the event's detail


def _in_apple_network(ip: str | None) -> bool:
    if not ip:
        return False
    try:
        return ipaddress.ip_address(ip) in APPLE_PROXY_NETWORK
    except ValueError:
        return False


def judge_open(user_agent: str | None, ip: str | None) -> Verdict:
    agent = (user_agent or "").strip()
    if agent == APPLE_PROXY_USER_AGENT or _in_apple_network(ip):
        return Verdict(True, "apple-privacy-proxy")
    if GOOGLE_PROXY_MARK in agent.lower():
        return Verdict(False, "google-image-proxy")
    return Verdict(False, "")


def judge_click(user_agent: str | None, sent_at: datetime | None, now: datetime) -> Verdict:
    agent = (user_agent or "").lower()
    if not agent:
        return Verdict(True, "no-user-agent")
    for mark in SCANNER_AGENTS:
        if mark in agent:
            return Verdict(True, f"scanner-agent:{mark}")
    if sent_at is not None and sent_at.tzinfo is None:  # SQLite gives back naive UTC
        sent_at = sent_at.replace(tzinfo=UTC)
    if sent_at is not None and now - sent_at < SCANNER_CLICK_WINDOW:
        return Verdict(True, "too-soon-after-sending")
    return Verdict(False, "")


def record_event(
    session: Session,
    kind: EventKind,
    delivery_id: int | None,
    *,
    url: str | None = None,
    link_index: int | None = None,
    user_agent: str | None = None,
    machine: bool = False,
    detail: dict[str, Any] | None = None,
) -> Event:
    event = Event(
        delivery_id=delivery_id,
        kind=kind,
        url=url,
        link_index=link_index,
        user_agent=(user_agent or None) and user_agent[:500],
        machine=machine,
        detail=detail or {},
        created_at=utcnow(),
    )
    session.add(event)
    return event


def has_event(session: Session, kind: EventKind, delivery_id: int) -> bool:
    """Whether DELIVERY_ID already has an event of KIND (keeps unsubscribes and complaints idempotent)."""
    query = select(exists().where(Event.delivery_id == delivery_id, Event.kind == kind))
    return bool(session.scalar(query))
