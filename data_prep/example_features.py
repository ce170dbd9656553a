"""Features of a dataset listing: cached for real files, computed for generated silence.

Evaluation, validation and calibration all call this, so every pass over clean clips goes
through the one cache and the one feature function. ``iter_example_features`` streams them
a bounded batch at a time, so a pass over a dataset larger than memory needs memory for one
batch (plus the cache's few open shard maps), not for the dataset.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from data_prep.cache import FeatureCache, compute_features
from data_prep.config import FeatureConfig
from data_prep.features import mfcc
from data_prep.speech_commands import Example, example_audio

STREAM_BATCH = 1024  # clips per streamed batch: ~2 MB of features, ~65 MB of audio when decoding


def _batch_features(examples: Sequence[Example], config: FeatureConfig, cache: FeatureCache | None) -> np.ndarray:
    out = np.empty((len(examples), *config.input_shape), dtype=np.float32)
    files = [i for i, e in enumerate(examples) if e.path is not None]
    generated = [i for i, e in enumerate(examples) if e.path is None]
    if files:
        paths = [examples[i].path for i in files]
        out[files] = cache.features_for(paths) if cache is not None else compute_features(paths, config)
    if generated:
        out[generated] = mfcc(np.stack([example_audio(examples[i], config) for i in generated]), config)
    return out


def iter_example_features(
    examples: Sequence[Example], config: FeatureConfig, cache_dir: Path | None = None, use_cache: bool = True,
    batch_size: int | None = None,
) -> Iterator[np.ndarray]:
    """(b, T, n_mfcc) float32 MFCC of the examples, in order, ``batch_size`` (default
    ``STREAM_BATCH``) clips at a time."""
    batch_size = batch_size or STREAM_BATCH
    with FeatureCache(cache_dir, config) if use_cache else contextlib.nullcontext() as cache:
        for start in range(0, len(examples), batch_size):
            yield _batch_features(examples[start : start + batch_size], config, cache)


def example_features(
    examples: Sequence[Example], config: FeatureConfig, cache_dir: Path | None = None, use_cache: bool = True
) -> np.ndarray:
    """(N, T, n_mfcc) float32 MFCC of the examples, in order (all in memory: for the small
    splits training validates on; passes over a whole dataset use ``iter_example_features``)."""
    out = np.empty((len(examples), *config.input_shape), dtype=np.float32)
    row = 0
    for batch in iter_example_features(examples, config, cache_dir, use_cache):
        out[row : row + len(batch)] = batch
        row += len(batch)
    return out


def example_clips(examples: Sequence[Example], config: FeatureConfig) -> np.ndarray:
    """(N, L) float32 audio of the examples: the input of on-the-fly augmentation."""
    out = np.empty((len(examples), config.clip_samples), dtype=np.float32)
    for i, example in enumerate(examples):
        out[i] = example_audio(example, config)
    return out
