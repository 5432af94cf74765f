"""Per-recipient work is the compiled render only: MJML and premailer run once, whatever the audience."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import premailer

import pipeline.assembly.mjml
from pipeline.assembly.personalize import Personalizer

from .conftest import LINKS


def _counting(counter: Counter[str], name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    def spy(*args: Any, **kwargs: Any) -> Any:
        counter[name] += 1
        return function(*args, **kwargs)

    return spy


def test_mjml_and_premailer_run_once_for_500_recipients(mini, recipient, monkeypatch):
    calls: Counter[str] = Counter()
    monkeypatch.setattr(
        pipeline.assembly.mjml, "mjml2html", _counting(calls, "mjml", pipeline.assembly.mjml.mjml2html)
    )
    monkeypatch.setattr(
        premailer.Premailer, "transform", _counting(calls, "premailer", premailer.Premailer.transform)
    )
    mini.layout(
        """\
<mjml><mj-body>
  <mj-section><mj-column>
    <mj-text>{{ copy.body }}</mj-text>
    <mj-button href="https://x.example/o?c={{ contact.email | urlencode }}">Open</mj-button>
  </mj-column></mj-section>
  <mj-include path="footer.mjml" />
</mj-body></mjml>
"""
    )

    personalizer = Personalizer(mini.assemble().templates)
    rendered = [personalizer.render(recipient(f"r{i}@example.com"), LINKS) for i in range(500)]

    assert calls == Counter(mjml=1, premailer=1)
    assert len({r.html for r in rendered}) == 500
    assert "r499%40example.com" in rendered[-1].html and "Unsubscribe" in rendered[-1].html
