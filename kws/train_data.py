"""The training input pipeline: tf.data over clean clips, augmented on the fly.

Each batch is built by numpy code (shift + background noise + gain, then the *same* MFCC
function as every other path, normalisation, SpecAugment masking), wrapped in
``tf.numpy_function``; batch randomness is seeded from the run seed and the batch's own
indices, so a run is reproducible.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence

import numpy as np

from data_prep.augment import AugmentConfig, augment
from data_prep.config import FeatureConfig
from data_prep.features import mfcc
from data_prep.normalize import FeatureStats
from data_prep.spec_augment import MaskConfig, spec_augment


@dataclasses.dataclass(frozen=True)
class TrainingArrays:
    """Everything the training pipeline needs in memory."""

    clips: np.ndarray  # (N, L) float32 clean audio
    targets: np.ndarray  # (N,) int32 class indices
    noise_pool: tuple[np.ndarray, ...]


def batch_seed(seed: int, indices: np.ndarray) -> int:
    digest = hashlib.blake2b(np.asarray(indices, np.int64).tobytes(), digest_size=8, key=str(seed).encode())
    return int.from_bytes(digest.digest(), "little")


def augmented_batch(
    arrays: TrainingArrays,
    indices: np.ndarray,
    features: FeatureConfig,
    stats: FeatureStats,
    augment_config: AugmentConfig,
    masks: MaskConfig,
    seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    """One training batch: (B, T, n_mfcc) normalised features and (B,) targets."""
    rng = np.random.default_rng(batch_seed(seed, indices))
    audio = augment(arrays.clips[indices], arrays.noise_pool, augment_config, rng, sample_rate=features.sample_rate)
    x = spec_augment(stats.apply(mfcc(audio, features)), masks, rng)
    return x, arrays.targets[indices]


def training_dataset(
    arrays: TrainingArrays,
    features: FeatureConfig,
    stats: FeatureStats,
    augment_config: AugmentConfig,
    masks: MaskConfig,
    *,
    batch_size: int,
    seed: int,
    class_weights: Sequence[float],
):
    """An infinite-per-epoch ``tf.data.Dataset`` of (x, y, sample_weight) batches."""
    import tensorflow as tf

    n = len(arrays.targets)
    weights = np.asarray(class_weights, dtype=np.float32)
    t, c = features.input_shape

    def make(indices: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        x, y = augmented_batch(arrays, indices, features, stats, augment_config, masks, seed)
        return x, y.astype(np.int32), weights[y]

    def to_tensors(indices):
        x, y, w = tf.numpy_function(make, [indices], (tf.float32, tf.int32, tf.float32), stateful=False)
        x.set_shape((None, t, c))
        y.set_shape((None,))
        w.set_shape((None,))
        return x, y, w

    ds = tf.data.Dataset.range(n).shuffle(n, seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size).map(to_tensors, num_parallel_calls=2, deterministic=True)
    return ds.prefetch(2)


def balanced_class_weights(targets: np.ndarray, num_classes: int, boost: dict[int, float] | None = None) -> list[float]:
    """N / (K * count) per class (absent classes weigh 0), optionally boosted per class."""
    counts = np.bincount(targets, minlength=num_classes).astype(np.float64)
    present = counts > 0
    weights = np.zeros(num_classes)
    weights[present] = len(targets) / (present.sum() * counts[present])
    for cls, factor in (boost or {}).items():
        weights[cls] *= factor
    return [float(w) for w in weights]
