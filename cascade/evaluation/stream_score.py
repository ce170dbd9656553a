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

from cascade.runtime.model_dir import is_finite_number
from data_prep.audio import probe_audio
from data_prep.errors import DatasetError
from data_prep.labels import RESERVED

BEFORE_S, AFTER_S = 0.25, 1.5
TRUTH, AUDIO = "truth.json", "stream.wav"  # a stream folder: the recording and what is in it


def read_truth(path: Path) -> dict[str, Any]:
    if not Path(path).is_file():
        raise DatasetError(f"{Path(path).parent}: not a stream folder (no {Path(path).name}; `kws stream make` writes one)")
    try:
        data = json.loads(Path(path).read_text())
        data["duration_s"], data["keywords"] = float(data["duration_s"]), list(data["keywords"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DatasetError(f"{path}: not a stream truth file ({exc})") from None
    return data


def check_stream_folder(folder: Path) -> dict[str, Any]:
    """A stream folder's truth, its recording's header checked: every folder of a command is
    checked before the first one runs, so a bad one fails in a second, not after an hour of audio."""
    truth = read_truth(Path(folder) / TRUTH)
    probe_audio(Path(folder) / AUDIO)
    return truth


def read_events(path: Path) -> list[dict[str, Any]]:
    """Detections as JSON lines, each with a time ``t`` in seconds and a ``label`` (kws detect
    --events, kws live --json-events); a line that is not one is an error naming it."""
    try:
        rows = [(n, json.loads(line)) for n, line in enumerate(Path(path).read_text().splitlines(), 1) if line.strip()]
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path}: not a JSON-lines events file ({exc})") from None
    for n, row in rows:
        t = row.get("t") if isinstance(row, dict) else None
        if not is_finite_number(t) or not isinstance(row.get("label"), str):
            raise DatasetError(f"{path}: line {n} is not a detection (needs a number \"t\" and a string \"label\")")
    return [row for _, row in rows]


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
    def misses(self) -> int:
        return self.keywords - self.hits

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


def keywords_found(matches: Sequence[int | None], count: int) -> list[bool]:
    """Per spoken keyword (``count`` of them): whether an event hit it (``match_events``'s output)."""
    matched = set(matches)
    return [i in matched for i in range(count)]


def score_matches(matches: Sequence[int | None], count: int, duration_s: float) -> StreamScore:
    """Hits and false accepts from ``match_events``'s output over ``count`` spoken keywords."""
    hits = sum(m is not None for m in matches)
    return StreamScore(keywords=count, hits=hits, false_accepts=len(matches) - hits, duration_s=duration_s)


def score_events(events: Sequence[dict[str, Any]], keywords: Sequence[dict[str, Any]], duration_s: float) -> StreamScore:
    """events: [{t, label}], keywords: [{start, end, label}] -> hits and false accepts."""
    return score_matches(match_events([(e["t"], e["label"]) for e in events], keywords), len(keywords), duration_s)


def score_by_label(events: Sequence[dict[str, Any]], keywords: Sequence[dict[str, Any]], duration_s: float,
                   labels: Sequence[str] = ()) -> dict[str, StreamScore]:
    """``score_events`` split by label: a label's keywords, the hits on them, and its false
    accepts (detections of that label that hit nothing: where no such word was spoken, double
    triggers included), each over the whole stream's duration. The rows add up to
    ``score_events``. Rows: the keywords of ``labels`` (a bundle's; one the stream lacks still
    gets a row, _silence_ and _unknown_ none), then any other label of the truth or the events."""
    matches = match_events([(e["t"], e["label"]) for e in events], keywords)
    names = dict.fromkeys(name for name in [*labels, *(k["label"] for k in keywords), *(e["label"] for e in events)]
                          if name not in RESERVED)
    spoken = {name: 0 for name in names}
    hits, false_accepts = dict(spoken), dict(spoken)
    for k in keywords:
        spoken[k["label"]] += 1
    for e, m in zip(events, matches):
        (hits if m is not None else false_accepts)[e["label"]] += 1
    return {name: StreamScore(keywords=spoken[name], hits=hits[name], false_accepts=false_accepts[name],
                              duration_s=duration_s) for name in names}


def pool_scores(scores: Sequence[StreamScore]) -> StreamScore:
    """Several streams as one: counts and durations summed."""
    return StreamScore(keywords=sum(s.keywords for s in scores), hits=sum(s.hits for s in scores),
                       false_accepts=sum(s.false_accepts for s in scores), duration_s=sum(s.duration_s for s in scores))


def pool_by_label(rows: Sequence[dict[str, StreamScore]], durations: Sequence[float]) -> dict[str, StreamScore]:
    """``score_by_label`` rows of several streams (of ``durations`` seconds) pooled per label; a
    label one stream lacks counts its hours with nothing in them."""
    names = dict.fromkeys(name for row in rows for name in row)
    return {name: pool_scores([row.get(name, StreamScore(0, 0, 0, seconds)) for row, seconds in zip(rows, durations)])
            for name in names}


def keyword_row(score: StreamScore) -> dict[str, Any]:
    """One keyword's line of a per-keyword table (JSON): its hit rate is None when it was
    never spoken; its false accepts are per hour of the whole stream."""
    return {"keywords": score.keywords, "hits": score.hits, "misses": score.misses,
            "hit_rate": score.hit_rate if score.keywords else None, "false_accepts": score.false_accepts,
            "false_accepts_per_hour": score.false_accepts_per_hour}
