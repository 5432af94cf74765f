"""The studio's routes: campaigns, one campaign for a contact, its source files, the test send, the
results pages, the exec report's downloads, and the event stream that keeps an open page current.

The workspace is opened afresh for every request, so an edit to comms.toml counts at once; a
file that does not load shows as its one-line error where the page would be. Pages are Jinja
(autoescaped: contact data and the workspace's text are shown, never run) with one small script
and one stylesheet served from the package; nothing is fetched from anywhere else. The email
itself is shown in sandboxed frames without scripts. GET and HEAD change nothing; the test send
is a POST taken only from the studio's own page (access.from_own_page).
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from pipeline.audience.contacts import normalize_email, search_contacts
from pipeline.errors import CommsError, ContactError, ReportError
from pipeline.reports.html import TEMPLATES as REPORT_TEMPLATES
from pipeline.reports.html import palette
from pipeline.reports.render import pct
from pipeline.runs.rehearsal import test_send
from pipeline.storage.engines import opened, session
from pipeline.studio.access import Guard, from_own_page
from pipeline.studio.campaigns import campaign_rows, campaign_view
from pipeline.studio.frames import dark_mode, images_off
from pipeline.studio.reload import Streams, is_source, watching
from pipeline.studio.results import PAGES, ResultPage, exec_file
from pipeline.workspace.folders import Workspace

log = logging.getLogger("comms.studio")

HERE = Path(__file__).parent
_ENV = Environment(
    loader=FileSystemLoader([HERE / "templates", REPORT_TEMPLATES]),
    autoescape=select_autoescape(default=True, default_for_string=True),
)
_ENV.filters["pct"] = pct
_ENV.filters["kb"] = lambda n: f"{n / 1024:.1f} KB"

HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    # The frames' srcdoc documents inherit this: their own inline styles and remote images are
    # allowed (an email has them), scripts only from the studio itself (and the sandbox runs none).
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src * data:; "
        "font-src * data:; frame-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'"
    ),
}
# A test send goes to a handful of reviewers, not a list.
MAX_TEST_ADDRESSES = 10
CONTACTS_SHOWN = 10
_ADDRESS_SEPARATORS = re.compile(r"[\s,;]+")


class Studio:
    """The pages, bound to one workspace folder (read again on every request)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.streams = Streams()

    def workspace(self) -> Workspace:
        return Workspace.open(self.root)

    def page(self, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        context.setdefault("error", None)
        context.setdefault("brand", None)
        context.setdefault("colors", {})
        html = _ENV.get_template(template).render(**context)
        return HTMLResponse(html, status_code=status, headers=HEADERS)

    async def build(self, work: Callable[[Workspace], dict[str, Any]]) -> dict[str, Any]:
        """WORK's context from a freshly opened workspace, in the thread pool, with the brand for
        the page's header; a CommsError (comms.toml included) is the page's one-line error."""

        def run() -> dict[str, Any]:
            ws = self.workspace()
            return {"brand": ws.settings.brand, "colors": palette(ws.settings)[0]} | work(ws)

        try:
            return await run_in_threadpool(run)
        except CommsError as exc:
            return {"error": str(exc), "missing": isinstance(exc, ReportError)}

    # -- campaigns -------------------------------------------------------------------------------

    async def campaigns(self, request: Request) -> Response:
        def rows(ws: Workspace) -> dict[str, Any]:
            found, problems = campaign_rows(ws)
            return {"rows": found, "problems": problems}

        return self.page("campaigns.html.j2", title="Campaigns", nav="campaigns", **await self.build(rows))

    async def campaign(self, request: Request) -> Response:
        name = request.path_params["name"]
        contact = request.query_params.get("contact", "").strip() or None
        images = request.query_params.get("images") != "off"
        dark = request.query_params.get("dark") == "on"
        kept = urlencode([("images", "off")] * (not images) + [("dark", "on")] * dark)
        view = {"images": images, "dark": dark, "query": f"?{kept}" if kept else ""}
        sent: dict[str, Any] = {}
        if request.method == "POST":
            if not from_own_page(request):
                return Response("a test send is only taken from the studio's own page", 403, headers=HEADERS)
            form = await request.form()
            sent = await self._test_send(name, str(form.get("to", "")))

        def build(ws: Workspace) -> dict[str, Any]:
            shown = campaign_view(ws, name, contact=contact)
            frame = shown.html if view["images"] else images_off(shown.html)
            return {"view": shown, "frame": dark_mode(frame) if view["dark"] else frame}

        context = await self.build(build)
        return self.page(
            "campaign.html.j2",
            title=name,
            nav="campaigns",
            name=name,
            contact=contact,
            toggles=view,
            **sent,
            **context,
        )

    async def _test_send(self, name: str, typed: str) -> dict[str, Any]:
        """`comms send NAME --to ...` for the addresses typed on the page: its results, or its error."""
        addresses = [a for a in _ADDRESS_SEPARATORS.split(typed) if a]
        try:
            if not addresses:
                raise ContactError("type one or more addresses to send the test to")
            if len(addresses) > MAX_TEST_ADDRESSES:
                raise ContactError(f"a test send goes to {MAX_TEST_ADDRESSES} addresses at most")
            for address in addresses:
                normalize_email(address)  # a mistyped address is refused before anything is sent
            results, _ = await run_in_threadpool(test_send, self.workspace(), name, addresses)
        except CommsError as exc:
            return {"sent_error": str(exc), "typed": typed}
        return {"sent": results, "typed": typed}

    async def contacts(self, request: Request) -> Response:
        """Stored contacts whose address contains ?q=, for the contact switch."""
        typed = request.query_params.get("q", "").strip()

        def find(ws: Workspace) -> list[dict[str, str]]:
            if len(typed) < 2:
                return []
            with opened(ws.settings) as engine, session(engine) as db:
                found = search_contacts(db, typed, CONTACTS_SHOWN)
                return [
                    {"email": c.email, "name": " ".join(p for p in (c.first_name, c.last_name) if p)}
                    for c in found
                ]

        try:
            found = await run_in_threadpool(lambda: find(self.workspace()))
        except CommsError as exc:
            return JSONResponse({"error": str(exc)}, status_code=422, headers=HEADERS)
        return JSONResponse(found, headers=HEADERS)

    async def source(self, request: Request) -> Response:
        """A workspace source file with its lines numbered and ?line= marked: where a finding points."""
        shown = request.query_params.get("path", "")
        line = request.query_params.get("line", "")
        relative = Path(shown)
        path = (self.root / relative).resolve()
        allowed = (
            not relative.is_absolute()
            and ".." not in relative.parts
            and is_source(relative)
            and path.is_relative_to(self.root.resolve())  # a symlink out of the workspace is not shown
            and path.is_file()
        )
        if not allowed:
            return self.page(
                "source.html.j2", 404, title=shown, error=f"{shown}: not a workspace source file"
            )

        def read(ws: Workspace) -> dict[str, Any]:
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
            return {"path": shown, "lines": lines, "marked": int(line) if line.isdigit() else None}

        return self.page("source.html.j2", title=shown, **await self.build(read))

    # -- results ---------------------------------------------------------------------------------

    def result(self, spec: ResultPage) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            route = dict(request.path_params)
            params = dict(request.query_params) | route
            context = await self.build(lambda ws: spec.build(ws, params))
            status = 404 if context.get("missing") else 200
            return self.page(spec.template, status, nav=spec.nav, **(route | context))

        return endpoint

    async def exec_download(self, request: Request) -> Response:
        """One file of the exec report, made as `comms report exec` makes it, as a download."""
        name = request.path_params["name"]
        context = await self.build(lambda ws: {"file": exec_file(ws, request.query_params, name)})
        if "file" not in context:  # its one-line error
            status = 404 if context.get("missing") else 422
            return self.page("error.html.j2", status, title=name, nav="exec", **context)
        data, media_type = context["file"]
        disposition = {"Content-Disposition": f'attachment; filename="{name}"'}
        return Response(data, media_type=media_type, headers=HEADERS | disposition)

    # -- live reload -----------------------------------------------------------------------------

    async def events(self, request: Request) -> Response:
        headers = {**HEADERS, "X-Accel-Buffering": "no"}
        return StreamingResponse(self.streams.events(), media_type="text/event-stream", headers=headers)

    async def database_down(self, request: Request, exc: Exception) -> Response:
        detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        return self.page(
            "error.html.j2", 503, title="Database", error=f"database: {detail[0] if detail else exc}"
        )


def create_app(root: Path, *, token: str | None = None) -> Starlette:
    """The studio for the workspace at ROOT; with TOKEN, every request must carry it (access.py)."""
    studio = Studio(root)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with watching(root, studio.streams):
            yield

    routes = [
        Route("/", studio.campaigns, methods=["GET"]),
        Route("/campaigns/{name}", studio.campaign, methods=["GET", "POST"]),
        Route("/contacts", studio.contacts, methods=["GET"]),
        Route("/source", studio.source, methods=["GET"]),
        Route("/events", studio.events, methods=["GET"]),
        *(Route(spec.path, studio.result(spec), methods=["GET"]) for spec in PAGES),
        Route("/exec/{name}", studio.exec_download, methods=["GET"]),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(Guard, token=token)],
        exception_handlers={SQLAlchemyError: studio.database_down},
        lifespan=lifespan,
    )
    app.state.studio = studio
    return app


__all__ = ["Studio", "create_app"]
