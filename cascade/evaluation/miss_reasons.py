"""Why each missed keyword of a stream was missed: the gate, stage 2, the bar, or the smoother.

A hit rate says how many; tuning needs where. For a keyword the operating point missed, the
steps whose window ends inside its matching interval (``stream_score``: start - 0.25 s to end +
1.5 s) are read in order:

- ``gate closed``: stage 2 never ran there, so only the gate can bring the word back (its tau);
- ``another word``: stage 2 ran, but the smoothed top label was never the keyword (which
  label it was instead is counted in ``heard_as``): a model error no threshold can fix;
- ``under its bar``: the keyword was the smoothed top label, below its threshold at every such
  step: a lower threshold (``--sensitivity high``) would have found it;
- ``held back``: it was on top and over its bar, but the smoother did not report it then
  (fewer than ``min_count`` steps averaged, another detection's suppression, or the label still
  latched from a detection of the same word before).
"""

from __future__ import annotations

import collections
from collections.abc import Sequence
from typing import Any

import numpy as np

from cascade.evaluation.operating_point import Trace, window_means
from cascade.evaluation.stream_score import AFTER_S, BEFORE_S
from cascade.runtime.decision import SmoothingConfig
from data_prep.labels import RESERVED

REASONS = ("gate closed", "another word", "under its bar", "held back")


def miss_reasons(keywords: Sequence[dict[str, Any]], found: Sequence[bool], times: np.ndarray, opened: np.ndarray,
                 top: np.ndarray, score: np.ndarray, labels: Sequence[str], smoothing: SmoothingConfig
                 ) -> list[tuple[str, str] | None]:
    """Per keyword: None when found, else (reason, the smoothed top label it was heard as most
    often among the steps where the gate opened; "" when it never opened). ``top``/``score``:
    the smoothed top label index and its mean per step (``operating_point.window_means``)."""
    out: list[tuple[str, str] | None] = []
    for k, hit in zip(keywords, found):
        if hit:
            out.append(None)
            continue
        steps = np.flatnonzero((times >= k["start"] - BEFORE_S) & (times <= k["end"] + AFTER_S))
        ran = steps[np.asarray(opened, bool)[steps]]
        if not len(ran):
            out.append(("gate closed", ""))
            continue
        heard = collections.Counter(labels[int(i)] for i in top[ran])
        on_top = [i for i in steps if labels[int(top[i])] == k["label"]]
        if not on_top:
            reason = "another word"
        elif max(float(score[i]) for i in on_top) < smoothing.threshold_for(k["label"]):
            reason = "under its bar"
        else:
            reason = "held back"
        out.append((reason, heard.most_common(1)[0][0]))
    return out


def trace_misses(trace: Trace, opened: np.ndarray, found: Sequence[bool], labels: Sequence[str],
                 smoothing: SmoothingConfig) -> list[tuple[str, str] | None]:
    """``miss_reasons`` for one run over a stream: its trace (the smoother's input) and gate states."""
    top, score, _, _ = window_means(trace.times, trace.posteriors, smoothing.window_ms)
    return miss_reasons(trace.keywords, found, trace.times, opened, top, score, labels, smoothing)


def tally(reasons: Sequence[tuple[str, str] | None]) -> dict[str, Any]:
    """Counts per reason (every reason present, 0 when none) and, for ``another word``, the
    keywords and background labels the missed words were heard as."""
    misses = [r for r in reasons if r is not None]
    counts = {name: sum(r[0] == name for r in misses) for name in REASONS}
    heard_as = collections.Counter(label for reason, label in misses if reason == "another word")
    return {**counts, "heard_as": dict(heard_as.most_common()),
            "heard_as_background": sum(n for label, n in heard_as.items() if label in RESERVED)}


def describe(counts: dict[str, Any]) -> str:
    """Each reason's count and what the 'another word' misses were heard as, on one line."""
    parts = [f"{name} {counts[name]}" for name in REASONS]
    heard = ", ".join(f"{label} {n}" for label, n in list(counts["heard_as"].items())[:4])
    return ", ".join(parts) + (f" (heard as {heard})" if heard else "")
