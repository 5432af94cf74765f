"""Sample layouts as a phone shows them: headless Chromium at 375 px, nothing loaded from outside."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, Route

from pipeline.assembly.campaign import assemble
from pipeline.assembly.personalize import Personalizer, preview_recipient
from pipeline.workspace.folders import Workspace
from tests.assembly.conftest import LINKS

# The number of lines each figure's text takes, from the boxes of its text (one box per line).
_LINES = """el => {
  const range = document.createRange();
  range.selectNodeContents(el);
  return new Set([...range.getClientRects()].map(r => Math.round(r.top))).size;
}"""


@pytest.fixture
def phone(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 375, "height": 800})

    def offline(route: Route) -> None:
        route.abort()

    context.route("**/*", offline)
    yield context.new_page()
    context.close()


@pytest.mark.parametrize("width", [375, 414])
def test_q3_key_figures_stay_whole_on_a_phone(workspace_dir, phone: Page, width: int) -> None:
    ws = Workspace.open(workspace_dir)
    html = (
        Personalizer(assemble(ws, "q3-results").templates).render(preview_recipient(ws.settings), LINKS).html
    )
    phone.set_viewport_size({"width": width, "height": 800})
    phone.set_content(html)
    figures = phone.locator(".figure-value div")
    assert figures.count() == 3
    for index in range(3):
        figure = figures.nth(index)
        assert figure.evaluate(_LINES) == 1, f"{figure.inner_text()!r} breaks over lines at {width} px"
        assert figure.evaluate("el => el.scrollWidth <= el.clientWidth")
