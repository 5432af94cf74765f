"""`comms init`: start a team's own campaigns repository from the built-in sample workspace."""

from __future__ import annotations

import shutil
from pathlib import Path

from pipeline.errors import WorkspaceError
from pipeline.workspace.settings import SETTINGS_FILE

# The repository root is itself the sample workspace; these are its parts.
SAMPLE_ROOT = Path(__file__).resolve().parents[2]
SAMPLE_PARTS = (SETTINGS_FILE, "templates", "brand", "audiences", "schedules")
GITIGNORE = "comms.db*\noutbox/\npreviews/\n*-rejects.csv\n"


def init_workspace(target: Path) -> list[Path]:
    """Copy the sample into TARGET (new or empty) and return what was created."""
    if not (SAMPLE_ROOT / SETTINGS_FILE).is_file():
        raise WorkspaceError("the sample workspace is not installed (install comms from its source tree)")
    if target.exists() and any(target.iterdir()):
        raise WorkspaceError("refusing to initialise a folder that is not empty", path=target)
    target.mkdir(parents=True, exist_ok=True)
    created = []
    for part in SAMPLE_PARTS:
        source, dest = SAMPLE_ROOT / part, target / part
        if source.is_dir():
            shutil.copytree(source, dest)
        else:
            shutil.copy2(source, dest)
        created.append(dest)
    (target / ".gitignore").write_text(GITIGNORE, encoding="utf-8")
    created.append(target / ".gitignore")
    return created
