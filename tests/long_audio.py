"""Real recordings made long, as people record their own words: a Speech Commands clip with
real background noise before and after it, 1.6-3.1 s in all, the word at varying offsets."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile as sf

from data_prep.audio import load_audio
from data_prep.augment import rms

RATE = 16000
NOISE_RMS = 0.003


def noise_bed(noise_file: Path, total: int, rng: np.random.Generator) -> np.ndarray:
    """``total`` samples of a real noise recording at a quiet room's level."""
    noise = load_audio(noise_file, RATE)
    start = int(rng.integers(0, len(noise) - total))
    bed = noise[start : start + total].astype(np.float32)
    return bed * np.float32(NOISE_RMS / max(float(rms(bed)), 1e-9))


def pad_word(clip: np.ndarray, noise_file: Path, rng: np.random.Generator, seconds=(1.6, 3.1)) -> tuple[np.ndarray, int]:
    """(recording, offset of the clip in it)."""
    total = int(rng.uniform(*seconds) * RATE)
    offset = int(rng.integers(0, total - len(clip) + 1))
    out = noise_bed(noise_file, total, rng)
    out[offset : offset + len(clip)] += clip
    return out, offset


def long_folder(src: Path, dst: Path, seed: int = 0, seconds=(1.6, 3.1),
                make: Callable[[Path, np.random.Generator], np.ndarray | None] | None = None) -> dict[str, int]:
    """A copy of the Speech Commands folder ``src`` (lists, noise) whose every clip is padded
    to a long recording; ``make(path, rng)`` may build a clip's audio instead. Returns
    {relative path: offset of the original clip}."""
    rng = np.random.default_rng(seed)
    noise_dir = src / "_background_noise_"
    shutil.copytree(noise_dir, dst / "_background_noise_")
    for name in ("validation_list.txt", "testing_list.txt"):
        shutil.copy(src / name, dst / name)
    noises = sorted(noise_dir.glob("*.wav"))
    offsets = {}
    for wav in sorted(src.glob("*/*.wav")):
        if wav.parent.name == "_background_noise_":
            continue
        rel = f"{wav.parent.name}/{wav.name}"
        audio = make(wav, rng) if make else None
        clip = load_audio(wav, RATE) if audio is None else audio
        long, offsets[rel] = pad_word(clip, noises[int(rng.integers(0, len(noises)))], rng, seconds)
        (dst / wav.parent.name).mkdir(parents=True, exist_ok=True)
        sf.write(dst / rel, long, RATE, subtype="PCM_16")
    return offsets
