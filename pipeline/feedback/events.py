"""Engagement and feedback events: recording them, and telling machine traffic from people.

Machine traffic is kept (it is evidence the message arrived) but flagged, with the rule that caught it
in ``Event.reason``, so reports count human opens and clicks apart and can say why:

- Apple Mail Privacy Protection fetches every image of every message through Apple's proxy, whether
  or not the person reads it. Such a request comes from Apple's egress range (17.0.0.0/8) AND carries
  the bare user agent ``Mozilla/5.0``; either alone is a person (Mail.app loading images itself sends
  a full WebKit agent; a bare agent from elsewhere is some other client).
- Gmail's image proxy (user agent containing ``GoogleImageProxy``) fetches when the person opens the
  message: a human open, noted as proxied because its address and timing are Google's.
- Link scanners (Defender Safe Links, Proofpoint, Mimecast) follow every link of a message, often a
  minute after sending, so no fixed delay after sending catches them. A click is a machine's when it
  has a known scanner user agent (or none), comes before the message was accepted, hits the hidden
  honeypot link (pipeline.assembly.tracking), or belongs to a burst: one delivery's clicks on 3+
  distinct links within 2 s, or on all its links within 10 s. Every click of that delivery within
  10 s either side of a burst (or of a honeypot hit) is marked too, also the ones recorded before
  the burst was recognisable. Their HEAD requests are not recorded at all: the tracking server
  writes nothing for a HEAD.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import exists, select, update
from sqlmodel import Session, col

from pipeline.storage.models import Delivery, Event, EventKind, utcnow

APPLE_PROXY_NETWORK = ipaddress.ip_network("17.0.0.0/8")
APPLE_PROXY_USER_AGENT = "Mozilla/5.0"
GOOGLE_PROXY_MARK = "googleimageproxy"
BURST_DISTINCT_LINKS = 3
BURST_DISTINCT_WINDOW = timedelta(seconds=2)
BURST_ALL_LINKS_WINDOW = timedelta(seconds=10)
BURST_MARGIN = timedelta(seconds=10)
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
class Traffic:
    machine: bool
    why: str  # empty for a plain human event; otherwise a short reason kept as Event.reason


def _in_apple_network(ip: str | None) -> bool:
    if not ip:
        return False
    try:
        return ipaddress.ip_address(ip) in APPLE_PROXY_NETWORK
    except ValueError:
        return False


def judge_open(user_agent: str | None, ip: str | None) -> Traffic:
    agent = (user_agent or "").strip()
    if agent == APPLE_PROXY_USER_AGENT and _in_apple_network(ip):
        return Traffic(True, "apple-privacy-proxy")
    if GOOGLE_PROXY_MARK in agent.lower():
        return Traffic(False, "google-image-proxy")
    return Traffic(False, "")


def judge_click(user_agent: str | None, sent_at: datetime | None, now: datetime) -> Traffic:
    """What one click request shows by itself; bursts need the delivery's other clicks (record_click)."""
    agent = (user_agent or "").lower()
    if not agent:
        return Traffic(True, "no-user-agent")
    for mark in SCANNER_AGENTS:
        if mark in agent:
            return Traffic(True, f"scanner-agent:{mark}")
    if sent_at is not None and sent_at.tzinfo is None:  # SQLite gives back naive UTC
        sent_at = sent_at.replace(tzinfo=UTC)
    if sent_at is None or now < sent_at:
        return Traffic(True, "before-accepted")
    return Traffic(False, "")


@dataclass(frozen=True)
class _Click:
    id: int
    link_index: int
    at: datetime
    machine: bool
    reason: str


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def burst_spans(clicks: Sequence[_Click], link_count: int) -> list[tuple[datetime, datetime]]:
    """The (first, last) times of every burst among one delivery's CLICKS (sorted by time).

    A honeypot hit is a burst of its own; so are 3+ distinct links within 2 s, and all LINK_COUNT
    links (when the message has two or more) within 10 s.
    """
    spans = [(c.at, c.at) for c in clicks if c.reason == "honeypot"]
    for i, first in enumerate(clicks):
        seen: set[int] = set()
        for last in clicks[i:]:
            gap = last.at - first.at
            if gap > BURST_ALL_LINKS_WINDOW:
                break
            seen.add(last.link_index)
            distinct_burst = gap <= BURST_DISTINCT_WINDOW and len(seen) >= BURST_DISTINCT_LINKS
            if distinct_burst or (link_count >= 2 and len(seen) >= link_count):
                spans.append((first.at, last.at))
    return spans


def record_open(session: Session, delivery_id: int, user_agent: str | None, ip: str | None) -> Event:
    verdict = judge_open(user_agent, ip)
    return record_event(
        session,
        EventKind.open,
        delivery_id,
        user_agent=user_agent,
        machine=verdict.machine,
        reason=verdict.why,
    )


def record_click(
    session: Session,
    delivery: Delivery,
    *,
    link_index: int,
    url: str,
    user_agent: str | None,
    link_count: int,
    honeypot: int | None,
) -> Event:
    """Record one click on DELIVERY's link LINK_INDEX (of LINK_COUNT real links; HONEYPOT is the
    hidden link's index) and mark as machine every click of that delivery a burst accounts for."""
    assert delivery.id is not None
    now = utcnow()
    verdict = (
        Traffic(True, "honeypot")
        if link_index == honeypot
        else judge_click(user_agent, delivery.sent_at, now)
    )
    event = record_event(
        session,
        EventKind.click,
        delivery.id,
        url=url,
        link_index=link_index,
        user_agent=user_agent,
        machine=verdict.machine,
        reason=verdict.why,
        created_at=now,
    )
    session.flush()
    reach = BURST_ALL_LINKS_WINDOW + BURST_MARGIN
    rows = session.execute(
        select(
            col(Event.id), col(Event.link_index), col(Event.created_at), col(Event.machine), col(Event.reason)
        )
        .where(
            col(Event.delivery_id) == delivery.id,
            col(Event.kind) == EventKind.click,
            col(Event.created_at) >= now - reach,
        )
        .order_by(col(Event.created_at), col(Event.id))
    )
    clicks = [_Click(i, index if index is not None else -1, _aware(at), m, r) for i, index, at, m, r in rows]
    spans = burst_spans(clicks, link_count)
    caught = [
        c.id
        for c in clicks
        if not c.machine and any(start - BURST_MARGIN <= c.at <= end + BURST_MARGIN for start, end in spans)
    ]
    if caught:
        session.execute(
            update(Event).where(col(Event.id).in_(caught)).values(machine=True, reason="scanner-burst")
        )
        session.refresh(event)
    return event


def record_event(
    session: Session,
    kind: EventKind,
    delivery_id: int | None,
    *,
    url: str | None = None,
    link_index: int | None = None,
    user_agent: str | None = None,
    machine: bool = False,
    reason: str = "",
    detail: dict[str, Any] | None = None,
    created_at: datetime | None = None,
) -> Event:
    event = Event(
        delivery_id=delivery_id,
        kind=kind,
        url=url,
        link_index=link_index,
        user_agent=(user_agent or None) and user_agent[:500],
        machine=machine,
        reason=reason[:60],
        detail=detail or {},
        created_at=created_at or utcnow(),
    )
    session.add(event)
    return event


def has_event(session: Session, kind: EventKind, delivery_id: int) -> bool:
    """Whether DELIVERY_ID already has an event of KIND (keeps unsubscribes and complaints idempotent)."""
    query = select(exists().where(col(Event.delivery_id) == delivery_id, col(Event.kind) == kind))
    return bool(session.scalar(query))
