"""Peak memory of ``kws detect`` on a short and a long recording: it must not grow with length.

The recordings are generated (low noise with keyword clips spoken into it every
``KEYWORD_EVERY_S``) and written block by block, so making a 2-hour file does not itself need
2 hours of audio in memory.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import soundfile as sf

from data_prep.audio import audio_files, load_clip
from data_prep.config import FeatureConfig
from data_prep.errors import DatasetError
from data_prep.labels import SILENCE, UNKNOWN
from kws.bench.child import measure_kws

KEYWORD_EVERY_S = 30
NOISE_RMS = 0.005
_BLOCK_S = 60


@dataclasses.dataclass(frozen=True)
class DetectRun:
    seconds_of_audio: float
    wall_seconds: float
    peak_rss_bytes: int


def keyword_clips(keywords_dir: Path, labels: tuple[str, ...], config: FeatureConfig, per_label: int = 2) -> list[np.ndarray]:
    """A few clips of each keyword the bundle knows, found as ``keywords_dir/<label>/*.wav``."""
    clips = []
    for label in labels:
        if label in (SILENCE, UNKNOWN) or not (keywords_dir / label).is_dir():
            continue
        clips += [load_clip(p, config) for p in audio_files(keywords_dir / label)[:per_label]]
    if not clips:
        raise DatasetError(f"{keywords_dir}: no clips of the keywords {', '.join(labels)}")
    return clips


def write_long_wav(path: Path, seconds: float, clips: list[np.ndarray], sample_rate: int, seed: int = 0) -> Path:
    """``seconds`` of 16-bit noise with a keyword clip every ``KEYWORD_EVERY_S``, written a
    minute at a time."""
    rng = np.random.default_rng(seed)
    total, block, every = int(seconds * sample_rate), _BLOCK_S * sample_rate, KEYWORD_EVERY_S * sample_rate
    with sf.SoundFile(str(path), "w", sample_rate, 1, "PCM_16") as fh:
        for start in range(0, total, block):
            audio = (rng.standard_normal(min(block, total - start)) * NOISE_RMS).astype(np.float32)
            for at in range(start - start % every + every // 2, start + len(audio), every):
                clip = clips[(at // every) % len(clips)]
                lo = at - start
                if 0 <= lo and lo + len(clip) <= len(audio):  # block and period align: never split
                    audio[lo : lo + len(clip)] += clip
            fh.write(np.clip(audio, -1.0, 1.0))
    return path


def measure_detect(wav: Path, model: Path, seconds_of_audio: float) -> DetectRun:
    """One ``kws detect`` child on ``wav``: its wall time and peak RSS."""
    run = measure_kws(["detect", str(wav), "--model", str(model)])
    return DetectRun(seconds_of_audio, run.seconds, run.peak_rss_bytes)
