"""Who may use the studio: it shows contacts' data and can send mail, so it listens on loopback only,
unless a token is set, and then every request must carry the token.

Without a token the Host header must name the loopback too, so a web page that rebinds its own
domain name to 127.0.0.1 cannot read the studio from a browser (DNS rebinding). The token comes
from the environment (COMMS_STUDIO_TOKEN), is given once as ``?token=`` (which sets a cookie and
redirects to the same page without it) or as ``Authorization: Bearer``, and is compared in
constant time. A POST (the test send) is only taken from the studio's own pages: its Origin (or
Referer) must be the origin the request was made to, as for the tracking server's preferences form.
"""

from __future__ import annotations

import hmac
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from pipeline.errors import SettingsError
from pipeline.feedback.limits import same_origin

TOKEN_ENV = "COMMS_STUDIO_TOKEN"
COOKIE = "comms_studio"
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
# A guessable token would be no lock at all.
MIN_TOKEN_CHARS = 16


def listen_host(host: str | None, token: str | None) -> str:
    """The address to listen on: 127.0.0.1 unless HOST is given and a token protects it."""
    if host is None or host in LOOPBACK:
        return host or "127.0.0.1"
    if not token:
        raise SettingsError(
            f"the studio listens on 127.0.0.1 only; to listen on {host}, set {TOKEN_ENV} "
            "(every request must then carry it)"
        )
    if len(token) < MIN_TOKEN_CHARS:
        raise SettingsError(f"{TOKEN_ENV} must be at least {MIN_TOKEN_CHARS} characters")
    return host


def _hostname(host_header: str) -> str:
    if host_header.startswith("["):  # [::1]:8030
        return host_header[1:].partition("]")[0]
    return host_header.rpartition(":")[0] if host_header.count(":") == 1 else host_header


class Guard:
    """ASGI middleware: the Host and token checks above, before any route runs."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        refusal = self._refusal(request)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _refusal(self, request: Request) -> Response | None:
        if self.token is None:
            if _hostname(request.headers.get("host", "")).lower() not in LOOPBACK:
                return PlainTextResponse("the studio answers on 127.0.0.1 only", status_code=421)
            return None
        given = request.query_params.get("token")
        if given is not None and self._matches(given):
            rest = urlencode([(k, v) for k, v in request.query_params.multi_items() if k != "token"])
            target = request.url.path + (f"?{rest}" if rest else "")
            response = RedirectResponse(target, status_code=303)
            response.set_cookie(COOKIE, given, httponly=True, samesite="strict")
            return response
        bearer = request.headers.get("authorization", "")
        presented = request.cookies.get(COOKIE) or (
            bearer[7:] if bearer.lower().startswith("bearer ") else ""
        )
        if presented and self._matches(presented):
            return None
        return PlainTextResponse(
            f"this studio needs its token ({TOKEN_ENV}): open it once with ?token=...", status_code=401
        )

    def _matches(self, presented: str) -> bool:
        assert self.token is not None
        return hmac.compare_digest(presented.encode(), self.token.encode())


def from_own_page(request: Request) -> bool:
    """Whether a POST came from a page of this studio (the origin it was sent to)."""
    return same_origin(request, f"{request.url.scheme}://{request.headers.get('host', '')}")
