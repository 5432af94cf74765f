"""The tracking server (Starlette): open pixel, clicks, unsubscribe, view online, preferences, webhooks.

Every URL carries a signed token (pipeline.message.tokens) naming a delivery, and for clicks a link index;
nothing else is taken from the request to decide what to do. A token that does not verify gets 404
and nothing is written. A click redirects only to the link the run froze at that index
(Run.meta["links"], written by pipeline.assembly.tracking), never to a URL from the request.

Unsubscribe follows RFC 8058: a POST (urlencoded or multipart ``List-Unsubscribe=One-Click``, which
mail clients send without cookies or redirects) unsubscribes at once, answers 200 and is idempotent;
a GET only shows a confirmation page with a button, because link scanners and prefetchers follow
GETs. HEAD (which Starlette answers on every GET route) never records anything: scanners HEAD every
link in a message, so a HEAD on a click answers the redirect and writes no click, on the pixel no open.
The preferences form is only taken from a page of our own (its Origin or Referer is the tracking base
URL), so another site cannot make a visitor's browser leave lists.

Database work runs in Starlette's thread pool; run-level data is cached per process, which is
safe because a run's template and links are frozen when it starts. While the database cannot be
reached every endpoint answers 503 (mail clients and SNS retry those) and /health says so in words of
its own; the driver's text goes to the log only.
"""

from __future__ import annotations

import base64
import logging
from functools import lru_cache
from html import escape

from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from pipeline.assembly.tracking import is_link_template, render_link, safe_target
from pipeline.audience.contacts import is_suppressed, normalize_email
from pipeline.delivery.engine import run_composer
from pipeline.delivery.transports import transport_for
from pipeline.errors import ContactError
from pipeline.feedback.events import record_click, record_open
from pipeline.feedback.limits import BodyLimits, same_origin
from pipeline.feedback.pages import (
    confirm_page,
    confirmed_page,
    not_found_page,
    preferences_page,
    signup_page,
    signup_sent_page,
    unavailable_page,
    unsubscribe_page,
    unsubscribed_page,
)
from pipeline.feedback.pages import (
    page as _page_frame,
)
from pipeline.feedback.preferences import delivery_address, get_contact, leave_list, list_choices, unsubscribe
from pipeline.feedback.signup import (
    HONEYPOT,
    Confirmation,
    ConfirmationMail,
    RateLimit,
    confirm_signup,
    signup_list,
    start_signup,
)
from pipeline.feedback.webhooks import MAX_BODY_BYTES, SnsFetcher, fetch_from_sns, handle_ses
from pipeline.message.compose import Composer
from pipeline.message.tokens import read_token
from pipeline.message.urls import recipient_links
from pipeline.storage.engines import session
from pipeline.storage.models import Delivery, MailingList, Run, Signup
from pipeline.types import Outgoing, Recipient
from pipeline.workspace.folders import Workspace
from pipeline.workspace.settings import Settings

log = logging.getLogger(__name__)

# The smallest transparent GIF (1x1, 43 bytes).
PIXEL_GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
NO_CACHE = {
    "Cache-Control": "no-store, no-cache, must-revalidate, private, max-age=0",
    "Pragma": "no-cache",
    "Expires": "0",
}
RUN_CACHE_SIZE = 64
# What a form post (one-click unsubscribe, preferences) may weigh: a few fields.
MAX_FORM_BYTES = 64 * 1024
# How soon a client should retry while the database is down.
RETRY_AFTER_S = 30


class _TrackingServer:
    """The endpoints, bound to one settings object and one engine (wired up in create_app)."""

    def __init__(
        self, settings: Settings, engine: Engine, fetcher: SnsFetcher, workspace: Workspace | None
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.fetcher = fetcher
        self.workspace = workspace
        self.confirmation = ConfirmationMail(workspace) if workspace is not None else None
        self.rate_limit = RateLimit(settings.signup.per_ip_per_hour)
        # settings.secret raises the SettingsError naming COMMS_SECRET when no key is set.
        settings.secret  # noqa: B018 -- refuse to serve without a key rather than 404 every link
        self.secrets = settings.verifying_keys
        self.run_links = lru_cache(maxsize=RUN_CACHE_SIZE)(self._run_links)
        self.composer = lru_cache(maxsize=RUN_CACHE_SIZE)(self._composer)

    # -- helpers -----------------------------------------------------------------------------------

    def delivery_id(self, request: Request, purpose: str) -> int | None:
        found = read_token(self.secrets, purpose, request.path_params["token"])
        return None if found is None else found[0]

    def not_found(self) -> HTMLResponse:
        return HTMLResponse(not_found_page(self.settings), status_code=404, headers=NO_CACHE)

    async def database_down(self, request: Request, exc: Exception) -> Response:
        """Any database failure mid-request: 503 with Retry-After, the driver's words only in the log."""
        log.warning("database unavailable during %s %s: %s", request.method, request.url.path, exc)
        headers = {**NO_CACHE, "Retry-After": str(RETRY_AFTER_S)}
        if request.url.path.startswith("/webhooks/"):
            return PlainTextResponse("database unavailable", status_code=503, headers=headers)
        return HTMLResponse(unavailable_page(self.settings), status_code=503, headers=headers)

    def _run_links(self, run_id: int) -> tuple[tuple[str, ...], int | None]:
        """The run's frozen link list and the index of its honeypot link (None: the run has none)."""
        with session(self.engine) as db:
            run = db.get(Run, run_id)
            if run is None:
                return (), None
            return tuple(run.meta.get("links", ())), run.meta.get("honeypot")

    def _composer(self, run_id: int, variant: str = "") -> Composer | None:
        with session(self.engine) as db:
            run = db.get(Run, run_id)
            if run is None:
                return None
            return run_composer(self.settings, run, variant=variant)

    # -- open and click ----------------------------------------------------------------------------

    async def open_pixel(self, request: Request) -> Response:
        delivery_id = self.delivery_id(request, "o")
        if delivery_id is None:
            return self.not_found()
        agent = request.headers.get("user-agent")
        ip = request.client.host if request.client else None
        record = request.method == "GET"
        known = await run_in_threadpool(self._record_open, delivery_id, agent, ip, record)
        if not known:
            return self.not_found()
        return Response(PIXEL_GIF, media_type="image/gif", headers=NO_CACHE)

    def _record_open(self, delivery_id: int, agent: str | None, ip: str | None, record: bool) -> bool:
        """Whether the delivery exists; with RECORD (a GET) its open is written too."""
        with session(self.engine) as db:
            if db.get(Delivery, delivery_id) is None:
                return False
            if record:
                record_open(db, delivery_id, agent, ip)
        return True

    async def click(self, request: Request) -> Response:
        found = read_token(self.secrets, "c", request.path_params["token"])
        if found is None or found[1] is None:
            return self.not_found()
        agent = request.headers.get("user-agent")
        record = request.method == "GET"
        target = await run_in_threadpool(self._record_click, found[0], found[1], agent, record)
        if target is None:
            return self.not_found()
        return RedirectResponse(target, status_code=302, headers=NO_CACHE)

    def _record_click(self, delivery_id: int, index: int, agent: str | None, record: bool) -> str | None:
        """The link's target for the delivery, None if unknown; with RECORD (a GET) the click is written."""
        with session(self.engine) as db:
            delivery = db.get(Delivery, delivery_id)
            if delivery is None:
                return None
            links, honeypot = self.run_links(delivery.run_id)
            if index >= len(links):
                return None
            target = safe_target(self._link_for(db, delivery, links[index]))
            if target is None:
                log.warning("run %s link %s rendered to no http(s) URL", delivery.run_id, index)
                return None
            if not record:
                return target
            record_click(
                db,
                delivery,
                link_index=index,
                url=target,
                user_agent=agent,
                link_count=len(links) - (honeypot is not None),
                honeypot=honeypot,
            )
            return target

    def _link_for(self, db: Session, delivery: Delivery, link: str) -> str:
        if not is_link_template(link):
            return link
        assert delivery.id is not None
        return render_link(link, self._recipient(db, delivery), recipient_links(self.settings, delivery.id))

    def _recipient(self, db: Session, delivery: Delivery) -> Recipient:
        contact = get_contact(db, delivery)
        return Recipient.of(contact) if contact is not None else Recipient(email=delivery.email or "")

    # -- unsubscribe and preferences ---------------------------------------------------------------

    async def unsubscribe(self, request: Request) -> Response:
        delivery_id = self.delivery_id(request, "u")
        if delivery_id is None:
            return self.not_found()
        if request.method != "POST":  # GET and HEAD: the confirmation page, nothing written
            address = await run_in_threadpool(self._address, delivery_id)
            if address is None:
                return self.not_found()
            links = recipient_links(self.settings, delivery_id)
            page = unsubscribe_page(self.settings, address[0], links.preferences_url)
            return HTMLResponse(page, headers=NO_CACHE)
        form = await request.form()
        # RFC 8058 clients post List-Unsubscribe=One-Click; our own page's form does too, with source=page.
        if form.get("List-Unsubscribe") != "One-Click":
            return PlainTextResponse("expected List-Unsubscribe=One-Click (RFC 8058)", status_code=400)
        source = "page" if form.get("source") == "page" else "one-click"
        agent = request.headers.get("user-agent")
        address = await run_in_threadpool(self._unsubscribe, delivery_id, source, agent)
        if address is None:
            return self.not_found()
        return HTMLResponse(unsubscribed_page(self.settings, address[0]), headers=NO_CACHE)

    def _address(self, delivery_id: int) -> tuple[str | None] | None:
        """(address,) for a known delivery (the address is None once erased), None for no delivery."""
        with session(self.engine) as db:
            delivery = db.get(Delivery, delivery_id)
            return None if delivery is None else (delivery_address(db, delivery),)

    def _unsubscribe(self, delivery_id: int, source: str, agent: str | None) -> tuple[str | None] | None:
        with session(self.engine) as db:
            delivery = db.get(Delivery, delivery_id)
            if delivery is None:
                return None
            unsubscribe(db, delivery, source=source, user_agent=agent)
            return (delivery_address(db, delivery),)

    async def preferences(self, request: Request) -> Response:
        delivery_id = self.delivery_id(request, "p")
        if delivery_id is None:
            return self.not_found()
        leave = None
        if request.method == "POST":
            if not same_origin(request, self.settings.tracking.base_url):
                return PlainTextResponse("this form is only accepted from its own page", status_code=403)
            leave = str((await request.form()).get("leave", ""))
        agent = request.headers.get("user-agent")
        page = await run_in_threadpool(self._preferences, delivery_id, leave, agent)
        if page is None:
            return self.not_found()
        return HTMLResponse(page, headers=NO_CACHE)

    def _preferences(self, delivery_id: int, leave: str | None, agent: str | None) -> str | None:
        with session(self.engine) as db:
            delivery = db.get(Delivery, delivery_id)
            if delivery is None:
                return None
            notice = ""
            if leave == "all":
                unsubscribe(db, delivery, source="preferences", user_agent=agent)
            elif leave and leave.isdigit() and leave_list(db, delivery, int(leave), user_agent=agent):
                notice = "Done: you have left that list."
            address = delivery_address(db, delivery)
            suppressed = address is None or is_suppressed(db, normalize_email(address)[1])
            choices = list_choices(db, delivery.contact_id) if delivery.contact_id is not None else []
            return preferences_page(self.settings, address, choices, suppressed=suppressed, notice=notice)

    # -- sign-up (double opt-in) -----------------------------------------------------------------

    def _signup_list(self, name: str) -> tuple[str, str] | None:
        """(name shown, description) of a list that takes sign-ups."""
        if self.confirmation is None:
            return None
        with session(self.engine) as db:
            found = signup_list(db, self.settings, name)
            return None if found is None else (found.display_name or found.name, found.description)

    async def signup(self, request: Request) -> Response:
        name = request.path_params["name"]
        shown = await run_in_threadpool(self._signup_list, name)
        if shown is None:
            return self.not_found()
        if request.method == "GET":
            page = signup_page(self.settings, shown[0], shown[1], "", HONEYPOT)
            return HTMLResponse(page, headers=NO_CACHE)
        ip = request.client.host if request.client else "-"
        if not self.rate_limit.allow(ip):
            body = "<p>Too many sign-ups from your network just now. Please try again later.</p>"
            page = _page_frame(self.settings, "Please try again later", body)
            return HTMLResponse(page, status_code=429, headers={**NO_CACHE, "Retry-After": "3600"})
        form = await request.form()
        sent = HTMLResponse(signup_sent_page(self.settings, shown[0]), headers=NO_CACHE)
        if str(form.get(HONEYPOT, "")).strip():
            log.info("sign-up to %s refused: honeypot field filled in", name)
            return sent  # a bot learns nothing from the answer
        try:
            outgoing = await run_in_threadpool(
                self._start_signup,
                name,
                str(form.get("email", "")),
                str(form.get("first_name", "")),
                ip,
                request.headers.get("user-agent"),
                request.url.path,
            )
        except ContactError as exc:
            page = _page_frame(self.settings, "Please check your address", f"<p>{escape(exc.message)}</p>")
            return HTMLResponse(page, status_code=400, headers=NO_CACHE)
        if outgoing is not None:
            assert self.workspace is not None
            async with transport_for(self.settings, self.workspace.root) as transport:
                result = await transport.send(outgoing)
            if result.status != "sent":
                log.warning(
                    "sign-up confirmation to list %s not sent: %s %s", name, result.code, result.reply
                )
        return sent

    def _start_signup(
        self, name: str, email: str, first_name: str, ip: str, agent: str | None, source: str
    ) -> Outgoing | None:
        assert self.confirmation is not None
        with session(self.engine) as db:
            found = signup_list(db, self.settings, name)
            assert found is not None
            signup = start_signup(
                db, self.settings, found, email, first_name=first_name, ip=ip, user_agent=agent, source=source
            )
            return self.confirmation.build(db, signup)

    async def confirm_signup(self, request: Request) -> Response:
        signup_id = self.delivery_id(request, "s")
        if signup_id is None:
            return self.not_found()
        ip = request.client.host if request.client else None
        if request.method == "GET":  # a look (or a mail scanner) changes nothing: the button confirms
            shown = await run_in_threadpool(self._pending_list, signup_id)
            if shown is None:
                return self.not_found()
            return HTMLResponse(confirm_page(self.settings, shown), headers=NO_CACHE)
        confirmation = await run_in_threadpool(self._confirm, signup_id, ip)
        if confirmation is None:
            return self.not_found()
        page = confirmed_page(self.settings, confirmation.outcome, confirmation.list_name)
        return HTMLResponse(
            page, status_code=410 if confirmation.outcome == "expired" else 200, headers=NO_CACHE
        )

    def _pending_list(self, signup_id: int) -> str | None:
        with session(self.engine) as db:
            signup = db.get(Signup, signup_id)
            found = db.get(MailingList, signup.list_id) if signup is not None else None
            return None if found is None else (found.display_name or found.name)

    def _confirm(self, signup_id: int, ip: str | None) -> Confirmation | None:
        with session(self.engine) as db:
            return confirm_signup(db, self.settings, signup_id, ip=ip)

    # -- view online, health, webhooks -------------------------------------------------------------

    async def view_online(self, request: Request) -> Response:
        delivery_id = self.delivery_id(request, "v")
        if delivery_id is None:
            return self.not_found()
        page = await run_in_threadpool(self._view_online, delivery_id)
        return self.not_found() if page is None else HTMLResponse(page, headers=NO_CACHE)

    def _view_online(self, delivery_id: int) -> str | None:
        """The recipient's own message from the run's frozen template (its pixel makes this an open)."""
        with session(self.engine) as db:
            delivery = db.get(Delivery, delivery_id)
            if delivery is None or (delivery.contact_id is None and not delivery.email):
                return None  # erased: there is no one to render it for
            composer = self.composer(delivery.run_id, delivery.variant)  # the A/B variant it was sent
            if composer is None:
                return None
            return composer.render(self._recipient(db, delivery), delivery_id).html

    async def health(self, request: Request) -> Response:
        try:
            await run_in_threadpool(self._ping)
        except SQLAlchemyError as exc:
            log.warning("health: database unreachable: %s", exc)
            problem = {"status": "error", "database": "unreachable"}
            return JSONResponse(problem, status_code=503, headers=NO_CACHE)
        return JSONResponse({"status": "ok", "database": "ok"}, headers=NO_CACHE)

    def _ping(self) -> None:
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    async def ses_webhook(self, request: Request) -> Response:
        body = await request.body()
        status, message = await run_in_threadpool(
            handle_ses, self.settings, self.engine, body, fetcher=self.fetcher
        )
        return PlainTextResponse(message, status_code=status)


def create_app(
    settings: Settings,
    engine: Engine,
    *,
    sns_fetcher: SnsFetcher = fetch_from_sns,
    workspace: Workspace | None = None,
) -> Starlette:
    """The tracking server for SETTINGS (token keys from COMMS_SECRET) over ENGINE.

    SNS_FETCHER GETs SNS certificate and subscription URLs (tests pass one serving their own).
    With WORKSPACE it also serves sign-up forms for [signup] lists, sending the confirmation
    (templates/copy/_confirm.md) through the workspace's transport.
    """
    server = _TrackingServer(settings, engine, sns_fetcher, workspace)
    limits = BodyLimits(
        default_bytes=MAX_FORM_BYTES,
        by_path={"/webhooks/ses": MAX_BODY_BYTES},
        timeout_s=settings.tracking.body_timeout_s,
    )
    routes = [
        Route("/o/{token}.gif", server.open_pixel, methods=["GET"]),
        Route("/c/{token}", server.click, methods=["GET"]),  # HEAD too: Starlette adds it to every GET
        Route("/u/{token}", server.unsubscribe, methods=["GET", "POST"]),
        Route("/p/{token}", server.preferences, methods=["GET", "POST"]),
        Route("/v/{token}", server.view_online, methods=["GET"]),
        Route("/s/confirm/{token}", server.confirm_signup, methods=["GET", "POST"]),
        Route("/s/{name}", server.signup, methods=["GET", "POST"]),
        Route("/health", server.health, methods=["GET"]),
        Route("/webhooks/ses", server.ses_webhook, methods=["POST"]),
    ]
    return Starlette(
        routes=routes,
        middleware=[Middleware(limits.middleware)],
        exception_handlers={SQLAlchemyError: server.database_down},
    )


__all__ = ["PIXEL_GIF", "create_app"]
