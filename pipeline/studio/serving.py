"""How the studio is served: uvicorn on one address, saying where once it listens, and ending the
pages' event streams before it waits for open responses to finish (they never would by themselves).
"""

from __future__ import annotations

import socket

import uvicorn
from starlette.applications import Starlette

from pipeline.feedback.serving import StoppingServer

# How long a stop waits for requests in flight (a test send) before uvicorn cancels them.
GRACEFUL_SHUTDOWN_S = 30


class StudioServer(StoppingServer):
    """uvicorn for the studio app: prints its URL when listening; closes event streams on stop."""

    def __init__(self, app: Starlette, *, host: str, port: int, log_level: str = "warning") -> None:
        self.app = app
        config = uvicorn.Config(
            app, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S
        )
        super().__init__(config)

    @property
    def url(self) -> str:
        host, port = self.servers[0].sockets[0].getsockname()[:2]
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}"

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            print(f"comms studio on {self.url} (Ctrl-C stops it)", flush=True)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.app.state.studio.streams.close()
        await super().shutdown(sockets)
