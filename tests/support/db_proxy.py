"""A TCP proxy on 127.0.0.1 in front of the real PostgreSQL server, for outages a test decides on.

    with DbProxy(database_url) as proxy:
        ...point comms at proxy.url...
        proxy.silence()   # reachable but not answering: every connection stays open and gets
                          # nothing more, new ones are accepted and get nothing (a hung server,
                          # a network that drops packets)
        proxy.cut()       # down: every connection is reset, new ones are reset at once
        proxy.restore()   # new connections are forwarded again; silenced ones stay dead,
                          # as after a partition, until their client gives up on them

Counters: ``connections`` (every connection accepted, forwarded or not).
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass

from sqlalchemy.engine import make_url

from tests.support.smtp_server import HOST, free_port


@dataclass(eq=False)  # kept in a set by identity
class _Pair:
    client: asyncio.StreamWriter
    server: asyncio.StreamWriter | None = None
    dead: bool = False  # silenced: read and drop whatever comes, answer nothing


class DbProxy:
    def __init__(self, database_url: str) -> None:
        self._target = make_url(database_url)
        self.port = free_port()
        self.url = self._target.set(host=HOST, port=self.port).render_as_string(hide_password=False)
        self.mode = "forward"  # forward, silent, cut
        self.connections = 0
        self._pairs: set[_Pair] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="db-proxy", daemon=True)
        self._server: asyncio.Server | None = None

    # -- control (from the test's thread) --------------------------------------------------------

    def __enter__(self) -> DbProxy:
        self._thread.start()
        self._call(self._start())
        return self

    def __exit__(self, *exc: object) -> None:
        self._call(self._stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    def silence(self) -> None:
        self._call(self._set("silent"))

    def cut(self) -> None:
        self._call(self._set("cut"))

    def restore(self) -> None:
        self._call(self._set("forward"))

    def _call(self, coroutine: object) -> None:
        asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=10)  # type: ignore[arg-type]

    # -- the proxy (on its own loop) -------------------------------------------------------------

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._accept, HOST, self.port)

    async def _stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for pair in list(self._pairs):
            self._close(pair)
        await asyncio.sleep(0)

    async def _set(self, mode: str) -> None:
        self.mode = mode
        for pair in list(self._pairs):
            if mode == "silent":
                pair.dead = True
            elif mode == "cut":
                self._close(pair)

    def _close(self, pair: _Pair) -> None:
        for writer in (pair.client, pair.server):
            if writer is not None:
                writer.transport.abort()
        self._pairs.discard(pair)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        pair = _Pair(writer)
        if self.mode == "cut":
            writer.transport.abort()
            return
        self._pairs.add(pair)
        if self.mode == "silent":
            pair.dead = True
            await self._pump(reader, None, pair, from_client=True)
            return
        try:
            upstream_reader, upstream = await asyncio.open_connection(self._target.host, self._target.port)
        except OSError:
            self._close(pair)
            return
        pair.server = upstream
        await asyncio.gather(
            self._pump(reader, upstream, pair, from_client=True),
            self._pump(upstream_reader, writer, pair, from_client=False),
        )

    async def _pump(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter | None,
        pair: _Pair,
        *,
        from_client: bool,
    ) -> None:
        try:
            while data := await reader.read(65536):
                if pair.dead or writer is None:
                    continue
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            # A silenced connection ends only when its client gives up: the server hanging up
            # behind the silence must not reach the client, as it would not across a partition.
            if from_client or not pair.dead:
                self._close(pair)
