"""Write the small TOML documents kws saves (configs, manifests); read with stdlib tomllib."""

from __future__ import annotations

import json
import math
import re
from typing import Any

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and not math.isfinite(v):  # TOML spells them nan / inf, JSON not at all
        return "nan" if math.isnan(v) else "inf" if v > 0 else "-inf"
    if isinstance(v, (int, float, str)):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def _key(k: str) -> str:
    """A bare key where TOML allows one, else a quoted one (a label such as "hey kws")."""
    return k if _BARE_KEY.fullmatch(k) else json.dumps(k)


def dumps(data: dict[str, Any]) -> str:
    """Top-level scalars first, then one ``[table]`` per dict value (tables nest by dotted
    names). JSON string escaping is valid TOML basic-string escaping."""
    lines: list[str] = []

    def emit(table: dict[str, Any], prefix: str) -> None:
        scalars = {k: v for k, v in table.items() if not isinstance(v, dict)}
        tables = {k: v for k, v in table.items() if isinstance(v, dict)}
        if prefix and (scalars or not tables):
            lines.append(f"[{prefix}]")
        for key, value in scalars.items():
            lines.append(f"{_key(str(key))} = {_value(value)}")
        if scalars:
            lines.append("")
        for key, value in tables.items():
            emit(value, f"{prefix}.{_key(str(key))}" if prefix else _key(str(key)))

    emit(data, "")
    return "\n".join(lines).rstrip() + "\n"
