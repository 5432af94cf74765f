"""A sample workspace set up for a test: its comms.toml sections replaced, SMTP to a test server."""

from __future__ import annotations

from pathlib import Path

from pipeline.workspace.folders import Workspace
from pipeline.workspace.tomlfile import replace_tables

# COMMS_SECRET for tests: at least 32 bytes, as comms requires of a real one.
SECRET = "test-secret-key-of-at-least-32-bytes"
CAMPAIGN = "spring-launch"  # audience "customers": the list "customers", marketing_consent = true


def configure(root: Path, sections: dict[str, str | None]) -> None:
    """Replace whole [section] tables of ROOT/comms.toml (subtables such as [brand.colors] stay)."""
    replace_tables(root / "comms.toml", sections)


def smtp_sections(port: int, *, connections: int = 4, schedule_s: str = "[0.05]", **dispatch: object) -> dict:
    """Sections for sending to the test server fast: short retries, no throttling to speak of."""
    limits = {"batch_size": 50, "lease_s": 300, "pause_after_connection_failures": 10} | dispatch
    return {
        "transport": f'kind = "smtp"\nurl = "smtp://127.0.0.1:{port}"\nsecurity = "none"\n'
        f"connections = {connections}\ntimeout_s = 5",
        "rate": "per_second = 100000\nper_domain_per_second = 100000",
        "retry": f"schedule_s = {schedule_s}\nmax_age_h = 1",
        "dispatch": "\n".join(f"{key} = {value}" for key, value in limits.items()),
    }


def open_ws(root: Path) -> Workspace:
    """A fresh Workspace (settings are read once per instance, so re-open after configure())."""
    return Workspace.open(root)
