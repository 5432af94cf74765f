"""How the tracking server is served: uvicorn with time limits on idle and slow clients, and a connection cap.

uvicorn times out idle keep-alive connections but not a client that connects and never finishes its
request headers, so a thousand idle sockets would hold the server's file descriptors for ever. Each
connection here must deliver a request's headers within ``[tracking] header_timeout_s`` of connecting
(or of its previous response) or it is closed; and when ``max_connections`` are open, a new one
closes the longest-waiting connection that has no request in progress, so idle sockets can never
crowd out a real request. Bodies are bounded by pipeline.feedback.limits.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Iterator

import uvicorn
from starlette.types import ASGIApp
from uvicorn.protocols.http.h11_impl import H11Protocol

from pipeline.workspace.settings import Settings

# How long SIGTERM waits for requests in flight before uvicorn cancels them.
GRACEFUL_SHUTDOWN_S = 10


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a header deadline and eviction of idle connections at the cap."""

    header_timeout_s: float = 10.0
    max_connections: int = 1000

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._deadline: asyncio.TimerHandle | None = None
        self._waiting_since = self.loop.time()
        self._arm()
        if len(self.connections) > self.max_connections:
            self._evict_one()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def handle_events(self) -> None:
        before = self.cycle
        super().handle_events()
        if self.cycle is not before:  # a request's headers are complete: the app has it now
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._waiting_since = self.loop.time()
            self._arm()

    def waiting(self) -> bool:
        """No request in progress: connected, or between requests, without complete headers."""
        return self.cycle is None or self.cycle.response_complete

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.header_timeout_s, self._expire)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self) -> None:
        self._deadline = None
        if self.waiting():
            self._drop()

    def _drop(self) -> None:
        """Close at once; leave the count now, not when asyncio reports the loss on a later turn."""
        self._disarm()
        self.transport.close()
        self.connections.discard(self)

    def _evict_one(self) -> None:
        idle = [
            other
            for other in self.connections
            if other is not self and isinstance(other, GuardedH11Protocol) and other.waiting()
        ]
        if idle:
            min(idle, key=lambda other: other._waiting_since)._drop()


class StoppingServer(uvicorn.Server):
    """uvicorn stopping on SIGTERM or SIGINT with exit status 0.

    uvicorn re-raises the signal once it has shut down, so the process would die of it (status -15);
    a clean stop on request is a success, as for the daemon and to systemd.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield  # only the main thread may take signals (a server run in a thread by a test)
            return
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def tracking_config(
    app: ASGIApp, settings: Settings, *, host: str, port: int, **options: object
) -> uvicorn.Config:
    """The uvicorn configuration for the tracking server APP under SETTINGS' [tracking] limits.

    OPTIONS go to uvicorn.Config as they are (log level, proxy headers...).
    """
    tracking = settings.tracking
    protocol = type(
        "TrackingProtocol",
        (GuardedH11Protocol,),
        {"header_timeout_s": tracking.header_timeout_s, "max_connections": tracking.max_connections},
    )
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=protocol,
        timeout_keep_alive=tracking.keep_alive_s,
        # Requests beyond the cap get 503; eviction keeps idle sockets from being what fills it.
        limit_concurrency=tracking.max_connections + 1,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        **options,  # type: ignore[arg-type]
    )


__all__ = ["GuardedH11Protocol", "StoppingServer", "tracking_config"]
