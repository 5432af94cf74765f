"""HTTP servers inside a long-running process (the daemon's tracking server, the metrics endpoint),
stopped in order by that process rather than by uvicorn's own signal handlers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator

import uvicorn
from starlette.types import ASGIApp

from pipeline.errors import CommsError


class HttpServer(uvicorn.Server):
    """uvicorn without its signal handlers: SIGTERM belongs to the process, which stops it in order."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def listen_address(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit():
        raise CommsError(f"listen address must be host:port, not {listen!r}")
    return host, int(port)


def http_server(app: ASGIApp, listen: str) -> HttpServer:
    host, port = listen_address(listen)
    return HttpServer(uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False))


@contextlib.asynccontextmanager
async def serving(servers: list[HttpServer]) -> AsyncIterator[None]:
    tasks = [asyncio.create_task(server.serve()) for server in servers]
    try:
        yield
    finally:
        for server in servers:
            server.should_exit = True
        await asyncio.gather(*tasks, return_exceptions=True)
