"""Workspace TOML files read and validated so that every error names the file, line and field to fix."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from pipeline.errors import CommsError

M = TypeVar("M", bound=BaseModel)


def toml_line(text: str, loc: Sequence[object]) -> int | None:
    """The line of LOC (a pydantic error location such as ("rate", "per_second") or ("where", 1, "op")).

    Tables ([a.b]), arrays of tables ([[where]], counted from 0) and dotted keys are followed;
    when LOC itself is not written in the file (a missing key), the line of its nearest written
    parent is given. None when not even that is there.
    """
    want = [str(part) for part in loc]
    table: list[str] = []
    seen_arrays: dict[str, int] = {}
    best_depth, best_line = 0, None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if line.startswith("[["):
            name = line.strip("[] \t")
            index = seen_arrays.get(name, 0)
            seen_arrays[name] = index + 1
            table = [*name.split("."), str(index)]
            path = table
        elif line.startswith("["):
            table = line.strip("[] \t").split(".")
            path = table
        elif "=" in line and not line.startswith("#"):
            keys = line.split("=", 1)[0].split(".")
            path = [*table, *(key.strip().strip("\"'") for key in keys)]
        else:
            continue
        path = [part.strip().strip("\"'") for part in path]
        if path == want:
            return number
        if len(path) > best_depth and want[: len(path)] == path:
            best_depth, best_line = len(path), number
    return best_line


def describe(loc: Sequence[object], data: object, *, label: str | None = None) -> str:
    """A pydantic location as a person finds it in the file: 'rate.per_second', 'trigger #2 cron',
    or with LABEL="field", 'where #1 (field "plan") op'.

    Parts after the first one that the file does not hold as a table are pydantic's own
    (union members such as 'str'), so they are left out.
    """
    text, node, after_block = "", data, False
    for part in loc:
        if isinstance(part, int):
            text += f" #{part + 1}"
            node = node[part] if isinstance(node, list) and part < len(node) else None
            if label and isinstance(node, dict) and label in node:
                text += f' ({label} "{node[label]}")'
            after_block = True
            continue
        if not isinstance(node, dict):
            break
        text += ("" if not text else " " if after_block else ".") + str(part)
        node, after_block = node.get(part), False
    return text or "file"


def read_toml(path: Path, shown: Path, error: type[CommsError]) -> tuple[str, dict[str, Any]]:
    """The text and the parsed table of PATH; ERROR (naming SHOWN) when it is missing or not TOML."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error("file not found", path=shown) from None
    except UnicodeDecodeError as exc:
        raise error(f"not UTF-8 text (byte {exc.start})", path=shown) from None
    except OSError as exc:
        raise error(f"cannot read it: {exc.strerror or exc}", path=shown) from None
    try:
        return text, tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise error(f"not valid TOML: {exc}", path=shown) from None


def validate(
    model: type[M],
    text: str,
    data: dict[str, Any],
    shown: Path,
    error: type[CommsError],
    *,
    label: str | None = None,
    message: Callable[[Any], str] | None = None,
) -> M:
    """DATA as MODEL, or one ERROR line naming SHOWN, the line and the field of the first problem."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = tuple(first["loc"])
        said = message(first) if message else str(first["msg"]).removeprefix("Value error, ")
        raise error(
            f"{describe(loc, data, label=label)}: {said}", path=shown, line=toml_line(text, loc)
        ) from None


def replace_tables(path: Path, tables: dict[str, str | None]) -> None:
    """Replace whole [table]s of the TOML file PATH with the given bodies, or remove those given
    None (sub-tables such as [brand.colors] stay); for tools that set up a workspace, such as
    `comms bench`."""
    kept: list[str] = []
    skipping = False
    for line in path.read_text(encoding="utf-8").splitlines():
        header = re.match(r"^\[([\w.]+)\]\s*$", line)
        if header:
            skipping = header[1] in tables
        if not skipping:
            kept.append(line)
    for name, body in tables.items():
        if body is not None:
            kept += ["", f"[{name}]", body.strip()]
    path.write_text("\n".join(kept) + "\n", encoding="utf-8")
