"""Studio fixtures: the real studio app under uvicorn (as `comms studio` serves it) over a copy of the
sample workspace and a migrated database on each backend, seen by the studio through the environment
as a person's shell would set it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from pipeline.studio.app import create_app
from pipeline.studio.serving import StudioServer
from tests.experiments.conftest import Lab
from tests.feedback.conftest import SECRET, base_url, engine, settings, world
from tests.support.uvicorn_thread import UvicornThread

__all__ = ["base_url", "engine", "lab_studio", "settings", "studio", "world"]


def serve_studio(root: Path, *, token: str | None = None) -> UvicornThread:
    return UvicornThread(StudioServer(create_app(root, token=token), host="127.0.0.1", port=0))


@pytest.fixture
def studio(
    workspace_dir: Path, database_url: str, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """The studio's URL; it reads the same database (COMMS_DATABASE_URL) as ENGINE."""
    monkeypatch.setenv("COMMS_DATABASE_URL", database_url)
    monkeypatch.setenv("COMMS_SECRET", SECRET)
    with serve_studio(workspace_dir) as url:
        yield url


@pytest.fixture
def lab_studio(lab: Lab) -> Iterator[str]:
    """The studio over the A/B lab's workspace (tests/experiments: its comms.toml names the database);
    a test using it imports `lab` and its fixtures from tests.experiments.conftest."""
    with serve_studio(lab.root) as url:
        yield url
