"""comms: email campaigns as code.

The library's public face. The `comms` command (pipeline.cli) is a thin shell over these
names, and so are the scheduler and the tests; everything else in the package is private.
"""

from pipeline.assemble import Campaign, assemble, check_campaign
from pipeline.audience import Audience, count_audience, load_audience, stream_audience
from pipeline.db import connect, upgrade
from pipeline.errors import CommsError
from pipeline.importer import ImportSummary, import_contacts
from pipeline.init import init_workspace
from pipeline.preview import PreviewResult, preview_campaign
from pipeline.runs import (
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
from pipeline.settings import Settings
from pipeline.workspace import Workspace

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
