"""The plain-text alternative: readable, links kept as URLs, never empty."""

from __future__ import annotations

from .conftest import LINKS


def test_text_part_is_readable_with_links_as_urls(mini, recipient):
    mini.copy(
        """\
Hello {{ contact.first_name }},

Read [the report](https://x.example/report) today.

- first point
- second point
"""
    )
    text = mini.render(recipient(first_name="Ada")).text
    assert text.startswith("Hello Ada,\n\nRead the report <https://x.example/report> today.")
    assert "- first point\n- second point" in text
    assert f"Unsubscribe <{LINKS.unsubscribe_url}>" in text
    assert "Kestrel Forge Ltd., Unit 7" in text
    # What the reader never sees stays out: CSS, the hidden preheader, Outlook-only markup.
    for hidden in ("{", "mj-column", "A short note", "mso"):
        assert hidden not in text


def test_text_part_is_never_empty(mini, recipient):
    mini.layout(
        '<mjml><mj-body><mj-section><mj-column><mj-image src="https://x.example/a.png" alt="" />'
        "</mj-column></mj-section></mj-body></mjml>"
    )
    campaign = mini.assemble()
    assert mini.render(recipient()).text == "A short note"
    assert any("plain-text part is only the preheader" in w for w in campaign.warnings)


def test_subject_and_text_are_not_html_escaped_but_html_is(mini, recipient):
    rendered = mini.render(recipient(first_name="Tom & <Jerry>"))
    assert rendered.subject == "Hello Tom & <Jerry>"
    assert "Hi Tom & <Jerry>, welcome." in rendered.text
    assert "Hi Tom &amp; &lt;Jerry&gt;, welcome." in rendered.html


def test_text_is_wrapped_at_78_outside_urls_and_numbered_lists_keep_their_numbers(mini, recipient):
    long_url = "https://x.example/" + "a" * 90
    mini.copy(
        f"""\
{"Forged parts ship within three weeks. " * 6}

1. Load and unload from the marked positions only; the curtain covers nothing else at all.
2. Call your team leader.

Read [the full report]({long_url}) before Monday.
"""
    )
    text = mini.render(recipient()).text
    lines = text.splitlines()
    assert all(len(line) <= 78 for line in lines if long_url not in line)
    assert f"<{long_url}>" in text  # a URL is never broken
    first = next(i for i, line in enumerate(lines) if line.startswith("1. "))
    assert lines[first + 1].startswith("   ") and lines[first + 2].startswith("2. Call your team leader.")
    assert "- Load" not in text
