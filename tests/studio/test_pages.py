"""The studio over HTTP: the campaign list, a campaign for a contact, the source view, the event
stream that drives live reload, and the results pages under each privacy mode."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from html import unescape
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine

from pipeline.workspace.settings import Settings
from tests.conftest import sqlite_only
from tests.feedback.conftest import World
from tests.reports.conftest import build_run
from tests.support.workspace import configure

pytestmark = sqlite_only  # see tests/conftest.py

CAMPAIGN = "spring-launch"


def test_the_campaign_list_shows_department_audience_next_send_and_check_status(studio: str) -> None:
    page = httpx.get(studio + "/", timeout=60)
    assert page.status_code == 200
    row = re.search(r'<tr>\s*<td><a href="/campaigns/spring-launch">.*?</tr>', page.text, re.DOTALL)
    assert row is not None
    cells = [
        unescape(re.sub(r"<[^>]+>", "", cell)).strip()
        for cell in re.findall(r"<td>(.*?)</td>", row[0], re.DOTALL)
    ]
    # schedules/spring-launch-eu.toml: 2027-03-01T09:00 Europe/Warsaw
    assert cells[:3] == ["spring-launch", "sales", "customers"]
    assert cells[3] == "2027-03-01 09:00 CET (spring-launch-eu)"
    assert re.fullmatch(r"(\d+ (error|warning|info)s?(, )?)+|no findings", cells[4]), cells[4]


def test_a_campaign_renders_for_a_stored_contact_or_the_preview_contact(studio: str, world: World) -> None:
    world.add_contact("grace@example.com", first_name="Grace")
    preview = httpx.get(f"{studio}/campaigns/{CAMPAIGN}", timeout=60)
    assert preview.status_code == 200
    assert "Alex Morgan &lt;alex.morgan@example.com&gt;" in preview.text  # comms.toml [preview]
    assert ">Alex, meet the KF-9 closed-die press line</dd>" in preview.text

    grace = httpx.get(f"{studio}/campaigns/{CAMPAIGN}", params={"contact": "GRACE@example.com"}, timeout=60)
    assert "Grace &lt;grace@example.com&gt;" in grace.text
    assert ">Grace, meet the KF-9 closed-die press line</dd>" in grace.text

    nobody = httpx.get(f"{studio}/campaigns/{CAMPAIGN}", params={"contact": "nobody@example.com"}, timeout=60)
    [error] = re.findall(r'<p class="error" role="alert">(.*?)</p>', nobody.text)
    assert unescape(error) == "no contact nobody@example.com in the database"


def test_the_size_is_measured_against_gmails_clipping_line(studio: str, workspace_dir: Path) -> None:
    small = httpx.get(f"{studio}/campaigns/{CAMPAIGN}", timeout=60).text
    assert "of Gmail's 102 KB clipping line" in small and "Gmail will clip this message" not in small
    copy = workspace_dir / f"templates/copy/{CAMPAIGN}.md"
    padding = "\n\n".join(f"Paragraph {i} of a very long newsletter about forgings." for i in range(2500))
    copy.write_text(copy.read_text(encoding="utf-8") + "\n\n" + padding + "\n", encoding="utf-8")
    large = httpx.get(f"{studio}/campaigns/{CAMPAIGN}", timeout=60).text
    assert "Gmail will clip this message" in large
    kb = float(re.search(r"HTML ([\d.]+) KB of Gmail", large)[1])  # type: ignore[index]
    assert kb > 102


def test_the_contact_search_finds_contacts_by_part_of_their_address(studio: str, world: World) -> None:
    world.add_contact("grace.hopper@navy.example", first_name="Grace")
    world.add_contact("ada@example.com", first_name="Ada")
    found = httpx.get(f"{studio}/contacts", params={"q": "HOPPER"}, timeout=60).json()
    assert found == [{"email": "grace.hopper@navy.example", "name": "Grace"}]
    assert httpx.get(f"{studio}/contacts", params={"q": "%"}, timeout=60).json() == []  # LIKE escaped


def test_the_source_view_shows_workspace_sources_only(studio: str, workspace_dir: Path) -> None:
    shown = httpx.get(
        f"{studio}/source", params={"path": "templates/partials/header.mjml", "line": "3"}, timeout=60
    )
    assert shown.status_code == 200
    lines = (workspace_dir / "templates/partials/header.mjml").read_text(encoding="utf-8").splitlines()
    marked = re.search(r'<li id="L3" class="marked" aria-current="true"><code>(.*?)</code>', shown.text)
    assert marked is not None and unescape(marked[1]) == lines[2]
    (workspace_dir / "secret.txt").write_text("not for the studio", encoding="utf-8")
    for path in ("secret.txt", "../secret.txt", "/etc/passwd", "templates/../secret.txt", "templates"):
        refused = httpx.get(f"{studio}/source", params={"path": path}, timeout=60)
        assert refused.status_code == 404, path
        assert "not for the studio" not in refused.text


@pytest.fixture
def events(studio: str) -> Iterator[Iterator[tuple[str, str]]]:
    """The studio's event stream as (event, data) pairs, opened and past its `ready` event."""
    with httpx.stream("GET", f"{studio}/events", timeout=60) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        pairs = _events(response.iter_lines())
        assert next(pairs)[0] == "ready"
        yield pairs


def _events(lines: Iterator[str]) -> Iterator[tuple[str, str]]:
    event, data = "message", ""
    for line in lines:
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: "):
            data = line[6:]
        elif line == "" and data:
            yield event, data
            event, data = "message", ""


def test_saving_a_source_file_sends_a_change_event_and_other_files_do_not(
    events: Iterator[tuple[str, str]], workspace_dir: Path
) -> None:
    (workspace_dir / "outbox").mkdir(exist_ok=True)
    sources = [
        "templates/copy/spring-launch.md",
        "templates/layouts/promotion.mjml",
        "templates/partials/footer.mjml",
        "audiences/customers.toml",
        "comms.toml",
        "reports/notes/2027-Q1.md",  # the exec report's notes and goals
        "reports/goals.toml",
    ]
    for source in sources:
        (workspace_dir / "outbox" / "x.eml").write_text("not a source", encoding="utf-8")  # no event
        (workspace_dir / "reports" / "exec-2027-Q1.json").write_text("{}", encoding="utf-8")  # no event
        (workspace_dir / "comms.db-journal").write_text("not a source", encoding="utf-8")  # no event
        path = workspace_dir / source
        path.write_text(path.read_text(encoding="utf-8") + "\n", encoding="utf-8")
        event, data = next(events)
        assert (event, json.loads(data)) == ("change", {"path": source})


def test_a_broken_comms_toml_shows_as_its_one_line_error(studio: str, workspace_dir: Path) -> None:
    settings_file = workspace_dir / "comms.toml"
    text = settings_file.read_text(encoding="utf-8")
    settings_file.write_text(text + "\n[sender]\n", encoding="utf-8")  # a second [sender] table
    bad_line = len(text.splitlines()) + 2
    for path in ("/", "/campaigns/spring-launch", "/runs"):
        page = httpx.get(studio + path, timeout=60)
        [error] = re.findall(r'<p class="error" role="alert">(.*?)</p>', page.text)
        assert "comms.toml: not valid TOML" in unescape(error), error
        assert f"line {bad_line}" in unescape(error), error


# -- results and privacy ------------------------------------------------------------------------------

PEOPLE = [{"email": f"p{i}@example.com", "attributes": {"department": "sales"}} for i in range(3)]


def _studio_settings(workspace_dir: Path, mode: str) -> None:
    configure(workspace_dir, {"reports": f'mode = "{mode}"\nmin_cell = 5'})


def test_the_run_page_shows_the_report_and_people_only_in_individual_mode(
    studio: str, settings: Settings, engine: Engine, base_url: str, workspace_dir: Path
) -> None:
    run_id, messages = build_run(settings, engine, PEOPLE)
    httpx.get(messages["p0@example.com"].clicks[1], headers={"User-Agent": "Mozilla/5.0 Firefox/128.0"})

    listed = httpx.get(f"{studio}/runs", timeout=60).text
    assert f'<a href="/runs/{run_id}">{run_id}</a>' in listed

    for mode in ("anonymous", "aggregate"):
        _studio_settings(workspace_dir, mode)
        run = httpx.get(f"{studio}/runs/{run_id}", timeout=60)
        assert run.status_code == 200 and 'aria-label="Funnel"' in run.text
        assert f"/runs/{run_id}/people" not in run.text
        people = httpx.get(f"{studio}/runs/{run_id}/people", timeout=60)
        assert people.status_code == 404
        assert "per-person output needs [reports] mode = &#34;individual&#34;" in people.text
        assert "p0@example.com" not in run.text + people.text

    _studio_settings(workspace_dir, "individual")
    run = httpx.get(f"{studio}/runs/{run_id}", timeout=60)
    assert f'href="/runs/{run_id}/people"' in run.text
    people = httpx.get(f"{studio}/runs/{run_id}/people", timeout=60)
    assert people.status_code == 200
    assert all(f"<td>{p['email']}</td>" in people.text for p in PEOPLE)

    assert httpx.get(f"{studio}/runs/9999", timeout=60).status_code == 404
    series = httpx.get(f"{studio}/series/spring", timeout=60)
    assert series.status_code == 200 and "Human click rate per run (p-chart)" in series.text
