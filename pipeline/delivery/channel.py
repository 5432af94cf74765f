"""The line between a sending process and the process that started it: framed pickles over a socket pair.

A sender (pipeline.delivery.sender) tells its parent who it is, how far it got and how it ended,
and, where the parent owns the database (SQLite: one writer for every process), asks it to run
each of its queries (RemoteDatabase). Both ends are this package's own processes, started
together from one executable, so pickle is a safe and exact encoding of what crosses.

Frames: 4-byte big-endian length, then a pickle. From a sender: ("hello", names), ("tally",
index, Tally), ("call", query, args, kwargs) answered by ("ok", result) or ("error", exception),
("report", [WorkerReport]) and ("failed", exception). From the parent: the Setup, then answers.
"""

from __future__ import annotations

import asyncio
import os
import pickle
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pipeline
from pipeline.errors import DatabaseError

T = TypeVar("T")

_LENGTH = struct.Struct(">I")


class Channel:
    """One end of the socket pair, as asyncio streams."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    @classmethod
    async def over(cls, sock: Any) -> Channel:
        reader, writer = await asyncio.open_unix_connection(sock=sock)
        return cls(reader, writer)

    def post(self, message: object) -> None:
        """Queue MESSAGE for sending (the transport writes it out as the loop runs)."""
        body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        self._writer.write(_LENGTH.pack(len(body)) + body)

    async def send(self, message: object) -> None:
        self.post(message)
        await self._writer.drain()

    async def receive(self) -> Any:
        """The next message; EOFError once the other end has gone."""
        try:
            head = await self._reader.readexactly(_LENGTH.size)
            (length,) = _LENGTH.unpack(head)
            return pickle.loads(await self._reader.readexactly(length))
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            raise EOFError("the other process has gone") from exc

    def close(self) -> None:
        self._writer.close()


def child_environment() -> dict[str, str]:
    """This process's environment for a child started from sys.executable: it imports the very
    package this process runs, wherever it was found."""
    env = dict(os.environ)
    here = str(Path(pipeline.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [here, env.get("PYTHONPATH")]))
    return env


def portable(exc: BaseException) -> BaseException:
    """EXC if it survives pickling, else a RuntimeError saying what it was (a driver's error may not)."""
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")
    return exc


class RemoteDatabase:
    """engine.Calls over a Channel: each query runs in the parent, which owns the database, one at
    a time in the order asked, as on the database thread of a single process."""

    def __init__(self, channel: Channel) -> None:
        self._channel = channel
        self._lock = asyncio.Lock()

    async def call(self, query: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        async with self._lock:
            try:
                await self._channel.send(("call", query, args, kwargs))
                kind, value = await self._channel.receive()
            except (EOFError, ConnectionError) as exc:
                raise DatabaseError("the process that owns the database has gone") from exc
        if kind == "error":
            raise value
        return value  # type: ignore[no-any-return]

    def close(self) -> None:
        """Nothing to release: the channel belongs to the sender, which closes it last."""


__all__ = ["Channel", "RemoteDatabase", "portable"]
