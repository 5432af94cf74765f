"""What `comms send --dry-run` and `comms plan` say about a test before anything is sent, and the
one-line errors of a wrong `variants:` or `test:`."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from pipeline.storage.models import utcnow
from tests.experiments.conftest import CAMPAIGN, add_customers
from tests.support.cli import assert_one_line_error, comms

COPY = Path("templates") / "copy" / f"{CAMPAIGN}.md"


@pytest.fixture
def root(ws_root: Path) -> Path:
    return ws_root


def test_dry_run_prints_the_sample_needed_and_offers_learn_only_to_a_small_audience(
    root: Path, engine: Engine
) -> None:
    add_customers(root, engine, 49)

    result = comms("send", CAMPAIGN, "--dry-run", cwd=root)

    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "A/B test   2 variants (offer, question; control offer), human click rate" in out
    assert "baseline 8.0% (stated in the test): 177 per arm needed at 95% confidence, 80% power" in out
    assert "test share 50%: 24 of 49 in the arms (12 per arm); the other 25 wait for the winner" in out
    assert "too small: 12 per arm detects only" in out
    assert "Consider `share: learn only`: 24 per arm detects ±33.8 points" in out  # a 49-person team


def test_plan_prints_each_tested_campaigns_sample_against_its_audience(root: Path, engine: Engine) -> None:
    add_customers(root, engine, 4000)
    when = (utcnow() + timedelta(days=3)).strftime("%Y-%m-%dT09:00")
    (root / "schedules" / "tooling-offer.toml").write_text(
        f'campaign = "{CAMPAIGN}"\ntimezone = "Europe/London"\n\n[[trigger]]\nat = "{when}"\n'
    )

    result = comms("plan", cwd=root)

    assert result.returncode == 0, result.stderr
    assert f"A/B test {CAMPAIGN}: 2 variants" in result.stdout
    assert "177 per arm needed" in result.stdout
    assert "test share 50%: 2,000 of 4,000 in the arms (1,000 per arm)" in result.stdout
    assert "too small" not in result.stdout


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            '    headline: "Is your tooling ready?"',
            "    audience: staff",
            "variant 'question' may not change `audience`",
        ),
        ("  share: 50% ", "  share: 150% ", "`test:` share"),
        ("  decide_after: 24h ", "  decide_after: tomorrow ", "decide_after must look like"),
        ("  - name: question", "  - name: offer", "two variants are named 'offer'"),
    ],
)
def test_a_wrong_variant_or_test_is_one_line_naming_the_file_and_line(
    root: Path, old: str, new: str, message: str
) -> None:
    copy = root / COPY
    text = copy.read_text(encoding="utf-8")
    assert old in text
    copy.write_text(text.replace(old, new), encoding="utf-8")
    lines = text.splitlines()
    key = "variants:" if "variant" in message else "test:"
    line = lines.index(key) + 1

    result = comms("send", CAMPAIGN, "--dry-run", cwd=root)

    assert_one_line_error(result, f"{COPY}:{line}:", message)
