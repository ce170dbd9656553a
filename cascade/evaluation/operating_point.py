"""Choosing the detector's operating point on validation streams: smoothing window,
suppression and a threshold per keyword, for the most hits at a target false-accept rate.

The stage posteriors of a stream do not depend on these settings, so the cascade runs once
and only the smoothing is replayed. ``fast_events`` is the ``Smoother`` rule vectorised
(window means by cumulative sums); the chosen point is then checked with the real
``Smoother`` (cascade.evaluation.det.replay), and those are the figures reported.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from cascade.evaluation.det import DET_THRESHOLDS
from cascade.evaluation.stream_score import score_events
from cascade.runtime.decision import SmoothingConfig
from data_prep.labels import SILENCE, UNKNOWN

WINDOWS_MS = (300.0, 500.0, 750.0, 1000.0)
SUPPRESSIONS_MS = (750.0, 1000.0, 1500.0)


@dataclasses.dataclass(frozen=True)
class Trace:
    """One run of the cascade over one stream: what the smoother saw, and the truth."""

    times: np.ndarray  # (steps,) seconds
    posteriors: np.ndarray  # (steps, labels)
    keywords: tuple[dict[str, Any], ...]  # truth: {start, end, label}
    duration_s: float


Means = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def window_means(times: np.ndarray, posteriors: np.ndarray, window_ms: float) -> Means:
    """(top label (steps,), its mean score (steps,), steps averaged (steps,), every label's mean
    (steps, labels)): the average of the posteriors of the steps in (t - window, t], as the
    Smoother's queue holds them."""
    sums = np.concatenate([np.zeros((1, posteriors.shape[1])), np.cumsum(posteriors, axis=0, dtype=np.float64)])
    first = np.searchsorted(times, times - window_ms / 1000.0, side="right")
    counts = np.arange(1, len(times) + 1) - first
    mean = (sums[1:] - sums[first]) / np.maximum(counts, 1)[:, None]
    top = np.argmax(mean, axis=1)
    return top, mean[np.arange(len(top)), top], counts, mean


def fast_events(trace: Trace, labels: Sequence[str], smoothing: SmoothingConfig,
                means: Means | None = None) -> list[dict[str, Any]]:
    """Detections of ``Smoother`` with these settings on a recorded trace (to float rounding),
    its re-arming rule included: a label detected at step i is latched until the first later
    step where its mean falls below its release level (at that step it cannot be above its bar)."""
    top, score, counts, mean = means if means is not None else window_means(trace.times, trace.posteriors, smoothing.window_ms)
    bar = np.array([2.0 if name in (SILENCE, UNKNOWN) else smoothing.threshold_for(name) for name in labels])
    release = smoothing.release_levels(tuple(labels))
    candidates = np.flatnonzero((counts >= smoothing.min_count) & (score >= bar[top]))
    events, last = [], -np.inf
    armed_from = np.zeros(len(labels), dtype=np.int64)  # first step index at which each label may fire
    gap = smoothing.suppression_ms / 1000.0
    for i in candidates:
        t, k = float(trace.times[i]), int(top[i])
        if t - last >= gap and i >= armed_from[k]:
            events.append({"t": t, "label": labels[k], "score": float(score[i])})
            below = np.flatnonzero(mean[i + 1 :, k] < release[k])
            armed_from[k] = i + 1 + below[0] if len(below) else len(top)
            last = t
    return events


def score_traces(traces: Sequence[Trace], labels: Sequence[str], smoothing: SmoothingConfig,
                 means: Sequence[Means] | None = None) -> dict[str, float]:
    """Hits and false accepts summed over several streams."""
    hits = keywords = fa = 0
    seconds = 0.0
    for k, trace in enumerate(traces):
        s = score_events(fast_events(trace, labels, smoothing, means[k] if means else None), trace.keywords, trace.duration_s)
        hits, keywords, fa, seconds = hits + s.hits, keywords + s.keywords, fa + s.false_accepts, seconds + trace.duration_s
    return {"hits": hits, "keywords": keywords, "hit_rate": hits / keywords if keywords else 0.0,
            "false_accepts": fa, "false_accepts_per_hour": fa * 3600.0 / seconds if seconds else 0.0}


def _better(a: dict[str, float], b: dict[str, float] | None, target: float) -> bool:
    """Within the target, more hits win, then fewer false accepts."""
    if a["false_accepts_per_hour"] > target:
        return False
    return b is None or (a["hits"], -a["false_accepts"]) > (b["hits"], -b["false_accepts"])


def per_keyword_thresholds(traces: Sequence[Trace], labels: Sequence[str], base: SmoothingConfig, target: float,
                           means, rounds: int = 2) -> tuple[SmoothingConfig, dict[str, float]]:
    """Coordinate ascent from the best global threshold: move one keyword's threshold at a
    time to wherever total hits rise within the false-accept target."""
    best_cfg, best = None, None
    for th in DET_THRESHOLDS:
        cfg = dataclasses.replace(base, threshold=th, label_thresholds=())
        s = score_traces(traces, labels, cfg, means)
        if _better(s, best, target):
            best_cfg, best = cfg, s
    if best_cfg is None:
        return dataclasses.replace(base, threshold=DET_THRESHOLDS[-1], label_thresholds=()), score_traces(
            traces, labels, dataclasses.replace(base, threshold=DET_THRESHOLDS[-1], label_thresholds=()), means)
    keywords = [name for name in labels if name not in (SILENCE, UNKNOWN)]
    current = {name: best_cfg.threshold for name in keywords}
    for _ in range(rounds):
        changed = False
        for name in keywords:
            for th in DET_THRESHOLDS:
                if th == current[name]:
                    continue
                trial = dict(current, **{name: th})
                cfg = dataclasses.replace(best_cfg, label_thresholds=tuple(trial.items()))
                s = score_traces(traces, labels, cfg, means)
                if _better(s, best, target):
                    current, best, changed = trial, s, True
        if not changed:
            break
    overrides = tuple((k, v) for k, v in current.items() if v != best_cfg.threshold)
    return dataclasses.replace(best_cfg, label_thresholds=overrides), best


def calibrate_operating_point(traces: Sequence[Trace], labels: Sequence[str], target_fa_per_hour: float, *,
                              min_count: int = 2, release_ratio: float = 0.5, windows_ms: Sequence[float] = WINDOWS_MS,
                              suppressions_ms: Sequence[float] = SUPPRESSIONS_MS, per_keyword: bool = True) -> dict[str, Any]:
    """The smoothing settings with the most validation hits at <= ``target_fa_per_hour``."""
    best: dict[str, Any] | None = None
    grid = []
    for window in windows_ms:
        means = [window_means(t.times, t.posteriors, window) for t in traces]
        for suppression in suppressions_ms:
            base = SmoothingConfig(window_ms=window, suppression_ms=suppression, min_count=min_count,
                                   release_ratio=release_ratio)
            if per_keyword:
                cfg, s = per_keyword_thresholds(traces, labels, base, target_fa_per_hour, means)
            else:
                cfg, s = per_keyword_thresholds(traces, labels, base, target_fa_per_hour, means, rounds=0)
            grid.append({"window_ms": window, "suppression_ms": suppression, **s})
            if best is None or _better(s, best["score"], target_fa_per_hour) or (
                    best["score"]["false_accepts_per_hour"] > target_fa_per_hour
                    and s["false_accepts_per_hour"] < best["score"]["false_accepts_per_hour"]):
                best = {"smoothing": cfg, "score": s}
    assert best is not None
    return {**best, "grid": grid, "target_false_accepts_per_hour": target_fa_per_hour}
