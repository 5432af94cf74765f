"""The sign-up form in headless Chromium, through the confirmation email's link to the subscription."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page, expect
from sqlalchemy import Engine, select

from pipeline.storage.engines import session
from pipeline.storage.models import Contact, MailingList, Signup, Subscription
from tests.feedback.test_signup import confirmation_link


def test_signing_up_in_a_browser_subscribes_after_the_confirm_button(
    page: Page, base_url: str, engine: Engine, workspace_dir: Path
) -> None:
    with session(engine) as db:
        db.add(MailingList(name="news", display_name="Kestrel News", description="Monthly, from the plant"))

    page.goto(f"{base_url}/s/news")
    expect(page).to_have_title("Subscribe to Kestrel News · Kestrel Forge Ltd.")
    expect(page.locator("main")).to_contain_text("Monthly, from the plant")
    honeypot = page.locator('input[name="website"]')
    assert not honeypot.is_visible() or honeypot.bounding_box()["x"] < 0  # type: ignore[index]
    page.get_by_label("Email address").fill("lin@example.com")
    page.get_by_label("First name (optional)").fill("Lin")
    page.get_by_role("button", name="Subscribe").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Check your inbox")
    expect(page.locator("main")).to_contain_text("Kestrel News")

    link = confirmation_link(workspace_dir, "lin@example.com")
    page.goto(link)
    expect(page.get_by_role("heading", level=1)).to_have_text("Confirm your subscription")
    with session(engine) as db:
        assert db.scalars(select(Subscription)).all() == []  # opening the link changed nothing
    page.get_by_role("button", name="Confirm my subscription").click()
    expect(page.locator("main")).to_contain_text("You are subscribed to Kestrel News. Welcome!")

    with session(engine) as db:
        [contact] = db.scalars(select(Contact)).all()
        assert (contact.email, contact.first_name) == ("lin@example.com", "Lin")
        [subscription] = db.scalars(select(Subscription)).all()
        assert subscription.contact_id == contact.id and subscription.status == "subscribed"
        [signup] = db.scalars(select(Signup)).all()
        assert signup.status == "confirmed" and signup.user_agent and "Chrome" in signup.user_agent
