"""The training input pipeline: tf.data over clean clips, augmented on the fly.

Each batch is built by numpy code (speed, shift, reverb, background noise, gain, then the *same* MFCC
function as every other path, normalisation, SpecAugment masking), wrapped in
``tf.numpy_function``. With a teacher (kws.train.teacher) the same step runs it, batched, on
the same augmented waveforms through its own front end, and the batch carries soft targets.

A training example is fully determined by (run seed, epoch, clip index): the epoch's order is
a permutation seeded by (seed, epoch) and each clip's augmentation by (seed, epoch, clip).
So the content of global batch k of epoch e does not depend on how many workers or replicas
compute it, nor on whether the run was interrupted and resumed at an epoch boundary. Under a
tf.distribute strategy every worker walks the same global batches and keeps only its
replicas' contiguous slices (sharding by data, before the costly augmentation), and the loss
of each slice is divided by the size of the *global* batch, which makes data-parallel
training compute the same gradients as one device on the whole batch.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

from data_prep.augment import AugmentConfig, augment, ms_to_samples
from data_prep.config import FeatureConfig
from data_prep.features import mfcc
from data_prep.normalize import FeatureStats
from data_prep.recordings import Context
from data_prep.spec_augment import MaskConfig, spec_augment
from kws.train.config import TrainConfig
from kws.train.teacher import Distillation


@dataclasses.dataclass(frozen=True)
class TrainingArrays:
    """Everything the training pipeline needs in memory."""

    clips: np.ndarray  # (N, L) float32 clean audio
    targets: np.ndarray  # (N,) int32 class indices
    noise_pool: tuple[np.ndarray, ...]
    noise_weights: tuple[float, ...] | None = None  # draw share of each pool entry (None: uniform)
    clip_labels: tuple[str, ...] = ()  # dataset label of each clip (what a teacher is trusted on)
    negative: tuple[bool, ...] = ()  # per clip: a window of --negatives audio (empty: none is)
    context: Context | None = None  # audio around long recordings' windows, for jitter (None: none is long)
    rirs: tuple[np.ndarray, ...] = ()  # room impulse responses for reverb (data_prep.rooms; empty: no reverb)

    def clip(self, index: int, seed: int, epoch: int) -> np.ndarray:
        """Clip ``index`` as epoch ``epoch`` sees it: a long recording's window jittered."""
        clip = self.clips[index]
        return clip if self.context is None else self.context.jittered(clip, index, seed, epoch)


def representative_mfcc(arrays: TrainingArrays, config: TrainConfig, features: FeatureConfig) -> np.ndarray:
    """Raw MFCC (N, T, n_mfcc) of the int8 calibration clips: ``representative_samples``
    training clips in a seeded order. One pick for ``kws train`` and ``kws optimize``, so a
    model converted again is calibrated on the same clips."""
    rng = np.random.default_rng(config.seed)
    pick = rng.permutation(len(arrays.clips))[: config.representative_samples]
    return mfcc(arrays.clips[pick], features)


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """(n,) int64: the order of the clips in ``epoch``, the same on every worker and resume."""
    return np.random.default_rng([seed, epoch]).permutation(n).astype(np.int64)


def steps_per_epoch(n: int, batch_size: int) -> int:
    """Global batches per epoch; the last one may be smaller (it is kept, not dropped)."""
    return math.ceil(n / batch_size)


def replica_slice(batch_len: int, replica: int, replicas: int) -> tuple[int, int]:
    """[start, end) of ``replica``'s contiguous share of a global batch: sizes differ by at
    most one, and a short last batch still gives every sample to exactly one replica."""
    return batch_len * replica // replicas, batch_len * (replica + 1) // replicas


def is_identity(config: AugmentConfig, sample_rate: int) -> bool:
    """True when augmentation leaves every clip as it is (no noise, shift, gain, speed, reverb or EQ)."""
    silent_noise = config.noise_prob == 0 or (config.noise_mode == "volume" and config.volume_range == (0.0, 0.0))
    return silent_noise and ms_to_samples(config.shift_ms, sample_rate) == 0 and config.gain_db_range == (0.0, 0.0) \
        and config.speed_range == (1.0, 1.0) and config.reverb_prob == 0 and (config.eq_prob == 0 or config.eq_db == 0)


def augmented_examples(
    arrays: TrainingArrays,
    indices: np.ndarray,
    epoch: int,
    features: FeatureConfig,
    stats: FeatureStats,
    augment_config: AugmentConfig,
    masks: MaskConfig,
    seed: int,
    distill: Distillation | None = None,
) -> tuple[np.ndarray, ...]:
    """(B, T, n_mfcc) normalised features and (B,) targets of the clips ``indices`` in ``epoch``,
    plus (B, K) soft targets with ``distill``.

    Each clip draws from its own generator, seeded by (seed, epoch, clip index) (a long
    recording's window jitter from its own stream of the same seed); MFCC and
    normalisation run on the whole batch at once. The teacher hears the augmented waveform
    (before our MFCC and SpecAugment), so both see the same sound.
    """
    indices = np.asarray(indices, dtype=np.int64)
    rngs = [np.random.default_rng([seed, int(epoch), int(i)]) for i in indices]
    audio = np.empty((len(indices), arrays.clips.shape[1]), dtype=np.float32)
    for row, (i, rng) in enumerate(zip(indices, rngs)):
        audio[row] = augment(arrays.clip(int(i), seed, int(epoch)), arrays.noise_pool, augment_config, rng,
                             sample_rate=features.sample_rate, noise_weights=arrays.noise_weights, rirs=arrays.rirs)
    x = stats.apply(mfcc(audio, features)) if len(indices) else np.zeros((0, *features.input_shape), np.float32)
    for row, rng in enumerate(rngs):
        x[row : row + 1] = spec_augment(x[row : row + 1], masks, rng)
    y = arrays.targets[indices]
    if distill is None:
        return x, y
    # The teacher's cache holds clean clips: only valid when nothing moves them (no augmentation,
    # no jittered windows of long recordings).
    clean = is_identity(augment_config, features.sample_rate) and arrays.context is None
    return x, y, distill.soft_targets(audio, indices, y, clean=clean)


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
    first_epoch: int = 0,
    epochs: int = 1,
    input_context=None,
    distill: Distillation | None = None,
):
    """``tf.data.Dataset`` of (x, y, sample_weight, global_batch_len) for epochs
    ``first_epoch .. epochs-1`` back to back (``steps_per_epoch`` elements each per replica);
    with ``distill`` each element also carries (B, K) soft targets, last.

    ``input_context`` (a ``tf.distribute.InputContext``, as given by
    ``strategy.distribute_datasets_from_function``) makes it this worker's pipeline: per global
    batch, one element for each of its local replicas, in replica order.
    """
    import tensorflow as tf

    n = len(arrays.targets)
    weights = np.asarray(class_weights, dtype=np.float32)
    t, c = features.input_shape
    replicas = input_context.num_replicas_in_sync if input_context else 1
    pipelines = input_context.num_input_pipelines if input_context else 1
    local = replicas // pipelines
    first_replica = (input_context.input_pipeline_id if input_context else 0) * local

    def order(epoch):
        ids = tf.numpy_function(lambda e: epoch_order(n, seed, int(e)), [epoch], tf.int64, stateful=False)
        ids.set_shape((n,))
        return tf.data.Dataset.from_tensor_slices(ids).batch(batch_size).map(lambda idx: (epoch, idx))

    def my_slices(epoch, idx):
        length = tf.shape(idx, out_type=tf.int64)[0]
        mine = tf.range(first_replica, first_replica + local, dtype=tf.int64)
        starts, ends = length * mine // replicas, length * (mine + 1) // replicas
        return tf.data.Dataset.from_tensor_slices((starts, ends)).map(
            lambda s, e: (epoch, idx[s:e], length))

    def make(epoch: np.ndarray, indices: np.ndarray) -> tuple[np.ndarray, ...]:
        x, y, *soft = augmented_examples(arrays, indices, int(epoch), features, stats, augment_config, masks, seed,
                                         distill)
        return (x, y.astype(np.int32), weights[y], *soft)

    types = (tf.float32, tf.int32, tf.float32) + ((tf.float32,) if distill is not None else ())

    def to_tensors(epoch, indices, length):
        x, y, w, *soft = tf.numpy_function(make, [epoch, indices], types, stateful=False)
        x.set_shape((None, t, c))
        y.set_shape((None,))
        w.set_shape((None,))
        for targets in soft:
            targets.set_shape((None, len(weights)))
        return (x, y, w, length, *soft)

    ds = tf.data.Dataset.range(first_epoch, epochs).flat_map(order).flat_map(my_slices)
    ds = ds.map(to_tensors, num_parallel_calls=2, deterministic=True).prefetch(2)
    options = tf.data.Options()
    # Sharded above, by global-batch slices: tf.data must not shard it again.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return ds.with_options(options)


def balanced_class_weights(targets: np.ndarray, num_classes: int, boost: dict[int, float] | None = None) -> list[float]:
    """N / (K * count) per class (absent classes weigh 0), optionally boosted per class."""
    counts = np.bincount(targets, minlength=num_classes).astype(np.float64)
    present = counts > 0
    weights = np.zeros(num_classes)
    weights[present] = len(targets) / (present.sum() * counts[present])
    for cls, factor in (boost or {}).items():
        weights[cls] *= factor
    return [float(w) for w in weights]
