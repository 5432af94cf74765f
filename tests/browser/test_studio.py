"""The studio in headless Chromium: pick a campaign, render it for a contact, watch it follow the
copy file as it is saved, follow a check finding to its line, read a run's click map, open the exec
report and download its PDF; all of it with every request outside the studio refused."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, Request, expect
from sqlalchemy import Engine

from pipeline.workspace.settings import Settings
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, tab
from tests.conftest import sqlite_only
from tests.feedback.conftest import World
from tests.reports.conftest import build_run, seed_two_quarters
from tests.studio.conftest import studio

pytestmark = sqlite_only  # see tests/conftest.py

__all__ = ["studio"]

# Live reload is watched for, never slept for: a loaded machine may take seconds to re-render.
SLOW_MS = 30_000
PDF_MS = 120_000  # a report's queries and a WeasyPrint render, on a loaded machine
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


@pytest.fixture
def refused() -> list[Request]:
    return []


@pytest.fixture
def studio_page(browser: Browser, studio: str, refused: list[Request]) -> Iterator[Page]:
    expect.set_options(timeout=SLOW_MS)
    try:
        with tab(browser, studio, refused=refused, timeout_ms=SLOW_MS) as page:
            yield page
    finally:
        expect.set_options(timeout=5_000)  # Playwright's default, for the other modules' tests


def test_pick_a_campaign_and_switch_the_contact(studio_page: Page, studio: str, world: World) -> None:
    world.add_contact("grace@example.com", first_name="Grace <b>Hopper</b>")
    page = studio_page
    page.goto(studio + "/")
    page.get_by_role("link", name="spring-launch").click()
    expect(page.locator(".tools h1")).to_contain_text("spring-launch")
    desktop = page.frame_locator("#desktop")
    expect(desktop.locator("body")).to_contain_text("Hi Alex,")
    expect(page.frame_locator("#mobile").locator("body")).to_contain_text("Hi Alex,")

    search = page.get_by_label("Render for")
    search.fill("grace@exa")
    expect(page.locator("#contacts option")).to_have_attribute("value", "grace@example.com")
    search.fill("grace@example.com")
    page.get_by_role("button", name="Show").click()
    # The contact's data is text in the message, never markup.
    expect(desktop.locator("body")).to_contain_text("Hi Grace <b>Hopper</b>,")
    expect(desktop.locator("b", has_text="Hopper")).to_have_count(0)
    expect(page.locator("#recipient")).to_have_text("Grace <b>Hopper</b> <grace@example.com>")
    expect(page.locator("#subject")).to_have_text("Grace <b>Hopper</b>, meet the KF-9 closed-die press line")
    expect(page.locator("#text pre")).to_contain_text("Hi Grace <b>Hopper</b>,")
    expect(page.get_by_role("table", name="Headers")).to_contain_text("List-Unsubscribe-Post")
    expect(page.locator("#size")).to_contain_text("of Gmail's 102 KB clipping line")

    page.get_by_role("link", name="the preview contact").click()
    expect(desktop.locator("body")).to_contain_text("Hi Alex,")


def test_images_off_and_dark_mode_change_only_the_frames(studio_page: Page, studio: str) -> None:
    page = studio_page
    page.goto(f"{studio}/campaigns/spring-launch")
    frame = page.frame_locator("#desktop")
    expect(
        frame.locator("img[alt='The KF-9 press line at work on the Sheffield shop floor']")
    ).to_have_attribute("src", "https://kestrelforge.example/campaigns/spring-launch/kf9-hero.jpg")
    page.get_by_label("images off").check()
    expect(page).to_have_url(re.compile(r"images=off"))
    expect(
        frame.locator("img[alt='The KF-9 press line at work on the Sheffield shop floor']")
    ).not_to_have_attribute("src", re.compile("."))
    page.get_by_label("dark mode").check()
    expect(page).to_have_url(re.compile(r"images=off&dark=on"))
    inverted = frame.locator("html").evaluate("e => getComputedStyle(e).filter")
    assert inverted.startswith("invert(1)"), inverted
    assert page.locator("header.bar").evaluate("e => getComputedStyle(e).filter") == "none"


def test_the_page_follows_the_copy_file_as_it_is_saved(
    studio_page: Page, studio: str, workspace_dir: Path
) -> None:
    page = studio_page
    page.goto(f"{studio}/campaigns/spring-launch")
    expect(page.locator("body")).to_have_attribute("data-live", "on")
    page.evaluate("window.notReloaded = true")
    frame = page.frame_locator("#desktop")
    expect(frame.locator("body")).to_contain_text("Spring is when most of our customers")

    copy = workspace_dir / "templates/copy/spring-launch.md"
    original = copy.read_text(encoding="utf-8")
    copy.write_text(original.replace("Spring is when most", "Autumn is when most"), encoding="utf-8")
    expect(frame.locator("body")).to_contain_text("Autumn is when most of our customers")

    copy.write_text(
        original.replace('{{ contact.first_name | default("there") }}', "{{ contact.first_name"),
        encoding="utf-8",
    )
    error = page.locator("main p.error")
    expect(error).to_contain_text("templates/copy/spring-launch.md:")
    assert "\n" not in error.inner_text()
    expect(page.locator("#desktop")).to_have_count(0)

    copy.write_text(original, encoding="utf-8")
    expect(frame.locator("body")).to_contain_text("Spring is when most of our customers")
    expect(page.locator("main p.error")).to_have_count(0)
    assert page.evaluate("window.notReloaded") is True  # re-rendered in place, never reloaded


def test_a_check_finding_leads_to_its_file_and_line(
    studio_page: Page, studio: str, workspace_dir: Path
) -> None:
    page = studio_page
    page.goto(f"{studio}/campaigns/spring-launch")
    where = page.locator("#findings a.where", has_text=":").first.inner_text()  # a finding with a line
    path, line = where.rsplit(":", 1)
    link = page.get_by_role("link", name=where, exact=True).first
    link.scroll_into_view_if_needed()
    link.click()
    expect(page.locator("main h1")).to_contain_text(path)
    marked = page.locator("ol.source li.marked")
    expect(marked).to_have_attribute("id", f"L{line}")
    written = (workspace_dir / path).read_text(encoding="utf-8").splitlines()[int(line) - 1]
    expect(marked).to_have_text(written)


def test_a_runs_click_map_shows_each_links_share_of_human_clickers(
    studio_page: Page, studio: str, settings: Settings, engine: Engine, base_url: str
) -> None:
    run_id, messages = build_run(settings, engine, [{"email": f"p{i}@example.com"} for i in range(4)])
    for person, link in (("p0", 1), ("p1", 1), ("p2", 0)):
        httpx.get(messages[f"{person}@example.com"].clicks[link], headers={"User-Agent": FIREFOX})
    httpx.get(messages["p3@example.com"].clicks[-1], headers={"User-Agent": FIREFOX})  # the honeypot

    page = studio_page
    page.goto(studio + "/runs")
    page.get_by_role("link", name=str(run_id), exact=True).click()
    expect(page.locator("#funnel svg[aria-label=Funnel]")).to_be_visible()
    expect(page.get_by_role("table", name="Links").locator("tbody tr")).to_have_count(4)
    expect(page.locator("#chart svg[aria-label='Engagement curve']")).to_be_visible()
    page.get_by_role("link", name="Click map").click()

    email = page.frame_locator("#click-map")
    badges = email.locator(".comms-badge")
    expect(badges).to_have_count(4)  # A, B, C, D: the honeypot has none
    expect(badges).to_have_text(["33%", "67%", "0%", "0%"])
    expect(email.locator("a[data-comms-honeypot]")).to_have_count(0)
    expect(email.locator("a", has_text="B")).to_have_attribute("href", "#")
    expect(email.locator("img")).to_have_count(0)  # the open pixel is gone: looking records nothing


def test_the_exec_report_shows_its_tiles_and_its_pdf_button_downloads_the_pdf(
    studio_page: Page, studio: str, engine: Engine, workspace_dir: Path, refused: list[Request]
) -> None:
    seed_two_quarters(engine)
    page = studio_page
    page.goto(studio + "/")
    page.get_by_role("navigation", name="Studio").get_by_role("link", name="Exec report").click()
    expect(page.locator("body")).to_have_attribute("data-live", "on")  # the page's script is running
    page.get_by_label("Period").select_option("2027-Q1")  # a choice applies itself
    expect(page).to_have_url(re.compile(r"/exec\?period=2027-Q1&compare=previous$"))
    report = page.frame_locator("#exec-report")
    expect(report.locator(".tile")).to_have_count(7)
    expect(report.locator("#kpi-human_click_rate")).to_contain_text("15.7%")
    expect(report.locator("#kpi-human_click_rate")).to_contain_text("vs 2026-Q4")
    with page.expect_download(timeout=PDF_MS) as started:
        page.get_by_role("link", name="PDF", exact=True).click()
    download = started.value
    assert download.suggested_filename == "exec-2027-Q1.pdf"
    assert Path(download.path()).read_bytes().startswith(b"%PDF-")

    # The copywriter saves the period's notes: the open report shows them without a reload.
    expect(page.locator("body")).to_have_attribute("data-live", "on")
    notes = workspace_dir / "reports/notes/2027-Q1.md"
    notes.write_text("## What we learned\n\nPlant managers click at **lunch**.\n", encoding="utf-8")
    expect(report.locator("strong", has_text="lunch")).to_be_visible()
    assert refused == []


def test_a_script_in_the_email_does_not_run(studio_page: Page, studio: str, workspace_dir: Path) -> None:
    layout = workspace_dir / "templates/layouts/promotion.mjml"
    run = "document.title = 'ran'; parent.document.body.dataset.reached = 'yes'"
    script = f"<mj-raw><script>{run}</script></mj-raw>"
    layout.write_text(
        layout.read_text(encoding="utf-8").replace("</mj-body>", script + "</mj-body>"), encoding="utf-8"
    )
    page = studio_page
    page.goto(f"{studio}/campaigns/spring-launch")
    frame = page.frame_locator("#desktop")
    expect(frame.locator("script")).to_have_count(1)  # in the message, as written ...
    expect(frame.locator("body")).to_contain_text("Hi Alex,")
    assert frame.locator("html").evaluate("e => e.ownerDocument.title") != "ran"  # ... and never run
    assert page.locator("body").get_attribute("data-reached") is None


@pytest.fixture(scope="module")
def cut_off(browser: Browser) -> Iterator[Browser]:
    """Chromium that can resolve no name but the loopback: the network outside 127.0.0.1 is gone for
    every frame. (Playwright's routing does not see requests from sandboxed srcdoc frames, so the
    email's own requests are stopped here, by the browser itself.)"""
    rules = "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"
    # A second Chromium from the same Playwright (one sync Playwright per thread at a time).
    isolated = browser.browser_type.launch(
        executable_path=str(CHROMIUM), headless=True, args=[*CHROMIUM_ARGS, rules]
    )
    yield isolated
    isolated.close()


@pytest.mark.parametrize("images", ["on", "off"])
def test_the_studio_works_with_the_network_outside_127_0_0_1_blocked(
    cut_off: Browser, studio: str, images: str
) -> None:
    refused: list[Request] = []
    asked: list[str] = []
    with tab(cut_off, studio, refused=refused, timeout_ms=SLOW_MS) as page:
        page.on("request", lambda request: asked.append(request.url))
        page.goto(f"{studio}/campaigns/spring-launch?images={images}")
        expect(page.locator("body")).to_have_attribute("data-live", "on")  # its script ran
        colour = page.locator("header.bar").evaluate("e => getComputedStyle(e).backgroundColor")
        assert colour == "rgb(31, 78, 121)"  # its stylesheet loaded
        frame = page.frame_locator("#desktop")
        expect(frame.locator("body")).to_contain_text("Hi Alex,")
        if images == "off":
            expect(frame.locator("img[src]")).to_have_count(0)  # the email asks for no pictures either
        page.wait_for_load_state("load")
    assert refused == []  # the studio's page asked for nothing outside itself
    assert asked and all(url.startswith(studio + "/") for url in asked), asked
