"""A run report built from events sent through the real tracking server, every figure checked by formula."""

from __future__ import annotations

import json

import httpx
import pytest
from sqlalchemy import Engine, select, update

from pipeline.feedback.bounces import ingest_message
from pipeline.reports import run_report, wilson
from pipeline.reports.html import to_html
from pipeline.reports.render import to_csv, to_json, to_text
from pipeline.storage.engines import session
from pipeline.storage.models import Delivery, Event
from pipeline.storage.statuses import DeliveryStatus
from pipeline.workspace.settings import Settings
from tests.feedback.reports import arf, dsn
from tests.reports.conftest import build_run

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
THUNDERBIRD = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Thunderbird/128.0"

PEOPLE = [
    {"email": f"p{i}@{domain}", "attributes": {"department": dept}, "locale": "en-GB"}
    for i, (domain, dept) in enumerate(
        [("sales.example", "sales")] * 7 + [("fin.example", "finance")] * 4 + [("hr.example", "hr")] * 2
    )
] + [{"email": "seed@inbox-test.example", "attributes": {"department": "sales", "seed": True}}]


def get(url: str, agent: str = FIREFOX, **headers: str) -> None:
    httpx.get(url, headers={"User-Agent": agent, **headers}, follow_redirects=False)


def apple(url: str) -> None:
    get(url, "Mozilla/5.0", **{"X-Forwarded-For": "17.58.100.9"})


@pytest.fixture
def report_world(settings: Settings, engine: Engine, base_url: str):
    run_id, m = build_run(settings, engine, PEOPLE)
    p = [
        m[f"p{i}@{d}"] for i, d in enumerate(["sales.example"] * 7 + ["fin.example"] * 4 + ["hr.example"] * 2)
    ]
    # p0: a person opens and clicks link A.
    get(p[0].pixel, THUNDERBIRD)
    get(p[0].clicks[0])
    # p1: only Apple's proxy fetched the pixel.
    apple(p[1].pixel)
    # p2: Apple's proxy, then a human click on B (a click implies an open).
    apple(p[2].pixel)
    get(p[2].clicks[1])
    # p3: a scanner burst: A, B, C within 2 s, and the honeypot.
    for url in p[3].clicks:
        get(url)
    # p4: only the honeypot.
    get(p[4].clicks[-1])
    # p5: a HEAD from a gateway (recorded as nothing at all), then the person's own click on A.
    httpx.head(p[5].clicks[0], headers={"User-Agent": FIREFOX})
    get(p[5].clicks[0])
    # p6: a person opens, nothing else.
    get(p[6].pixel, THUNDERBIRD)
    # p7 (finance): a Proofpoint agent.
    get(p[7].clicks[0], "Mozilla/5.0 (compatible; Proofpoint URL Defense)")
    # p8 (finance): one-click unsubscribe.
    httpx.post(
        f"{settings.tracking.base_url}/u/" + recipient_unsub(settings, p[8].delivery_id),
        data={"List-Unsubscribe": "One-Click"},
    )
    # p9 (finance): a hard bounce after acceptance; p10 (finance): a complaint after opening.
    ingest_message(
        engine,
        settings,
        dsn(
            to="bounces@kestrelforge.example",
            recipient=p[9].email,
            status="5.1.1",
            diagnostic="550 5.1.1 no such user",
            original_message_id=message_id_of(engine, p[9].delivery_id),
        ),
        source="test",
    )
    get(p[10].pixel, THUNDERBIRD)
    ingest_message(
        engine,
        settings,
        arf(
            to="fbl@kestrelforge.example",
            original_mail_from="bounces@kestrelforge.example",
            complainant=p[10].email,
            original_message_id=message_id_of(engine, p[10].delivery_id),
        ),
        source="test",
    )
    # p11 (hr): refused at SMTP, yet a scanner clicked (a click before acceptance).
    with session(engine) as db:
        db.execute(
            update(Delivery)
            .where(Delivery.id == p[11].delivery_id)
            .values(status=DeliveryStatus.failed, sent_at=None, last_code=550)
        )
    get(p[11].clicks[0])
    # p12 (hr): a person clicks D, the fourth link.
    get(p[12].clicks[3])
    # The seed address clicks: never counted.
    get(m["seed@inbox-test.example"].clicks[0])
    return run_id, p


def recipient_unsub(settings: Settings, delivery_id: int) -> str:
    from pipeline.message.urls import recipient_links

    return recipient_links(settings, delivery_id).unsubscribe_url.rsplit("/", 1)[1]


def message_id_of(engine: Engine, delivery_id: int) -> str:
    with session(engine) as db:
        delivery = db.get(Delivery, delivery_id)
        assert delivery is not None
        return delivery.message_id


def test_every_figure_of_a_run_report_follows_its_formula(
    report_world, settings: Settings, engine: Engine
) -> None:
    run_id, p = report_world
    report = run_report(engine, settings, run_id)
    c = report.figures.counts
    assert c is not None
    # 13 recipients (the seed left out); p11 refused; p9 bounced hard after acceptance.
    A, S, B = 13, 12, 1
    D = S - B
    assert (
        c["snapshotted"],
        c["attempted"],
        c["accepted"],
        c["bounced"],
        c["hard_bounced"],
        c["delivered"],
    ) == (13, A, S, B, 1, D)
    assert (c["complaints"], c["unsubscribes"]) == (1, 1)
    # Pixels: p0, p1 (Apple), p2 (Apple), p6, p10. Human pixels: p0, p6, p10.
    assert (c["pixel_openers"], c["human_pixel_openers"], c["apple_proxy_openers"]) == (5, 3, 2)
    # Human clickers: p0, p2, p5, p12; inferred openers add p2, p5, p12 to the human pixel openers.
    assert c["clickers"] == 4 and c["inferred_openers"] == 3 + 3
    # Raw clickers among the delivered: p0, p2, p3, p4, p5, p7, p12.
    assert c["raw_clickers"] == 7
    assert (c["trackable"], c["trackable_openers"]) == (D - 2, 3)
    r = report.figures.rates
    assert r["delivery_rate"] == wilson(D, A)
    assert r["bounce_rate"] == wilson(A - D, A)
    assert r["complaint_rate"] == wilson(1, D) and r["unsubscribe_rate"] == wilson(1, D)
    assert r["human_open_rate"] == wilson(6, D) and r["raw_open_rate"] == wilson(5, D)
    assert r["machine_open_share"] == wilson(5 - 3, 5) and r["apple_proxy_share"] == wilson(2, 5)
    assert r["trackable_open_rate"] == wilson(3, D - 2)
    assert report.figures.estimated_openers == pytest.approx(3 / (D - 2) * D)
    assert r["human_click_rate"] == wilson(4, D) and r["click_to_open"] == wilson(4, 6)
    assert r["machine_click_share"] == wilson(7 - 4, 7)
    low, high = r["human_click_rate"].low, r["human_click_rate"].high
    assert low is not None and high is not None and low < 4 / D < high

    # Links: honeypot left out, positions in message order.
    assert [(link.position, link.url, link.clickers) for link in report.links] == [
        (1, "https://shop.example/a", 2),
        (2, "https://shop.example/b", 1),
        (3, "https://shop.example/c", 0),
        (4, "https://shop.example/d", 1),
    ]
    assert report.links[0].raw_clickers == 4  # p0, p3, p5, p7 (p11 was never delivered, the seed is left out)
    assert report.links[0].ctr == wilson(2, D) and report.links[0].share == wilson(2, 4)

    # Reasons are kept on the events and counted per delivery.
    assert report.reasons["machine_click"] == {
        "scanner-burst": 1,
        "honeypot": 2,
        "scanner-agent:proofpoint": 1,
        "before-accepted": 1,
    }
    assert report.reasons["machine_open"] == {"apple-privacy-proxy": 2}
    assert report.reasons["bounce"] == {"hard": 1} and report.reasons["unsubscribe"] == {"one-click": 1}
    assert report.reasons["rejected_at_smtp"] == {"5xx": 1}

    # Departments frozen from the contact attribute at snapshot.
    by = {row.label: row.figures.counts for row in report.departments}
    assert {k: v["snapshotted"] for k, v in by.items() if v} == {"sales": 7, "finance": 4, "hr": 2}
    assert by["sales"]["clickers"] == 3 and by["hr"]["clickers"] == 1

    # Engagement curve: every human clicker clicked within the hour of sending (2 h ago, all at once).
    assert report.curve["1h"].k == 0 and report.curve["4h"] == wilson(4, 4)
    assert report.first_click_median_s is not None and 7000 < report.first_click_median_s < 7400
    assert any("1 seed deliveries" in note for note in report.footnotes)
    assert {rec.rule: rec.status for rec in report.recommendations}["bounce-rate"] == "insufficient"
    shares = {rec.rule: (rec.status, rec.evidence, rec.threshold) for rec in report.recommendations}
    assert shares["machine-clicks"] == (
        "insufficient",
        "too little data: 7 clicking messages",
        "> 20.0% of clicking messages",
    )
    assert shares["apple-proxy"] == ("insufficient", "too little data: 5 openers", "> 40.0% of openers")
    settings.reports.rules.min_clickers = 5  # enough to judge 3 machine clicks of 7, 2 Apple opens of 5
    judged = {rec.rule: rec for rec in run_report(engine, settings, run_id).recommendations}
    assert (judged["machine-clicks"].status, judged["machine-clicks"].evidence) == (
        "fired",
        "machine-click share 42.9%",
    )
    assert judged["machine-clicks"].action.startswith("ask the recipients' IT")
    apple = judged["apple-proxy"]  # 40.0% is not above the 40% line
    assert (apple.status, apple.evidence, apple.action) == ("ok", "Apple-proxy share of openers 40.0%", "")

    # Every format carries the same numbers.
    data = json.loads(to_json(report))
    assert data["figures"]["counts"]["clickers"] == 4
    assert data["figures"]["rates"]["human_click_rate"]["low"] == pytest.approx(low)
    csv = to_csv(report)
    assert f"figures.rates.human_click_rate.value,{4 / D}" in csv
    text = to_text(report)
    assert f"{4 / D * 100:.1f}% ({low * 100:.1f}-{high * 100:.1f}%)" in text
    assert "shop.example/a" in to_html(report, settings)


def test_burst_marks_every_click_of_it_even_those_recorded_before(report_world, engine: Engine) -> None:
    run_id, p = report_world
    with session(engine) as db:
        rows = db.execute(
            select(Event.link_index, Event.machine, Event.reason)
            .where(Event.delivery_id == p[3].delivery_id)
            .order_by(Event.id)
        ).all()
    assert [tuple(r) for r in rows] == [
        (0, True, "scanner-burst"),
        (1, True, "scanner-burst"),
        (2, True, "scanner-burst"),
        (3, True, "scanner-burst"),
        (4, True, "honeypot"),
    ]
