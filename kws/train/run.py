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
from cascade.runtime.model_dir import load_keras
from cascade.runtime.stages import KEYWORD, stage_labels, stage_targets
from data_prep.atomic import remove_stale, temp_sibling, write_bytes_atomic
from data_prep.audio import audio_files, clip_of, load_audio
from data_prep.augment import AugmentConfig, rms
from data_prep.config import FeatureConfig
from data_prep.errors import DatasetError, KwsError
from data_prep.example_features import Skipped, example_features, kept_mask, skipped_note
from data_prep.features import mfcc
from data_prep.labels import UNKNOWN
from data_prep.normalize import FeatureStats
from data_prep.outputs import check_writable, is_kws_output, make_dirs
from data_prep.recordings import Context, jitter_margin, recording_clips
from data_prep.rooms import RoomConfig, room_bank
from data_prep.speech_commands import BACKGROUND_NOISE_DIR, Dataset, load_dataset
from export.quantize import quantize
from kws.train.config import TrainConfig
from kws.train.data import TrainingArrays, balanced_class_weights, representative_mfcc, steps_per_epoch, training_dataset
from kws.train.distribute import Placement, broadcast_from_chief, lost_worker_is_one_line, make_placement
from kws.train.freeze import freeze_batch_norms, freeze_first
from kws.train.loop import run_epochs, synchronise_batch_norm
from kws.train.teacher import Distillation, load_teacher, recognise_teacher, teacher_accuracy
from kws.train.warm_start import FIT_CLIPS, check_compatible, is_reference, load_reference, measure_bridge

CHECKPOINT_DIR = "checkpoint"


RUN_MARKS = (artifact.TRAIN_CONFIG, artifact.METRICS)


def check_output(out: Path, data_dir: Path, config: TrainConfig, features: FeatureConfig, force: bool) -> bool:
    """Refuse an ``out`` this run must not write; True when resuming an interrupted run.
    Changes nothing on disk but stale leftovers of killed runs: the data is not checked yet."""
    out = Path(out)
    check_writable(out)
    remove_stale(out)
    if out.exists() and not out.is_dir():
        raise KwsError(f"{out}: exists and is not a folder")
    if not out.exists() or not any(out.iterdir()):
        return False
    if not is_kws_output(out, RUN_MARKS):
        raise KwsError(f"{out}: exists and is not a kws training run (no {artifact.TRAIN_CONFIG}); "
                       "refusing to write into it, even with --force")
    if force:
        return False
    if (out / artifact.METRICS).is_file():
        raise KwsError(f"{out}: already holds a trained model (use --force to retrain)")
    saved = out / artifact.TRAIN_CONFIG
    if saved.is_file():
        saved_data = artifact.read_json(saved)
        previous = TrainConfig.from_dict({k: v for k, v in saved_data.items() if k != "data"})
        same_data = saved_data.get("data") == str(data_dir)
        saved_features = out / artifact.FEATURES
        if not (same_data and previous.resumable_with(config)) or (
                saved_features.is_file() and FeatureConfig.load(saved_features) != features):
            raise KwsError(f"{out}: holds an interrupted run with different settings (use --force to restart)")
    return True


def open_output(out: Path, resuming: bool) -> Path | None:
    """Make ``out`` ready for a new run once the data has been checked: a previous kws run
    there (``--force``) is moved aside, to be deleted when the new one is complete (the
    returned path) or put back if the new run fails."""
    if resuming:
        return None
    old = None
    if out.exists() and any(out.iterdir()):
        old = temp_sibling(out, "old")
        out.rename(old)
    make_dirs(out)
    return old


def settle_previous(out: Path, old: Path | None, succeeded: bool) -> None:
    """Delete the previous run after the new one is complete; after a failure put it back."""
    if old is None or not old.exists():
        return
    if succeeded:
        shutil.rmtree(old, ignore_errors=True)
    else:
        shutil.rmtree(out, ignore_errors=True)
        old.rename(out)


def training_arrays(dataset: Dataset, config: TrainConfig, features: FeatureConfig,
                    skipped: list[Skipped] | None = None, log: Callable[[str], None] | None = None,
                    cache_dir: Path | None = None) -> TrainingArrays:
    """Training clips of the dataset, plus every clip of the extra folders, plus negatives
    (clip-length windows of each file) as ``_unknown_``; the noise pool is the dataset's
    background noise plus the ``backgrounds`` folders; with reverb, the bank of rooms
    (simulated once, then read from ``cache_dir``). With ``skipped``, unreadable clips are
    left out and recorded there. ``log`` hears about recordings longer than a clip and
    about a bank being simulated."""
    examples = list(dataset.examples("training"))
    if not examples:
        raise DatasetError(f"{dataset.root}: no training examples")
    for folder in config.extra_data:
        extra = load_dataset(Path(folder), dataset.label_set, silence_pct=0.0, unknown_pct=config.unknown_pct, seed=config.seed, partial=True)
        examples += [e for e in extra.all_examples if e.path is not None]
    bad: list[Skipped] = []
    recordings = recording_clips(examples, features, bad if skipped is not None else None)
    for line in recordings.notices if log else ():
        log(line)
    clips = [recordings.clips]
    unreadable = {s.index for s in bad}
    labels = [e.label for i, e in enumerate(examples) if i not in unreadable]
    if skipped is not None:
        skipped.extend(bad)
    for folder in config.negatives:
        negatives = negative_clips(Path(folder), features)
        clips.append(negatives)
        labels += [UNKNOWN] * len(negatives)
    context = recordings.context
    if context is not None and len(clips) > 1:  # negatives are cut windows: nothing to move into
        context = Context.join([context, Context.none(sum(map(len, clips[1:])), jitter_margin(features))])
    targets = stage_targets(config.stage, dataset.labels, labels)
    noise = dataset.noise_recordings(features.sample_rate)
    extra_noise = [np.concatenate([load_audio(p, features.sample_rate) for p in audio_files(Path(folder))])
                   for folder in config.backgrounds]
    weights = None
    if extra_noise:
        share = config.background_share if noise else 1.0
        weights = tuple([(1.0 - share) / max(len(noise), 1)] * len(noise) + [share / len(extra_noise)] * len(extra_noise))
    negative = (False,) * len(clips[0]) + (True,) * sum(map(len, clips[1:]))
    return TrainingArrays(np.concatenate(clips), np.asarray(targets, np.int32), tuple(noise + extra_noise), weights,
                          clip_labels=tuple(labels), negative=negative, context=context,
                          rirs=room_responses(config, features, cache_dir, log))


def room_responses(config: TrainConfig, features: FeatureConfig, cache_dir: Path | None,
                   log: Callable[[str], None] | None) -> tuple[np.ndarray, ...]:
    """The rooms a reverb run hears its clips in, seeded by the run (none without reverb)."""
    if config.augment.reverb_prob == 0:
        return ()
    rooms = RoomConfig(rooms=config.augment.reverb_rooms, rt60_range_s=config.augment.rt60_range,
                       sample_rate=features.sample_rate, seed=config.seed)
    return room_bank(rooms, cache_dir, log)


def require_unknown(arrays: TrainingArrays, labels: Sequence[str], data_dir: Path) -> None:
    """A detector never shown other words fires on every word: refuse to train one."""
    if UNKNOWN in labels and not np.any(arrays.targets == labels.index(UNKNOWN)):
        raise DatasetError(f"{data_dir}: no {UNKNOWN} training clips (the dataset has no word folders besides "
                           f"the keywords); add other words' folders, or --negatives, so the model learns to reject them")


def noise_plan(augment: AugmentConfig, arrays: TrainingArrays, data_dir: Path,
               log: Callable[[str], None]) -> AugmentConfig:
    """The augmentation the run can do, decided before the input pipeline starts (an error
    inside it surfaces as a TensorFlow traceback): without any background noise, the default
    recipe trains without noise and says so; an explicit SNR mix cannot, and is refused."""
    if arrays.noise_pool or augment.noise_prob == 0:
        return augment
    if augment.noise_mode != AugmentConfig().noise_mode:
        raise DatasetError(f"{data_dir}: no {BACKGROUND_NOISE_DIR} folder (and no --backgrounds), "
                           f"but --noise-mode {augment.noise_mode} needs background noise")
    log(f"{data_dir}: no {BACKGROUND_NOISE_DIR} folder: training without background noise")
    return dataclasses.replace(augment, noise_prob=0.0)

MAX_WINDOWS_PER_FILE = 24


def negative_windows(samples: np.ndarray, features: FeatureConfig) -> np.ndarray:
    """Clip-length windows of one negative recording: the loudest one of a short file (where
    its word is); evenly spaced ones across a long file (a music track is many negatives),
    without near-silent stretches."""
    length = features.clip_samples
    if len(samples) < 2 * length:
        return clip_of(samples, features)[None]
    count = min(MAX_WINDOWS_PER_FILE, len(samples) // length)
    starts = np.linspace(0, len(samples) - length, count).astype(np.int64)
    windows = np.stack([samples[s : s + length] for s in starts])
    loud = rms(windows) > 1e-3
    return windows[loud] if loud.any() else clip_of(samples, features)[None]


def negative_clips(folder: Path, features: FeatureConfig) -> np.ndarray:
    return np.concatenate([negative_windows(load_audio(p, features.sample_rate), features)
                           for p in audio_files(folder)])


def split_arrays(dataset: Dataset, split: str, config: TrainConfig, features: FeatureConfig, cache_dir: Path | None,
                 skipped: list[Skipped] | None = None):
    """(x, y) of a split; unreadable clips are left out and recorded in ``skipped``."""
    examples = dataset.examples(split)
    bad: list[Skipped] = []
    x = example_features(examples, features, cache_dir, skipped=bad)
    keep = kept_mask(len(examples), bad)
    y = np.asarray(stage_targets(config.stage, dataset.labels, [e.label for e in examples]), np.int32)[keep]
    if skipped is not None:
        skipped.extend(bad)
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
    if config.init_from and is_reference(Path(config.init_from)):  # before any data is read
        check_compatible(config.stage, config.arch, config.arch_params, features, Path(config.init_from))
    placement = make_placement(strategy)  # first: a multi-worker strategy configures TF itself
    log(placement.describe(config.batch_size))
    out = Path(out)
    resuming = check_output(out, data_dir, config, features, force) if placement.is_chief else False
    previous: list[Path | None] = [None]  # a run moved aside by --force, once this one starts writing
    try:
        with lost_worker_is_one_line(placement):
            dataset, arrays, stats, notes = _train_on(placement, data_dir, out, config, features, resuming=resuming,
                                               previous=previous, progress=progress, cache_dir=cache_dir, log=log)
        if not placement.is_chief:
            return {}
        metrics = finish(out, dataset, config, features, arrays, stats, cache_dir, notes)
    except Exception:
        settle_previous(out, previous[0], succeeded=False)
        raise
    settle_previous(out, previous[0], succeeded=True)
    return metrics


def _train_on(placement: Placement, data_dir: Path, out: Path, config: TrainConfig, features: FeatureConfig, *,
              resuming: bool, previous: list[Path | None], progress: bool, cache_dir: Path | None,
              log: Callable[[str], None]):
    """Every worker's part of ``train``: (dataset, training arrays, feature stats, extra
    metrics) for finish."""
    import keras

    from kws.train.callbacks import BestAndStop, HistoryWriter, TrainingBackup  # lazy: Keras callbacks: import Keras (seconds)
    from kws.train.models import build_model  # lazy: the model zoo imports Keras (seconds); only training needs it
    from kws.train.progress import RichProgress  # lazy: a Keras callback: imports Keras (seconds)

    chief = placement.is_chief
    # bad --arch-params or --freeze: one line before any data is read or anything written
    freeze_first(build_model(config.arch, features.input_shape, 2, **config.arch_params), config.freeze)
    dataset = load_dataset(data_dir, config.labels, silence_pct=config.silence_pct,
                           unknown_pct=config.unknown_pct, seed=config.seed)
    labels = stage_labels(config.stage, dataset.labels)
    skipped: list[Skipped] = []
    arrays = training_arrays(dataset, config, features, skipped, log if chief else None, cache_dir)
    require_unknown(arrays, labels, data_dir)
    augment = noise_plan(config.augment, arrays, data_dir, log)
    from_reference = bool(config.init_from) and is_reference(Path(config.init_from))
    init = artifact.ModelDir.open(Path(config.init_from)) if config.init_from and not from_reference else None
    fit_mfcc = mfcc(arrays.clips[:FIT_CLIPS], features) if from_reference else None  # the map's and the BNs' clips
    bridge = measure_bridge(arrays.clips[:FIT_CLIPS], fit_mfcc) if from_reference else None
    if bridge is not None:
        log(f"warm start from the MLPerf reference ({config.init_from}): features mapped to its inputs, "
            f"R^2 {min(bridge.fit_r2):.3f}-{max(bridge.fit_r2):.3f} per coefficient")
    # A warm start from a trained model keeps the normalisation its weights were trained under;
    # from the reference, the run measures its own (the model's input map carries it across).
    stats = (init.stats if init is not None else bridge.stats if bridge is not None
             else FeatureStats.measure(mfcc(arrays.clips, features)))
    x_val, y_val = split_arrays(dataset, "validation", config, features, cache_dir, skipped)
    if skipped:
        log(skipped_note([s.reason for s in skipped]))
    if len(y_val) == 0:
        raise DatasetError(f"{data_dir}: no validation examples (needed for checkpointing)")
    distill, notes = distillation(config, dataset, arrays, features, y_val if chief else None, log)

    if chief:  # the data is good: only now is anything written (or a previous run moved aside)
        previous[0] = open_output(out, resuming)
        artifact.write_json(out / artifact.TRAIN_CONFIG, config.to_dict() | {"data": str(data_dir)})  # first: marks the run
        features.save(out / artifact.FEATURES)
        artifact.write_labels(out / artifact.LABELS, labels)
        stats.save(out / artifact.NORMALIZATION)

    keras.utils.set_random_seed(config.seed)
    boost = {labels.index(KEYWORD): config.keyword_boost} if config.stage == 1 else None
    weights = balanced_class_weights(arrays.targets, len(labels), boost)
    steps = steps_per_epoch(len(arrays.targets), config.batch_size)
    with placement.strategy.scope():
        model = build_model(config.arch, features.input_shape, len(labels), **config.arch_params)
        if init is not None:
            load_weights_from(model, init, labels)
        elif bridge is not None:
            load_reference(model, Path(config.init_from), labels, bridge, stats.apply(fit_mfcc))
        frozen = freeze_first(model, config.freeze)
        if frozen:
            log(f"transfer learning: {len(frozen)} layers keep the warm start's weights ({frozen[0]} .. {frozen[-1]})")
        if config.frozen_bn:
            log(f"frozen batch norms: {len(freeze_batch_norms(model))} keep the warm start's statistics")
        if placement.replicas > 1:
            synchronise_batch_norm(model)
        schedule = keras.optimizers.schedules.CosineDecay(config.learning_rate, decay_steps=config.epochs * steps, alpha=0.02)
        optimizer = keras.optimizers.Adam(schedule)
        optimizer.build(model.trainable_variables)
        backup = TrainingBackup(out / CHECKPOINT_DIR, model, optimizer, placement)
        first_epoch = backup.restore()
    history = HistoryWriter(out / artifact.HISTORY, resuming)
    best = BestAndStop(out / artifact.MODEL_KERAS, config.patience, history.entries, config.keep)
    if chief and best.out_of_patience():  # stopped early, then interrupted before finishing
        first_epoch = config.epochs
    first_epoch = int(broadcast_from_chief(placement, [first_epoch])[0])
    if 0 < first_epoch < config.epochs:
        log(f"resuming at epoch {first_epoch} of {config.epochs} from {out / CHECKPOINT_DIR}")

    def make_dataset(context):
        return training_dataset(arrays, features, stats, augment, config.masks,
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
                                 config.teacher_weight, config.temperature, arrays.negative)
    notes: dict[str, Any] = {"adapter": teacher.name, "model": teacher.source,
                             "trusted_clips": int(distill.trusted.sum()), "training_clips": len(distill.trusted)}
    if y_val is not None:
        audio = recording_clips(dataset.examples("validation"), features, skipped=[]).clips  # the rows y_val kept
        notes["validation_accuracy"] = teacher_accuracy(teacher, audio, y_val, dataset.labels, config.stage)
        notes["validation_n"] = len(y_val)
        log(f"teacher {teacher.name} ({teacher.source}): {notes['validation_accuracy']:.4f} on validation "
            f"(n={len(y_val)}); weight {config.teacher_weight}, temperature {config.temperature}; "
            f"{notes['trusted_clips']} of {notes['training_clips']} training clips get soft targets")
    return distill, {"teacher": notes}


def load_weights_from(model, init: artifact.ModelDir, labels: Sequence[str]) -> None:
    """Copy the weights of a trained model of the same architecture and labels."""
    if tuple(init.labels) != tuple(labels):
        raise KwsError(f"{init.path}: labels {list(init.labels)} differ from this run's {list(labels)}")
    source = load_keras(init.path / artifact.MODEL_KERAS)
    shapes = [w.shape for w in source.get_weights()], [w.shape for w in model.get_weights()]
    if shapes[0] != shapes[1]:
        raise KwsError(f"{init.path}: a different architecture (weights do not match this run's model)")
    model.set_weights(source.get_weights())


def finish(out: Path, dataset: Dataset, config: TrainConfig, features: FeatureConfig,
           arrays: TrainingArrays, stats: FeatureStats, cache_dir: Path | None,
           notes: dict[str, Any] | None = None) -> dict[str, Any]:
    """Quantize the best model and measure float and int8 accuracy; metrics.json marks done."""
    best = load_keras(out / artifact.MODEL_KERAS)
    representative = stats.apply(representative_mfcc(arrays, config, features))
    write_bytes_atomic(out / artifact.MODEL_INT8, quantize(best, representative, "int8"))
    metrics: dict[str, Any] = {"stage": config.stage, "arch": config.arch, "labels": list(stage_labels(config.stage, dataset.labels))}
    metrics |= notes or {}
    for split in ("validation", "testing"):
        skipped: list[Skipped] = []
        x, y = split_arrays(dataset, split, config, features, cache_dir, skipped)
        if len(y):
            metrics[split] = accuracy_of(artifact.ModelDir.open(out), stats.apply(x), y, best)
            if skipped:
                metrics[split]["skipped"] = [s.to_dict() for s in skipped]
    artifact.write_json(out / artifact.METRICS, metrics)
    shutil.rmtree(out / CHECKPOINT_DIR, ignore_errors=True)
    return metrics
