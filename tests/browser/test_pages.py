"""The tracking server's pages in headless Chromium: what a recipient sees, clicks, and what that stores."""

from __future__ import annotations

import re
import struct
from pathlib import Path

import pytest
from playwright.sync_api import Dialog, Locator, Page, expect
from sqlalchemy import Engine, select

from pipeline.message.urls import recipient_links
from pipeline.storage.engines import session
from pipeline.storage.models import Event, MailingList, Subscription, Suppression
from pipeline.workspace.settings import Settings
from tests.conftest import sqlite_only
from tests.feedback.conftest import World

pytestmark = sqlite_only  # see tests/conftest.py

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
WCAG_AA_TEXT = 4.5


def events(engine: Engine) -> list[Event]:
    with session(engine) as db:
        return list(db.scalars(select(Event).order_by(Event.id)))


def suppressions(engine: Engine) -> list[Suppression]:
    with session(engine) as db:
        return list(db.scalars(select(Suppression)))


def list_statuses(engine: Engine, contact_id: int) -> dict[str, str]:
    with session(engine) as db:
        rows = db.execute(
            select(MailingList.name, Subscription.status)
            .join(Subscription, Subscription.list_id == MailingList.id)
            .where(Subscription.contact_id == contact_id)
        )
        return {name: str(status) for name, status in rows}


def company(settings: Settings) -> str:
    return settings.brand.company


# -- unsubscribe -------------------------------------------------------------------------------------


def test_the_unsubscribe_button_unsubscribes_and_opening_the_page_does_not(
    world: World, page: Page, engine: Engine
) -> None:
    sent = world.send(world.add_contact("ada@example.com"))
    url = recipient_links(world.settings, sent.delivery_id).unsubscribe_url
    brand = company(world.settings)

    response = page.goto(url)
    assert response is not None and response.status == 200
    expect(page).to_have_title(f"Unsubscribe · {brand}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Unsubscribe")
    expect(page.locator("main")).to_contain_text(f"Stop all emails from {brand} to a•••@example.com?")
    expect(page.locator("footer")).to_contain_text(brand)
    button = page.get_by_role("button", name="Unsubscribe")
    expect(button).to_be_visible()
    assert "ada@example.com" not in page.content()
    assert suppressions(engine) == [] and events(engine) == []  # a look (or a link scanner) changes nothing

    button.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("You are unsubscribed")
    expect(page.locator("main")).to_contain_text(
        f"You are unsubscribed: {brand} will send no more emails to a•••@example.com."
    )
    assert page.url == url  # the form posts back to the same token, no redirect

    [suppression] = suppressions(engine)
    assert suppression.email == "ada@example.com" and suppression.reason == "unsubscribe"
    [event] = events(engine)
    assert event.kind == "unsubscribe" and event.delivery_id == sent.delivery_id
    assert event.detail["source"] == "page"
    assert event.user_agent is not None and "Chrome" in event.user_agent


# -- preferences -------------------------------------------------------------------------------------


def list_row(page: Page, name: str) -> Locator:
    """The row of list NAME: each row starts with the list's name (its description follows)."""
    return page.get_by_role("listitem").filter(has_text=re.compile(rf"^\s*{re.escape(name)}\b"))


def test_leaving_one_list_on_the_preferences_page_leaves_only_that_list(
    world: World, page: Page, engine: Engine
) -> None:
    contact = world.add_contact("ada@example.com", lists=("news", "offers"))
    other = world.add_contact("bob@example.com", first_name="Bob", lists=("news", "offers"))
    sent = world.send(contact)
    page.goto(recipient_links(world.settings, sent.delivery_id).preferences_url)
    expect(page.get_by_role("heading", level=1)).to_have_text("Email preferences")
    expect(page.get_by_role("listitem")).to_have_count(2)
    assert events(engine) == []

    list_row(page, "offers").get_by_role("button", name="Leave").click()
    expect(page.locator(".notice")).to_have_text("Done: you have left that list.")
    expect(list_row(page, "offers")).to_contain_text("left")
    expect(list_row(page, "offers").get_by_role("button")).to_have_count(0)
    expect(list_row(page, "news").get_by_role("button", name="Leave")).to_be_visible()

    assert list_statuses(engine, contact) == {"news": "subscribed", "offers": "unsubscribed"}
    assert list_statuses(engine, other) == {"news": "subscribed", "offers": "subscribed"}
    assert suppressions(engine) == []
    [event] = events(engine)
    assert event.kind == "unsubscribe" and event.detail["source"] == "preferences"


# -- view online -------------------------------------------------------------------------------------


def test_view_online_shows_the_recipients_own_message_and_records_the_open(
    world: World, page: Page, engine: Engine
) -> None:
    ada = world.send(world.add_contact("ada@example.com", company="Forge & Sons"))
    world.send(world.add_contact("bob@example.com", first_name="Bob", company="Anvil Works"))

    page.goto(recipient_links(world.settings, ada.delivery_id).view_online_url)
    body = page.locator("body")
    expect(body).to_contain_text("Hi Ada, from Forge & Sons")
    expect(body).not_to_contain_text("Bob")
    expect(page.get_by_role("link", name="Unsubscribe")).to_have_attribute(
        "href", recipient_links(world.settings, ada.delivery_id).unsubscribe_url
    )
    # The "load" event waits for images, so the open pixel has been fetched and recorded by now.
    assert [(e.kind, e.delivery_id) for e in events(engine)] == [("open", ada.delivery_id)]


def test_html_in_contact_data_shows_as_text_and_never_runs(world: World, page: Page) -> None:
    script = "<script>alert(1)</script>"
    image = "<img src=x onerror=alert(2)>"
    sent = world.send(world.add_contact("eve@example.com", first_name=script, company=image))
    dialogs: list[str] = []

    def record(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", record)
    page.goto(recipient_links(world.settings, sent.delivery_id).view_online_url)
    expect(page.locator("body")).to_contain_text(f"Hi {script}, from {image}")
    assert page.locator("script").count() == 0
    assert page.locator("img[onerror]").count() == 0
    assert dialogs == []


# -- how it looks ------------------------------------------------------------------------------------


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from the IHDR chunk, which always directly follows the signature."""
    assert data.startswith(PNG_SIGNATURE) and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


@pytest.mark.parametrize("width", [375, 1200], ids=["phone", "desktop"])
def test_the_unsubscribe_page_fits_the_screen(world: World, page: Page, tmp_path: Path, width: int) -> None:
    sent = world.send(world.add_contact("ada@example.com"))
    page.set_viewport_size({"width": width, "height": 800})
    page.goto(recipient_links(world.settings, sent.delivery_id).unsubscribe_url)

    shot = tmp_path / f"unsubscribe-{width}.png"
    page.screenshot(path=shot, full_page=True)
    data = shot.read_bytes()
    shot_width, shot_height = png_size(data)
    # A full-page screenshot grows sideways with the content, so this is "no horizontal scrolling".
    assert shot_width == width and shot_height >= 200
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    box = page.get_by_role("button", name="Unsubscribe").bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width


def luminance(css_color: str) -> float:
    """WCAG relative luminance of a computed `rgb(r, g, b)` colour."""
    channels = [int(c) / 255 for c in re.findall(r"\d+", css_color)[:3]]
    r, g, b = (c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(page: Page, selector: str, background_selector: str) -> float:
    fg = page.locator(selector).first.evaluate("e => getComputedStyle(e).color")
    bg = page.locator(background_selector).first.evaluate("e => getComputedStyle(e).backgroundColor")
    light, dark = sorted((luminance(fg), luminance(bg)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def test_the_unsubscribe_page_text_and_button_are_legible(world: World, page: Page) -> None:
    sent = world.send(world.add_contact("ada@example.com"))
    page.goto(recipient_links(world.settings, sent.delivery_id).unsubscribe_url)
    for text, background in [("h1", "main"), ("main p", "main"), (".muted", "main"), ("button", "button")]:
        assert contrast(page, text, background) >= WCAG_AA_TEXT, text
