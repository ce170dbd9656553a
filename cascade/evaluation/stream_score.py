"""Scoring detections on a long stream against its truth file.

A detection hits a keyword of the same label when its time lies in
[start - 0.25 s, end + 1.5 s]; each keyword can be hit once. Every other detection (double
triggers and wrong labels included) is a false accept.
"""

from __future__ import annotations

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


def score_events(events: Sequence[dict[str, Any]], keywords: Sequence[dict[str, Any]], duration_s: float) -> dict[str, Any]:
    """events: [{t, label}], keywords: [{start, end, label}] -> hit rate, FA/hour, counts."""
    hit = [False] * len(keywords)
    false_accepts = 0
    for event in sorted(events, key=lambda e: e["t"]):
        match = next(
            (i for i, k in enumerate(keywords)
             if not hit[i] and k["label"] == event["label"] and k["start"] - BEFORE_S <= event["t"] <= k["end"] + AFTER_S),
            None,
        )
        if match is None:
            false_accepts += 1
        else:
            hit[match] = True
    hours = duration_s / 3600.0
    return {
        "keywords": len(keywords),
        "hits": int(sum(hit)),
        "hit_rate": sum(hit) / len(keywords) if keywords else 0.0,
        "false_accepts": false_accepts,
        "false_accepts_per_hour": false_accepts / hours if hours else 0.0,
        "duration_s": duration_s,
    }
