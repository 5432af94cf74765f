"""The tracking server over real HTTP (uvicorn on loopback, httpx): what recipients and mail clients see."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, func, select

from pipeline.audience.contacts import is_suppressed, normalize_email
from pipeline.audience.segments import audience_query, load_audience
from pipeline.demo.history import seed_history
from pipeline.feedback.events import judge_click
from pipeline.feedback.server import PIXEL_GIF
from pipeline.message.tokens import make_token, read_token
from pipeline.message.urls import recipient_links, recipient_tracking
from pipeline.reports import parse_period
from pipeline.storage.engines import session
from pipeline.storage.models import Delivery, Event, Subscription, Suppression
from pipeline.storage.statuses import DeliveryStatus
from pipeline.workspace.folders import Workspace
from tests.feedback.conftest import OLD_SECRET, World


def events(engine: Engine, kind: str | None = None) -> list[Event]:
    with session(engine) as db:
        query = select(Event).order_by(Event.id)
        if kind is not None:
            query = query.where(Event.kind == kind)
        return list(db.scalars(query))


def suppressions(engine: Engine) -> list[Suppression]:
    with session(engine) as db:
        return list(db.scalars(select(Suppression)))


def suppressed(engine: Engine, email: str) -> bool:
    with session(engine) as db:
        return is_suppressed(db, normalize_email(email)[1])


def tampered(url: str) -> str:
    """URL with one character of its token changed."""
    token = url.rstrip("/").rsplit("/", 1)[1].removesuffix(".gif")
    swapped = token[:5] + ("A" if token[5] != "A" else "B") + token[6:]
    return url.replace(token, swapped)


def truncated(url: str) -> str:
    token = url.rsplit("/", 1)[1].removesuffix(".gif")
    return url.replace(token, token[:-3])


# -- unsubscribe -------------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["urlencoded", "multipart"])
def test_one_click_post_unsubscribes_at_once_and_the_audience_skips_the_contact(
    world: World, base_url: str, engine: Engine, workspace_dir: Path, encoding: str
) -> None:
    contact = world.add_contact("ada@example.com")
    other = world.add_contact("bob@example.com", first_name="Bob")
    sent = world.send(contact)
    url = recipient_links(world.settings, sent.delivery_id).unsubscribe_url
    body = {"List-Unsubscribe": "One-Click"}
    if encoding == "urlencoded":
        response = httpx.post(url, data=body)
    else:
        response = httpx.post(url, files={"List-Unsubscribe": (None, "One-Click")})
    assert response.status_code == 200  # RFC 8058: no redirect, ever
    assert "unsubscribed" in response.text
    assert "ada@example.com" not in response.text  # the page shows the address masked

    [row] = suppressions(engine)
    assert row.reason == "unsubscribe" and row.email == "ada@example.com"
    [event] = events(engine, "unsubscribe")
    assert event.delivery_id == sent.delivery_id and event.detail["source"] == "one-click"

    (workspace_dir / "audiences" / "news.toml").write_text('lists = ["news"]\n')
    audience = load_audience(Workspace.open(workspace_dir), "news")
    with session(engine) as db:
        remaining = [c.id for c in db.scalars(audience_query(audience))]
    assert remaining == [other]


def test_one_click_post_is_idempotent(world: World, base_url: str, engine: Engine) -> None:
    sent = world.send(world.add_contact("ada@example.com"))
    url = recipient_links(world.settings, sent.delivery_id).unsubscribe_url
    for _ in range(3):
        response = httpx.post(url, data={"List-Unsubscribe": "One-Click"}, follow_redirects=False)
        assert response.status_code == 200
    assert len(suppressions(engine)) == 1
    assert len(events(engine, "unsubscribe")) == 1


def test_get_shows_a_confirmation_page_and_changes_nothing(
    world: World, base_url: str, engine: Engine
) -> None:
    sent = world.send(world.add_contact("ada@example.com"))
    links = recipient_links(world.settings, sent.delivery_id)
    page = httpx.get(links.unsubscribe_url)
    assert page.status_code == 200
    assert re.search(r'<form method="post"', page.text) and "Unsubscribe</button>" in page.text
    assert links.preferences_url in page.text
    assert suppressions(engine) == [] and events(engine) == []

    # The page's own button posts back to the same URL; that unsubscribes, recorded as from the page.
    form = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]+)">', page.text))
    assert httpx.post(links.unsubscribe_url, data=form).status_code == 200
    assert suppressed(engine, "ada@example.com")
    assert events(engine, "unsubscribe")[0].detail["source"] == "page"


def test_head_on_any_route_records_nothing(world: World, base_url: str, engine: Engine) -> None:
    """Link scanners HEAD every link of a message: no unsubscribe, open, click or preference change."""
    sent = world.send(world.add_contact("ada@example.com"))
    links = recipient_links(world.settings, sent.delivery_id)
    [click, _] = click_urls(sent.rendered.html, base_url)
    pixel = recipient_tracking(world.settings, sent.delivery_id).open_url
    browser = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/128.0"}

    for url in (links.unsubscribe_url, links.preferences_url, links.view_online_url, pixel):
        assert httpx.head(url, headers=browser).status_code == 200, url
    redirect = httpx.head(click, headers=browser)
    assert redirect.status_code == 302 and redirect.headers["location"] == "https://shop.example/kf9?x=1&y=2"

    assert events(engine) == [] and suppressions(engine) == []
    # The same GETs record what a person's visit means: one open (the pixel), one click.
    httpx.get(pixel, headers=browser)
    httpx.get(click, headers=browser, follow_redirects=False)
    assert [e.kind for e in events(engine)] == ["open", "click"] and suppressions(engine) == []


def test_a_post_without_one_click_unsubscribes_no_one(world: World, base_url: str, engine: Engine) -> None:
    sent = world.send(world.add_contact("ada@example.com"))
    url = recipient_links(world.settings, sent.delivery_id).unsubscribe_url
    for body in ({}, {"List-Unsubscribe": "yes"}, {"source": "page"}):
        assert httpx.post(url, data=body).status_code == 400
    assert events(engine) == [] and suppressions(engine) == []


def test_tokens_signed_with_an_older_key_still_work(world: World, base_url: str, engine: Engine) -> None:
    sent = world.send(world.add_contact("ada@example.com"))
    url = f"{base_url}/u/{make_token(OLD_SECRET.encode(), 'u', sent.delivery_id)}"
    assert httpx.post(url, data={"List-Unsubscribe": "One-Click"}).status_code == 200
    assert suppressed(engine, "ada@example.com")


def test_tampered_truncated_and_foreign_tokens_get_404_and_change_nothing(
    world: World, base_url: str, engine: Engine
) -> None:
    sent = world.send(world.add_contact("ada@example.com"))
    links = recipient_links(world.settings, sent.delivery_id)
    tracking = recipient_tracking(world.settings, sent.delivery_id)
    foreign = make_token(b"someone-else's-key", "u", sent.delivery_id)
    wrong_purpose = make_token(
        world.settings.secret, "o", sent.delivery_id
    )  # an open token used to unsubscribe
    unknown_delivery = make_token(world.settings.secret, "u", sent.delivery_id + 1000)
    bad_urls = [
        tampered(links.unsubscribe_url),
        truncated(links.unsubscribe_url),
        f"{base_url}/u/{foreign}",
        f"{base_url}/u/{wrong_purpose}",
        f"{base_url}/u/{unknown_delivery}",
    ]
    for url in bad_urls:
        assert httpx.post(url, data={"List-Unsubscribe": "One-Click"}).status_code == 404, url
        assert httpx.get(url).status_code == 404, url
    for url in (tracking.click(0), tracking.open_url, links.view_online_url, links.preferences_url):
        assert httpx.get(tampered(url), follow_redirects=False).status_code == 404, url
        assert httpx.get(truncated(url), follow_redirects=False).status_code == 404, url
    assert suppressions(engine) == [] and events(engine) == []


def test_no_url_in_a_message_carries_the_address(world: World, base_url: str) -> None:
    sent = world.send(world.add_contact("ada.lovelace@example.com"))
    urls = re.findall(r'(?:href|src)="([^"]+)"', sent.rendered.html)
    ours = [url for url in urls if url.startswith(base_url)]
    assert len(ours) == 6  # two tracked links, unsubscribe, preferences, view online, the pixel
    for url in ours:
        assert "ada" not in url.lower() and "%40" not in url and "@" not in url


# -- clicks ------------------------------------------------------------------------------------------


def click_urls(html: str, base_url: str) -> list[str]:
    return re.findall(rf'href="({re.escape(base_url)}/c/[^"]+)"', html)


def test_a_click_redirects_only_to_the_campaigns_own_link(
    world: World, base_url: str, engine: Engine
) -> None:
    sent = world.send(world.add_contact("ada@example.com", code="A&B 7"))
    first, second = click_urls(sent.rendered.html, base_url)
    browser = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/128.0"}

    response = httpx.get(first, headers=browser, follow_redirects=False)
    assert response.status_code == 302
    assert response.headers["location"] == "https://shop.example/kf9?x=1&y=2"
    # A link with recipient-scope Jinja goes to that contact's own rendering of it.
    response = httpx.get(second, headers=browser, follow_redirects=False)
    assert response.headers["location"] == "https://shop.example/quote?ref=A%26B%207"

    # A token naming a link index the campaign does not have, or a URL in the query, gets nowhere.
    beyond = f"{base_url}/c/{make_token(world.settings.secret, 'c', sent.delivery_id, 2)}"
    assert httpx.get(beyond, follow_redirects=False).status_code == 404
    response = httpx.get(f"{first}?url=https://evil.example/", headers=browser, follow_redirects=False)
    assert response.headers["location"] == "https://shop.example/kf9?x=1&y=2"

    clicks = events(engine, "click")
    # Both of the message's two links within 10 s: the all-links burst rule calls that a scanner.
    assert [(c.link_index, c.machine, c.reason) for c in clicks] == [(0, True, "scanner-burst")] + [
        (1, True, "scanner-burst"),
        (0, True, "scanner-burst"),
    ]
    assert (
        clicks[0].url == "https://shop.example/kf9?x=1&y=2" and clicks[0].user_agent == browser["User-Agent"]
    )


def test_link_scanners_are_flagged_as_machine_clicks(world: World, base_url: str, engine: Engine) -> None:
    old = world.send(world.add_contact("ada@example.com"))
    [url, _] = click_urls(old.rendered.html, base_url)
    httpx.get(url, headers={"User-Agent": "Mozilla/5.0 (compatible; Barracuda Sentinel)"})
    httpx.get(url, headers={"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/128.0"})
    flagged = [(e.machine, e.reason) for e in events(engine, "click")]
    assert flagged == [(True, "scanner-agent:barracuda"), (False, "")]


def test_a_click_before_the_message_was_accepted_is_a_scanner() -> None:
    sent_at = datetime(2026, 3, 2, 9, 0, 0, tzinfo=UTC)
    browser = "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/128.0"
    assert judge_click(browser, None, sent_at).why == "before-accepted"
    assert judge_click(browser, sent_at, sent_at - timedelta(seconds=1)).why == "before-accepted"
    assert not judge_click(browser, sent_at, sent_at + timedelta(seconds=1)).machine
    # SQLite hands back naive UTC timestamps.
    assert not judge_click(browser, sent_at.replace(tzinfo=None), sent_at + timedelta(seconds=1)).machine


def test_untracked_campaign_keeps_its_links(world: World, base_url: str) -> None:
    sent = world.send(world.add_contact("ada@example.com"), track=False)
    assert click_urls(sent.rendered.html, base_url) == []
    assert 'href="https://shop.example/kf9?x=1&amp;y=2"' in sent.rendered.html
    assert "/o/" not in sent.rendered.html


# -- opens -------------------------------------------------------------------------------------------


def test_the_pixel_records_an_open(world: World, base_url: str, engine: Engine) -> None:
    sent = world.send(world.add_contact("ada@example.com"))
    [pixel] = re.findall(r'<img src="([^"]+)"', sent.rendered.html)
    thunderbird = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Thunderbird/128.0"
    response = httpx.get(pixel, headers={"User-Agent": thunderbird})
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/gif" and response.content == PIXEL_GIF
    assert "no-store" in response.headers["cache-control"]
    [event] = events(engine, "open")
    assert (event.delivery_id, event.machine, event.user_agent) == (sent.delivery_id, False, thunderbird)


def test_privacy_proxy_opens_are_flagged_machine_and_gmail_proxy_is_human(
    world: World, base_url: str, engine: Engine
) -> None:
    sent = world.send(world.add_contact("ada@example.com"))
    pixel = recipient_tracking(world.settings, sent.delivery_id).open_url
    # Apple Mail Privacy Protection: the bare agent from Apple's egress range (through a trusted proxy).
    httpx.get(pixel, headers={"User-Agent": "Mozilla/5.0", "X-Forwarded-For": "17.58.100.9"})
    # Either sign alone is a person: the bare agent from elsewhere, Mail.app's own agent from Apple's range.
    httpx.get(pixel, headers={"User-Agent": "Mozilla/5.0"})
    httpx.get(pixel, headers={"User-Agent": "Mozilla/5.0 (Macintosh)", "X-Forwarded-For": "17.58.100.9"})
    gmail = "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
    httpx.get(pixel, headers={"User-Agent": gmail})
    seen = [(e.machine, e.reason) for e in events(engine, "open")]
    assert seen == [
        (True, "apple-privacy-proxy"),
        (False, ""),
        (False, ""),
        (False, "google-image-proxy"),
    ]


# -- view online, preferences, health ----------------------------------------------------------------


def test_view_online_shows_that_recipients_own_message_escaped(world: World, base_url: str) -> None:
    contact = world.add_contact("ada@example.com", first_name="<b>Ada</b>", company="Forge & Sons")
    sent = world.send(contact)
    page = httpx.get(recipient_links(world.settings, sent.delivery_id).view_online_url)
    assert page.status_code == 200
    assert "Hi &lt;b&gt;Ada&lt;/b&gt;, from Forge &amp; Sons" in page.text
    assert "<b>Ada</b>" not in page.text
    assert page.text == sent.rendered.html


def test_view_online_renders_a_demo_delivery_with_its_signed_click_link(
    world: World, base_url: str, engine: Engine
) -> None:
    """Demo runs (comms demo seed-history) hold a frozen template of their own; a demo recipient's
    view-online page renders it, with a click link signed for that delivery."""
    seed_history(engine, parse_period("2027-Q1", datetime.now(UTC)), periods=1, customers=2, staff=2)
    with session(engine) as db:
        delivery_id = db.scalars(select(Delivery.id).where(Delivery.status == DeliveryStatus.sent)).first()
    assert delivery_id is not None
    page = httpx.get(recipient_links(world.settings, delivery_id).view_online_url)
    assert page.status_code == 200
    [token] = re.findall(rf'<a href="{re.escape(base_url)}/c/([^"]+)">Kestrel Forge</a>', page.text)
    assert read_token(world.settings.verifying_keys, "c", token) == (delivery_id, 0)


def test_preferences_leave_one_list_then_everything(world: World, base_url: str, engine: Engine) -> None:
    sent = world.send(world.add_contact("ada@example.com", lists=("news", "offers")))
    url = recipient_links(world.settings, sent.delivery_id).preferences_url
    page = httpx.get(url)
    assert page.status_code == 200 and "news" in page.text and "offers" in page.text
    assert events(engine) == []

    [offers_id] = re.findall(
        r'name="leave" value="(\d+)">\s*<button class="quiet" type="submit">Leave', page.text
    )[1:]
    own_page = {"Origin": base_url}
    page = httpx.post(url, data={"leave": offers_id}, headers=own_page)
    assert "you have left that list" in page.text
    with session(engine) as db:
        statuses = dict(db.execute(select(Subscription.list_id, Subscription.status)).all())
    assert statuses[int(offers_id)] == "unsubscribed" and list(statuses.values()).count("subscribed") == 1
    assert not suppressed(engine, "ada@example.com")

    page = httpx.post(url, data={"leave": "all"}, headers={"Referer": url})
    assert "is unsubscribed from all emails" in page.text
    assert suppressed(engine, "ada@example.com")
    assert [e.detail.get("source") for e in events(engine, "unsubscribe")] == ["preferences", "preferences"]


def test_preferences_are_only_changed_from_their_own_page(
    world: World, base_url: str, engine: Engine
) -> None:
    """A form on another site (or a script without Origin/Referer) cannot make a visitor leave lists."""
    sent = world.send(world.add_contact("ada@example.com", lists=("news",)))
    url = recipient_links(world.settings, sent.delivery_id).preferences_url
    port = base_url.rsplit(":", 1)[1]
    for headers in (
        {},
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Origin": f"http://127.0.0.2:{port}"},
        {"Referer": "https://evil.example/page"},
    ):
        response = httpx.post(url, data={"leave": "all"}, headers=headers)
        assert response.status_code == 403, headers
    assert events(engine) == [] and not suppressed(engine, "ada@example.com")
    assert httpx.post(url, data={"leave": "all"}, headers={"Origin": base_url}).status_code == 200
    assert suppressed(engine, "ada@example.com")


def test_health_checks_the_database(world: World, base_url: str, engine: Engine) -> None:
    response = httpx.get(f"{base_url}/health")
    assert response.status_code == 200 and response.json() == {"status": "ok", "database": "ok"}
    with session(engine) as db:
        assert db.scalar(select(func.count()).select_from(Event)) == 0
