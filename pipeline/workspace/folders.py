"""The workspace: a campaigns repository laid out as comms expects, found and checked in one place.

Campaign, audience, schedule and layout names are plain names (PLAIN_NAME: no slash, no leading dot),
so a name given on the command line or in a file can never reach outside its folder; and a file
reached through a symlink must still lie inside the workspace, so a checkout cannot read (or make
comms write) anywhere else.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from pipeline.errors import WorkspaceError
from pipeline.workspace.settings import SETTINGS_FILE, Settings, load_settings

# What a campaign, audience, schedule or layout name may look like (also pydantic's Field(pattern=)).
PLAIN_NAME = r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$"  # a leading _ marks comms' own copy (_confirm.md); never a dot
_PLAIN = re.compile(PLAIN_NAME)


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

    @classmethod
    def with_settings(cls, root: Path, settings: Settings) -> Workspace:
        """The workspace at ROOT with SETTINGS already loaded (a server given its settings, tests)."""
        found = cls.open(root)
        found.__dict__["settings"] = settings  # what cached_property would have stored
        return found

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

    def contains(self, path: Path) -> bool:
        """Whether PATH, symlinks followed, lies inside the workspace."""
        return path.resolve().is_relative_to(self.root.resolve())

    def inside(self, path: Path, error: type[WorkspaceError] = WorkspaceError) -> Path:
        """PATH, or ERROR when it resolves (through symlinks) to somewhere outside the workspace."""
        if not self.contains(path):
            shown = path.relative_to(self.root) if path.is_relative_to(self.root) else path
            raise error("leads outside the workspace (a symlink?); files must live in it", path=shown)
        return path

    def named_file(
        self, folder: Path, name: str, suffix: str, what: str, error: type[WorkspaceError]
    ) -> Path:
        """FOLDER/NAME+SUFFIX for a NAME a person gave: a plain name, and a file inside the workspace."""
        if not _PLAIN.match(name):
            raise error(
                f"{what} {name!r} is not a plain name (letters, digits, _ . -; no slashes)",
                path=self.relative(folder),
            )
        return self.inside(folder / f"{name}{suffix}", error)

    def campaign_names(self) -> list[str]:
        # _NAME.md are the workspace's own messages (the sign-up confirmation), not campaigns.
        return sorted(p.stem for p in self.copy_dir.glob("*.md") if not p.stem.startswith("_"))
