"""Rate limits and retry rules, on a clock the test moves by hand (no timing in the assertions)."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta

from pipeline.delivery.pacing import Gcra, PacedQueue
from pipeline.delivery.verdicts import Action, is_retryable, judge
from pipeline.types import SendResult, SendStatus
from pipeline.workspace.settings import Rate, Retry


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_gcra_spaces_messages_evenly_instead_of_in_bursts() -> None:
    limiter = Gcra(per_second=4)
    assert limiter.wait_s(10.0) == 0
    limiter.take(10.0)
    assert limiter.wait_s(10.0) == 0.25
    assert limiter.wait_s(10.25) == 0
    limiter.take(10.25)
    # An idle spell does not bank credit for a burst afterwards.
    limiter.take(20.0)
    assert limiter.wait_s(20.0) == 0.25


def test_a_slow_domain_does_not_hold_up_other_domains() -> None:
    clock = Clock()
    queue: PacedQueue[str] = PacedQueue(Rate(per_second=1000, per_domain_per_second=1), clock)
    for item in ("slow-1", "slow-2", "slow-3"):
        queue.put("slow.example", item)
    queue.put("fast.example", "fast-1")

    async def take_available() -> list[str]:
        """What can be taken while the clock ticks on by 10 ms a take (the overall rate allows it)."""
        taken = []
        while True:
            clock.now += 0.01
            try:
                taken.append(await asyncio.wait_for(queue.take(), 0.05))
            except TimeoutError:
                return taken

    async def scenario() -> None:
        assert await take_available() == ["slow-1", "fast-1"]
        clock.now += 1.0
        assert await take_available() == ["slow-2"]
        clock.now += 1.0
        assert await take_available() == ["slow-3"]

    asyncio.run(scenario())


def test_the_overall_rate_holds_across_domains() -> None:
    clock = Clock()
    queue: PacedQueue[int] = PacedQueue(Rate(per_second=2, per_domain_per_second=100), clock)
    for i in range(4):
        queue.put(f"d{i}.example", i)

    async def first_free() -> int | None:
        try:
            return await asyncio.wait_for(queue.take(), 0.05)
        except TimeoutError:
            return None

    async def scenario() -> None:
        assert await first_free() == 0
        assert await first_free() is None  # the next slot is half a second away
        clock.now += 0.5
        assert await first_free() == 1

    asyncio.run(scenario())


def _verdict(status: SendStatus, code: int | None, reply: str, *, age_h: float = 0.0, attempts: int = 1):
    now = datetime(2026, 11, 26, 12, tzinfo=UTC)
    return judge(
        SendResult(status, code, reply),
        attempts=attempts,
        first_attempt_at=now - timedelta(hours=age_h),
        now=now,
        retry=Retry(schedule_s=[60, 300], max_age_h=48),
        rng=random.Random(1),
    ), now


def test_temporary_failures_back_off_along_the_schedule_with_jitter_then_give_up() -> None:
    first, now = _verdict(SendStatus.retry, 451, "4.3.0 try later", attempts=1)
    later, _ = _verdict(SendStatus.retry, 451, "4.3.0 try later", attempts=5)
    assert first.action is Action.retry and later.action is Action.retry
    assert 48 <= (first.retry_at - now).total_seconds() <= 72
    assert 240 <= (later.retry_at - now).total_seconds() <= 360  # the last step repeats
    dropped, _ = _verdict(SendStatus.retry, None, "Connection lost")
    assert dropped.connection and not first.connection
    old, _ = _verdict(SendStatus.retry, 451, "4.3.0 try later", age_h=49, attempts=30)
    assert old.action is Action.failed and "gave up after 30 attempts" in old.reason


def test_permanent_refusals_say_whether_to_suppress_or_to_count_a_policy_refusal() -> None:
    unknown, _ = _verdict(SendStatus.permanent, 550, "5.1.1 no such user")
    sender_syntax, _ = _verdict(SendStatus.permanent, 553, "5.1.7 bad sender address syntax")
    policy, _ = _verdict(SendStatus.permanent, 550, "5.7.1 reputation")
    too_big, _ = _verdict(SendStatus.permanent, 552, "5.3.4 message too big")
    assert unknown.action is Action.failed and unknown.hard_bounce and not unknown.policy
    assert not sender_syntax.hard_bounce  # about our address, not the recipient's
    assert policy.policy and not policy.hard_bounce
    assert not too_big.hard_bounce and not too_big.policy
    assert is_retryable(550, "5.7.1 reputation") and is_retryable(None, "gave up")
    assert not is_retryable(550, "5.1.1 no such user") and not is_retryable(552, "5.3.4 message too big")
