"""Live reload: watchfiles tells the studio when a workspace file is saved, and every open page hears
it over server-sent events (one ``change`` event naming the file) and renders itself again.

Only what a page is made of counts: templates/ (copy, layouts, partials, the exec report's
template), audiences/, schedules/, departments/, brand/, comms.toml, and the exec report's notes,
A/B log and goals under reports/; the file transport's outbox, the reports `comms report` writes,
the SQLite database and editors' swap files do not. watchfiles' default debounce (1.6 s) is cut
to 100 ms so a page is current within a second of the save.

uvicorn's graceful shutdown waits for every open response to finish, and an event stream never
does by itself: Streams.close() ends them all, and serving.py calls it before uvicorn waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from watchfiles import Change, DefaultFilter, awatch

from pipeline.reports.goals import GOALS_FILE
from pipeline.reports.notes import AB_LOG, NOTES_DIR
from pipeline.workspace.settings import SETTINGS_FILE

log = logging.getLogger("comms.studio")

WATCHED_DIRS = frozenset({"templates", "audiences", "schedules", "departments", "brand"})
DEBOUNCE_MS = 100
# A comment line now and then keeps proxies and browsers from timing the stream out.
KEEP_ALIVE_S = 15.0
# How soon a browser reconnects after the stream ends (a studio restarted).
RETRY_MS = 1000


class Streams:
    """The open event streams; publish() reaches each, close() ends them all."""

    def __init__(self) -> None:
        self._queues: set[asyncio.Queue[str | None]] = set()
        self._closed = False
        self.watching = asyncio.Event()  # set once the watcher is in place: a save is not missed

    def publish(self, changed: str) -> None:
        for queue in self._queues:
            queue.put_nowait(changed)

    def close(self) -> None:
        self._closed = True
        for queue in self._queues:
            queue.put_nowait(None)

    async def events(self) -> AsyncIterator[str]:
        """One client's stream: ``ready`` once the watcher runs, then a ``change`` per saved file."""
        queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._queues.add(queue)
        try:
            yield f"retry: {RETRY_MS}\n\n"
            await self.watching.wait()
            yield "event: ready\ndata: {}\n\n"
            while not self._closed:
                try:
                    changed = await asyncio.wait_for(queue.get(), KEEP_ALIVE_S)
                except TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                if changed is None:
                    return
                yield f"event: change\ndata: {json.dumps({'path': changed})}\n\n"
        finally:
            self._queues.discard(queue)


def is_source(relative: Path) -> bool:
    """Whether RELATIVE (to the workspace) is a file a studio page is made from."""
    return (
        relative in (Path(SETTINGS_FILE), Path(GOALS_FILE), Path(AB_LOG))
        or (relative.parent == Path(NOTES_DIR) and relative.suffix == ".md")
        or (len(relative.parts) > 1 and relative.parts[0] in WATCHED_DIRS)
    )


class _Sources(DefaultFilter):
    """The workspace files a page is made from (see the module docstring)."""

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root

    def __call__(self, change: Change, path: str) -> bool:
        relative = Path(path).relative_to(self.root) if Path(path).is_relative_to(self.root) else None
        if relative is None or not super().__call__(change, path):
            return False
        return is_source(relative)


async def watch(root: Path, streams: Streams, stop: asyncio.Event) -> None:
    """Publish every saved source file under ROOT until STOP is set."""
    changes = awatch(root, watch_filter=_Sources(root), debounce=DEBOUNCE_MS, stop_event=stop)
    first = asyncio.ensure_future(anext(changes, set()))
    await asyncio.sleep(0)  # the generator has run up to its first wait: the watch is in place
    try:
        if first.done():
            first.result()  # the watch could not be set up (no inotify watches left, say)
        streams.watching.set()
        batch = await first
        while batch:
            for _, path in sorted(batch):
                shown = str(Path(path).relative_to(root))
                log.info("changed: %s", shown)
                streams.publish(shown)
            batch = await anext(changes, set())
    except Exception as exc:  # the pages still work; only live reload is lost, and the log says so
        log.error("live reload is off: cannot watch %s: %s", root, exc)


@contextlib.asynccontextmanager
async def watching(root: Path, streams: Streams) -> AsyncIterator[None]:
    """The watcher as a background task for the app's lifetime."""
    stop = asyncio.Event()
    task = asyncio.create_task(watch(root, streams, stop))
    try:
        yield
    finally:
        stop.set()
        streams.close()
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(task, timeout=5)
