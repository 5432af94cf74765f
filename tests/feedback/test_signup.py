"""Double opt-in over real HTTP: the form, the confirmation email, the signed link, and who gets campaigns."""

from __future__ import annotations

import email
import re
from datetime import timedelta
from email.message import EmailMessage
from email.policy import default
from pathlib import Path

import httpx
from sqlalchemy import Engine, select, update

from pipeline.runs import dispatch, start
from pipeline.storage.engines import session
from pipeline.storage.models import Contact, Signup, Subscription, utcnow
from pipeline.workspace.folders import Workspace
from pipeline.workspace.settings import Settings
from tests.feedback.conftest import World

CONFIRM_LINK = re.compile(r"https?://[^\s\"<>]+/s/confirm/[A-Za-z0-9_-]+")


def mails(root: Path) -> list[EmailMessage]:
    return [
        email.message_from_bytes(path.read_bytes(), policy=default)  # type: ignore[misc]
        for path in sorted((root / "outbox").glob("*.eml"))
    ]


def confirmation_link(root: Path, to: str) -> str:
    [message] = [m for m in mails(root) if m["To"].addresses[0].addr_spec == to]
    assert message["Subject"] == "Please confirm your subscription"
    body = message.get_body(("plain",))
    assert body is not None
    [link] = set(CONFIRM_LINK.findall(body.get_content()))
    return link


def signups(engine: Engine) -> list[Signup]:
    with session(engine) as db:
        return list(db.scalars(select(Signup).order_by(Signup.id)))


def subscribers(engine: Engine) -> list[str]:
    with session(engine) as db:
        return list(
            db.scalars(select(Contact.email).join(Subscription, Subscription.contact_id == Contact.id))
        )


def campaign_recipients(workspace_dir: Path, settings: Settings) -> list[str]:
    """Send the sample campaign to everyone on the `news` list; who got it, from the outbox."""
    (workspace_dir / "audiences" / "news.toml").write_text('lists = ["news"]\n', encoding="utf-8")
    ws = Workspace.with_settings(workspace_dir, settings)
    # The test's tracking server is plain http on loopback; a real one must be https (RFC 8058).
    ws.settings.checks.severity.update(
        {"deliverability.one-click": "warning", "deliverability.insecure-link": "warning"}
    )
    run = start.start_run(ws, "spring-launch", "news", started_by="test")
    assert run.id is not None
    dispatch.dispatch_run(ws, run.id)
    return sorted(
        m["To"].addresses[0].addr_spec for m in mails(workspace_dir) if "confirm" not in m["Subject"].lower()
    )


def test_a_sign_up_subscribes_only_after_the_link_is_followed_and_posted(
    base_url: str, engine: Engine, workspace_dir: Path, settings: Settings
) -> None:
    form = httpx.get(f"{base_url}/s/news")
    assert form.status_code == 200 and 'name="email"' in form.text and 'name="website"' in form.text

    answer = httpx.post(f"{base_url}/s/news", data={"email": "Grace@Example.com", "first_name": "Grace"})
    assert answer.status_code == 200 and "Check your inbox" in answer.text
    assert subscribers(engine) == []
    link = confirmation_link(workspace_dir, "Grace@example.com")

    look = httpx.get(link)  # a mail scanner following the link changes nothing
    assert look.status_code == 200 and "Confirm my subscription" in look.text
    assert subscribers(engine) == [] and signups(engine)[0].status == "pending"

    done = httpx.post(link)
    assert done.status_code == 200 and "You are subscribed" in done.text
    assert subscribers(engine) == ["Grace@example.com"]
    [signup] = signups(engine)
    assert signup.status == "confirmed" and signup.confirmed_at is not None
    assert signup.source == "/s/news" and len(signup.ip_hash) == 64 and "127.0.0.1" not in signup.ip_hash
    assert httpx.post(link).text.count("You had already confirmed") == 1
    assert campaign_recipients(workspace_dir, settings) == ["Grace@example.com"]


def test_unconfirmed_and_expired_sign_ups_are_never_mailed_a_campaign(
    base_url: str, engine: Engine, workspace_dir: Path, settings: Settings, world: World
) -> None:
    world.add_contact("member@example.com")  # on the news list already
    httpx.post(f"{base_url}/s/news", data={"email": "pending@example.com"})
    httpx.post(f"{base_url}/s/news", data={"email": "late@example.com"})
    late = confirmation_link(workspace_dir, "late@example.com")
    with session(engine) as db:  # two days pass for this one
        db.execute(
            update(Signup)
            .where(Signup.email_key == "late@example.com")  # type: ignore[arg-type]
            .values(expires_at=utcnow() - timedelta(minutes=1))
        )

    expired = httpx.post(late)
    assert expired.status_code == 410 and "This link has expired" in expired.text
    assert [s.email for s in signups(engine)] == ["pending@example.com"]

    assert campaign_recipients(workspace_dir, settings) == ["member@example.com"]


def test_the_honeypot_and_the_rate_limit_refuse_bots(
    base_url: str, engine: Engine, workspace_dir: Path, settings: Settings
) -> None:
    bot = httpx.post(
        f"{base_url}/s/news", data={"email": "bot@example.com", "website": "http://spam.example"}
    )
    assert bot.status_code == 200 and "Check your inbox" in bot.text  # the bot learns nothing
    assert signups(engine) == [] and mails(workspace_dir) == []

    left = settings.signup.per_ip_per_hour - 1  # the bot's request counted too
    answers = [httpx.post(f"{base_url}/s/news", data={"email": f"p{i}@example.com"}) for i in range(left + 1)]
    assert [a.status_code for a in answers] == [200] * left + [429]
    assert "try again later" in answers[-1].text and answers[-1].headers["retry-after"] == "3600"
    assert len(signups(engine)) == left and len(mails(workspace_dir)) == left


def test_lists_not_offered_for_sign_up_and_bad_addresses_are_refused(base_url: str, engine: Engine) -> None:
    assert httpx.get(f"{base_url}/s/staff").status_code == 404
    assert httpx.post(f"{base_url}/s/staff", data={"email": "x@example.com"}).status_code == 404
    bad = httpx.post(f"{base_url}/s/news", data={"email": "not-an-address"})
    assert bad.status_code == 400 and "invalid email" in bad.text
    assert signups(engine) == []


def test_the_preferences_page_shows_a_list_by_its_display_name_and_description(
    base_url: str, engine: Engine, world: World
) -> None:
    from pipeline.audience.lists import describe_list
    from pipeline.message.urls import recipient_links

    sent = world.send(world.add_contact("ada@example.com"))
    with session(engine) as db:
        describe_list(db, "news", display_name="Kestrel News", description="Monthly, from the plant")
    page = httpx.get(recipient_links(world.settings, sent.delivery_id).preferences_url)
    assert page.status_code == 200
    assert "Kestrel News" in page.text and "Monthly, from the plant" in page.text
