"""Content rules, and waivers: a rule turned off for one campaign, reported as waived."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.audience.importer import import_contacts
from pipeline.errors import CopyError, LayoutError, SettingsError
from pipeline.storage.engines import make_engine, upgrade
from tests.checks.conftest import edit, found, run, where

COPY = "templates/copy/spring-launch.md"


def test_a_merge_field_of_another_tool_and_lorem_ipsum(root: Path) -> None:
    lorem = edit(
        root,
        COPY,
        "What that means for your parts:",
        "Lorem ipsum dolor sit amet.\n\nWhat that means for your parts:",
    )
    merge = edit(root, COPY, "Best regards,", "Dear *|FNAME|*, see you soon.\n\nBest regards,")
    report = run(root, "spring-launch")
    [placeholder] = found(report, "content.foreign-placeholder")
    assert where(placeholder) == (COPY, merge) and "|FNAME|" in placeholder.message
    [placeholder_text] = found(report, "content.lorem-ipsum")
    assert where(placeholder_text) == (COPY, lorem)


def test_an_unknown_mjml_tag_on_its_layout_line(root: Path) -> None:
    layout = "templates/layouts/promotion.mjml"
    line = edit(
        root,
        layout,
        '<mj-text css-class="copy">{{ copy.body }}</mj-text>',
        '<mj-txt css-class="copy">{{ copy.body }}</mj-txt>',
    )
    # Assembly itself refuses it (issue 9), so `comms check` reports the one-line error, never a report.
    with pytest.raises(LayoutError, match="unknown MJML tag <mj-txt>") as refused:
        run(root, "spring-launch")
    assert (str(refused.value.path), refused.value.line) == (layout, line)


def test_subject_rules_and_a_missing_cta(root: Path) -> None:
    line = edit(root, COPY, 'subject: "{{ contact.first_name', 'subject: "HUGE news, {{ contact.first_name')
    edit(
        root,
        "templates/layouts/promotion.mjml",
        '<mj-button href="{{ copy.cta_url }}" align="left" padding="8px 32px '
        '0">{{ copy.cta_label }}</mj-button>',
        "",
    )
    edit(root, "templates/layouts/promotion.mjml", 'href="{{ copy.cta_url }}" />', "/>")
    edit(
        root,
        "templates/layouts/promotion.mjml",
        '<mj-button href="{{ copy.cta_url }}" align="center" padding="0 '
        '32px">{{ copy.cta_label }}</mj-button>',
        "",
    )
    report = run(root, "spring-launch")
    [caps] = found(report, "content.subject-caps")
    assert where(caps) == (COPY, line) and "HUGE" in caps.message
    [cta] = found(report, "content.cta-missing")
    assert where(cta) == (COPY, _line(root, COPY, "cta_url:")) and cta.blocks


def _line(root: Path, relative: str, needle: str) -> int:
    text = (root / relative).read_text(encoding="utf-8")
    return text.count("\n", 0, text.index(needle)) + 1


def test_a_waiver_turns_one_rule_off_for_one_campaign_and_is_reported(root: Path) -> None:
    edit(root, COPY, 'subject: "{{ contact.first_name', 'subject: "KESTREL news, {{ contact.first_name')
    edit(
        root,
        COPY,
        "layout: promotion\n",
        'layout: promotion\nwaive:\n  content.subject-caps: "KESTREL is the name of the launch event"\n',
    )
    [waived] = found(run(root, "spring-launch"), "content.subject-caps")
    assert waived.waived == "KESTREL is the name of the launch event" and not waived.blocks
    edit(
        root,
        "templates/copy/billing-portal.md",
        'subject: "{{ contact.company',
        'subject: "KESTREL news: {{ contact.company',
    )
    [other] = found(run(root, "billing-portal"), "content.subject-caps")
    assert other.waived is None  # the waiver is that campaign's only


def test_a_waiver_needs_a_known_rule_and_a_reason(root: Path) -> None:
    line = edit(root, COPY, "layout: promotion\n", 'layout: promotion\nwaive:\n  content.subject-caps: ""\n')
    with pytest.raises(CopyError, match="say why") as error:
        run(root, "spring-launch")
    assert (str(error.value.path), error.value.line) == (COPY, line + 1)
    edit(root, COPY, 'content.subject-caps: ""', 'content.no-such-rule: "because"')
    with pytest.raises(CopyError, match="unknown rule 'content.no-such-rule'"):
        run(root, "spring-launch")


def test_checks_severity_changes_a_rules_level_and_unknown_ids_are_refused(root: Path) -> None:
    edit(root, COPY, 'subject: "{{ contact.first_name', 'subject: "HUGE news, {{ contact.first_name')
    with (root / "comms.toml").open("a", encoding="utf-8") as settings:
        settings.write(
            '[checks.severity]\n"content.subject-caps" = "error"\n"compatibility.unsupported" = "off"\n'
        )
    report = run(root, "spring-launch")
    assert found(report, "content.subject-caps")[0].blocks
    assert found(report, "compatibility.unsupported") == []
    with (root / "comms.toml").open("a", encoding="utf-8") as settings:
        settings.write('"brand.no-such" = "off"\n')
    with pytest.raises(SettingsError, match="unknown rule 'brand.no-such'") as error:
        run(root, "spring-launch")
    assert error.value.line is not None


def test_a_variable_some_recipients_lack_is_found_in_the_audience_with_its_line(root: Path) -> None:
    # No database yet: nothing to read the audience from, so the family says nothing.
    assert found(run(root, "spring-launch"), "recipients.missing-variable") == []
    url = f"sqlite:///{root / 'comms.db'}"
    upgrade(url)
    engine = make_engine(url)
    people = root / "people.csv"
    people.write_text(
        "email,first_name,marketing_consent\n"
        + "".join(f"p{i}@example.com,{'' if i % 4 == 0 else f'First{i}'},true\n" for i in range(12)),
        encoding="utf-8",
    )
    import_contacts(engine, people, list_name="customers")
    engine.dispose()
    line = edit(root, COPY, 'Hi {{ contact.first_name | default("there") }},', "Hi {{ contact.first_name }},")

    [finding] = found(run(root, "spring-launch"), "recipients.missing-variable")

    assert where(finding) == (COPY, line) and finding.blocks
    assert "contact.first_name is missing for 3 of 12 recipients" in finding.message
    assert "p0@example.com, p4@example.com, p8@example.com" in finding.message
