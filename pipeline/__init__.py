"""comms: email campaigns as code.

The library's public face. The `comms` command (pipeline.cli) is a thin shell over these names,
and so are the scheduler and the tests; everything else in the package is private. The names are
imported lazily (PEP 562): `import pipeline` costs nothing until one is used, so a command that
needs none of SQLAlchemy, Jinja or MJML (`comms --help`) does not load them.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

# Each public name and the module that defines it.
_WHERE = {
    "Audience": "pipeline.audience.segments",
    "Campaign": "pipeline.assembly.campaign",
    "CommsError": "pipeline.errors",
    "ExecReport": "pipeline.reports.executive",
    "ImportSummary": "pipeline.audience.importer",
    "PreviewResult": "pipeline.runs.preview",
    "Settings": "pipeline.workspace.settings",
    "Workspace": "pipeline.workspace.folders",
    "assemble": "pipeline.assembly.campaign",
    "cancel_run": "pipeline.runs.control",
    "check_campaign": "pipeline.assembly.campaign",
    "connect": "pipeline.storage.engines",
    "count_audience": "pipeline.audience.segments",
    "dispatch_run": "pipeline.runs.dispatch",
    "dry_run": "pipeline.runs.rehearsal",
    "exec_html": "pipeline.reports.exec_render",
    "exec_pdf": "pipeline.reports.exec_render",
    "exec_report": "pipeline.reports.executive",
    "import_contacts": "pipeline.audience.importer",
    "init_workspace": "pipeline.workspace.init",
    "list_runs": "pipeline.storage.listing",
    "load_audience": "pipeline.audience.segments",
    "pause_run": "pipeline.runs.control",
    "preview_campaign": "pipeline.runs.preview",
    "resume_run": "pipeline.runs.control",
    "retry_run": "pipeline.runs.control",
    "show_run": "pipeline.runs.control",
    "start_run": "pipeline.runs.start",
    "stream_audience": "pipeline.audience.segments",
    "test_send": "pipeline.runs.rehearsal",
    "upgrade": "pipeline.storage.engines",
    "write_exec": "pipeline.reports.exec_render",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    try:
        module = _WHERE[name]
    except KeyError:
        raise AttributeError(f"module 'pipeline' has no attribute {name!r}") from None
    value = getattr(import_module(module), name)
    globals()[name] = value  # the next look-up is a plain attribute
    return value


def __dir__() -> list[str]:
    return __all__
