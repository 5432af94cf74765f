"""Browser fixtures: headless Chromium (Debian's, driven by Playwright) over the tracking server's fixtures.

The server, database and rows come from tests/feedback/conftest.py, imported rather than copied so
both suites exercise the same setup. Chromium is launched once per module (about a second each
time) and every test gets a fresh context, so no cookie or cache carries over between tests.
The browser may reach only the server under test: anything else is aborted, which keeps the tests
offline and would show up as a broken page if pages.py ever pulled in an outside asset.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Request, Route, sync_playwright

from tests.feedback.conftest import base_url, engine, settings, world

__all__ = ["base_url", "browser", "engine", "page", "settings", "tab", "world"]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Module-scoped, not session-scoped: the sync API owns an event loop in this thread while it
    lives, and other suites' tests call asyncio.run() in the same thread."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found: install Debian's chromium (apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@contextmanager
def tab(
    browser: Browser, base_url: str, *, refused: list[Request] | None = None, timeout_ms: int = 5_000
) -> Iterator[Page]:
    """A new tab in a fresh context, allowed to load only from the server at BASE_URL; every other
    request is aborted (and kept in REFUSED when given)."""
    context = browser.new_context(viewport={"width": 1200, "height": 800})
    context.set_default_timeout(timeout_ms)

    def only_the_server(route: Route) -> None:
        if route.request.url.startswith(base_url + "/"):
            route.continue_()
        else:
            if refused is not None:
                refused.append(route.request)
            route.abort()

    context.route("**/*", only_the_server)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def page(browser: Browser, base_url: str) -> Iterator[Page]:
    with tab(browser, base_url) as opened:
        yield opened
