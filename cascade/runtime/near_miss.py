"""Near misses: keywords the cascade heard but did not report.

``kws live`` and ``kws detect`` report them. A person who says "left" and sees nothing cannot
tell a word that never reached stage 2 from one that scored 0.31 against a bar of 0.35; the
second is what ``--sensitivity high`` is for.
A near miss is one bump of a keyword as the smoothed top label, its best score at least its
release level (``SmoothingConfig.release_for``: below it the smoother takes the word as ended)
and below its bar, that did not end in a detection.
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Any

from cascade.runtime.bundle import Bundle
from data_prep.labels import RESERVED

GAP_S = 1.0  # steps of one label closer than this belong to one bump
KEPT = 50  # the latest near misses kept; older ones only counted (memory stays flat)


@dataclasses.dataclass(frozen=True)
class NearMiss:
    t: float  # the bump's latest step, seconds of audio
    label: str
    score: float  # its best smoothed score
    threshold: float  # the bar it did not reach

    def to_dict(self) -> dict:
        return {"t": round(self.t, 3), "label": self.label, "score": round(self.score, 4),
                "threshold": round(self.threshold, 4)}


class NearMisses:
    """Fed every step's smoothed top label and score; keeps the bumps that stayed under the bar."""

    @classmethod
    def of(cls, bundle: Bundle) -> "NearMisses":
        """For the bundle's operating point: each keyword's bar and release level."""
        smoothing = bundle.smoothing
        return cls({label: smoothing.threshold_for(label) for label in bundle.labels if label not in RESERVED},
                   smoothing.release_ratio)

    def __init__(self, thresholds: dict[str, float], release_ratio: float = 0.5) -> None:
        self.thresholds = dict(thresholds)  # keywords only: background labels are never reported
        self.ratio = release_ratio
        self.latest: collections.deque[NearMiss] = collections.deque(maxlen=KEPT)
        self.count = 0
        self._detected = ""  # the label just reported, until its bump ends: its tail is no miss

    def update(self, t: float, label: str, score: float, detected: bool) -> None:
        last = self.latest[-1] if self.latest else None
        same_bump = last is not None and last.label == label and t - last.t <= GAP_S
        if detected:
            if same_bump:  # the bump rose past the bar after all: a detection, not a miss
                self.latest.pop()
                self.count -= 1
            self._detected = label
            return
        bar = self.thresholds.get(label)
        if label == self._detected and bar is not None and score >= self.ratio * bar:
            return  # the reported word fading out
        self._detected = ""
        if bar is None or not self.ratio * bar <= score < bar:
            return
        if same_bump:
            self.latest[-1] = NearMiss(t, label, max(score, last.score), bar)
        else:
            self.latest.append(NearMiss(t, label, score, bar))
            self.count += 1


def near_miss_text(count: int, latest: list[dict[str, Any]]) -> str:
    """How many keywords were heard under their bar and the latest few (``NearMiss.to_dict`` rows)."""
    shown = ", ".join(f"{m['label']} {m['score']:.2f} < {m['threshold']:.2f} @{m['t']:.2f}s" for m in latest[-3:])
    return f"{count} heard under their bar ({shown}); --sensitivity sets the bars"
