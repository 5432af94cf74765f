"""`comms init`: start a team's own campaigns repository from the sample workspace, or a blank one.

The sample is the repository root (comms.toml, templates/, brand/, audiences/, schedules/). A wheel carries
it as package data in pipeline/workspace/sample/ (pyproject.toml's force-include); a source tree or
an editable install reads it from the repository root, where it is edited.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from pipeline.errors import WorkspaceError
from pipeline.workspace.settings import SETTINGS_FILE

_HERE = Path(__file__).resolve().parent
BLANK_ROOT = _HERE / "blank"
# The exec report's inputs only: reports/ is also where its output goes by default.
SAMPLE_PARTS = (
    SETTINGS_FILE,
    "templates",
    "brand",
    "audiences",
    "schedules",
    "departments",
    "reports/goals.toml",
    "reports/notes",
)
# *.rejects.csv: rows an import set aside, with the personal data they hold (importer.REJECTS_SUFFIX).
GITIGNORE = "comms.db*\noutbox/\npreviews/\nreview/\n*.rejects.csv\n"


def sample_root() -> Path:
    """Where the sample workspace is: inside an installed wheel, or the source tree's root."""
    for root in (_HERE / "sample", _HERE.parents[1]):
        if (root / SETTINGS_FILE).is_file() and (root / "templates").is_dir():
            return root
    raise WorkspaceError("the sample workspace is not installed with comms (reinstall the package)")


def init_workspace(target: Path, *, blank: bool = False) -> list[Path]:
    """Copy the sample (or, BLANK, neutral placeholders) into TARGET (new or empty); what was created."""
    source_root = BLANK_ROOT if blank else sample_root()
    if target.exists() and any(target.iterdir()):
        raise WorkspaceError("refusing to initialise a folder that is not empty", path=target)
    target.mkdir(parents=True, exist_ok=True)
    created = []
    for part in SAMPLE_PARTS:
        source, dest = source_root / part, target / part
        if not source.exists():
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, dest)
        else:
            shutil.copy2(source, dest)
        created.append(dest)
    (target / ".gitignore").write_text(GITIGNORE, encoding="utf-8")
    created.append(target / ".gitignore")
    return created
