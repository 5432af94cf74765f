"""Every campaign of the sample workspace assembles and passes the preview contact check."""

from __future__ import annotations

import pytest

from pipeline.assembly.campaign import assemble, check_campaign
from pipeline.assembly.personalize import Personalizer, preview_recipient
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
