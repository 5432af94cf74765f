"""The studio's A/B results in headless Chromium: from the runs, to the A/B tests, to a decided test,
where the winner and each arm's P(best) are read off the page; every request outside the studio
refused. The test is sent over real SMTP, clicked through the real tracking server and decided by
`comms ab decide` (tests/experiments' lab)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from playwright.sync_api import Browser, Request, expect

from tests.browser.conftest import tab
from tests.browser.test_studio import SLOW_MS
from tests.conftest import sqlite_only
from tests.experiments.conftest import Lab, engine, lab, ws_root
from tests.studio.conftest import lab_studio
from tests.support.cli import comms

pytestmark = sqlite_only  # see tests/conftest.py

__all__ = ["engine", "lab", "lab_studio", "ws_root"]


def test_the_ab_results_show_the_winner_and_p_best(browser: Browser, lab: Lab, lab_studio: str) -> None:
    # Sending runs its own event loop (asyncio.run), which cannot start in this thread while
    # Playwright's sync API holds one: the arms go out from another thread.
    with ThreadPoolExecutor(1) as pool:
        run = pool.submit(lab.send_arms).result()
    lab.engage(run, {"offer": 4, "question": 24})
    decided = comms("ab", "decide", str(run.id), "--no-send", cwd=lab.root)
    assert decided.returncode == 0, decided.stderr
    refused: list[Request] = []

    with tab(browser, lab_studio, refused=refused, timeout_ms=SLOW_MS) as page:
        page.goto(lab_studio + "/")
        page.get_by_role("navigation", name="Studio").get_by_role("link", name="Runs").click()
        page.get_by_role("link", name="A/B tests").click()
        tests = page.get_by_role("table", name="A/B tests")
        expect(tests.locator("tbody tr")).to_have_count(1)
        expect(tests.locator("tbody tr td").nth(4)).to_have_text("decided")
        tests.get_by_role("link", name=str(run.id), exact=True).click()

        expect(page.locator("main h1")).to_have_text(f"Run {run.id}: A/B test")
        expect(page.locator("#winner")).to_have_text("question")
        expect(page.locator("#chosen-by")).to_have_text("the rule")
        arms = page.get_by_role("table", name="Arms")
        expect(arms.locator("thead th").nth(3)).to_have_text("P(best)")
        expect(arms.locator("tr.winner td").first).to_have_text("question")
        expect(arms.locator("tr.winner td").nth(3)).to_have_text("1.000")
        expect(arms.locator("tbody tr", has_text="offer").locator("td").nth(3)).to_have_text("0.000")
    assert refused == []
