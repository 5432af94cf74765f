"""Recipients: what the audience's own data does to the message.

A variable printed without a default renders empty for every recipient who has no value for it
("Hi ,"). The preview contact cannot show that; the audience in the database can, so this family
reads it (render only, streamed) when the database is there, and says nothing when it is not. It
imports the database layer only when it reads: a run's start checks its content in a process
that never loads it (pipeline.runs.prepare).
"""

from __future__ import annotations

from collections.abc import Iterator

from pipeline.checks.sources import Location
from pipeline.checks.subject import Hit, Rule, Severity, Subject
from pipeline.checks.variables import missing_variables
from pipeline.errors import AudienceError, DatabaseError

MISSING_VARIABLE = Rule(
    "recipients.missing-variable",
    Severity.error,
    "a variable some recipients of the audience have no value for, printed without a default()",
)
RULES = (MISSING_VARIABLE,)


def check(subject: Subject) -> Iterator[Hit]:
    if not subject.scan_audience:
        return
    from pipeline.audience.segments import load_audience, stream_people
    from pipeline.storage.engines import opened, session

    audience = load_audience(subject.ws, subject.campaign.audience)
    try:
        with opened(subject.settings) as engine, session(engine) as db:
            found = missing_variables(subject.assembled, stream_people(db, audience))
    except (DatabaseError, AudienceError):  # no database yet, or not these lists: nobody to check against
        return
    for missing in found:
        yield Hit(
            MISSING_VARIABLE,
            f"{missing.message} (audience {audience.name})",
            f'give it a default: {{{{ {missing.name} | default("…") }}}}, or fill it in for them',
            Location(missing.path, missing.line) if missing.path is not None else None,
        )
