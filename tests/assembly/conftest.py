"""A small workspace of its own for each assembly test, so the tests do not lean on the sample content."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from textwrap import dedent

import pytest

from pipeline.assembly.campaign import Campaign, assemble
from pipeline.assembly.personalize import Personalizer
from pipeline.types import Links, Recipient, Rendered
from pipeline.workspace.folders import Workspace

REPO = Path(__file__).resolve().parents[2]

LAYOUT = """\
<mjml>
  <mj-head>
    <mj-title>{{ copy.subject }}</mj-title>
    <mj-preview>{{ copy.preheader }}</mj-preview>
  </mj-head>
  <mj-body width="600px">
    <mj-section>
      <mj-column>
        <mj-text>{{ copy.body }}</mj-text>
      </mj-column>
    </mj-section>
    {% include "footer.mjml" %}
  </mj-body>
</mjml>
"""

FOOTER = """\
<mj-section>
  <mj-column>
    <mj-text>{{ brand.company }}, {{ brand.address }}<br />
      <a href="{{ unsubscribe_url }}">Unsubscribe</a></mj-text>
  </mj-column>
</mj-section>
"""

LINKS = Links(
    unsubscribe_url="https://t.example/u/TOKEN-U",
    preferences_url="https://t.example/p/TOKEN-P",
    view_online_url="https://t.example/v/TOKEN-V",
)


@dataclass
class MiniWorkspace:
    root: Path

    def write(self, relative: str, text: str) -> Path:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(dedent(text), encoding="utf-8")
        return path

    def copy(self, body: str, name: str = "hello", **front: object) -> Path:
        """Write templates/copy/NAME.md; FRONT overrides the defaults (None drops a field)."""
        fields: dict[str, object] = {
            "subject": "Hello {{ contact.first_name | default('there') }}",
            "preheader": "A short note",
            "layout": "basic",
            "audience": "everyone",
            "department": "sales",
        }
        fields.update(front)
        lines = [f"{key}: {value}" for key, value in fields.items() if value is not None]
        return self.write(f"templates/copy/{name}.md", "---\n" + "\n".join(lines) + "\n---\n" + dedent(body))

    def layout(self, text: str, name: str = "basic") -> Path:
        return self.write(f"templates/layouts/{name}.mjml", text)

    def workspace(self) -> Workspace:
        return Workspace.open(self.root)

    def assemble(self, name: str = "hello") -> Campaign:
        return assemble(self.workspace(), name)

    def render(self, recipient: Recipient, name: str = "hello") -> Rendered:
        return Personalizer(self.assemble(name).templates).render(recipient, LINKS)


@pytest.fixture
def mini(tmp_path: Path) -> MiniWorkspace:
    workspace = MiniWorkspace(tmp_path / "mini")
    workspace.root.mkdir()
    shutil.copy(REPO / "comms.toml", workspace.root / "comms.toml")
    workspace.write("audiences/everyone.toml", 'description = "Everyone"\n')
    workspace.layout(LAYOUT)
    workspace.write("templates/partials/footer.mjml", FOOTER)
    workspace.copy("Hi {{ contact.first_name | default('there') }}, welcome.\n")
    return workspace


@pytest.fixture
def recipient() -> Callable[..., Recipient]:
    def make(email: str = "ada@example.com", **fields: object) -> Recipient:
        return Recipient(email=email, **fields)  # type: ignore[arg-type]

    return make
