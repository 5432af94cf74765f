"""What a transport's answer means for its delivery: sent, try again later, or failed for good.

The rules (RFC 5321 reply classes, RFC 3463 enhanced status codes):

- 2xx: sent.
- 4xx, a timeout, a refused or dropped connection: try again after the next step of
  the backoff schedule (with jitter, so a whole batch retried together does not come
  back together), until the delivery is older than ``retry.max_age_h``.
- Refused while connecting, before any message was offered: a 5xx greeting (554) or a refused
  AUTH (535) will not go away by itself, so the run pauses at once with the server's reason
  (RFC 5321 3.1, RFC 4954 6); a 421 greeting or no answer counts as a connection failure, and
  consecutive ones pause the run. The delivery itself is tried again when the run resumes.
- 5xx: that delivery failed; the rest of the run goes on. What the refusal means comes from
  pipeline.delivery.status, the classifier DSNs and bounce texts share:
  - hard (5.1.x but 5.1.7/5.1.8, 5.2.1, "user unknown"): the recipient is suppressed as a hard bounce;
  - sender (5.7.x, 5.1.7/5.1.8 about *our* address, blocklists): counted, never held against the
    recipient, and the run pauses when they pile up.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from pipeline.delivery.status import Severity, classify_reply
from pipeline.types import SendResult, SendStatus
from pipeline.workspace.settings import Retry

_JITTER = 0.2  # +-20% around each step of the schedule


class Action(StrEnum):
    sent = "sent"
    retry = "retry"
    failed = "failed"


@dataclass(frozen=True)
class Verdict:
    action: Action
    retry_at: datetime | None = None
    hard_bounce: bool = False  # 5.1.x: suppress the address
    policy: bool = False  # 5.7.x: the sender was refused; counts towards pausing the run
    connection: bool = False  # no reply at all, or a 4xx while connecting; consecutive ones pause the run
    refused: bool = False  # the server refused us while connecting (5xx greeting, AUTH): pause the run now
    reason: str = ""  # why it failed or is retried, for the delivery's last_reply


def is_retryable(code: int | None, reply: str) -> bool:
    """Whether `comms runs retry` should try a failed delivery again: it failed for a reason that
    can go away (no answer, gave up on 4xx, the sender was refused, or it could not be rendered)
    rather than because the recipient's server said the message or address is wrong."""
    return code is None or code < 500 or classify_reply(reply) is Severity.sender


def backoff_s(attempts: int, retry: Retry, rng: random.Random) -> float:
    """The wait before attempt ATTEMPTS+1: the schedule's step for it (the last step repeats), jittered."""
    step = retry.schedule_s[min(attempts, len(retry.schedule_s)) - 1]
    return step * rng.uniform(1 - _JITTER, 1 + _JITTER)


def judge(
    result: SendResult,
    *,
    attempts: int,
    first_attempt_at: datetime,
    now: datetime,
    retry: Retry,
    rng: random.Random,
) -> Verdict:
    """The verdict for a delivery that has now been tried ATTEMPTS times, first at FIRST_ATTEMPT_AT."""
    if result.status is SendStatus.sent:
        return Verdict(Action.sent)
    reply = result.reply.strip()
    if result.status is SendStatus.permanent:
        severity = classify_reply(reply)
        return Verdict(
            Action.failed,
            hard_bounce=severity is Severity.hard,
            policy=severity is Severity.sender,
            reason=reply,
        )
    connection = result.code is None or result.at_connect
    if result.at_connect and result.code is not None and result.code >= 500:
        retry_at = now + timedelta(seconds=backoff_s(attempts, retry, rng))
        return Verdict(Action.retry, retry_at=retry_at, connection=True, refused=True, reason=reply)
    if now - first_attempt_at >= timedelta(hours=retry.max_age_h):
        return Verdict(
            Action.failed,
            connection=connection,
            reason=f"gave up after {attempts} attempts over {retry.max_age_h:g} h: {reply}",
        )
    retry_at = now + timedelta(seconds=backoff_s(attempts, retry, rng))
    return Verdict(Action.retry, retry_at=retry_at, connection=connection, reason=reply)
