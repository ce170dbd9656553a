"""A model kws trained (a model directory) as a teacher: the stage 2 a gate will sit in front of.

The gate's job is to pass what stage 2 would call a keyword; distilled from stage 2's keyword
mass it learns that directly, on every augmented input (music and speech windows included),
and for any keyword stage 2 knows: a custom word the MLPerf reference never heard has no
teacher but its own stage 2. The teacher hears the waveform through its own feature config
and normalisation and runs its int8 model (what the device will run; clip by clip, as kws's
graphs fix their batch at 1, on TFLite's optimised kernels: kws.train.tflite_batch).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cascade.runtime.model_dir import REQUIRED, ModelDir
from cascade.runtime.stages import KEYWORD
from data_prep.errors import ModelError
from data_prep.features import mfcc
from kws.train.tflite_batch import BatchedTFLite

NAME = "kws_model"


def recognises(path: Path) -> bool:
    """A folder with the files every kws model directory has."""
    return path.is_dir() and all((path / name).is_file() for name in REQUIRED)


def _open(path: Path) -> ModelDir:
    """The model directory; a gate (stage 1: ``keyword``) is refused: a teacher must name words."""
    model = ModelDir.open(path)
    if KEYWORD in model.labels:
        raise ModelError(f"--teacher {path}: a stage-1 gate (labels {', '.join(model.labels)}); "
                         "a teacher must classify the words themselves (a stage-2 model)")
    return model


def model_labels(path: Path) -> tuple[str, ...]:
    return _open(path).labels


class KwsModelTeacher:
    """Waveform batch (B, L) -> (B, len(labels)) probabilities of the model at ``path``."""

    def __init__(self, path: Path):
        self.model = _open(path)
        self.model.check_int8()  # its files describe this model (shape, classes, int8 ends)
        self.runner = BatchedTFLite(self.model.int8_path.read_bytes(), str(self.model.int8_path))

    @property
    def labels(self) -> tuple[str, ...]:
        return self.model.labels

    def __call__(self, wav: np.ndarray) -> np.ndarray:
        wav = np.asarray(wav, dtype=np.float32)
        if wav.ndim != 2 or wav.shape[1] != self.model.config.clip_samples:
            raise ValueError(f"teacher {self.model.path} expects (B, {self.model.config.clip_samples}) audio, got {wav.shape}")
        return self.runner(self.model.inputs(mfcc(wav, self.model.config)))
