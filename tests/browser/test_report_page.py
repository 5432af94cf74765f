"""Report pages in headless Chromium, offline: a run report's funnel, links and chart; the exec report's
sections, tiles and charts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, Route, expect
from sqlalchemy import Engine

from pipeline.reports import exec_report, parse_period, run_report, write_exec
from pipeline.reports.html import to_html
from pipeline.workspace.folders import Workspace
from pipeline.workspace.settings import Settings
from tests.reports.conftest import NOW, build_run, seed_two_quarters

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


@pytest.fixture
def offline_page(browser: Browser) -> Iterator[tuple[Page, list[str]]]:
    """A tab that may load nothing over the network; every attempt is recorded."""
    context = browser.new_context(viewport={"width": 1200, "height": 900}, java_script_enabled=False)
    attempts: list[str] = []

    def refuse(route: Route) -> None:
        if route.request.url.startswith("file://"):
            route.continue_()
            return
        attempts.append(route.request.url)
        route.abort()

    context.route("**/*", refuse)
    yield context.new_page(), attempts
    context.close()


def test_the_html_report_shows_funnel_links_and_a_chart(
    settings: Settings, engine: Engine, base_url: str, offline_page: tuple[Page, list[str]], tmp_path: Path
) -> None:
    run_id, messages = build_run(settings, engine, [{"email": f"p{i}@example.com"} for i in range(4)])
    httpx.get(messages["p0@example.com"].clicks[1], headers={"User-Agent": FIREFOX}, follow_redirects=False)
    page_file = tmp_path / "run.html"
    page_file.write_text(to_html(run_report(engine, settings, run_id), settings), encoding="utf-8")
    page, attempts = offline_page

    page.goto(page_file.as_uri())
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Run {run_id}: spring")
    funnel = page.locator("#funnel svg[aria-label=Funnel]")
    expect(funnel).to_be_visible()
    expect(funnel.locator("text")).to_contain_text(
        ["Attempted", "4", "Delivered", "4", "Opened (inferred)", "1"]
    )
    links = page.get_by_role("table", name="Links")
    expect(links.locator("tbody tr")).to_have_count(4)  # the honeypot is not a row
    expect(links.locator("tbody tr").nth(1)).to_contain_text("https://shop.example/b")
    expect(links.locator("tbody tr").nth(1).locator("td").nth(2)).to_have_text("1")
    chart = page.locator("#chart svg[aria-label='Engagement curve']")
    expect(chart).to_be_visible()
    expect(chart.locator("circle")).to_have_count(4)
    assert page.locator("script").count() == 0
    assert attempts == []
    # The brand's primary colour paints the header.
    colour = page.locator("header").evaluate("e => getComputedStyle(e).backgroundColor")
    assert colour == "rgb(31, 78, 121)"  # #1F4E79 from comms.toml


def test_the_exec_report_shows_each_section_offline(
    settings: Settings,
    engine: Engine,
    workspace_dir: Path,
    offline_page: tuple[Page, list[str]],
    tmp_path: Path,
) -> None:
    seed_two_quarters(engine)
    ws = Workspace.with_settings(workspace_dir, settings)
    [page_file] = write_exec(exec_report(engine, ws, parse_period("2027-Q1", NOW)), ws, tmp_path, ["html"])
    page, attempts = offline_page

    page.goto(page_file.as_uri())
    expect(page.get_by_role("heading", level=1)).to_have_text("Communications report 2027-Q1")
    for section, heading in (
        ("kpis", "Key figures"),
        ("departments", "Departments"),
        ("campaigns", "Campaigns"),
        ("notes", "What we learned, what we will do, decisions needed"),
        ("appendix", "Appendix"),
    ):
        region = page.get_by_role("region", name=heading)
        expect(region).to_be_visible()
        assert region.get_attribute("id") == section
    tiles = page.locator("#kpis .tile")
    expect(tiles).to_have_count(7)
    expect(page.locator("#kpi-human_click_rate")).to_contain_text("15.7%")
    expect(page.locator("#kpi-human_click_rate")).to_contain_text("vs 2026-Q4")
    # Every chart is an image with a name and a description, and its data is a table on the page.
    charts = page.locator("svg.chart")
    expect(charts).to_have_count(7 + 2 + 2)
    expect(
        page.get_by_role("img", name="Human click rate by sender department, with 95% intervals")
    ).to_be_visible()
    expect(
        page.get_by_role("table", name="Messages delivered and unsubscribes per week: data")
    ).to_be_visible()
    expect(page.get_by_role("cell", name="plant-safety-update")).to_have_count(
        0
    )  # only this test's campaigns
    expect(page.locator("#campaigns tbody tr").first).to_contain_text("alpha")
    assert page.locator("script").count() == 0
    assert attempts == []
