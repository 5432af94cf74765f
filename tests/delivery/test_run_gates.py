"""What `comms send` checks before a run exists, what it leaves out, and how it ends (its exit code).

Real processes (`comms send` as a person runs it), a real SMTP server, the real database."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from pipeline.audience.importer import import_contacts
from pipeline.delivery.processes import default_processes
from pipeline.storage.engines import session
from pipeline.storage.models import Delivery, Run
from pipeline.storage.statuses import RunStatus
from tests.support.cli import assert_one_line_error, comms
from tests.support.smtp_server import SmtpServer
from tests.support.workspace import CAMPAIGN, configure, smtp_sections

COPY = Path("templates/copy") / f"{CAMPAIGN}.md"


def _runs(engine: Engine) -> list[Run]:
    with session(engine) as db:
        return list(db.exec(select(Run).order_by(Run.id)).scalars())


def _recipients(smtp: SmtpServer) -> list[str]:
    return sorted(rcpt for message in smtp.messages for rcpt in message.rcpt_tos)


def _import(ws_root: Path, engine: Engine, rows: list[tuple[str, str]], consent: str = "true") -> None:
    path = ws_root / "people.csv"
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["email", "first_name", "marketing_consent"])
        writer.writerows([email, first, consent] for email, first in rows)
    import_contacts(engine, path, list_name="customers")


# -- item 14: settings and audience are checked before a run is created ------------------------------


def test_an_empty_audience_is_an_error_and_no_run_is_made(ws_root: Path, engine: Engine, smtp) -> None:
    configure(ws_root, smtp_sections(smtp.port))
    _import(ws_root, engine, [("no-consent@example.com", "Ann")], consent="false")  # the list, no one in it
    result = comms("send", CAMPAIGN, "--yes", cwd=ws_root)
    assert_one_line_error(result, "audiences/customers.toml", "no one to send to", "--allow-empty")
    assert result.returncode == 1
    assert _runs(engine) == []

    allowed = comms("send", CAMPAIGN, "--yes", "--allow-empty", cwd=ws_root)
    assert allowed.returncode == 0, allowed.stderr
    [run] = _runs(engine)
    assert (run.recipient_count, run.status) == (0, RunStatus.finished)
    assert smtp.accepted == 0


def test_a_bad_from_email_is_refused_before_a_run_exists(ws_root: Path, engine: Engine, add_contacts, smtp):
    add_contacts(3)
    configure(ws_root, smtp_sections(smtp.port))
    toml = ws_root / "comms.toml"
    toml.write_text(
        toml.read_text().replace('from_email = "', 'from_email = "not an address <', 1), encoding="utf-8"
    )
    for args in (["--yes"], ["--dry-run"], ["--to", "reviewer@agency.example"]):
        result = comms("send", CAMPAIGN, *args, cwd=ws_root)
        assert_one_line_error(result, "comms.toml", "sender.from_email is not a plain email address")
        assert result.returncode == 1
    assert _runs(engine) == []  # none left stuck in `sending`
    assert smtp.accepted == 0


# -- item 12: a variable some recipients lack stops the run ------------------------------------------


def test_a_variable_missing_for_some_recipients_names_it_with_count_and_examples(
    ws_root: Path, engine: Engine, smtp
) -> None:
    configure(ws_root, smtp_sections(smtp.port))
    copy = ws_root / COPY
    text = copy.read_text(encoding="utf-8")
    copy.write_text(
        text.replace('Hi {{ contact.first_name | default("there") }},', "Hi {{ contact.first_name }},")
    )
    line = text.splitlines().index('Hi {{ contact.first_name | default("there") }},') + 1
    people = [(f"p{i}@example.com", "" if i % 5 == 0 else f"First{i}") for i in range(30)]
    _import(ws_root, engine, people)

    for args in (["--yes"], ["--dry-run"]):
        result = comms("send", CAMPAIGN, *args, cwd=ws_root)
        assert_one_line_error(
            result,
            f"{COPY}:{line}: contact.first_name is missing for 6 of 30 recipients",
            "(e.g. p0@example.com, p5@example.com, p10@example.com)",
            "default",
        )
    assert _runs(engine) == [] and smtp.accepted == 0


# -- item 8: a second `comms send` never mails anyone twice ------------------------------------------


def test_earlier_recipients_are_left_out_and_again_sends_to_them(
    ws_root: Path, engine: Engine, add_contacts, smtp
) -> None:
    configure(ws_root, smtp_sections(smtp.port))
    first = add_contacts(10)
    assert comms("send", CAMPAIGN, "--yes", cwd=ws_root).returncode == 0
    later = add_contacts(4, start=10)

    second = comms("send", CAMPAIGN, "--yes", cwd=ws_root)

    assert second.returncode == 0, second.stderr
    assert "4 recipients queued; 10 left out who already received this campaign" in second.stdout
    assert _recipients(smtp) == sorted(first + later)  # one copy each

    nobody = comms("send", CAMPAIGN, "--yes", cwd=ws_root)
    assert_one_line_error(nobody, "no one to send to (all 14 already received it; --again sends again)")
    asked = comms("send", CAMPAIGN, "--again", cwd=ws_root, input="n\n")
    assert "14 of them already received this campaign and are sent it AGAIN" in asked.stdout
    assert "Send again to people who already received it?" in asked.stdout
    assert asked.returncode == 1 and smtp.accepted == 14

    again = comms("send", CAMPAIGN, "--again", "--yes", cwd=ws_root)
    assert again.returncode == 0, again.stderr
    assert _recipients(smtp) == sorted((first + later) * 2)


# -- items 11 and 15: warnings and exit codes ---------------------------------------------------------


def test_send_shows_the_warnings_preview_shows(ws_root: Path, engine: Engine, add_contacts, smtp) -> None:
    # The check that stops a clipped message is turned down to a warning, so the run goes ahead.
    sections = smtp_sections(smtp.port) | {
        "checks": 'severity = { "deliverability.html-clipped" = "warning" }'
    }
    configure(ws_root, sections)
    add_contacts(2)
    copy = ws_root / COPY
    copy.write_text(copy.read_text() + "".join(f"Paragraph {i} of a long letter.\n\n" for i in range(4000)))

    preview = comms("preview", CAMPAIGN, cwd=ws_root)
    sent = comms("send", CAMPAIGN, "--yes", cwd=ws_root)

    assert "Gmail clips messages over 102 KB" in preview.stdout
    assert sent.returncode == 0, sent.stderr
    assert "warning" in sent.stdout and "Gmail clips messages over 102 KB" in sent.stdout


def test_exit_code_3_when_deliveries_failed(ws_root: Path, engine: Engine, add_contacts, smtp) -> None:
    emails = add_contacts(6)
    smtp.refuse = {emails[2]: "550 5.1.1 no such user"}
    configure(ws_root, smtp_sections(smtp.port))

    result = comms("send", CAMPAIGN, "--yes", cwd=ws_root)

    assert result.returncode == 3, result.stdout + result.stderr
    assert "finished" in result.stdout and "failed 1" in result.stdout
    assert smtp.accepted == 5


def test_exit_code_2_when_the_run_paused_itself(ws_root: Path, engine: Engine, add_contacts, smtp) -> None:
    emails = add_contacts(30)
    smtp.refuse = {email: "550 5.7.1 message refused by policy" for email in emails}
    configure(ws_root, smtp_sections(smtp.port, pause_after_policy_refusals=3, connections=1))

    result = comms("send", CAMPAIGN, "--yes", cwd=ws_root)

    assert result.returncode == 2, result.stdout + result.stderr
    [run] = _runs(engine)
    assert run.status == RunStatus.paused and "paused" in result.stdout
    with session(engine) as db:
        assert db.exec(select(Delivery).where(Delivery.status == "queued")).first() is not None


@pytest.mark.parametrize("processes", ["1", "2"])
def test_a_worker_that_cannot_start_leaves_the_run_paused_not_sending(
    ws_root: Path, engine: Engine, add_contacts, processes: str
) -> None:
    add_contacts(3)
    (ws_root / "blocked").write_text("a file where the outbox folder should be")
    configure(ws_root, {"transport": 'kind = "file"\npath = "blocked"'})

    result = comms("send", CAMPAIGN, "--yes", f"--processes={processes}", cwd=ws_root)

    assert_one_line_error(result, "blocked")
    [run] = _runs(engine)
    assert run.status == RunStatus.paused  # `comms runs resume` picks it up once the folder is fixed
    assert run.status_reason.startswith("stopped by an error:")


def test_a_small_run_sends_from_one_process_and_a_large_one_from_every_core(monkeypatch) -> None:
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1, 2, 3})

    assert [default_processes(n) for n in (1, 180, 2_000, 2_001, 5_000, 1_000_000)] == [1, 1, 1, 2, 3, 4]
    assert default_processes() == 4  # a worker, which serves whatever runs come
