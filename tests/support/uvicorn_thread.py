"""A uvicorn server run in a background thread for a test: started, its URL, stopped as on SIGTERM."""

from __future__ import annotations

import threading
import time

import uvicorn

START_TIMEOUT_S = 30  # a loaded machine is slow to import and bind


class UvicornThread:
    """`with UvicornThread(server) as url:` serves until the block ends."""

    def __init__(self, server: uvicorn.Server) -> None:
        self.server = server
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
