"""The campaign-scope Jinja render of layouts, partials and copy text, with copy.*, brand.*, campaign.*.

Layouts live in templates/layouts/, shared pieces in templates/partials/; ``{% include "footer.mjml" %}``
and ``<mj-include path="footer.mjml" />`` both find a name in the layouts folder, then the partials
folder, and both render it in campaign scope. An unknown name (``copy.hero`` when the copy has no
``hero``) is an error naming the variable, the file and the line; ``{% if copy.hero is defined %}``
or ``copy.hero | default("")`` make a field optional. Per-recipient Jinja (see scope.py) is taken
out before this render and put back after premailer.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import jinja2
from jinja2 import Environment, FileSystemLoader, TemplateNotFound, TemplateSyntaxError, UndefinedError

from pipeline.assembly.copy import markdown_filter
from pipeline.assembly.names import NamedUndefined, Namespace, Sandbox, wrap
from pipeline.assembly.scope import END_OF_TEMPLATE, Protector, unclosed_line
from pipeline.errors import CommsError, CopyError, LayoutError, TemplateError
from pipeline.workspace.folders import Workspace

_FROM_STRING = "<template>"


class _ProtectingLoader(FileSystemLoader):
    """Loads layouts and partials with their per-recipient Jinja already swapped for tokens."""

    def __init__(self, ws: Workspace, protector: Protector) -> None:
        super().__init__([ws.layouts_dir, ws.partials_dir])
        self._ws = ws
        self._protector = protector
        self.loaded: dict[Path, str] = {}  # shown path -> the file as written, in load order

    def get_source(self, environment: Environment, template: str) -> tuple[str, str, Callable[[], bool]]:
        source, filename, uptodate = super().get_source(environment, template)
        self._ws.inside(Path(filename), LayoutError)
        shown = self._ws.relative(Path(filename))
        self.loaded[shown] = source
        return self._protector.protect(source, shown), filename, uptodate


class CampaignScope:
    """One assembly's campaign-scope environment: strict, autoescaped for the MJML, plain for Markdown."""

    def __init__(self, ws: Workspace, protector: Protector, context: Mapping[str, Any]) -> None:
        self._ws = ws
        self._protector = protector
        self._loader = _ProtectingLoader(ws, protector)
        options: dict[str, Any] = {"undefined": NamedUndefined, "keep_trailing_newline": True}
        # Sandboxed: a copy or layout file is text from people who must not reach Python objects.
        self._markup = Sandbox(loader=self._loader, autoescape=True, **options)
        self._markup.filters["markdown"] = markdown_filter
        self._plain = Sandbox(autoescape=False, **options)
        self._context = {name: wrap(name, values) for name, values in context.items()}

    def set_copy(self, copy: Mapping[str, Any]) -> None:
        self._context["copy"] = Namespace("copy", copy)

    @property
    def sources(self) -> dict[Path, str]:
        """Every layout and partial file loaded so far, as written, keyed by the path shown to people."""
        return self._loader.loaded

    def render_file(self, name: str) -> str:
        """Render a layout or partial by file name (e.g. "newsletter.mjml")."""
        with self._reported(origin=None, first_line=1):
            return self._markup.get_template(name.removeprefix("./")).render(self._context)

    def render_text(self, source: str, origin: Path, first_line: int) -> str:
        """Render copy text (a front-matter string or the Markdown body) in campaign scope."""
        protected = self._protector.protect(source, origin, first_line)
        with self._reported(origin=origin, first_line=first_line, source=source):
            return self._plain.from_string(protected).render(self._context)

    @contextmanager
    def _reported(self, origin: Path | None, first_line: int, source: str | None = None) -> Iterator[None]:
        """Jinja failures as one-line errors naming the file and line the writer wrote them on.

        ORIGIN is the copy file for copy text (SOURCE), None for layouts and partials (Jinja knows which).
        """
        try:
            yield
        except CommsError:
            raise
        except TemplateSyntaxError as exc:
            path, line = self._where(exc.filename, exc.lineno, origin, first_line)
            written = source if origin is not None else self.sources.get(path) if path else None
            if END_OF_TEMPLATE in (exc.message or "") and written is not None:
                line = unclosed_line(written, first_line if origin is not None else 1) or line
            kind = CopyError if origin is not None else LayoutError
            raise kind(f"template syntax: {exc.message}", path=path, line=line) from None
        except (jinja2.TemplateError, TypeError, ValueError, AttributeError, LookupError) as exc:
            inside = _FROM_STRING if origin is not None else str(self._ws.root)
            frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename.startswith(inside)]
            frame = frames[-1] if frames else None
            path, line = self._where(frame and frame.filename, frame and frame.lineno, origin, first_line)
            if isinstance(exc, TemplateNotFound):
                raise LayoutError(
                    f"no layout or partial named {exc.name!r} in templates/layouts/ or templates/partials/",
                    path=path,
                    line=line,
                ) from None
            message = str(exc) if isinstance(exc, UndefinedError) else f"cannot render: {exc}"
            raise TemplateError(message, path=path, line=line) from None

    def _where(
        self, filename: str | None, lineno: int | None, origin: Path | None, first_line: int
    ) -> tuple[Path | None, int | None]:
        if origin is not None:
            return origin, (lineno + first_line - 1) if lineno else None
        if filename:
            return self._ws.relative(Path(filename)), lineno
        # Called from MJML (mj-include) with no template frame: blame the layout, loaded first.
        return next(iter(self.sources), None), None
