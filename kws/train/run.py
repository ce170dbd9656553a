"""Train one cascade stage into a self-describing model directory, resumably.

A run writes its config files first, then trains with a backup every epoch
(``checkpoint/``), keeps the best model by validation accuracy, stops early, and finally
quantizes the best model to int8 and measures both on validation and test speakers.
Re-running the same command after Ctrl-C or a crash resumes from the last finished epoch.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cascade.evaluation.model_eval import accuracy_of
from cascade.runtime import model_dir as artifact
from cascade.runtime.stages import KEYWORD, stage_labels, stage_targets
from data_prep.atomic import write_bytes_atomic
from data_prep.audio import audio_files, load_audio, loudest_window
from data_prep.augment import rms
from data_prep.config import FeatureConfig
from data_prep.errors import DatasetError, KwsError
from data_prep.example_features import example_clips, example_features
from data_prep.features import mfcc
from data_prep.labels import UNKNOWN
from data_prep.normalize import FeatureStats
from data_prep.speech_commands import Dataset, load_dataset
from export.quantize import quantize
from kws.train.config import TrainConfig
from kws.train.data import TrainingArrays, balanced_class_weights, steps_per_epoch, training_dataset
from kws.train.distribute import Placement, broadcast_from_chief, lost_worker_is_one_line, make_placement
from kws.train.loop import run_epochs, synchronise_batch_norm
from kws.train.teacher import Distillation, load_teacher, recognise_teacher, teacher_accuracy

CHECKPOINT_DIR = "checkpoint"


def prepare_output(out: Path, data_dir: Path, config: TrainConfig, features: FeatureConfig, force: bool) -> bool:
    """Create or reuse ``out``; True when resuming an interrupted run."""
    if out.exists() and force:
        shutil.rmtree(out)
    if out.exists() and any(out.iterdir()):
        if (out / artifact.METRICS).is_file():
            raise KwsError(f"{out}: already holds a trained model (use --force to retrain)")
        saved = out / artifact.TRAIN_CONFIG
        if not saved.is_file():
            raise KwsError(f"{out}: exists and is not a kws training run (use --force to replace it)")
        saved_data = artifact.read_json(saved)
        previous = TrainConfig.from_dict({k: v for k, v in saved_data.items() if k != "data"})
        same_data = saved_data.get("data") == str(data_dir)
        if not (same_data and previous.resumable_with(config)) or FeatureConfig.load(out / artifact.FEATURES) != features:
            raise KwsError(f"{out}: holds an interrupted run with different settings (use --force to restart)")
        return True
    out.mkdir(parents=True, exist_ok=True)
    return False

def training_arrays(dataset: Dataset, config: TrainConfig, features: FeatureConfig) -> TrainingArrays:
    """Training clips of the dataset, plus every clip of the extra folders, plus negatives
    (clip-length windows of each file) as ``_unknown_``; the noise pool is the dataset's
    background noise plus the ``backgrounds`` folders."""
    examples = list(dataset.examples("training"))
    if not examples:
        raise DatasetError(f"{dataset.root}: no training examples")
    for folder in config.extra_data:
        extra = load_dataset(Path(folder), dataset.label_set, silence_pct=0.0, unknown_pct=config.unknown_pct, seed=config.seed)
        examples += [e for e in extra.all_examples if e.path is not None]
    labels = [e.label for e in examples]
    clips = [example_clips(examples, features)]
    for folder in config.negatives:
        negatives = negative_clips(Path(folder), features)
        clips.append(negatives)
        labels += [UNKNOWN] * len(negatives)
    targets = stage_targets(config.stage, dataset.labels, labels)
    noise = [load_audio(p, features.sample_rate) for p in dataset.background_noise_files]
    extra_noise = [np.concatenate([load_audio(p, features.sample_rate) for p in audio_files(Path(folder))])
                   for folder in config.backgrounds]
    weights = None
    if extra_noise:
        share = config.background_share if noise else 1.0
        weights = tuple([(1.0 - share) / max(len(noise), 1)] * len(noise) + [share / len(extra_noise)] * len(extra_noise))
    return TrainingArrays(np.concatenate(clips), np.asarray(targets, np.int32), tuple(noise + extra_noise), weights,
                          clip_labels=tuple(labels))

MAX_WINDOWS_PER_FILE = 24


def negative_windows(samples: np.ndarray, length: int) -> np.ndarray:
    """Clip-length windows of one negative recording: the loudest one of a short file (where
    its word is); evenly spaced ones across a long file (a music track is many negatives),
    without near-silent stretches."""
    if len(samples) < 2 * length:
        return loudest_window(samples, length)[None]
    count = min(MAX_WINDOWS_PER_FILE, len(samples) // length)
    starts = np.linspace(0, len(samples) - length, count).astype(np.int64)
    windows = np.stack([samples[s : s + length] for s in starts])
    loud = rms(windows) > 1e-3
    return windows[loud] if loud.any() else loudest_window(samples, length)[None]

def negative_clips(folder: Path, features: FeatureConfig) -> np.ndarray:
    return np.concatenate([negative_windows(load_audio(p, features.sample_rate), features.clip_samples)
                           for p in audio_files(folder)])

def split_arrays(dataset: Dataset, split: str, config: TrainConfig, features: FeatureConfig, cache_dir: Path | None):
    examples = dataset.examples(split)
    x = example_features(examples, features, cache_dir)
    y = np.asarray(stage_targets(config.stage, dataset.labels, [e.label for e in examples]), np.int32)
    return x, y

def train(
    data_dir: Path,
    out: Path,
    config: TrainConfig,
    features: FeatureConfig,
    *,
    force: bool = False,
    progress: bool = True,
    cache_dir: Path | None = None,
    strategy: str = "auto",
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Train, quantize and measure; returns the metrics written to ``metrics.json``.

    ``strategy`` places the run (see kws.train.distribute). Under multi-worker training every
    worker runs this same function; only the chief writes ``out`` and measures the result,
    the others return ``{}`` once training is done.
    """

    log = log or (lambda line: None)
    if config.teacher and not config.teacher_adapter:  # saved with the run: it must say how to hear the teacher
        config = dataclasses.replace(config, teacher_adapter=recognise_teacher(Path(config.teacher)))
    placement = make_placement(strategy)  # first: a multi-worker strategy configures TF itself
    log(placement.describe(config.batch_size))
    with lost_worker_is_one_line(placement):
        dataset, arrays, stats, notes = _train_on(placement, data_dir, out, config, features, force=force,
                                                  progress=progress, cache_dir=cache_dir, log=log)
    if not placement.is_chief:
        return {}
    return finish(out, dataset, config, features, arrays, stats, cache_dir, notes)

def _train_on(placement: Placement, data_dir: Path, out: Path, config: TrainConfig, features: FeatureConfig, *,
              force: bool, progress: bool, cache_dir: Path | None, log: Callable[[str], None]):
    """Every worker's part of ``train``: (dataset, training arrays, feature stats, extra
    metrics) for finish."""
    import keras

    from kws.train.callbacks import BestAndStop, HistoryWriter, TrainingBackup  # lazy: Keras callbacks: import Keras (seconds)
    from kws.train.models import build_model  # lazy: the model zoo imports Keras (seconds); only training needs it
    from kws.train.progress import RichProgress  # lazy: a Keras callback: imports Keras (seconds)

    chief = placement.is_chief
    resuming = prepare_output(out, data_dir, config, features, force) if chief else False
    dataset = load_dataset(data_dir, config.labels, silence_pct=config.silence_pct,
                           unknown_pct=config.unknown_pct, seed=config.seed)
    labels = stage_labels(config.stage, dataset.labels)
    arrays = training_arrays(dataset, config, features)
    init = artifact.ModelDir.open(Path(config.init_from)) if config.init_from else None
    # A warm start keeps the normalisation its weights were trained under.
    stats = init.stats if init is not None else FeatureStats.measure(mfcc(arrays.clips, features))
    x_val, y_val = split_arrays(dataset, "validation", config, features, cache_dir)
    if len(y_val) == 0:
        raise DatasetError(f"{data_dir}: no validation examples (needed for checkpointing)")
    distill, notes = distillation(config, dataset, arrays, features, y_val if chief else None, log)

    if chief:
        features.save(out / artifact.FEATURES)
        artifact.write_labels(out / artifact.LABELS, labels)
        stats.save(out / artifact.NORMALIZATION)
        artifact.write_json(out / artifact.TRAIN_CONFIG, config.to_dict() | {"data": str(data_dir)})

    keras.utils.set_random_seed(config.seed)
    boost = {labels.index(KEYWORD): config.keyword_boost} if config.stage == 1 else None
    weights = balanced_class_weights(arrays.targets, len(labels), boost)
    steps = steps_per_epoch(len(arrays.targets), config.batch_size)
    with placement.strategy.scope():
        model = build_model(config.arch, features.input_shape, len(labels), **config.arch_params)
        if init is not None:
            load_weights_from(model, init, labels)
        if placement.replicas > 1:
            synchronise_batch_norm(model)
        schedule = keras.optimizers.schedules.CosineDecay(config.learning_rate, decay_steps=config.epochs * steps, alpha=0.02)
        optimizer = keras.optimizers.Adam(schedule)
        optimizer.build(model.trainable_variables)
        backup = TrainingBackup(out / CHECKPOINT_DIR, model, optimizer, placement)
        first_epoch = backup.restore()
    history = HistoryWriter(out / artifact.HISTORY, resuming)
    best = BestAndStop(out / artifact.MODEL_KERAS, config.patience, history.entries)
    if chief and best.out_of_patience():  # stopped early, then interrupted before finishing
        first_epoch = config.epochs
    first_epoch = int(broadcast_from_chief(placement, [first_epoch])[0])
    if 0 < first_epoch < config.epochs:
        log(f"resuming at epoch {first_epoch} of {config.epochs} from {out / CHECKPOINT_DIR}")

    def make_dataset(context):
        return training_dataset(arrays, features, stats, config.augment, config.masks,
                                batch_size=config.batch_size, seed=config.seed, class_weights=weights,
                                first_epoch=first_epoch, epochs=config.epochs, input_context=context, distill=distill)

    callbacks = [history, best, RichProgress(config.epochs, steps, enabled=progress)]
    if first_epoch < config.epochs:
        run_epochs(model, optimizer, placement, make_dataset, first_epoch=first_epoch, epochs=config.epochs,
                   steps=steps, validation=(stats.apply(x_val), y_val), callbacks=callbacks, save=backup.save)
    return dataset, arrays, stats, notes


def distillation(config: TrainConfig, dataset: Dataset, arrays: TrainingArrays, features: FeatureConfig,
                 y_val: np.ndarray | None, log: Callable[[str], None]) -> tuple[Distillation | None, dict[str, Any]]:
    """The run's teacher (None without one) and what to record about it. With ``y_val`` (the
    chief) the teacher's accuracy on the validation clips is measured first: a wrong front end
    or label order shows up here, before it teaches anything."""
    if not config.teacher:
        return None, {}
    teacher = load_teacher(Path(config.teacher), config.teacher_adapter)
    if (teacher.sample_rate, teacher.clip_samples) != (features.sample_rate, features.clip_samples):
        raise KwsError(f"--teacher {config.teacher}: hears {teacher.clip_samples} samples at {teacher.sample_rate} Hz, "
                       f"this run's clips are {features.clip_samples} at {features.sample_rate} Hz")
    distill = Distillation.build(teacher, dataset.labels, config.stage, arrays.clip_labels,
                                 config.teacher_weight, config.temperature)
    notes: dict[str, Any] = {"adapter": teacher.name, "model": teacher.source,
                             "trusted_clips": int(distill.trusted.sum()), "training_clips": len(distill.trusted)}
    if y_val is not None:
        audio = example_clips(dataset.examples("validation"), features)
        notes["validation_accuracy"] = teacher_accuracy(teacher, audio, y_val, dataset.labels, config.stage)
        notes["validation_n"] = len(y_val)
        log(f"teacher {teacher.name} ({teacher.source}): {notes['validation_accuracy']:.4f} on validation "
            f"(n={len(y_val)}); weight {config.teacher_weight}, temperature {config.temperature}; "
            f"{notes['trusted_clips']} of {notes['training_clips']} training clips get soft targets")
    return distill, {"teacher": notes}

def load_weights_from(model, init: artifact.ModelDir, labels: Sequence[str]) -> None:
    """Copy the weights of a trained model of the same architecture and labels."""
    import keras

    if tuple(init.labels) != tuple(labels):
        raise KwsError(f"{init.path}: labels {list(init.labels)} differ from this run's {list(labels)}")
    source = keras.models.load_model(init.path / artifact.MODEL_KERAS)
    shapes = [w.shape for w in source.get_weights()], [w.shape for w in model.get_weights()]
    if shapes[0] != shapes[1]:
        raise KwsError(f"{init.path}: a different architecture (weights do not match this run's model)")
    model.set_weights(source.get_weights())

def finish(out: Path, dataset: Dataset, config: TrainConfig, features: FeatureConfig,
           arrays: TrainingArrays, stats: FeatureStats, cache_dir: Path | None,
           notes: dict[str, Any] | None = None) -> dict[str, Any]:
    """Quantize the best model and measure float and int8 accuracy; metrics.json marks done."""
    import keras

    best = keras.models.load_model(out / artifact.MODEL_KERAS)
    rng = np.random.default_rng(config.seed)
    pick = rng.permutation(len(arrays.clips))[: config.representative_samples]
    representative = stats.apply(mfcc(arrays.clips[pick], features))
    write_bytes_atomic(out / artifact.MODEL_INT8, quantize(best, representative, "int8"))
    metrics: dict[str, Any] = {"stage": config.stage, "arch": config.arch, "labels": list(stage_labels(config.stage, dataset.labels))}
    metrics |= notes or {}
    for split in ("validation", "testing"):
        x, y = split_arrays(dataset, split, config, features, cache_dir)
        if len(y):
            metrics[split] = accuracy_of(artifact.ModelDir.open(out), stats.apply(x), y, best)
    artifact.write_json(out / artifact.METRICS, metrics)
    shutil.rmtree(out / CHECKPOINT_DIR, ignore_errors=True)
    return metrics
