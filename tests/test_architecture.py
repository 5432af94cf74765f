"""What import-linter (pyproject.toml, run by .ci/run) cannot express, checked over the import graph (ast)."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.support.cli import in_fresh_interpreter

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


def _cycles() -> list[list[str]]:
    """Strongly connected groups of two or more modules (Tarjan), imports under TYPE_CHECKING included."""
    graph = {name: {i for i in imported if i in MODULES and i != name} for name, imported in MODULES.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for name in graph:
        if name not in index:
            visit(name)
    return found


def test_no_module_imports_itself_round_a_cycle() -> None:
    # import-linter checks the layers; a cycle inside one package (or hidden under TYPE_CHECKING,
    # which import-linter skips) is found here. A package importing its own modules is no cycle.
    cycles = [c for c in _cycles() if not any(c_ == m.rsplit(".", 1)[0] for c_ in c for m in c)]
    assert cycles == []


def test_only_the_cli_and_the_daemon_start_the_web_apps() -> None:
    allowed = ("pipeline.cli", "pipeline.service.daemon")
    assert {m for m in _importers_of("pipeline.feedback.server") if not m.startswith(allowed)} == set()
    # The studio is a person's tool, started by `comms studio` only.
    studio = ("pipeline.cli", "pipeline.studio")
    assert {m for m in _importers_of("pipeline.studio.app") if not m.startswith(studio)} == set()


def test_the_public_api_is_what_was_intended() -> None:
    import pipeline

    intended = {
        "Audience", "Campaign", "CommsError", "ImportSummary", "PreviewResult", "Settings", "Workspace",
        "assemble", "check_campaign", "preview_campaign", "init_workspace",
        "connect", "upgrade", "import_contacts", "load_audience", "count_audience", "stream_audience",
        "start_run", "dispatch_run", "dry_run", "test_send", "list_runs", "show_run",
        "pause_run", "resume_run", "cancel_run", "retry_run",
        "ExecReport", "exec_report", "write_exec", "exec_html", "exec_pdf",
    }  # fmt: skip
    assert set(pipeline.__all__) == intended
    assert all(getattr(pipeline, name) is not None for name in intended)


def test_the_command_line_loads_no_heavy_library_until_a_command_needs_it() -> None:
    # `comms --help` (and tab completion, and every typo) must start fast: the command modules
    # import the library inside the commands, and pipeline/__init__ imports nothing eagerly.
    heavy = {
        "sqlalchemy",
        "sqlmodel",
        "jinja2",
        "mjml",
        "premailer",
        "lxml",
        "pydantic",
        "uvicorn",
        "starlette",
        "matplotlib",
        "weasyprint",
        "watchfiles",
        "playwright",
    }
    _, loaded = in_fresh_interpreter("import pipeline.cli")
    assert loaded & heavy == set()


def test_the_studio_starts_without_the_report_drawing_libraries() -> None:
    # matplotlib and WeasyPrint are imported when the exec page draws its charts or a PDF is
    # downloaded, not when `comms studio` starts (it imports what it serves with, and no more).
    _, loaded = in_fresh_interpreter(
        "import pathlib; from pipeline.studio.app import create_app; "
        "from pipeline.studio.serving import StudioServer; create_app(pathlib.Path('.'))"
    )
    assert "starlette" in loaded and loaded & {"matplotlib", "weasyprint"} == set()
