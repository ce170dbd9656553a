"""Assemble a stream folder (stream.wav + truth.json) from dataset folders."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cascade.evaluation.stream_make import StreamRecipe, make_stream
from cascade.evaluation.stream_score import AUDIO, TRUTH
from cascade.evaluation.stream_sources import source_kind
from cascade.runtime.model_dir import write_json
from data_prep.atomic import atomic_dir
from data_prep.audio import audio_files, load_audio, write_wav
from data_prep.config import FeatureConfig
from data_prep.errors import DatasetError
from data_prep.labels import RESERVED, UNKNOWN
from data_prep.outputs import refuse_existing
from data_prep.speech_commands import load_dataset


def build_stream_folder(keywords_dir: Path, negative_dirs: list[Path], out: Path, recipe: StreamRecipe,
                        *, split: str = "testing", config: FeatureConfig | None = None, force: bool = False,
                        bed_dirs: Sequence[Path] = (), labels: str = "12") -> dict[str, Any]:
    """``labels``: which folders of ``keywords_dir`` are keywords (12: the ten Speech Commands
    words; or your own, ``alexa,snowboy``); the other words are the stream's other speech.
    ``bed_dirs``: long recordings (music) that join the background-noise files as the bed the
    words are spoken over, one recording per bed entry. Source kinds come from folder names
    (stream_sources.source_kind); otherwise negatives count as other speech, bed recordings
    as music."""
    config = config or FeatureConfig()
    refuse_existing(out, force, marks=(TRUTH,), hint="replace it")  # before the costly build, not only at publishing
    dataset = load_dataset(keywords_dir, labels)
    examples = [e for e in dataset.examples(split) if e.path is not None]
    keywords = [(e.path, e.label) for e in examples if e.label not in RESERVED]
    negatives = [(e.path, "speech") for e in examples if e.label == UNKNOWN]
    for folder in negative_dirs:
        negatives += [(p, source_kind(p, folder, "speech")) for p in audio_files(folder)]
    if not keywords:
        raise DatasetError(f"{keywords_dir}: no keyword clips in the {split} split")
    noise = [(load_audio(p, config.sample_rate), "noise") for p in dataset.background_noise_files]
    noise += [(load_audio(p, config.sample_rate), source_kind(p, folder, "music"))
              for folder in bed_dirs for p in audio_files(folder)]
    audio, truth = make_stream(keywords, negatives, noise, config.sample_rate, recipe)
    truth.update({"keywords_dir": str(keywords_dir), "labels": labels, "split": split, "negatives": [str(d) for d in negative_dirs],
                  "bed": [str(d) for d in bed_dirs]})
    with atomic_dir(out, force, marks=(TRUTH,)) as tmp:
        write_wav(tmp / AUDIO, audio, config.sample_rate)
        write_json(tmp / TRUTH, truth)
    return truth
