"""How often the gate opens on audio with no keyword in it: the figure that sets a cascade's
energy, since an always-on listener hears mostly noise and other speech."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cascade.runtime.bundle import Bundle
from cascade.runtime.model_dir import is_finite_number, read_json
from cascade.runtime.pipeline import StreamingCascade
from cascade.runtime.stream_run import run_stream
from data_prep.audio import load_audio
from data_prep.errors import AudioError, ModelError
from data_prep.labels import UNKNOWN
from data_prep.speech_commands import load_dataset

KEYWORD_FREE = "keyword_free.json"  # a bundle's keyword_free_rate, written by kws cascade build
FIGURES = ("seconds", "steps", "stage2_runs", "stage2_per_s", "stage2_share")  # what keyword_free_rate returns


def keyword_free_streams(data_dir: Path, labels, split: str, sample_rate: int,
                         gap_s: float = 0.5) -> tuple[list[np.ndarray], dict[str, Any]]:
    """The keyword-free audio of a dataset: each background-noise file, then the split's
    ``_unknown_`` clips joined by ``gap_s`` of silence. One definition for calibration and search."""
    dataset = load_dataset(data_dir, labels)
    streams = dataset.noise_recordings(sample_rate)
    speech = [e.path for e in dataset.examples(split) if e.label == UNKNOWN and e.path is not None]
    clips = [clip for clip in (_readable(p, sample_rate) for p in speech) if clip is not None]
    if clips:
        gap = np.zeros(int(gap_s * sample_rate), np.float32)
        streams.append(np.concatenate([part for clip in clips for part in (clip, gap)]))
    about = {"noise_files": [p.name for p in dataset.background_noise_files], "speech_clips": len(clips)}
    return streams, about


def _readable(path: Path, sample_rate: int) -> np.ndarray | None:
    """The clip, or None for a damaged file (calibration and eval skip those and say so)."""
    try:
        return load_audio(path, sample_rate)
    except AudioError:
        return None


def keyword_free_rate(bundle: Bundle, streams: Sequence[np.ndarray]) -> dict[str, Any]:
    """Stage-2 runs per second and per step of the streaming cascade on keyword-free audio."""
    runner = StreamingCascade(bundle)
    seconds = steps = runs = 0
    for audio in streams:
        runner.reset()
        result = run_stream(bundle, audio, runner=runner, chunk_samples=bundle.config.sample_rate)
        seconds, steps, runs = seconds + result.duration_s, steps + result.steps, runs + result.stage2_runs
    return {"seconds": seconds, "steps": steps, "stage2_runs": runs,
            "stage2_per_s": runs / seconds if seconds else 0.0, "stage2_share": runs / steps if steps else 0.0}


def read_keyword_free(bundle_dir: Path) -> dict[str, Any] | None:
    """A bundle's keyword-free measurement (None when it has none), its figures checked: a
    damaged or hand-edited file is one error naming it, not a traceback in `kws energy` or
    `kws report`."""
    path = Path(bundle_dir) / KEYWORD_FREE
    if not path.is_file():
        return None
    free = read_json(path)
    if not isinstance(free, dict):
        raise ModelError(f"{path}: not a keyword-free measurement (a JSON object expected, got {type(free).__name__})")
    for key in FIGURES:
        value = free.get(key)
        if value is not None and not (is_finite_number(value) and value >= 0):
            raise ModelError(f"{path}: {key}={value!r} is not a finite number >= 0")
    return free
