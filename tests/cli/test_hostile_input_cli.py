"""What `comms` does with hostile or mistaken settings and names: one line, no secret shown, nothing
read or written outside the workspace."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cli import assert_one_line_error, comms

SECRET_ENV = {"COMMS_SECRET": "a-signing-key-of-at-least-32-bytes!"}


def _edit(root: Path, old: str, new: str) -> None:
    settings = root / "comms.toml"
    text = settings.read_text()
    assert old in text
    settings.write_text(text.replace(old, new, 1))


def test_a_password_in_an_smtp_url_is_never_printed(workspace_dir: Path) -> None:
    assert comms("db", "upgrade", cwd=workspace_dir).returncode == 0
    imported = comms(
        "contacts", "import", "audiences/customers.csv", "--list", "customers", cwd=workspace_dir
    )
    assert imported.returncode == 0
    for url in ("smtps://mailer:hunter2-pw@smtp.example:465", "smtp://mailer:hunter2-pw@smtp.example:587"):
        env = SECRET_ENV | {"COMMS_SMTP_URL": url}
        result = comms("send", "spring-launch", "--yes", cwd=workspace_dir, env=env)
        assert_one_line_error(result, "transport.url", "COMMS_SMTP_PASSWORD")
        assert "hunter2" not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("section", "line"),
    [
        (
            '[database]\nurl = "sqlite:///comms.db"',
            '[database]\nurl = "postgresql://comms:hunter2@db.example/comms"',
        ),
        (
            '[tracking]\nbase_url = "https://comms.kestrelforge.example"',
            '[tracking]\nbase_url = "https://u:hunter2@t.example"',
        ),
    ],
)
def test_a_password_in_a_url_in_comms_toml_is_refused_with_its_line(
    workspace_dir: Path, section: str, line: str
) -> None:
    _edit(workspace_dir, section, line)
    result = comms("db", "status", cwd=workspace_dir, env=SECRET_ENV)
    where = next(
        n
        for n, text in enumerate((workspace_dir / "comms.toml").read_text().splitlines(), 1)
        if "hunter2" in text
    )
    assert_one_line_error(result, f"comms.toml:{where}:", "secrets never go in comms.toml")
    assert "hunter2" not in result.stderr


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("postgresql://comms@127.0.0.1:99999/comms", "port"),
        ("postgresql://comms@127.0.0.1:five/comms", "port"),
        ("mysql://comms@127.0.0.1/comms", "sqlite:///FILE or postgresql://"),
        ("mysql://comms:hunter2@127.0.0.1/comms", "sqlite:///FILE or postgresql://"),
    ],
)
def test_a_database_url_comms_cannot_use_is_one_line(workspace_dir: Path, url: str, needle: str) -> None:
    for command in (("db", "upgrade"), ("audience", "show", "customers")):
        result = comms(*command, cwd=workspace_dir, env=SECRET_ENV | {"COMMS_DATABASE_URL": url})
        assert_one_line_error(result, "COMMS_DATABASE_URL", needle)
        assert "hunter2" not in result.stderr
    _edit(workspace_dir, 'url = "sqlite:///comms.db"', 'url = "mysql://comms@127.0.0.1/comms"')
    assert_one_line_error(comms("db", "upgrade", cwd=workspace_dir), "comms.toml:", "database.url")


def test_a_short_comms_secret_is_refused(workspace_dir: Path) -> None:
    assert comms("db", "upgrade", cwd=workspace_dir).returncode == 0
    for secret in ("sample-only-not-a-secret", f"{SECRET_ENV['COMMS_SECRET']},old-short-key"):
        result = comms("send", "spring-launch", "--yes", cwd=workspace_dir, env={"COMMS_SECRET": secret})
        assert_one_line_error(result, "COMMS_SECRET", "at least 32")


@pytest.mark.parametrize("name", ["../../x", "../copy/spring-launch", "/etc/passwd", ".hidden"])
def test_names_that_are_paths_are_refused_everywhere(workspace_dir: Path, tmp_path: Path, name: str) -> None:
    assert comms("db", "upgrade", cwd=workspace_dir).returncode == 0
    out = tmp_path / "previews"
    outside = [
        ("preview", name, "--out", str(out)),
        ("send", name, "--yes"),
        ("send", "spring-launch", "--audience", name, "--yes"),
        ("audience", "show", name),
    ]
    for command in outside:
        result = comms(*command, cwd=workspace_dir, env=SECRET_ENV)
        assert_one_line_error(result, "is not a plain name")
    assert not out.exists() and not (tmp_path / "x.html").exists()


def test_symlinks_out_of_the_workspace_are_refused(workspace_dir: Path, tmp_path: Path) -> None:
    assert comms("db", "upgrade", cwd=workspace_dir).returncode == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    copy = workspace_dir / "templates" / "copy"
    (elsewhere / "leak.md").write_text((copy / "spring-launch.md").read_text())
    (copy / "leak.md").symlink_to(elsewhere / "leak.md")
    result = comms("preview", "leak", "--out", str(tmp_path / "p"), cwd=workspace_dir, env=SECRET_ENV)
    assert_one_line_error(result, "templates/copy/leak.md", "outside the workspace")
    (copy / "leak.md").unlink()

    # A partial (or layout) that points out of the workspace is not read either.
    partials = workspace_dir / "templates" / "partials"
    footer = next(partials.glob("footer*"))
    (elsewhere / footer.name).write_text(footer.read_text())
    footer.unlink()
    footer.symlink_to(elsewhere / footer.name)
    result = comms(
        "preview", "spring-launch", "--out", str(tmp_path / "p"), cwd=workspace_dir, env=SECRET_ENV
    )
    assert_one_line_error(result, footer.name, "outside the workspace")

    # Nor does a preview write through a symlink planted in its output folder.
    footer.unlink()
    footer.write_text((elsewhere / footer.name).read_text())
    out = tmp_path / "p"
    out.mkdir(exist_ok=True)
    target = tmp_path / "victim.html"
    (out / "spring-launch.html").symlink_to(target)
    result = comms("preview", "spring-launch", "--out", str(out), cwd=workspace_dir, env=SECRET_ENV)
    assert_one_line_error(result, "spring-launch.html", "symlink")
    assert not target.exists()


def test_preview_for_a_contact_with_a_non_ascii_local_part(workspace_dir: Path, tmp_path: Path) -> None:
    contacts = tmp_path / "people.csv"
    contacts.write_text("email,first_name,marketing_consent\nzoë@example.com,Zoë,true\n", encoding="utf-8")
    assert comms("db", "upgrade", cwd=workspace_dir).returncode == 0
    imported = comms("contacts", "import", str(contacts), "--list", "customers", cwd=workspace_dir)
    assert imported.returncode == 0 and "1 addresses have a non-ASCII local part" in imported.stdout
    result = comms(
        "preview",
        "spring-launch",
        "--contact",
        "zoë@example.com",
        "--out",
        str(tmp_path / "p"),
        cwd=workspace_dir,
        env=SECRET_ENV,
    )
    assert result.returncode == 0, result.stderr
    assert "Zoë <zoë@example.com>" in result.stdout
    assert "zoë@example.com" in (tmp_path / "p" / "spring-launch.eml").read_bytes().decode()
