"""One JSON round-trip for every configuration dataclass.

Configs are dataclasses that validate themselves in ``__post_init__``; inheriting
:class:`JsonConfig` gives them ``to_dict``/``to_json``/``from_dict``/``from_json``, with
tuples written as JSON lists and read back as tuples, and unknown keys rejected with an
error that names the class and lists the valid options.

Example:
    >>> from dataclasses import dataclass
    >>> @dataclass
    ... class Cfg(JsonConfig):
    ...     n: int = 4
    ...     alphas: tuple = (1.0, 0.5)
    >>> Cfg.from_json(Cfg(n=5).to_json())
    Cfg(n=5, alphas=(1.0, 0.5))
"""

from __future__ import annotations

import json
from dataclasses import asdict, fields
from typing import Any, TypeVar

__all__ = ["JsonConfig"]

C = TypeVar("C", bound="JsonConfig")


class JsonConfig:
    """Mixin for ``@dataclass`` configs: JSON round-trip and strict key checking."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: tuples become lists (recursively, via ``asdict``)."""
        return _lists(asdict(self))  # type: ignore[call-overload]

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls: type[C], d: dict[str, Any]) -> C:
        """Build from a dict; lists given for tuple-valued fields become tuples."""
        known = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(d) - set(known))
        if unknown:
            raise ValueError(f"unknown {cls.__name__} option(s) {unknown}; valid options: {sorted(known)}")
        kwargs = {}
        for k, v in d.items():
            default = getattr(cls, k, None)
            kwargs[k] = tuple(v) if isinstance(v, list) and isinstance(default, tuple) else v
        return cls(**kwargs)

    @classmethod
    def from_json(cls: type[C], s: str) -> C:
        return cls.from_dict(json.loads(s))


def _lists(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _lists(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_lists(v) for v in x]
    return x
