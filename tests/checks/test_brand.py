"""Brand rules: palette, fonts, logo, footer and vocabulary, each pointing at the line to edit."""

from __future__ import annotations

from pathlib import Path

from tests.checks.conftest import edit, finding_at_edit, found, line_of, run, where

LAYOUT = "templates/layouts/promotion.mjml"
COPY = "templates/copy/spring-launch.md"


def test_a_colour_off_the_palette_names_the_layout_line(root: Path) -> None:
    finding = finding_at_edit(
        root,
        LAYOUT,
        '<mj-text font-weight="bold" padding="14px 18px">',
        '<mj-text font-weight="bold" color="#D81B60" padding="14px 18px">',
        "brand.colour-off-palette",
    )
    assert "#D81B60" in finding.message and finding.severity == "warning"


def test_a_near_miss_of_a_brand_colour_passes(root: Path) -> None:
    # One step off the primary blue in the last hex digit: CIEDE2000 well under the limit of 5.
    edit(
        root,
        LAYOUT,
        '<mj-text font-weight="bold" padding="14px 18px">',
        '<mj-text font-weight="bold" color="#1F4E78" padding="14px 18px">',
    )
    assert found(run(root, "spring-launch"), "brand.colour-off-palette") == []


def test_a_font_outside_the_brand_stacks(root: Path) -> None:
    finding = finding_at_edit(
        root,
        LAYOUT,
        '<mj-text font-weight="bold" padding="14px 18px">',
        '<mj-text font-weight="bold" font-family="Comic Sans MS, cursive" padding="14px 18px">',
        "brand.font-off-brand",
    )
    assert "comic sans ms" in finding.message


def test_footer_without_address_is_an_error_in_the_partial(root: Path) -> None:
    edit(root, "templates/partials/footer.mjml", "      {{ brand.address }}\n", "")
    report = run(root, "spring-launch")
    [finding] = found(report, "brand.footer-address")
    company = line_of(root, "templates/partials/footer.mjml", "{{ brand.company }}")
    assert finding.blocks and where(finding) == ("templates/partials/footer.mjml", company)
    assert found(report, "brand.footer-company") == [] and found(report, "brand.footer-unsubscribe") == []


def test_logo_missing(root: Path) -> None:
    edit(
        root,
        "templates/partials/header.mjml",
        'src="{{ brand.logo_url }}"',
        'src="https://kestrelforge.example/other.png"',
    )
    assert found(run(root, "q3-results"), "brand.logo-missing")[0].blocks


def test_vocabulary_rejected_word_and_wrong_casing_in_the_copy(root: Path) -> None:
    rejected = edit(root, COPY, "or send us a drawing", "or send us a cheap drawing")
    casing = edit(root, COPY, "Best regards,", "Best regards from kestrel forge,")
    report = run(root, "spring-launch")
    [bad] = found(report, "brand.vocabulary-rejected")
    assert where(bad) == (COPY, rejected) and "'competitive'" in bad.fix and bad.blocks
    [case] = found(report, "brand.vocabulary-casing")
    assert where(case) == (COPY, casing) and "'Kestrel Forge'" in case.fix
