"""Long test streams: keyword clips and non-keyword audio over a background-noise bed,
with a truth file of where each keyword, each non-keyword event and each stretch of the bed is
(with its source kind: cascade/evaluation/stream_sources.py). What false accepts per hour are
measured on."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from data_prep.audio import load_audio
from data_prep.augment import rms
from data_prep.errors import AudioError, ConfigError, DatasetError


@dataclasses.dataclass(frozen=True, kw_only=True)
class StreamRecipe:
    minutes: float = 5.0
    keyword_share: float = 0.5  # share of events that are keywords (the rest: negatives)
    gap_s: tuple[float, float] = (1.5, 4.0)  # silence (noise only) between events
    snr_db: tuple[float, float] = (5.0, 20.0)  # event level over the noise bed
    noise_rms: float = 0.01  # level of the background bed
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.minutes > 0:
            raise ConfigError(f"--minutes {self.minutes:g}: a stream must last more than 0 minutes")
        if not 0 <= self.keyword_share <= 1:
            raise ConfigError(f"--keyword-share {self.keyword_share:g}: must be in [0, 1]")
        if not 0 <= self.gap_s[0] <= self.gap_s[1]:
            raise ConfigError(f"gap {self.gap_s}: expected 0 <= low <= high seconds")
        if not -math.inf < self.snr_db[0] <= self.snr_db[1] < math.inf:
            raise ConfigError(f"--snr-db {self.snr_db[0]:g},{self.snr_db[1]:g}: expected finite LOW <= HIGH in dB")
        if self.seed < 0:
            raise ConfigError(f"--seed {self.seed}: must be >= 0")


def active_region(clip: np.ndarray, sample_rate: int, floor_db: float = -30.0) -> tuple[int, int]:
    """Sample range where 10 ms frames are within ``floor_db`` of the loudest frame."""
    hop = max(1, sample_rate // 100)
    frames = len(clip) // hop
    if frames == 0:
        return 0, len(clip)
    level = 20 * np.log10(rms(clip[: frames * hop].reshape(frames, hop)) + 1e-9)
    loud = np.flatnonzero(level >= level.max() + floor_db)
    return int(loud[0] * hop), int(min(len(clip), (loud[-1] + 1) * hop))


def _noise_bed(noise: Sequence[tuple[np.ndarray, str]], length: int, level: float, rng: np.random.Generator,
               sample_rate: int) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """(bed, its segments: {start, end, source} in seconds)."""
    bed = np.zeros(length, np.float32)
    segments: list[dict[str, Any]] = []
    pos = 0
    while pos < length:
        src, kind = noise[rng.integers(len(noise))]
        take = min(length - pos, len(src), int(rng.integers(len(src) // 4 + 1, len(src) + 1)))
        start = int(rng.integers(0, len(src) - take + 1))
        seg = src[start : start + take]
        bed[pos : pos + take] = seg * (level / max(float(rms(seg)), 1e-6))
        segments.append({"start": pos / sample_rate, "end": (pos + take) / sample_rate, "source": kind})
        pos += take
    return bed, segments


def make_stream(
    keywords: Sequence[tuple[Path, str]],
    negatives: Sequence[tuple[Path, str]],
    noise: Sequence[tuple[np.ndarray, str]],
    sample_rate: int,
    recipe: StreamRecipe,
) -> tuple[np.ndarray, dict[str, Any]]:
    """(audio, truth). Keywords are (file, label), negatives (file, source kind), noise
    (recording, source kind); each keyword and negative is used at most once per pass through
    its list, in a seeded order. Without noise the bed is silence. A file that cannot be read
    is left out and named in the truth's ``skipped`` (one damaged clip must not stop the build)."""
    rng = np.random.default_rng(recipe.seed)
    length = int(recipe.minutes * 60 * sample_rate)
    if noise:
        audio, bed = _noise_bed(noise, length, recipe.noise_rms, rng, sample_rate)
    else:
        audio, bed = np.zeros(length, np.float32), [{"start": 0.0, "end": length / sample_rate, "source": "silence"}]
    negative_events: list[dict[str, Any]] = []
    kw_order, neg_order = list(rng.permutation(len(keywords))), list(rng.permutation(len(negatives)))
    truth: list[dict[str, Any]] = []
    events = 0
    skipped: dict[str, str] = {}  # file -> the loader's error
    pos = int(rng.uniform(*recipe.gap_s) * sample_rate)
    while True:
        is_kw = bool(keywords) and (not negatives or rng.random() < recipe.keyword_share)
        order, pool = (kw_order, keywords) if is_kw else (neg_order, negatives)
        if not order:
            order.extend(rng.permutation(len(pool)))
        item = pool[order.pop()]
        path, label = item if is_kw else (item[0], None)
        if str(path) in skipped:
            continue
        try:
            clip = load_audio(path, sample_rate)
        except AudioError as exc:
            skipped[str(path)] = str(exc)
            if all(str(p) in skipped for p, _ in pool):
                raise DatasetError(f"no readable {'keyword' if is_kw else 'negative'} clips ({exc})") from None
            continue
        if pos + len(clip) > length:
            break
        lo, hi = active_region(clip, sample_rate)
        level = float(rms(clip[lo:hi])) or 1e-6
        snr = rng.uniform(*recipe.snr_db)
        peak = float(np.abs(clip).max()) or 1.0
        gain = min(recipe.noise_rms * 10 ** (snr / 20) / level, 0.99 / peak) if noise else 1.0
        audio[pos : pos + len(clip)] += clip * np.float32(gain)
        if label is not None:
            truth.append({"start": (pos + lo) / sample_rate, "end": (pos + hi) / sample_rate,
                          "label": label, "file": str(path)})
        else:
            negative_events.append({"start": (pos + lo) / sample_rate, "end": (pos + hi) / sample_rate,
                                    "source": item[1], "file": str(path)})
        events += 1
        pos += len(clip) + int(rng.uniform(*recipe.gap_s) * sample_rate)
    np.clip(audio, -1.0, 1.0, out=audio)
    meta = {"duration_s": length / sample_rate, "sample_rate": sample_rate, "events": events,
            "keywords": truth, "negative_events": negative_events, "bed_segments": bed,
            "recipe": dataclasses.asdict(recipe),
            "skipped": [{"file": f, "reason": r} for f, r in skipped.items()]}
    return audio, meta
