"""The exception tree, so callers can catch a whole family at once.

    CommsError                      anything comms reports to a person as one line
    ├── WorkspaceError              a file in the workspace is wrong (names file, line/field)
    │   ├── SettingsError           comms.toml or the environment
    │   ├── CopyError               templates/copy/*.md
    │   ├── LayoutError             templates/layouts/*.mjml, templates/partials/*
    │   ├── AudienceError           audiences/*.toml
    │   ├── ScheduleError           schedules/*.toml
    │   └── DepartmentError         departments/*.toml
    ├── TemplateError               an undefined variable or a render failure (names file)
    ├── HeaderInjectionError        CR or LF (or another control char) from data into a header
    ├── DatabaseError               the database is unreachable or its schema is behind
    │   └── SchemaOutdated          "run `comms db upgrade`"
    ├── ContactError                a contact or import row is wrong
    ├── RunError                    a run cannot be started, paused, resumed...
    │   └── RunBlocked              a gate at run start refused it (recorded as a blocked run)
    ├── ApprovalError               an approval is refused (not an approver) or approvals.log is wrong
    ├── ReportError                 a report's period, run or campaign is wrong, or privacy forbids it
    ├── ExperimentError             an A/B test cannot be decided (no test, decided already, no such arm)
    ├── CheckFailed                 a campaign has an error finding, so no run starts (names file, line)
    └── TransportError              a mail server (IMAP for bounces) could not be reached or refused

Every error renders as one line: ``path:line: message`` where a location is known.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


class CommsError(Exception):
    """Base for everything shown to a person as a one-line message, never a traceback."""

    def __init__(self, message: str, *, path: Path | str | None = None, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = Path(path) if path is not None else None
        self.line = line

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuilt without __init__, whatever arguments a subclass's takes, so that the error
        # crosses to another process whole (pipeline.runs.apart, the sending processes).
        return _rebuilt, (type(self), self.args, self.__dict__)

    def __str__(self) -> str:
        if self.path is None:
            return self.message
        where = str(self.path)
        if self.line is not None:
            where += f":{self.line}"
        return f"{where}: {self.message}"


def _rebuilt(cls: type[CommsError], args: tuple[Any, ...], state: dict[str, Any]) -> CommsError:
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


class WorkspaceError(CommsError):
    pass


class SettingsError(WorkspaceError):
    pass


class CopyError(WorkspaceError):
    pass


class LayoutError(WorkspaceError):
    pass


class AudienceError(WorkspaceError):
    pass


class ScheduleError(WorkspaceError):
    pass


class DepartmentError(WorkspaceError):
    pass


class TemplateError(CommsError):
    pass


class HeaderInjectionError(CommsError, ValueError):
    pass


class DatabaseError(CommsError):
    pass


class SchemaOutdated(DatabaseError):
    pass


class ContactError(CommsError, ValueError):
    pass


class ReportError(CommsError):
    pass


class ExperimentError(CommsError):
    pass


class RunError(CommsError):
    pass


class RunBlocked(RunError):
    """Raised after the blocked run is recorded; the message says why and what to do about it."""


class ApprovalError(CommsError):
    pass


class CheckFailed(CommsError):
    """`comms check` found an error in the campaign, so no run is created; ``findings`` has them all."""

    def __init__(
        self, message: str, *, path: Path | None, line: int | None, findings: tuple[object, ...] = ()
    ) -> None:
        super().__init__(message, path=path, line=line)
        self.findings = findings


class TransportError(CommsError, ConnectionError):
    """A mail server could not be reached or answered wrong. Sending never raises it: a transport's
    per-message outcome is a SendResult (pipeline.types), so one bad message never stops a run."""


def unwrap(exc: BaseException) -> BaseException:
    """The one error inside task-group wrappers: asyncio.TaskGroup wraps what went wrong, once for
    each task that hit it (several workers losing one database, say)."""
    while isinstance(exc, BaseExceptionGroup):
        distinct = {str(inner): inner for inner in exc.exceptions}
        if len(distinct) != 1:
            break
        exc = next(iter(distinct.values()))
    return exc


class BenchError(CommsError):
    """A benchmark's client failed (`comms bench`); the message is the last line of its errors."""
