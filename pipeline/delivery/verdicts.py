"""What a transport's answer means for its delivery: sent, try again later, or failed for good.

The rules (RFC 5321 reply classes, RFC 3463 enhanced status codes):

- 2xx: sent.
- 4xx, a timeout, a refused or dropped connection: try again after the next step of
  the backoff schedule (with jitter, so a whole batch deferred together does not come
  back together), until the delivery is older than ``retry.max_age_h``.
- Refused while connecting, before any message was offered: a 5xx greeting (554) or a refused
  AUTH (535) will not go away by itself, so the run pauses at once with the server's reason
  (RFC 5321 3.1, RFC 4954 6); a 421 greeting or no answer counts as a connection failure, and
  consecutive ones pause the run. The delivery itself is tried again when the run resumes.
- 5xx: that delivery failed; the rest of the run goes on.
  - 5.1.x says the address does not exist: the recipient is suppressed as a hard bounce
    (except 5.1.7 and 5.1.8, which are about *our* sender address).
  - 5.7.x is a policy or reputation refusal of the sender: counted, never held against
    the recipient, and the run pauses when they pile up.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from pipeline.types import SendResult, SendStatus
from pipeline.workspace.settings import Retry

# An enhanced status code at the start of the reply text, possibly after the basic code.
_ENHANCED = re.compile(r"\s*(?:\d{3}[ -])?([245])\.(\d{1,3})\.(\d{1,3})\b")
# X.1.7 bad sender's mailbox syntax, X.1.8 bad sender's system address (RFC 3463 3.2).
_SENDER_ADDRESS_DETAILS = {7, 8}
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


def enhanced_status(reply: str) -> tuple[int, int, int] | None:
    """(class, subject, detail) of the RFC 3463 code the reply starts with, if any."""
    found = _ENHANCED.match(reply)
    if found is None:
        return None
    klass, subject, detail = (int(part) for part in found.groups())
    return klass, subject, detail


def is_hard_bounce(reply: str) -> bool:
    status = enhanced_status(reply)
    return status is not None and status[:2] == (5, 1) and status[2] not in _SENDER_ADDRESS_DETAILS


def is_policy_refusal(reply: str) -> bool:
    status = enhanced_status(reply)
    return status is not None and status[:2] == (5, 7)


def is_retryable(code: int | None, reply: str) -> bool:
    """Whether `comms runs retry` should try a failed delivery again: it failed for a reason that
    can go away (no answer, gave up on 4xx, the sender was refused, or it could not be rendered)
    rather than because the recipient's server said the message or address is wrong."""
    return code is None or code < 500 or is_policy_refusal(reply)


def backoff_s(attempts: int, retry: Retry, rng: random.Random) -> float:
    """The wait before attempt ATTEMPTS+1: the schedule's step for it (the last step repeats), jittered."""
    step = retry.schedule_s[min(attempts, len(retry.schedule_s)) - 1]
    return step * rng.uniform(1 - _JITTER, 1 + _JITTER)


def classify(
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
        return Verdict(
            Action.failed,
            hard_bounce=is_hard_bounce(reply),
            policy=is_policy_refusal(reply),
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
