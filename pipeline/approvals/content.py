"""What an approval is bound to: one hash over everything that decides what a campaign sends, and to whom,
and when.

The parts are the assembled campaign (subject, HTML and text as recipient-scope templates, so the copy,
layout, partials and brand all count; for an A/B test the control, each other variant and the test),
the definition of every audience it goes to (the copy's own and each schedule's), and every schedule
that names it. Files are hashed as parsed, so a comment or a reflowed line does not void an approval,
and a changed word, list, rule or time does. Front-matter fields the layout does not print (stage,
owner, due) do not reach the HTML and so do not count either.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from pipeline.assembly.campaign import Campaign, assemble
from pipeline.assembly.copy import load_copy
from pipeline.assembly.variants import load_test
from pipeline.errors import AudienceError, ScheduleError
from pipeline.workspace.folders import Workspace
from pipeline.workspace.tomlfile import read_toml


@dataclass(frozen=True)
class Content:
    """A campaign as it stands: its hash, the hash of each part, and the files it was made from."""

    campaign: Campaign
    hash: str
    parts: dict[str, str]  # "content", "audience:NAME", "schedule:NAME" -> sha256
    audiences: tuple[str, ...]  # every audience the approval covers
    schedules: tuple[str, ...]
    sources: dict[str, str]  # workspace-relative path -> text: copy, layout, partials, audiences, schedules

    @property
    def short(self) -> str:
        return self.hash[:12]


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=_plain).encode()).hexdigest()


def _plain(value: object) -> str:
    if isinstance(value, date | datetime):
        return value.isoformat()
    raise TypeError(f"cannot hash {type(value).__name__}")


def _toml(ws: Workspace, path: Path, error: type[AudienceError] | type[ScheduleError]) -> tuple[str, Any]:
    return read_toml(path, ws.relative(path), error)


def campaign_content(ws: Workspace, name: str, assembled: Campaign | None = None) -> Content:
    """Hash NAME (ASSEMBLED already, or assembled now) with its audiences and schedules."""
    copy = load_copy(ws, name)
    test = load_test(copy)
    # An A/B test is approved whole: the control as `content`, every other variant and the test itself.
    campaign = assembled or assemble(ws, name, test.control if test else None)
    parts = {"content": _digest([campaign.subject, campaign.html, campaign.text])}
    for variant in test.variants[1:] if test else ():
        other = assemble(ws, name, variant)
        parts[f"variant:{variant}"] = _digest([other.subject, other.html, other.text])
    if test:
        parts["test"] = _digest(copy.fields.get("test") or {})
    sources = {str(copy.path): (ws.root / copy.path).read_text(encoding="utf-8")}
    layout = ws.layouts_dir / f"{campaign.layout}.mjml"
    for file in [layout, *sorted(p for p in ws.partials_dir.glob("*") if p.is_file())]:
        sources[str(ws.relative(file))] = file.read_text(encoding="utf-8")
    audiences = {campaign.audience}
    schedules = []
    for file in sorted(ws.schedules_dir.glob("*.toml")):
        text, data = _toml(ws, file, ScheduleError)
        if data.get("campaign") != name:
            continue
        schedules.append(file.stem)
        parts[f"schedule:{file.stem}"] = _digest(data)
        sources[str(ws.relative(file))] = text
        if isinstance(data.get("audience"), str):
            audiences.add(data["audience"])
    for audience in sorted(audiences):
        file = ws.audiences_dir / f"{audience}.toml"
        text, data = _toml(ws, file, AudienceError)
        parts[f"audience:{audience}"] = _digest(data)
        sources[str(ws.relative(file))] = text
    return Content(
        campaign=campaign,
        hash=_digest(parts),
        parts=parts,
        audiences=tuple(sorted(audiences)),
        schedules=tuple(schedules),
        sources=sources,
    )
