"""Sending pace: an overall rate and a rate per recipient domain, smooth rather than in bursts.

Both limits use GCRA (the generic cell rate algorithm): each limiter keeps one
"theoretical arrival time" and a message may go when the clock has reached it.
Unlike a token bucket that refills in steps, it spaces messages evenly, which is
what receiving servers reward (bursts trip their throttles).

`PacedQueue` hands items out in an order that respects both limits without
head-of-line blocking: while one domain waits for its next slot, items for other
domains go ahead.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from pipeline.workspace.settings import Rate

T = TypeVar("T")

# Idle per-domain limiters are forgotten past this many, so a list of 100,000
# distinct company domains does not keep 100,000 limiters alive.
_MAX_IDLE_DOMAINS = 10_000


class Gcra:
    """One smooth rate: a message every 1/per_second seconds, no bursts."""

    def __init__(self, per_second: float) -> None:
        self.interval_s = 1.0 / per_second
        self.arrival = 0.0  # theoretical arrival time of the next message (monotonic clock)

    def wait_s(self, now: float) -> float:
        """How long until a message may go."""
        return max(0.0, self.arrival - now)

    def take(self, now: float) -> None:
        """Spend the slot: the next message may go one interval later."""
        self.arrival = max(self.arrival, now) + self.interval_s


@dataclass(order=True)
class _Ready:
    at: float
    order: int  # first come, first served among domains ready at the same moment
    domain: str = field(compare=False)


class PacedQueue(Generic[T]):
    """Items to send, handed out as fast as the overall and per-domain rates allow.

    Items are grouped by recipient domain (FIFO within a domain); a heap orders
    the domains by when their next slot opens, so `take` is O(log domains).
    """

    def __init__(self, rate: Rate, clock: Callable[[], float] = time.monotonic) -> None:
        self._rate = rate
        self._clock = clock
        self._overall = Gcra(rate.per_second)
        self._limiters: dict[str, Gcra] = {}
        self._items: dict[str, deque[T]] = {}
        self._ready: list[_Ready] = []
        self._size = 0
        self._pushed = 0
        self._closed = False
        self._changed = asyncio.Event()

    def __len__(self) -> int:
        return self._size

    def put(self, domain: str, item: T) -> None:
        waiting = self._items.get(domain)
        if waiting is None:
            waiting = self._items[domain] = deque()
        if not waiting:
            self._push(domain, self._limiter(domain).arrival)
        waiting.append(item)
        self._size += 1
        self._changed.set()

    def close(self) -> None:
        """No more items will come: `take` returns None once the queue is empty."""
        self._closed = True
        self._changed.set()

    def remove(self, unwanted: Callable[[T], bool]) -> list[T]:
        """Take out (and return) every waiting item that matches, e.g. those of a paused run."""
        removed: list[T] = []
        for domain in list(self._items):
            kept: deque[T] = deque()
            for item in self._items[domain]:
                (removed if unwanted(item) else kept).append(item)
            if kept:
                self._items[domain] = kept
            else:
                del self._items[domain]
        self._size -= len(removed)
        self._ready = [entry for entry in self._ready if self._items.get(entry.domain)]
        heapq.heapify(self._ready)
        self._changed.set()
        return removed

    async def take(self) -> T | None:
        """The next item whose domain and the overall pace allow it now; None when closed and empty."""
        while True:
            if not self._ready:
                if self._closed:
                    return None
                self._changed.clear()
                await self._changed.wait()
                continue
            now = self._clock()
            head = self._ready[0]
            limiter = self._limiter(head.domain)
            wait_s = max(limiter.wait_s(now), self._overall.wait_s(now))
            if wait_s > 0:
                # Sleep, but wake early if something changes (a new domain may be ready sooner).
                self._changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), wait_s)
                continue
            heapq.heappop(self._ready)
            waiting = self._items[head.domain]
            item = waiting.popleft()
            self._size -= 1
            limiter.take(now)
            self._overall.take(now)
            if waiting:
                self._push(head.domain, limiter.arrival)
            else:
                del self._items[head.domain]
            return item

    def _push(self, domain: str, at: float) -> None:
        self._pushed += 1
        heapq.heappush(self._ready, _Ready(at, self._pushed, domain))

    def _limiter(self, domain: str) -> Gcra:
        limiter = self._limiters.get(domain)
        if limiter is None:
            if len(self._limiters) >= _MAX_IDLE_DOMAINS:
                self._forget_idle()
            per_second = self._rate.domains.get(domain, self._rate.per_domain_per_second)
            limiter = self._limiters[domain] = Gcra(per_second)
        return limiter

    def _forget_idle(self) -> None:
        now = self._clock()
        for domain in [d for d, g in self._limiters.items() if g.arrival <= now and d not in self._items]:
            del self._limiters[domain]
