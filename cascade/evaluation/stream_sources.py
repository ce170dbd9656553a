"""Where the negative material of a stream comes from, and which source each false accept and
each stage-2 run belongs to.

A truth file lists every non-keyword event (``negative_events``) and every stretch of the
background bed (``bed_segments``) with its source kind. The kind of a file is read from its
folder names (the ``<split>/<source>/`` layout of ``kws data negatives``: ``music``,
``synth`` -> synthetic, any other source -> other speech; ``_background_noise_`` -> noise);
a stream without a bed lies over silence.

A moment of the stream belongs to, in this order: a keyword (its scoring window: false accepts
there are double triggers or wrong labels), a negative event (same window), the bed. Truth
files written before sources were recorded put everything but the keywords in ``unknown``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cascade.evaluation.stream_score import AFTER_S, BEFORE_S

SOURCES = ("music", "speech", "synthetic", "noise", "silence")
KEYWORDS, UNKNOWN_SOURCE = "keywords", "unknown"


def kind_of_name(name: str) -> str | None:
    """The source kind a folder name says, or None when it says nothing."""
    name = name.lower()
    for kind, marks in (("music", ("music",)), ("synthetic", ("synth", "tts", "kokoro", "espeak")),
                        ("noise", ("noise",)), ("silence", ("silence",)),
                        ("speech", ("speech", "libri", "audiobook", "voice"))):
        if any(mark in name for mark in marks):
            return kind
    return None


def source_kind(path: Path, root: Path, fallback: str) -> str:
    """The kind of ``path`` found under folder ``root``: the innermost folder name that says one
    (``root``'s own name included), else ``fallback``."""
    parts = (Path(root).name, *Path(path).relative_to(root).parent.parts)
    return next((k for k in map(kind_of_name, reversed(parts)) if k is not None), fallback)


def step_sources(truth: dict[str, Any], times: np.ndarray) -> list[str]:
    """The source each time in ``times`` (seconds) belongs to (module doc: keyword, then
    negative event, then bed)."""
    names = [UNKNOWN_SOURCE, *SOURCES, KEYWORDS]
    index = np.zeros(len(times), dtype=np.int64)
    layers = ([(s, s["source"]) for s in truth.get("bed_segments", [])],
              [(e, e["source"]) for e in truth.get("negative_events", [])],
              [(k, KEYWORDS) for k in truth["keywords"]])
    for layer, pad in zip(layers, ((0.0, 0.0), (BEFORE_S, AFTER_S), (BEFORE_S, AFTER_S))):
        for item, kind in layer:
            if kind not in names:
                names.append(kind)
            inside = (times >= item["start"] - pad[0]) & (times <= item["end"] + pad[1])
            index[inside] = names.index(kind)
    return [names[i] for i in index]


def by_source(truth: dict[str, Any], times: np.ndarray, opened: np.ndarray, false_accept_times: Sequence[float],
              duration_s: float) -> dict[str, dict[str, float]]:
    """Per source: hours (its share of the steps), false accepts, and stage-2 runs and steps."""
    steps = step_sources(truth, np.asarray(times, dtype=np.float64))
    fa = step_sources(truth, np.asarray(false_accept_times, dtype=np.float64))
    out: dict[str, dict[str, float]] = {}
    for name in dict.fromkeys([*steps, *fa]):
        mask = np.array([s == name for s in steps], dtype=bool)
        out[name] = {"seconds": duration_s * mask.sum() / len(steps) if len(steps) else 0.0,
                     "false_accepts": fa.count(name), "steps": int(mask.sum()),
                     "stage2_runs": int(np.asarray(opened, dtype=bool)[mask].sum())}
    return out


def pool_sources(rows: Sequence[dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    """Sources summed over streams, with rates: false accepts per hour of that source and
    stage-2 duty (share of its steps on which stage 2 ran)."""
    total: dict[str, dict[str, float]] = {}
    for row in rows:
        for name, r in row.items():
            t = total.setdefault(name, {"seconds": 0.0, "false_accepts": 0, "steps": 0, "stage2_runs": 0})
            for key in t:
                t[key] += r[key]
    return {name: {**t, "hours": t["seconds"] / 3600.0,
                   "false_accepts_per_hour": t["false_accepts"] * 3600.0 / t["seconds"] if t["seconds"] else 0.0,
                   "stage2_duty": t["stage2_runs"] / t["steps"] if t["steps"] else 0.0}
            for name, t in total.items()}
