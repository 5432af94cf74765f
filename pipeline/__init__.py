"""comms: email campaigns as code.

The library's public face. The `comms` command (pipeline.cli) is a thin shell over these
names, and so are the scheduler and the tests; everything else in the package is private.
"""

from pipeline.assembly.campaign import Campaign, assemble, check_campaign
from pipeline.audience.importer import ImportSummary, import_contacts
from pipeline.audience.segments import Audience, count_audience, load_audience, stream_audience
from pipeline.errors import CommsError
from pipeline.runs.control import (
    cancel_run,
    dispatch_run,
    dry_run,
    list_runs,
    pause_run,
    resume_run,
    retry_run,
    show_run,
    start_run,
    test_send,
)
from pipeline.runs.preview import PreviewResult, preview_campaign
from pipeline.storage.engines import connect, upgrade
from pipeline.workspace.folders import Workspace
from pipeline.workspace.init import init_workspace
from pipeline.workspace.settings import Settings

__all__ = [
    "Audience",
    "Campaign",
    "CommsError",
    "ImportSummary",
    "PreviewResult",
    "Settings",
    "Workspace",
    "assemble",
    "cancel_run",
    "check_campaign",
    "connect",
    "count_audience",
    "dispatch_run",
    "dry_run",
    "import_contacts",
    "init_workspace",
    "list_runs",
    "load_audience",
    "pause_run",
    "preview_campaign",
    "resume_run",
    "retry_run",
    "show_run",
    "start_run",
    "stream_audience",
    "test_send",
    "upgrade",
]
