"""Templates cannot run code: the classic Jinja escapes, in every place a writer can put Jinja,
are one-line template errors naming the file and line, in campaign scope and recipient scope."""

from __future__ import annotations

import pytest

from pipeline.assembly.campaign import check_campaign
from pipeline.errors import CommsError
from tests.assembly.conftest import LAYOUT

# Each reaches Python objects in an unsandboxed environment (os via the module globals).
ESCAPES = [
    "cycler.__init__.__globals__.os.environ",
    "''.__class__.__mro__[1].__subclasses__()",
    "lipsum.__globals__['os'].popen('id').read()",
    "self._TemplateReference__context",
    "config.items()",
    "range.__class__",
]
# The same reach, started from recipient data: rendered per recipient, checked on the [preview] contact.
RECIPIENT_ESCAPES = [
    "contact.email.__class__.__mro__",
    "contact.attributes.__class__.__init__.__globals__",
    "contact.email.format.__globals__",
]


def _error(mini) -> str:
    with pytest.raises(CommsError) as caught:
        campaign = mini.assemble()
        check_campaign(mini.workspace(), campaign)
    message = str(caught.value)
    assert "\n" not in message
    assert "Traceback" not in message
    return message


@pytest.mark.parametrize("escape", ESCAPES + RECIPIENT_ESCAPES)
def test_an_escape_in_the_copy_body_is_an_error_at_its_line(mini, escape):
    mini.copy(f"Hello.\n\nSee {{{{ {escape} }}}} here.\n")
    # The body starts on line 8 (after 5 fields between the fences); the escape is its third line.
    assert _error(mini).startswith("templates/copy/hello.md:10: ")


@pytest.mark.parametrize("escape", ESCAPES + RECIPIENT_ESCAPES)
def test_an_escape_in_the_subject_is_an_error_at_its_line(mini, escape):
    mini.copy("Hi.\n", subject=f'"Hi {{{{ {escape} }}}}"')
    assert _error(mini).startswith("templates/copy/hello.md:2: ")


@pytest.mark.parametrize("escape", ESCAPES + RECIPIENT_ESCAPES)
def test_an_escape_in_a_front_matter_field_is_an_error_at_its_line(mini, escape):
    mini.copy("{{ copy.intro }}\n", intro=f'"Look: {{{{ {escape} }}}}"')
    assert _error(mini).startswith("templates/copy/hello.md:7: ")


@pytest.mark.parametrize("escape", ESCAPES + RECIPIENT_ESCAPES)
def test_an_escape_in_the_layout_is_an_error_at_its_line(mini, escape):
    lines = LAYOUT.splitlines()
    lines[8] = f"        <mj-text>{{{{ {escape} }}}}</mj-text>"
    mini.layout("\n".join(lines) + "\n")
    assert _error(mini).startswith("templates/layouts/basic.mjml:9: ")


@pytest.mark.parametrize("escape", ESCAPES + RECIPIENT_ESCAPES)
def test_an_escape_in_a_partial_is_an_error_at_its_line(mini, escape):
    mini.write(
        "templates/partials/footer.mjml",
        "<mj-section>\n  <mj-column>\n"
        f"    <mj-text>{{{{ {escape} }}}}</mj-text>\n  </mj-column>\n</mj-section>\n",
    )
    assert _error(mini).startswith("templates/partials/footer.mjml:3: ")


def test_settings_are_not_in_reach_of_templates(mini, monkeypatch):
    """Brand values are the only settings a template sees: no object that holds the secrets."""
    monkeypatch.setenv("COMMS_SECRET", "s" * 40)
    monkeypatch.setenv("COMMS_SMTP_PASSWORD", "hunter2-very-secret")
    mini.copy("{{ brand }} {{ campaign }}\n")
    campaign = mini.assemble()
    assert "hunter2" not in campaign.html and "s" * 40 not in campaign.html
    for name in ("settings", "config", "ws", "secrets"):
        mini.copy(f"{{{{ {name} }}}}\n")
        assert f"undefined variable {name}" in _error(mini)
