"""Features of a dataset listing: cached for real files, computed for generated silence.

Evaluation, validation and calibration all call this, so every pass over clean clips goes
through the one cache and the one feature function.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from data_prep.cache import FeatureCache
from data_prep.config import FeatureConfig
from data_prep.features import mfcc
from data_prep.speech_commands import Example, example_audio


def example_features(
    examples: Sequence[Example], config: FeatureConfig, cache_dir: Path | None = None, use_cache: bool = True
) -> np.ndarray:
    """(N, T, n_mfcc) float32 MFCC of the examples, in order."""
    out = np.empty((len(examples), *config.input_shape), dtype=np.float32)
    files = [i for i, e in enumerate(examples) if e.path is not None]
    generated = [i for i, e in enumerate(examples) if e.path is None]
    if files:
        paths = [examples[i].path for i in files]
        if use_cache:
            with FeatureCache(cache_dir, config) as cache:
                out[files] = cache.features_for(paths)
        else:
            from data_prep.cache import compute_features

            out[files] = compute_features(paths, config)
    if generated:
        out[generated] = mfcc(np.stack([example_audio(examples[i], config) for i in generated]), config)
    return out


def example_clips(examples: Sequence[Example], config: FeatureConfig) -> np.ndarray:
    """(N, L) float32 audio of the examples: the input of on-the-fly augmentation."""
    out = np.empty((len(examples), config.clip_samples), dtype=np.float32)
    for i, example in enumerate(examples):
        out[i] = example_audio(example, config)
    return out
