"""The layering that keeps the pipeline readable, checked over the import graph (ast, no imports run)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "pipeline"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every pipeline module PATH imports, as dotted names (`from pipeline import x` counts as pipeline.x)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("pipeline"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("pipeline"):
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


MODULES = {_module_name(p): _imports(p) for p in sorted(PACKAGE.rglob("*.py"))}


def _importers_of(target: str) -> set[str]:
    return {
        name
        for name, imported in MODULES.items()
        if any(i == target or i.startswith(target + ".") for i in imported)
    }


def test_the_library_never_imports_the_cli() -> None:
    assert {m for m in _importers_of("pipeline.cli") if not m.startswith("pipeline.cli")} == set()


@pytest.mark.parametrize(
    "forbidden",
    [
        "pipeline.storage.outbox",
        "pipeline.storage.engines",
        "pipeline.storage.models",
        "pipeline.delivery.engine",
    ],
)
def test_transports_know_nothing_of_the_store(forbidden: str) -> None:
    assert {m for m in _importers_of(forbidden) if m.startswith("pipeline.delivery.transports")} == set()


def test_the_engine_uses_the_transport_interface_not_a_transport() -> None:
    concrete = {
        "pipeline.delivery.transports.smtp",
        "pipeline.delivery.transports.file",
        "pipeline.delivery.transports.console",
    }
    engine = MODULES["pipeline.delivery.engine"] | MODULES["pipeline.storage.outbox"]
    assert engine & concrete == set()
    assert "pipeline.delivery.transports" not in MODULES["pipeline.delivery.engine"]


def test_campaign_scope_stages_do_not_touch_the_database_or_sending() -> None:
    outside = (
        "pipeline.storage.engines",
        "pipeline.storage.outbox",
        "pipeline.storage.models",
        "pipeline.delivery.engine",
        "pipeline.delivery.transports",
    )
    for name, imported in MODULES.items():
        if name.startswith("pipeline.assembly"):
            assert not {i for i in imported if i.startswith(outside)}, name


def test_only_the_cli_and_the_daemon_start_the_web_app() -> None:
    allowed = ("pipeline.cli", "pipeline.service.daemon")
    assert {m for m in _importers_of("pipeline.feedback.server") if not m.startswith(allowed)} == set()


def test_the_public_api_is_what_was_intended() -> None:
    import pipeline

    intended = {
        "Audience", "Campaign", "CommsError", "ImportSummary", "PreviewResult", "Settings", "Workspace",
        "assemble", "check_campaign", "preview_campaign", "init_workspace",
        "connect", "upgrade", "import_contacts", "load_audience", "count_audience", "stream_audience",
        "start_run", "dispatch_run", "dry_run", "test_send", "list_runs", "show_run",
        "pause_run", "resume_run", "cancel_run", "retry_run",
    }  # fmt: skip
    assert set(pipeline.__all__) == intended
    assert all(getattr(pipeline, name) is not None for name in intended)


GATE = ("pipeline.approvals.content", "pipeline.approvals.ledger")


@pytest.mark.parametrize("gate_module", GATE)
def test_what_the_run_start_gate_asks_sits_below_runs(gate_module: str) -> None:
    """runs.control asks these at run start, so they must not reach back up into runs or above."""
    above = ("pipeline.runs", "pipeline.timetable", "pipeline.feedback", "pipeline.service", "pipeline.cli")
    imported = MODULES[gate_module]
    assert {i for i in imported if i.startswith(above)} == set()
    approvals = {i for i in imported if i.startswith("pipeline.approvals.")}
    assert {i for i in approvals if not i.startswith(GATE)} == set()
