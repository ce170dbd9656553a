"""Scoring detections on a long stream against its truth file.

A detection hits a keyword of the same label when its time lies in
[start - 0.25 s, end + 1.5 s]; each keyword can be hit once. Every other detection (double
triggers and wrong labels included) is a false accept.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from data_prep.errors import DatasetError

BEFORE_S, AFTER_S = 0.25, 1.5


def read_truth(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text())
        data["duration_s"], data["keywords"] = float(data["duration_s"]), list(data["keywords"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DatasetError(f"{path}: not a stream truth file ({exc})") from None
    return data


def match_events(events: Sequence[tuple[float, str]], keywords: Sequence[dict[str, Any]]) -> list[int | None]:
    """For each (t, label) event, in time order (ties keep input order): the index of the
    keyword it hits, or None for a false accept. The one hit-matching rule (module doc)."""
    hit = [False] * len(keywords)
    out: list[int | None] = [None] * len(events)
    for e in sorted(range(len(events)), key=lambda e: events[e][0]):
        t, label = events[e]
        match = next(
            (i for i, k in enumerate(keywords)
             if not hit[i] and k["label"] == label and k["start"] - BEFORE_S <= t <= k["end"] + AFTER_S),
            None,
        )
        if match is not None:
            hit[match] = True
            out[e] = match
    return out


@dataclasses.dataclass(frozen=True)
class StreamScore:
    """Detections on one stream against its truth: counts, and the rates that follow."""

    keywords: int
    hits: int
    false_accepts: int
    duration_s: float

    @property
    def hit_rate(self) -> float:
        return self.hits / self.keywords if self.keywords else 0.0

    @property
    def false_accepts_per_hour(self) -> float:
        hours = self.duration_s / 3600.0
        return self.false_accepts / hours if hours else 0.0

    def to_json(self) -> dict[str, Any]:
        """The form ``kws stream score`` prints and detections JSON files hold."""
        return {"keywords": self.keywords, "hits": self.hits, "hit_rate": self.hit_rate,
                "false_accepts": self.false_accepts, "false_accepts_per_hour": self.false_accepts_per_hour,
                "duration_s": self.duration_s}


def score_events(events: Sequence[dict[str, Any]], keywords: Sequence[dict[str, Any]], duration_s: float) -> StreamScore:
    """events: [{t, label}], keywords: [{start, end, label}] -> hits and false accepts."""
    matches = match_events([(e["t"], e["label"]) for e in events], keywords)
    hits = sum(m is not None for m in matches)
    return StreamScore(keywords=len(keywords), hits=hits, false_accepts=len(matches) - hits, duration_s=duration_s)
