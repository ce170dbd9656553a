"""What every text-to-speech engine does with an utterance: trim it, place it in a clip, write it.

Shared by the espeak-ng and Kokoro engines, so a synthetic clip looks the same whichever
engine spoke it: the word at a random offset and level inside one clip, 16-bit WAV, in the
Speech Commands layout ``out/<word>/<speaker>_nohash_0.wav`` (written by data_prep.audio.write_wav).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from data_prep.audio import pad_or_crop
from data_prep.config import FeatureConfig
from data_prep.errors import KwsError

# Names the engines give their speakers: a prefix and 8 hex digits of a hash of the voice.
SYNTH_CLIP = re.compile(r"^(synth|kokoro)[0-9a-f]{8}_nohash_\d+\.wav$")


def trim_silence(audio: np.ndarray, threshold: float = 0.02) -> np.ndarray:
    """The stretch from the first to the last sample above ``threshold`` of the peak."""
    loud = np.flatnonzero(np.abs(audio) > threshold * max(float(np.abs(audio).max(initial=0.0)), 1e-6))
    return audio[loud[0] : loud[-1] + 1] if loud.size else audio


def place(utterance: np.ndarray, config: FeatureConfig, rng: np.random.Generator) -> np.ndarray:
    """Put the word at a random position inside one clip, at a random level, as recorded clips are."""
    length = config.clip_samples
    utterance = utterance[:length] * np.float32(rng.uniform(0.15, 0.9) / max(float(np.abs(utterance).max()), 1e-6))
    start = int(rng.integers(0, length - len(utterance) + 1))
    return pad_or_crop(np.concatenate([np.zeros(start, np.float32), utterance]), length)


def clip_path(out: Path, folder: str, speaker_id: str) -> Path:
    return Path(out) / folder / f"{speaker_id}_nohash_0.wav"


def word_folder(text: str) -> str:
    """Folder (label) of a word or phrase: lower case, runs of spaces as one underscore."""
    folder = "_".join(text.lower().split())
    if not folder or folder.startswith((".", "_")) or "/" in folder or "\\" in folder:
        raise KwsError(f"{text!r}: not usable as a word (empty, or a name that is not a plain folder)")
    return folder


def looks_synthesized(out: Path) -> bool:
    """True when ``out`` holds only what a synth run writes: word folders of synth clips (and
    leftovers of interrupted atomic writes), so a rerun may continue into it."""
    out = Path(out)
    found = False
    for entry in out.iterdir():
        if entry.name in ("synth.json", "validation_list.txt", "testing_list.txt"):
            continue
        if not entry.is_dir():
            return False
        for item in entry.iterdir():
            if item.is_file() and (SYNTH_CLIP.match(item.name) or item.name.startswith(".")):
                found = True
                continue
            return False
    return found
