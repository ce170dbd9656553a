"""The report as data: sections of text, tables and figures, rendered twice (HTML, Markdown).

Building the content once and rendering it twice is what keeps ``report.html`` and
``report.md`` saying the same thing; the number formatters live here so the page, the
Markdown and the tests format a value the same way.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path


@dataclasses.dataclass(frozen=True)
class Text:
    text: str


@dataclasses.dataclass(frozen=True)
class Table:
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    caption: str = ""


@dataclasses.dataclass(frozen=True)
class Figure:
    name: str  # file stem of the PNG next to report.md
    png: bytes
    caption: str


@dataclasses.dataclass(frozen=True)
class Row:
    """Blocks shown side by side on the page (one after the other in Markdown)."""

    blocks: tuple


Block = Text | Table | Figure | Row


@dataclasses.dataclass(frozen=True)
class Section:
    key: str  # anchor id
    title: str
    blocks: tuple[Block, ...] = ()
    missing: str | None = None  # why the section has no content (shown as a short note)


@dataclasses.dataclass(frozen=True)
class Headline:
    label: str
    value: str
    detail: str = ""


@dataclasses.dataclass(frozen=True)
class Report:
    title: str
    subtitle: str
    headline: tuple[Headline, ...]
    sections: tuple[Section, ...]

    def figures(self) -> list[Figure]:
        return [b for s in self.sections for b in flatten(s.blocks) if isinstance(b, Figure)]


def flatten(blocks) -> list:
    out = []
    for b in blocks:
        out += flatten(b.blocks) if isinstance(b, Row) else [b]
    return out


def omitted(key: str, title: str, why: str) -> Section:
    return Section(key, title, missing=why)


def _bad(x) -> bool:
    return x is None or (isinstance(x, float) and not math.isfinite(x))


DASH = "—"


def pct(x: float | None, digits: int = 1) -> str:
    """0.4833 -> '48.3%'."""
    return DASH if _bad(x) else f"{100.0 * x:.{digits}f}%"


def num(x: float | None, digits: int = 2) -> str:
    return DASH if _bad(x) else f"{x:,.{digits}f}"


def count(x: int | None) -> str:
    return DASH if x is None else f"{int(x):,}"


def nbytes(n: int | None) -> str:
    """Exact bytes, '8,368 B': the figure a firmware engineer budgets with."""
    return DASH if n is None else f"{int(n):,} B"


def si(x: float | None) -> str:
    """47,560 -> '47.6 k'; 816,384 -> '816 k'; 12.3e6 -> '12.3 M'."""
    if _bad(x):
        return DASH
    for scale, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= scale:
            v = x / scale
            return f"{v:.3g} {unit}" if v < 1000 else f"{v:,.0f} {unit}"
    return f"{x:g}"


def days(x: float | None) -> str:
    return DASH if _bad(x) else f"{x:,.1f} days"


def ratio(x: float | None) -> str:
    """Cascade / always-on energy: '0.56×'."""
    return DASH if _bad(x) else f"{x:.2f}×"


def rel(path: Path, root: Path) -> str:
    """``path`` as the run folder's reader finds it: relative to ``root`` when inside it."""
    try:
        return str(Path(path).relative_to(root)) or "."
    except ValueError:
        return str(path)
