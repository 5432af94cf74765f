"""The workspace: a campaigns repository laid out as comms expects, found and checked in one place."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from pipeline.errors import WorkspaceError
from pipeline.workspace.settings import SETTINGS_FILE, Settings, load_settings


@dataclass(frozen=True)
class Workspace:
    root: Path

    @classmethod
    def open(cls, root: Path | str | None = None) -> Workspace:
        """Open --workspace, else $COMMS_WORKSPACE, else the current directory."""
        chosen = Path(root or os.environ.get("COMMS_WORKSPACE") or ".").resolve()
        if not (chosen / SETTINGS_FILE).is_file():
            raise WorkspaceError(f"not a comms workspace: no {SETTINGS_FILE}", path=chosen)
        return cls(chosen)

    @cached_property
    def settings(self) -> Settings:
        return load_settings(self.root)

    @property
    def layouts_dir(self) -> Path:
        return self.root / "templates" / "layouts"

    @property
    def partials_dir(self) -> Path:
        return self.root / "templates" / "partials"

    @property
    def copy_dir(self) -> Path:
        return self.root / "templates" / "copy"

    @property
    def audiences_dir(self) -> Path:
        return self.root / "audiences"

    @property
    def schedules_dir(self) -> Path:
        return self.root / "schedules"

    @property
    def departments_dir(self) -> Path:
        return self.root / "departments"

    @property
    def approvals_log(self) -> Path:
        """The append-only record of approvals, kept in the workspace so that git shows who approved what."""
        return self.root / "approvals.log"

    def relative(self, path: Path) -> Path:
        """Paths in messages are shown relative to the workspace, as the team sees them in git."""
        try:
            return path.resolve().relative_to(self.root)
        except ValueError:
            return path

    def campaign_names(self) -> list[str]:
        return sorted(p.stem for p in self.copy_dir.glob("*.md"))
