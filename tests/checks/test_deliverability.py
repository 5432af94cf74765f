"""Deliverability rules on the message as sent: links, unsubscribe, hidden text, size, SpamAssassin."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pipeline.checks.deliverability import spamassassin_score
from pipeline.checks.subject import build_subject
from pipeline.workspace.folders import Workspace
from tests.checks.conftest import edit, finding_at_edit, found, run, where

COPY = "templates/copy/spring-launch.md"
SPEC_LINK = "You can [read the full KF-9 specifications](https://kestrelforge.example/kf9?industry="


def test_the_recipients_address_in_a_link_is_found_in_the_copy(root: Path) -> None:
    finding = finding_at_edit(
        root,
        COPY,
        SPEC_LINK,
        "You can [read the full KF-9 "
        "specifications](https://kestrelforge.example/kf9?who={{ contact.email }}&industry=",
        "deliverability.address-in-url",
    )
    assert "alex.morgan@example.com" in finding.message


def test_an_http_link_and_a_link_whose_text_shows_another_domain(root: Path) -> None:
    insecure = edit(
        root,
        COPY,
        "or send us a drawing",
        "or see [our terms](http://kestrelforge.example/terms) or send us a drawing",
    )
    mismatch = edit(
        root,
        COPY,
        "Best regards,",
        "Order at [kestrelforge.example](https://shop.other.example/kf9).\n\nBest regards,",
    )
    report = run(root, "spring-launch")
    [http] = found(report, "deliverability.insecure-link")
    assert where(http) == (COPY, insecure) and http.blocks
    [shown] = found(report, "deliverability.link-domain")
    assert where(shown) == (COPY, mismatch) and "shop.other.example" in shown.message


def test_every_sample_header_line_fits_in_78_and_unsubscribe_is_one_click(root: Path) -> None:
    for name in Workspace.open(root).campaign_names():
        subject = build_subject(Workspace.open(root), name)
        head = subject.raw.split(b"\r\n\r\n", 1)[0]
        assert max(len(line) for line in head.split(b"\r\n")) <= 78, name
        assert subject.headers["Date"].endswith("+0000")
        report = run(root, name)
        assert (
            found(report, "deliverability.one-click") == []
            and found(report, "deliverability.unsubscribe-link") == []
        )


def test_text_in_the_colour_of_its_background(root: Path) -> None:
    line = edit(
        root,
        "templates/layouts/promotion.mjml",
        '<mj-text font-weight="bold" padding="14px 18px">',
        '<mj-text font-weight="bold" color="#FCF2E8" padding="14px 18px">',
    )
    [finding] = found(run(root, "spring-launch"), "deliverability.hidden-text")
    assert where(finding) == ("templates/copy/spring-launch.md", _line(root, COPY, "offer:"))
    assert line and "invisible" in finding.message


def _line(root: Path, relative: str, needle: str) -> int:
    text = (root / relative).read_text(encoding="utf-8")
    return text.count("\n", 0, text.index(needle)) + 1


@pytest.mark.skipif(shutil.which("spamassassin") is None, reason="spamassassin is not installed")
def test_spamassassin_scores_the_sample_low_and_a_spammy_copy_high(root: Path) -> None:
    score, _ = spamassassin_score(build_subject(Workspace.open(root), "spring-launch").raw)
    assert score <= 1
    edit(
        root,
        COPY,
        "Best regards,",
        "FREE!!! ACT NOW!!! 100% FREE GUARANTEED, CLICK BELOW, CASH BONUS, NO CREDIT CHECK, "
        "viagra\n\nBest regards,",
    )
    spammy, fired = spamassassin_score(build_subject(Workspace.open(root), "spring-launch").raw)
    assert spammy > score and fired
