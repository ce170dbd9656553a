"""Where the word is in a recording longer than one clip: pure functions on samples.

People record their own words as 1.5-3 s files with the word somewhere in the middle; the
first clip of such a file is mostly the silence before the word. Every path (training clips,
the feature cache, evaluation, calibration, ``kws features``) cuts a long recording with
``word_start`` so that they all see the same window. A recording of at most one clip is
used as it is (padded), exactly as before.

The rule: short-time energy in 10 ms frames, each frame capped at the recording's 95th
percentile (so a click or a pop cannot outweigh the word), then the clip-length window with
the largest summed energy; when several windows hold (nearly) all of it, e.g. a 0.5 s word
in a 1 s clip, the middle one, which centres the word.
"""

from __future__ import annotations

import numpy as np

LOCATE_RULE = "energy-capped95-v1"  # part of the feature cache key: a new rule, new features
FRAME_MS = 10.0
CAP_PERCENTILE = 95.0
PLATEAU = 0.02  # windows within 2 % of the best sum count as equally good
JITTER_MS = 100.0  # training moves the located window by up to this much either way
ACTIVE_DB_RATIO = 10 ** (-15 / 10)  # a frame within 15 dB of the loud ones is speech
SPEECH_SHARE = (0.02, 0.98)  # the speech span: where this range of the capped energy lies


def _frame(sample_rate: int) -> int:
    return max(1, round(sample_rate * FRAME_MS / 1000.0))


def is_long(n_samples: int, length: int, sample_rate: int) -> bool:
    """Longer than the clip by at least one frame: a recording the locator cuts."""
    return n_samples - length >= _frame(sample_rate)


def frame_energy(samples: np.ndarray, frame: int) -> np.ndarray:
    """Mean square per ``frame`` samples (the last partial frame zero-padded), capped at the
    ``CAP_PERCENTILE`` percentile: robust to a single loud click."""
    n = -(-len(samples) // frame)
    padded = np.zeros(n * frame, dtype=np.float64)
    padded[: len(samples)] = samples
    energy = (padded.reshape(n, frame) ** 2).mean(axis=1)
    return np.minimum(energy, np.percentile(energy, CAP_PERCENTILE))


def word_start(samples: np.ndarray, length: int, sample_rate: int) -> int:
    """Start (in samples) of the ``length``-sample window holding the word; 0 when the
    recording is not ``is_long`` (a clip, give or take the resampler's last samples)."""
    if not is_long(len(samples), length, sample_rate):
        return 0
    frame = _frame(sample_rate)
    energy = frame_energy(samples, frame)
    width = max(1, length // frame)
    if width >= len(energy):
        return 0
    sums = np.convolve(energy, np.ones(width), mode="valid")
    best = int(np.argmax(sums))
    good = sums >= sums[best] * (1.0 - PLATEAU)
    lo = hi = best
    while lo > 0 and good[lo - 1]:
        lo -= 1
    while hi < len(good) - 1 and good[hi + 1]:
        hi += 1
    return min((lo + hi) // 2 * frame, len(samples) - length)


def speech_span(samples: np.ndarray, sample_rate: int) -> int:
    """Samples between the points where 2 % and 98 % of the (capped) energy have passed: how
    long the spoken part is, so a phrase longer than the clip can be told apart."""
    frame = _frame(sample_rate)
    energy = frame_energy(samples, frame)
    floor, cap = np.percentile(energy, 20.0), energy.max()
    energy = np.where(energy > max(4.0 * floor, cap * ACTIVE_DB_RATIO), energy, 0.0)  # speech, not noise
    total = energy.sum()
    if total <= 0:
        return 0
    cum = np.cumsum(energy) / total
    first, last = (int(np.searchsorted(cum, share)) for share in SPEECH_SHARE)
    return (last - first + 1) * frame


def window(samples: np.ndarray, length: int, start: int) -> np.ndarray:
    """``samples[start:start+length]``, zero-padded at the end when the recording is short."""
    out = samples[start : start + length]
    if len(out) < length:
        out = np.pad(out, (0, length - len(out)))
    return out.astype(np.float32, copy=False)


def long_clips_notice(count: int, clip_ms: float) -> str:
    return f"{count} clips longer than {clip_ms:g} ms: word located by energy"


def too_long_notice(label: str, long: int, total: int, median_ms: float, clip_ms: float) -> str:
    """What a user with a phrase longer than the clip reads (and what to do about it)."""
    suggest = int(np.ceil((median_ms + 200.0) / 250.0) * 250)
    return (f"warning: {long} of {total} recordings of {label!r} hold speech longer than the {clip_ms:g} ms clip "
            f"(median {median_ms:.0f} ms): the clip cuts the phrase; set a longer clip, e.g. --clip-ms {suggest}")
