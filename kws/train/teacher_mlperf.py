"""The MLPerf Tiny reference DS-CNN as a distillation teacher: its own front end and model.

Its front end is not ours (teachers/mlperf_tiny_ds_cnn/README.md): each clip is divided by its
own peak, then ``tf.signal.stft`` (hann, 640/320, FFT 1024), magnitude, TF's mel matrix (40
bands, 20-4000 Hz), ``log(mel + 1e-6)`` and TF's MFCC (unnormalised DCT-II / sqrt(2 * 40)), first
10. It is computed here in numpy (a test checks it against those TF ops) because it runs inside
the tf.data ``numpy_function`` of every training batch, where eager TF calls are slow. The model
is the float32 .tflite when present (batched, ~8k clips/s on one core, unquantised soft targets),
else the int8 one with its input quantization.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import numpy as np
import scipy.fft

from data_prep import mel_banks
from data_prep.errors import ModelError
from kws.train.tflite_batch import BatchedTFLite

NAME = "mlperf_tiny_ds_cnn"
LABELS = ("down", "go", "left", "no", "off", "on", "right", "stop", "up", "yes", "_silence_", "_unknown_")
MODEL_FILES = ("kws_ref_model_float32.tflite", "kws_ref_model.tflite")  # first found wins
_CHUNK = 32  # clips per FFT call: keeps the working set in cache


@dataclasses.dataclass(frozen=True)
class MlperfFrontEnd:
    """The teacher's feature recipe (MLPerf Tiny ``get_dataset.py``, feature_type "mfcc")."""

    sample_rate: int = 16000
    clip_samples: int = 16000
    window_samples: int = 640
    stride_samples: int = 320
    n_fft: int = 1024
    n_mels: int = 40
    fmin: float = 20.0
    fmax: float = 4000.0
    log_offset: float = 1e-6
    n_mfcc: int = 10

    @property
    def num_frames(self) -> int:
        return 1 + (self.clip_samples - self.window_samples) // self.stride_samples


@functools.lru_cache(maxsize=4)
def tables(recipe: MlperfFrontEnd) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(periodic hann (l,), TF's mel matrix (n_fft/2+1, n_mels), TF's MFCC DCT (n_mels, n_mfcc))."""
    l = recipe.window_samples
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(l) / l)
    weights = mel_banks.tensorflow(recipe.sample_rate, recipe.n_fft, recipe.n_mels, recipe.fmin, recipe.fmax).T
    n, k = np.arange(recipe.n_mels)[:, None], np.arange(recipe.n_mfcc)[None]
    dct = 2.0 * np.cos(np.pi * k * (2 * n + 1) / (2 * recipe.n_mels)) / np.sqrt(2.0 * recipe.n_mels)
    out = tuple(np.ascontiguousarray(t, dtype=np.float32) for t in (window, weights, dct))
    for t in out:
        t.setflags(write=False)
    return out  # type: ignore[return-value]


def peak_normalise(wav: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(wav / its own max, rows with a positive max). The reference divides by ``max`` (not the
    absolute peak); a row without a positive sample (digital silence) stays as it is and is
    reported invalid: the reference would turn it into NaN, so the teacher has no opinion on it."""
    peak = wav.max(axis=-1, keepdims=True)
    valid = peak[..., 0] > 0
    return wav / np.where(peak > 0, peak, 1.0).astype(np.float32), valid


def features(wav: np.ndarray, recipe: MlperfFrontEnd) -> np.ndarray:
    """(B, L) float waveforms -> (B, T, n_mfcc) float32 teacher MFCC (invalid rows included)."""
    wav = np.asarray(wav, dtype=np.float32)
    if wav.ndim != 2 or wav.shape[1] != recipe.clip_samples:
        raise ValueError(f"teacher front end expects (B, {recipe.clip_samples}) audio, got {wav.shape}")
    window, mel, dct = tables(recipe)
    out = np.empty((len(wav), recipe.num_frames, recipe.n_mfcc), dtype=np.float32)
    for start in range(0, len(wav), _CHUNK):
        chunk, _ = peak_normalise(wav[start : start + _CHUNK])
        frames = np.lib.stride_tricks.sliding_window_view(chunk, recipe.window_samples, axis=-1)
        frames = frames[:, :: recipe.stride_samples][:, : recipe.num_frames]
        magnitude = np.abs(scipy.fft.rfft(frames * window, n=recipe.n_fft, axis=-1))
        out[start : start + _CHUNK] = np.log(magnitude @ mel + recipe.log_offset) @ dct
    return out


def model_file(path: Path) -> Path | None:
    """The teacher model in ``path`` (a folder holding the MLPerf files, or one of them)."""
    if path.is_file():
        return path if path.name in MODEL_FILES else None
    return next((path / name for name in MODEL_FILES if (path / name).is_file()), None)


class MlperfTeacher:
    """Waveform batch -> teacher probabilities (B, 12) in ``LABELS`` order, batched
    (kws.train.tflite_batch: safe to call from tf.data's threads)."""

    def __init__(self, path: Path, recipe: MlperfFrontEnd = MlperfFrontEnd()):
        found = model_file(path)
        if found is None:
            raise ModelError(f"{path}: no MLPerf Tiny KWS model ({' or '.join(MODEL_FILES)})")
        self.file, self.recipe = found, recipe
        self.runner = BatchedTFLite(found.read_bytes(), str(found))
        shape, classes = self.runner.input_shape, self.runner.num_classes
        if shape != (recipe.num_frames, recipe.n_mfcc, 1) or classes != len(LABELS):
            raise ModelError(f"{found}: input {shape} / {classes} outputs are not the MLPerf KWS model's "
                             f"({recipe.num_frames}, {recipe.n_mfcc}, 1) -> {len(LABELS)}")

    def __call__(self, wav: np.ndarray) -> np.ndarray:
        """(B, L) audio -> (B, 12) float32 probabilities; NaN rows where the clip has no
        positive sample (see ``peak_normalise``)."""
        wav = np.asarray(wav, dtype=np.float32)
        probs = self.runner(features(wav, self.recipe))
        probs[~peak_normalise(wav)[1]] = np.nan
        return probs
