"""What the tracking server takes from a request: bodies bounded in size and in time, forms from our pages.

Every body is refused with 413 as soon as it is known to be too large: at once when Content-Length
says so, else when the bytes read so far pass the limit, so a 100 MB POST costs at most the limit in
memory. A body that does not arrive within ``timeout_s`` of the first read is answered 408, so a
client trickling bytes cannot hold a connection and a worker forever.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send


@dataclass(frozen=True)
class BodyLimits:
    """The largest body per path (DEFAULT_BYTES elsewhere) and how long a body may take to arrive."""

    default_bytes: int
    timeout_s: float
    by_path: dict[str, int] = field(default_factory=dict)

    def limit_for(self, path: str) -> int:
        return self.by_path.get(path, self.default_bytes)

    def middleware(self, app: ASGIApp) -> ASGIApp:
        """The ASGI middleware enforcing these limits around APP (for Starlette's Middleware())."""

        async def bounded(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            limit = self.limit_for(scope["path"])
            declared = Request(scope).headers.get("content-length", "")
            if declared.isdigit() and int(declared) > limit:
                await _too_large(limit)(scope, receive, send)
                return
            await app(scope, self._receiver(receive, limit), send)

        return bounded

    def _receiver(self, receive: Receive, limit: int) -> Receive:
        received = 0
        deadline: float | None = None

        async def bounded_receive() -> Message:
            nonlocal received, deadline
            if deadline is None:
                deadline = time.monotonic() + self.timeout_s
            try:
                async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                    message = await receive()
            except TimeoutError:
                raise HTTPException(
                    408, f"the request body did not arrive within {self.timeout_s:g} s"
                ) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise HTTPException(413, f"request body larger than {limit} bytes")
            return message

        return bounded_receive


def _too_large(limit: int) -> PlainTextResponse:
    return PlainTextResponse(f"request body larger than {limit} bytes", status_code=413)


def same_origin(request: Request, base_url: str) -> bool:
    """Whether the request came from a page under BASE_URL: its Origin, else its Referer, names that origin.

    Browsers send Origin with every form POST; a request with neither header is refused, since a
    forged cross-site form is the one thing this check exists to stop.
    """
    claimed = request.headers.get("origin") or request.headers.get("referer")
    if not claimed or claimed == "null":
        return False
    return _origin(claimed) == _origin(base_url)


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        return ("", "", None)
    default = {"http": 80, "https": 443}.get(parts.scheme.lower())
    return (parts.scheme.lower(), (parts.hostname or "").lower(), port or default)


__all__ = ["BodyLimits", "same_origin"]
