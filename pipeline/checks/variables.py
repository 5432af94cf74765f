"""Which recipients lack a variable the templates print: checked over the whole audience before a run.

The [preview] contact has every field; real contacts often do not, and sending is lenient (a
missing value prints as nothing), so "Hi {{ contact.first_name }}," becomes "Hi ," for each
contact without a first name. missing_variables renders the recipient scope once for every
contact of the audience, render only (no MIME, no links signed), streaming the contacts, with an
undefined that records each use of a missing value: printed, iterated, measured or computed
with. ``default()``, ``is defined`` and a plain ``{% if contact.x %}`` test are not uses.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

from jinja2 import ChainableUndefined, UndefinedError

from pipeline.assembly.campaign import Campaign
from pipeline.assembly.names import Namespace
from pipeline.assembly.personalize import CHECK_LINKS, PART_FILES, Personalizer
from pipeline.types import Recipient

EXAMPLES = 3


@dataclass(frozen=True)
class MissingVariable:
    """A variable printed for recipients who have no value for it, and no default() for them."""

    name: str  # as written: contact.first_name
    path: Path | None  # the copy, layout or partial file it is used in
    line: int | None
    missing: int  # how many recipients lack it
    recipients: int  # how many were checked
    examples: tuple[str, ...]  # the first few of them (email addresses)

    @property
    def message(self) -> str:
        return (
            f"{self.name} is missing for {self.missing} of {self.recipients} recipients "
            f"(e.g. {', '.join(self.examples)}); they would get an empty value: "
            f'give it a default, e.g. {{{{ {self.name} | default("…") }}}}'
        )


@dataclass
class _Tally:
    """What the recording undefined writes into while one check runs."""

    personalizer: Personalizer | None = None
    current: set[str] = field(default_factory=set)  # names missing for the recipient being rendered
    where: dict[str, tuple[Path | None, int | None]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def use(self, name: str) -> None:
        self.current.add(name)
        if name not in self.where:
            self.where[name] = self._locate(sys._getframe(2))

    def _locate(self, frame: FrameType | None) -> tuple[Path | None, int | None]:
        """The source file and line of the innermost template frame on the stack."""
        while frame is not None and frame.f_code.co_filename not in PART_FILES:
            frame = frame.f_back
        if frame is None or self.personalizer is None:
            return None, None
        template = frame.f_globals.get("__jinja_template__")
        line = template.get_corresponding_lineno(frame.f_lineno) if template else None
        return self.personalizer.locate(PART_FILES[frame.f_code.co_filename], line)

    def end_recipient(self, email: str) -> None:
        for name in self.current:
            self.counts[name] = self.counts.get(name, 0) + 1
            shown = self.examples.setdefault(name, [])
            if len(shown) < EXAMPLES:
                shown.append(email)
        self.current.clear()


def _recording(tally: _Tally) -> type[ChainableUndefined]:
    class Recording(ChainableUndefined):
        """Lenient like sending, but every use of the missing value is counted."""

        __slots__ = ()

        def _name(self) -> str:
            owner = self._undefined_obj
            if isinstance(owner, Namespace):
                return f"{owner!r}.{self._undefined_name}"
            return str(self._undefined_name)

        def __str__(self) -> str:
            tally.use(self._name())
            return ""

        def __iter__(self) -> Any:
            tally.use(self._name())
            return iter(())

        def __len__(self) -> int:
            tally.use(self._name())
            return 0

        def _fail_with_undefined_error(self, *args: Any, **kwargs: Any) -> NoReturn:
            tally.use(self._name())
            super()._fail_with_undefined_error(*args, **kwargs)

    return Recording


def missing_variables(campaign: Campaign, contacts: Iterable[Any]) -> list[MissingVariable]:
    """Render CAMPAIGN's recipient scope for each of CONTACTS (anything with a contact's fields, such
    as segments.stream_people rows; an iterator: nothing is kept but the counts) and return the
    variables some of them lack, most often missing first."""
    tally = _Tally()
    personalizer = Personalizer(campaign.templates, origins=campaign.origins, undefined=_recording(tally))
    tally.personalizer = personalizer
    checked = 0
    for contact in contacts:
        checked += 1
        # Recorded by the undefined; arithmetic on a missing value stops that render, no more.
        with suppress(UndefinedError):
            personalizer.render(Recipient.of(contact), CHECK_LINKS)
        tally.end_recipient(contact.email)
    return sorted(
        (
            MissingVariable(name, *tally.where[name], count, checked, tuple(tally.examples[name]))
            for name, count in tally.counts.items()
        ),
        key=lambda found: (-found.missing, found.name),
    )
