"""`comms init` and `comms preview` as a person runs them: real subprocesses, real files."""

from __future__ import annotations

import email
import email.policy
from pathlib import Path

import pytest

from tests.support.cli import assert_one_line_error, comms


def test_init_creates_a_workspace_that_previews_every_campaign(tmp_path: Path) -> None:
    created = comms("init", "team-campaigns", cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    ws = tmp_path / "team-campaigns"
    assert (ws / "comms.toml").is_file() and (ws / "templates" / "layouts").is_dir()

    result = comms("preview", "--all", "--out", "out", cwd=ws)
    assert result.returncode == 0, result.stderr
    names = sorted(p.stem for p in (ws / "templates" / "copy").glob("*.md"))
    assert len(names) >= 3
    for name in names:
        for ext in ("html", "txt", "eml"):
            assert (ws / "out" / f"{name}.{ext}").stat().st_size > 0
        assert f"✓ {name}" in result.stdout


def test_init_blank_has_placeholders_only_and_previews(tmp_path: Path) -> None:
    created = comms("init", "blank", "--blank", cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    ws = tmp_path / "blank"
    files = [p for p in ws.rglob("*") if p.is_file()]
    assert not [p for p in files if "kestrel" in p.read_text(encoding="utf-8").lower()]
    assert not list((ws / "audiences").glob("*.csv"))  # no sample people
    assert "enabled = false" in (ws / "schedules" / "welcome.toml").read_text()

    result = comms("preview", "--all", "--out", "out", cwd=ws)
    assert result.returncode == 0, result.stderr
    assert "Your Organisation" in (ws / "out" / "welcome.html").read_text(encoding="utf-8")


def test_init_refuses_a_folder_with_files(tmp_path: Path) -> None:
    (tmp_path / "existing").mkdir()
    (tmp_path / "existing" / "notes.txt").write_text("mine")
    assert_one_line_error(comms("init", "existing", cwd=tmp_path), "existing", "not empty")
    assert (tmp_path / "existing" / "notes.txt").read_text() == "mine"


def test_preview_eml_has_the_mime_tree_and_bulk_headers(workspace_dir: Path) -> None:
    result = comms("preview", "spring-launch", "--workspace", str(workspace_dir), cwd=workspace_dir.parent)
    assert result.returncode == 0, result.stderr
    raw = (workspace_dir / "previews" / "spring-launch.eml").read_bytes()
    msg = email.message_from_bytes(raw, policy=email.policy.default)

    assert msg.get_content_type() == "multipart/alternative"
    parts = list(msg.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert not any(p.is_multipart() for p in parts)

    assert msg["From"] == "Kestrel Forge <news@kestrelforge.example>"
    assert msg["To"] == "Alex Morgan <alex.morgan@example.com>"
    assert msg["Subject"] == "Alex, meet the KF-9 closed-die press line"
    assert msg["MIME-Version"] == "1.0"
    assert msg["Date"] and msg["Message-ID"].endswith("@kestrelforge.example>")
    assert msg["List-Id"] == "<spring-launch.sales.lists.kestrelforge.example>"
    unsubscribe = [u.strip(" <>") for u in msg["List-Unsubscribe"].split(",")]
    assert unsubscribe[0].startswith("https://comms.kestrelforge.example/u/")
    assert unsubscribe[1].startswith("mailto:unsubscribe@kestrelforge.example")
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg["Feedback-ID"] == "spring-launch:sales:comms:kestrelforge"
    assert "@" not in unsubscribe[0]

    text, html = (p.get_content() for p in parts)
    assert "Hi Alex," in text and "https://kestrelforge.example/kf9?industry=aerospace" in text
    assert "Hi Alex," in html and "kf9?industry=aerospace" in html
    # The preview's HTML file is the message's HTML part, as the recipient would see it.
    assert (workspace_dir / "previews" / "spring-launch.html").read_text() == html.replace("\r\n", "\n")
    assert "spring-launch.eml" in result.stdout and "Alex, meet the KF-9" in result.stdout


def _break(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


@pytest.mark.parametrize(
    ("edit", "needles"),
    [
        (("templates/layouts/promotion.mjml", "<mj-body", "<mj-body <oops"), ["promotion.mjml"]),
        (("templates/copy/spring-launch.md", "layout: promotion", "layout: brochure"), ["spring-launch.md"]),
        (
            ("templates/copy/spring-launch.md", "Hi {{ contact.first_name", "Hi {{ contact.nickname }} {{ x"),
            ["spring-launch.md"],
        ),
        (("templates/copy/spring-launch.md", "subject:", "title:"), ["spring-launch.md", "subject"]),
        (("comms.toml", "connections = 4", 'connections = "four"'), ["comms.toml", "connections"]),
    ],
    ids=["mjml-syntax", "unknown-layout", "jinja-syntax", "no-subject", "toml-type"],
)
def test_bad_input_is_one_line_naming_the_file(
    workspace_dir: Path, edit: tuple[str, str, str], needles: list[str]
) -> None:
    relative, old, new = edit
    _break(workspace_dir / relative, old, new)
    result = comms("preview", "spring-launch", cwd=workspace_dir)
    assert_one_line_error(result, *needles)
    assert not (workspace_dir / "previews" / "spring-launch.eml").exists()


def test_undefined_variable_names_the_variable_and_file(workspace_dir: Path) -> None:
    _break(
        workspace_dir / "templates/copy/spring-launch.md",
        'Hi {{ contact.first_name | default("there") }}',
        "Hi {{ contact.nickname }}",
    )
    result = comms("preview", "spring-launch", cwd=workspace_dir)
    assert_one_line_error(result, "contact.nickname", "spring-launch.md")


def test_preview_all_reports_each_broken_campaign_and_fails(workspace_dir: Path) -> None:
    _break(workspace_dir / "templates/copy/q3-results.md", "layout:", "layout: nowhere\nx:")
    result = comms("preview", "--all", cwd=workspace_dir)
    assert result.returncode == 1
    assert "q3-results" in result.stderr and "Traceback" not in result.stderr
    assert (workspace_dir / "previews" / "spring-launch.eml").exists()


def test_preview_warns_when_gmail_would_clip_the_message(workspace_dir: Path) -> None:
    copy = workspace_dir / "templates/copy/spring-launch.md"
    paragraph = "Our forging capacity explained in detail, paragraph after paragraph. " * 20
    copy.write_text(copy.read_text() + ("\n\n" + paragraph) * 100)
    result = comms("preview", "spring-launch", cwd=workspace_dir)
    assert result.returncode == 0, result.stderr
    assert "warning" in result.stdout and "Gmail clips" in result.stdout
