"""Every campaign of the sample workspace assembles and passes the preview contact check."""

from __future__ import annotations

import re

import pytest

from pipeline.assembly.campaign import assemble, check_campaign
from pipeline.assembly.personalize import Personalizer, preview_recipient
from pipeline.types import Recipient
from pipeline.workspace.folders import Workspace

from .conftest import LINKS


def test_every_sample_campaign_assembles_and_checks(workspace_dir):
    ws = Workspace.open(workspace_dir)
    names = ws.campaign_names()
    if not names:
        pytest.skip("the sample workspace has no campaigns yet")
    for name in names:
        campaign = assemble(ws, name)
        check_campaign(ws, campaign)
        rendered = Personalizer(campaign.templates).render(preview_recipient(ws.settings), LINKS)
        assert ws.settings.preview.email in rendered.html + rendered.text, name
        assert LINKS.unsubscribe_url in rendered.html, name
        assert rendered.text.strip() and rendered.subject.strip(), name


def test_sample_messages_have_what_clients_and_readers_need(workspace_dir):
    """What `comms check` found in the sample before it was fixed stays fixed (issue 11, item 4)."""
    ws = Workspace.open(workspace_dir)
    for name in ws.campaign_names():
        campaign = assemble(ws, name)
        rendered = Personalizer(campaign.templates).render(preview_recipient(ws.settings), LINKS)
        html = rendered.html
        assert '<html lang="en-GB"' in html, name  # the contact's locale, never "und"
        assert html.count("<h1") == 1, name
        assert 'height="auto"' not in html, name
        assert all(re.search(r"\salt=", img) for img in re.findall(r"<img\b[^>]*>", html)), name
        assert "color:#ffffff" not in html.lower().split("</head>", 1)[1][:2000], name  # the preheader
        for line in rendered.text.splitlines():
            assert len(line) <= 78 or "<http" in line, (name, line)


def test_a_contact_without_a_locale_gets_english_and_the_copy_can_say(workspace_dir):
    ws = Workspace.open(workspace_dir)
    campaign = assemble(ws, "q3-results")
    rendered = Personalizer(campaign.templates).render(Recipient("a@example.com", locale="pl_PL"), LINKS)
    assert '<html lang="pl-PL"' in rendered.html
    rendered = Personalizer(campaign.templates).render(Recipient("a@example.com"), LINKS)
    assert '<html lang="en"' in rendered.html
    copy = workspace_dir / "templates/copy/q3-results.md"
    copy.write_text(copy.read_text().replace("layout: announcement\n", 'layout: announcement\nlang: "cy"\n'))
    assert '<html lang="cy"' in assemble(ws, "q3-results").html
