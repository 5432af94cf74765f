"""How templates see values: dotted namespaces, undefined names reported by the path a writer typed,
and the sandbox every template is rendered in.

Copy, layouts and partials are written by people who must not reach Python: a sandboxed,
immutable environment refuses ``''.__class__.__mro__``, ``cycler.__init__.__globals__`` and the
like (an unsafe attribute is undefined, and using it raises SecurityError).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from jinja2 import StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import missing


class Namespace:
    """copy, brand, campaign and their nested mappings, named so an unknown key reads `copy.hero`."""

    __slots__ = ("_path", "_values")

    def __init__(self, path: str, values: Mapping[str, Any]) -> None:
        self._path = path
        self._values = {key: wrap(f"{path}.{key}", value) for key, value in values.items()}

    @classmethod
    def shallow(cls, path: str, values: dict[str, Any]) -> Namespace:
        """A namespace over VALUES as they are: cheap enough to build once per recipient."""
        namespace = cls.__new__(cls)
        namespace._path = path
        namespace._values = values
        return namespace

    def __getattr__(self, key: str) -> Any:
        try:
            return self._values[key]
        except KeyError:
            raise AttributeError(key) from None

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __contains__(self, key: object) -> bool:
        return key in self._values

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __repr__(self) -> str:
        return self._path


def wrap(path: str, value: Any) -> Any:
    if isinstance(value, Mapping):
        return Namespace(path, value)
    if isinstance(value, list):
        return [wrap(f"{path}[{i}]", item) for i, item in enumerate(value)]
    return value


class NamedUndefined(StrictUndefined):
    """StrictUndefined whose message names the full dotted path a writer typed."""

    __slots__ = ()

    @property
    def _undefined_message(self) -> str:
        if self._undefined_hint is not None:
            return self._undefined_hint
        owner, name = self._undefined_obj, self._undefined_name
        if isinstance(owner, Namespace):
            return f"undefined variable {owner!r}.{name}"
        if owner is missing:
            return f"undefined variable {name}"
        return f"undefined variable: a {type(owner).__name__} value has no {name!r}"


class Sandbox(ImmutableSandboxedEnvironment):
    """The sandbox, with a fast path for Namespace: its values are plain data, looked up by key.

    The sandbox checks every attribute access (about half the per-recipient render time for
    `contact.*`); a Namespace attribute is a key of its own dict, so there is nothing to check.
    """

    def getattr(self, obj: Any, attribute: str) -> Any:
        if type(obj) is Namespace:
            try:
                return obj._values[attribute]
            except KeyError:
                return self.undefined(obj=obj, name=attribute)
        return super().getattr(obj, attribute)
