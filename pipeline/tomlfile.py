"""Where a key sits in a TOML file, so a validation error can name the line a person has to fix."""

from __future__ import annotations

from collections.abc import Sequence


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
