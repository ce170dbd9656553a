"""How far an accuracy measured on a few speakers can be trusted.

Clips of one speaker are not independent draws: the dev test split holds 367 real clips of 18
speakers, 127 of them one speaker's, and the gate's misses cluster on that speaker. A binomial
standard error over clips treats every clip as new evidence and so understates the spread a
new set of speakers would show; resampling whole speakers (a cluster bootstrap) does not.
``kws eval`` reports both, so a 1-point difference between two models is read against the
right yardstick.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

REPS = 2000  # bootstrap draws: the interval's ends move by < 0.5 point between seeds at 18 speakers


@dataclasses.dataclass(frozen=True)
class SpeakerSpread:
    """Accuracy with its spread over speakers; ``per_speaker`` is (speaker, clips, correct),
    most clips first. Clips without a speaker (generated silence) each count as their own."""

    accuracy: float
    speakers: int
    low: float  # 95 % interval, whole speakers resampled
    high: float
    clip_se: float  # binomial standard error, clips taken as independent
    per_speaker: tuple[tuple[str, int, int], ...]
    # per clip, for a paired comparison of two models on the same clips (not written to JSON)
    correct: tuple[bool, ...] = dataclasses.field(default=(), repr=False, compare=False)
    clusters: tuple[str, ...] = dataclasses.field(default=(), repr=False, compare=False)

    @property
    def largest_share(self) -> float:
        """The share of the clips that the speaker with most clips holds."""
        total = sum(n for _, n, _ in self.per_speaker)
        return self.per_speaker[0][1] / total if total else 0.0

    def describe(self, what: str = "clips") -> str:
        name, n, _ = self.per_speaker[0]
        return (f"95 % interval over {self.speakers} speakers (whole speakers resampled) "
                f"{self.low:.3f}-{self.high:.3f}; counting {what} as independent +-{1.96 * self.clip_se:.3f}; "
                f"{self.largest_share:.0%} of the {what} are one speaker's ({name}, {n})")

    def to_json(self) -> dict[str, Any]:
        return {"speakers": self.speakers, "ci95": [self.low, self.high], "clip_se": self.clip_se,
                "largest_share": self.largest_share,
                "per_speaker": {s: {"n": n, "correct": c} for s, n, c in self.per_speaker}}


def speaker_spread(correct: np.ndarray, speakers: Sequence[str], *, reps: int = REPS,
                   seed: int = 0) -> SpeakerSpread | None:
    """The accuracy of ``correct`` (one bool per clip) and its 95 % cluster-bootstrap interval
    over ``speakers`` (one id per clip, "" for none); None with fewer than two named speakers,
    where there is nothing to resample."""

    correct = np.asarray(correct, dtype=bool)
    if len(correct) != len(speakers):
        raise ValueError(f"{len(correct)} results for {len(speakers)} speaker ids")
    named_speakers = {s for s in speakers if s}
    if len(named_speakers) < 2:
        return None
    ids = [s or f"\0{i}" for i, s in enumerate(speakers)]  # no speaker: a cluster of its own
    names, n, right = _clusters(ids, correct)
    low, high = _interval(n, right, reps, seed)
    accuracy = float(correct.mean())
    rows = sorted(((str(name), int(k), int(c)) for name, k, c in zip(names, n, right)), key=lambda r: (-r[1], r[0]))
    named = [r for r in rows if r[0] in named_speakers]
    unnamed = [r for r in rows if r[0] not in named_speakers]
    if unnamed:
        named.append(("(no speaker)", sum(r[1] for r in unnamed), sum(r[2] for r in unnamed)))
    return SpeakerSpread(accuracy=accuracy, speakers=len(named_speakers), low=low, high=high,
                         clip_se=float(np.sqrt(accuracy * (1 - accuracy) / len(correct))), per_speaker=tuple(named),
                         correct=tuple(bool(c) for c in correct), clusters=tuple(ids))


@dataclasses.dataclass(frozen=True)
class PairedDifference:
    """Model A's accuracy minus B's on the same clips, with its 95 % interval when whole
    speakers are resampled (both models see the same draw, so a speaker both find hard costs
    neither), and the clips only one of them gets right."""

    difference: float
    low: float
    high: float
    speakers: int
    only_a: int  # clips A gets right and B does not
    only_b: int

    def describe(self, a: str = "A", b: str = "B") -> str:
        return (f"{a} - {b}: {100 * self.difference:+.1f} points, 95 % interval over {self.speakers} speakers "
                f"(paired, whole speakers resampled) {100 * self.low:+.1f} to {100 * self.high:+.1f}; "
                f"right only for {a}: {self.only_a} clips, only for {b}: {self.only_b}")

    def to_json(self) -> dict[str, Any]:
        return {"difference": self.difference, "ci95": [self.low, self.high], "speakers": self.speakers,
                "only_a": self.only_a, "only_b": self.only_b}


def paired_difference(a: SpeakerSpread, b: SpeakerSpread, *, reps: int = REPS, seed: int = 0) -> PairedDifference:
    """A minus B, resampling the speakers of the clips both were measured on; refused when
    the two were not measured on the same clips in the same order."""

    if a.clusters != b.clusters or not a.clusters:
        raise ValueError("the two evaluations did not score the same clips (a clip unreadable for one of them?)")
    ca, cb = np.asarray(a.correct), np.asarray(b.correct)
    _, n, gain = _clusters(a.clusters, ca.astype(float) - cb)
    low, high = _interval(n, gain, reps, seed)
    return PairedDifference(difference=float(ca.mean() - cb.mean()), low=low, high=high,
                            speakers=a.speakers, only_a=int((ca & ~cb).sum()), only_b=int((cb & ~ca).sum()))


def _clusters(ids: Sequence[str], values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each distinct id, its number of clips and the sum of ``values`` over them."""
    names, index = np.unique(np.asarray(ids, dtype=object), return_inverse=True)
    return (names, np.bincount(index, minlength=len(names)),
            np.bincount(index, weights=np.asarray(values, dtype=float), minlength=len(names)))


def _interval(n: np.ndarray, sums: np.ndarray, reps: int, seed: int) -> tuple[float, float]:
    """The 2.5th and 97.5th percentiles of sum / clips when whole clusters are drawn with
    replacement (a ratio estimator: a cluster weighs as many clips as it holds)."""
    draws = np.random.default_rng(seed).integers(0, len(n), size=(reps, len(n)))
    low, high = np.percentile(sums[draws].sum(axis=1) / n[draws].sum(axis=1), [2.5, 97.5])
    return float(low), float(high)
