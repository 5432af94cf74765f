"""Accessibility rules on the built message, each finding at the copy or layout line to fix."""

from __future__ import annotations

from pathlib import Path

from pipeline.checks.subject import build_subject
from pipeline.workspace.folders import Workspace
from tests.checks.conftest import edit, finding_at_edit, found, run, where

COPY = "templates/copy/spring-launch.md"
LAYOUT = "templates/layouts/promotion.mjml"


def test_html_lang_is_the_copys_language_or_the_contacts_locale_never_und(root: Path) -> None:
    ws = Workspace.open(root)
    assert build_subject(ws, "spring-launch").tree.get("lang") == "en-GB"  # the [preview] contact's locale
    edit(root, COPY, "layout: promotion\n", 'layout: promotion\nlang: "pl"\n')
    assert build_subject(Workspace.open(root), "spring-launch").tree.get("lang") == "pl"
    assert found(run(root, "spring-launch"), "accessibility.lang") == []


def test_a_second_h1_in_the_copy_is_found_on_its_line(root: Path) -> None:
    finding = finding_at_edit(
        root, COPY, "What that means for your parts:", "# What that means for your parts", "accessibility.h1"
    )
    assert finding.blocks


def test_a_skipped_heading_level(root: Path) -> None:
    finding = finding_at_edit(
        root,
        COPY,
        "What that means for your parts:",
        "### What that means for your parts",
        "accessibility.heading-skip",
    )
    assert "<h3>" in finding.message and "<h1>" in finding.message


def test_vague_link_text(root: Path) -> None:
    finding = finding_at_edit(
        root,
        COPY,
        "You can [read the full KF-9 specifications]",
        "You can [click here]",
        "accessibility.link-text",
    )
    assert "'click here'" in finding.message


def test_alt_text_that_is_a_file_name(root: Path) -> None:
    finding_at_edit(
        root,
        COPY,
        'hero_image_alt: "The KF-9 press line at work on the Sheffield shop floor"',
        'hero_image_alt: "kf9-hero.jpg"',
        "accessibility.alt-filename",
    )


def test_a_linked_image_without_alt_text(root: Path) -> None:
    # MJML's default alt="" (which MRML drops and assembly puts back) is wrong on a linked image.
    line = edit(
        root,
        COPY,
        'hero_image_alt: "The KF-9 press line at work on the Sheffield shop floor"',
        'hero_image_alt: ""',
    )
    [finding] = found(run(root, "spring-launch"), "accessibility.alt-empty")
    src_line = line - 1  # hero_image: the URL the finding names is written on the line above
    assert where(finding) == (COPY, src_line) and "link" in finding.message


def test_low_contrast_text_names_the_layout_line(root: Path) -> None:
    line = edit(
        root,
        LAYOUT,
        '<mj-text font-weight="bold" padding="14px 18px">',
        '<mj-text font-weight="bold" color="#F6B26B" padding="14px 18px">',
    )
    [finding] = found(run(root, "spring-launch"), "accessibility.contrast")
    assert "#f6b26b" in finding.message.lower() and finding.blocks
    assert where(finding) == (LAYOUT, line)  # where the colour is written, not the copy's text


def test_small_text(root: Path) -> None:
    finding = finding_at_edit(
        root,
        LAYOUT,
        '<mj-text font-size="14px" line-height="1.5" padding="0 8px">',
        '<mj-text font-size="9px" line-height="1.5" padding="0 8px">',
        "accessibility.font-size",
    )
    assert "9px" in finding.message
