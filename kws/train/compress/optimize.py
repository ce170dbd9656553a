"""``kws optimize``: QAT, channel pruning or weight clustering of a trained model directory.

Each technique changes the float model (kws.train.compress: qat / prune / cluster), then
fine-tunes it with the model's own training recipe (its train_config.json: data, labels,
augmentation, class weights, and its teacher's soft targets when it had one), keeps the epoch
with the best validation accuracy (the starting point counts as epoch 0, so fine-tuning never
makes a model worse on validation), converts to full-int8 exactly as ``kws train`` does, and
checks the int8 model bit-exact in TensorFlow Lite Micro on real validation features. The
result is a complete model directory (what ``kws train`` writes) plus ``optimize.json``, so
every later command takes it as is.

Fine-tuning goes through the training package's own data path (kws.train), not a second one.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cascade.energy.model_stats import graph_layers
from cascade.evaluation.model_eval import accuracy_of
from cascade.runtime import model_dir as artifact
from cascade.runtime.int8_model import TFLiteModel
from cascade.runtime.model_dir import ModelDir, load_keras
from cascade.runtime.stages import KEYWORD
from data_prep.atomic import atomic_dir, write_bytes_atomic
from data_prep.errors import ConfigError, KwsError, ModelError
from data_prep.outputs import refuse_existing
from data_prep.speech_commands import Dataset, load_dataset
from data_prep.tensorflow_quiet import import_tensorflow
from export.quantize import quantize
from export.tflm import verify_bit_exact
from kws.train.compress.cluster import cluster_model, projection_callback, unique_counts
from kws.train.compress.prune import transfer_channels
from kws.train.compress.qat import calibrate, qat_model
from kws.train.config import TrainConfig
from kws.train.data import TrainingArrays, balanced_class_weights, representative_mfcc, steps_per_epoch, training_dataset
from kws.train.run import distillation, split_arrays, training_arrays
from kws.train.teacher import Distillation
from kws.train.width import keras_macs, width_for_macs

# "finetune" is the control: the same fine-tuning with no technique, then plain PTQ int8, so
# the table can tell what QAT adds from what a few more epochs add.
METHODS = ("qat", "prune", "cluster", "finetune")
OPTIMIZE_JSON = "optimize.json"
# (epochs, initial learning rate) of the fine-tuning. Near a trained optimum (QAT, clustering,
# the control) a small rate: at 5e-4 every epoch of the stage-2 DS-CNN lost 1-2 points of
# validation accuracy. Pruning starts far from it (a third of the channels gone) and needs
# more epochs at a larger rate to recover.
METHOD_DEFAULTS = {"qat": (8, 1e-4), "cluster": (8, 1e-4), "finetune": (8, 1e-4), "prune": (20, 1e-3)}


@dataclasses.dataclass(frozen=True, kw_only=True)
class OptimizeSettings:
    """How to optimize: the technique, its knob, and the fine-tuning budget."""

    method: str
    epochs: int | None = None  # None: the method's default (METHOD_DEFAULTS)
    learning_rate: float | None = None
    macs_reduction: float = 0.3  # prune: share of MACs to remove
    clusters: int = 16  # cluster: values per layer kernel
    verify_samples: int = 300  # real inputs for the TFLM bit-exact check
    seed: int = 0

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"unknown optimization method {self.method!r} (known: {', '.join(METHODS)})")
        epochs, rate = METHOD_DEFAULTS[self.method]
        if self.epochs is None:
            object.__setattr__(self, "epochs", epochs)
        if self.learning_rate is None:
            object.__setattr__(self, "learning_rate", rate)
        if self.epochs < 0:
            raise ConfigError(f"fine-tuning epochs must be >= 0, got {self.epochs}")
        if not self.learning_rate > 0:
            raise ConfigError(f"learning rate must be > 0, got {self.learning_rate}")
        if not 0 < self.macs_reduction < 1:
            raise ConfigError(f"--macs-reduction must be in (0, 1), got {self.macs_reduction}")
        if self.clusters < 2 or self.clusters > 256:
            raise ConfigError(f"--clusters must be in 2..256, got {self.clusters}")
        if self.verify_samples < 1:
            raise ConfigError(f"verify samples must be >= 1, got {self.verify_samples}")


@dataclasses.dataclass
class FineTuneData:
    """A model's training recipe, loaded: what fine-tuning and conversion need."""

    source: ModelDir
    config: TrainConfig
    dataset: Dataset
    arrays: TrainingArrays
    class_weights: list[float]
    validation: tuple[np.ndarray, np.ndarray]  # normalised features, targets
    cache_dir: Path | None
    distill: Distillation | None = None  # the recipe's teacher, as kws train ran it

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        x, y = split_arrays(self.dataset, name, self.config, self.source.config, self.cache_dir)
        return self.source.inputs(x), y

    def representative(self) -> np.ndarray:
        """Calibration features picked as ``kws train`` picks them (same seed, same count)."""

        return self.source.inputs(representative_mfcc(self.arrays, self.config, self.source.config))


def train_config_of(source: ModelDir):
    """The TrainConfig a model directory was trained with, and the data folder it names."""

    saved = source.metadata(artifact.TRAIN_CONFIG)
    if not saved:
        raise ModelError(f"{source.path}: no {artifact.TRAIN_CONFIG}; optimizing needs the training recipe")
    return TrainConfig.from_dict({k: v for k, v in saved.items() if k != "data"}), saved.get("data")


def load_data(source: ModelDir, data_dir: Path | None = None, cache_dir: Path | None = None,
              teacher: bool = True) -> FineTuneData:
    """The recipe ``source`` was trained with, loaded; ``teacher=False`` leaves its teacher out
    (converting and measuring need none)."""
    config, saved_data = train_config_of(source)
    data_dir = Path(data_dir or saved_data or "")
    if not data_dir.is_dir():
        raise KwsError(f"{source.path}: training data folder {str(data_dir)!r} not found (pass --data)")
    for folder in (*config.extra_data, *config.negatives, *config.backgrounds):
        if not Path(folder).is_dir():
            raise KwsError(f"{source.path}: its training recipe names the folder {folder!r}, which is not here "
                           f"(relative paths are read from where it was trained)")
    dataset = load_dataset(data_dir, config.labels, silence_pct=config.silence_pct,
                           unknown_pct=config.unknown_pct, seed=config.seed)
    arrays = training_arrays(dataset, config, source.config, cache_dir=cache_dir)
    boost = {source.labels.index(KEYWORD): config.keyword_boost} if KEYWORD in source.labels else None
    weights = balanced_class_weights(arrays.targets, len(source.labels), boost)
    distill = distillation(config, dataset, arrays, source.config, None, lambda line: None)[0] if teacher else None
    data = FineTuneData(source, config, dataset, arrays, weights, (np.zeros(0), np.zeros(0)), cache_dir, distill)
    data.validation = data.split("validation")
    if len(data.validation[1]) == 0:
        raise KwsError(f"{data_dir}: no validation examples (fine-tuning keeps the best epoch by them)")
    return data


def _keep_best(model, x: np.ndarray, y: np.ndarray, history: list[dict[str, Any]]):
    """Callback: validation accuracy each epoch (epoch 0 = before fine-tuning); the best
    weights (all of them: BN statistics and QAT ranges too) are restored at the end."""
    import keras

    def accuracy() -> float:
        return float(np.mean(model.predict(x, batch_size=256, verbose=0).argmax(-1) == y))

    class KeepBest(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.best = accuracy()
            self.weights = [np.array(v) for v in model.weights]
            history.append({"epoch": 0, "val_accuracy": self.best})

        def on_epoch_end(self, epoch, logs=None):
            acc = accuracy()
            if logs is not None:
                logs["val_accuracy"] = acc
            history.append({"epoch": epoch + 1, "loss": float((logs or {}).get("loss", np.nan)), "val_accuracy": acc})
            if acc > self.best:
                self.best, self.weights = acc, [np.array(v) for v in model.weights]

        def on_train_end(self, logs=None):
            for variable, value in zip(model.weights, self.weights):
                variable.assign(value)

    return KeepBest()


def fine_tune(model, data: FineTuneData, *, epochs: int, learning_rate: float, seed: int,
              callbacks: Sequence[Any] = (), progress: bool = False) -> list[dict[str, Any]]:
    """Train ``model`` for ``epochs`` on the model's augmented training pipeline (cosine
    decay from ``learning_rate``); returns the per-epoch validation history."""
    import keras

    from kws.train.progress import RichProgress  # lazy: a Keras callback: imports Keras (seconds)

    history: list[dict[str, Any]] = []
    keep = _keep_best(model, *data.validation, history)
    if epochs == 0:
        keep.on_train_begin()
        return history
    config = data.config
    steps = steps_per_epoch(len(data.arrays.targets), config.batch_size)
    stats = data.source.stats
    ds = training_dataset(data.arrays, data.source.config, stats, config.augment, config.masks,
                          batch_size=config.batch_size, seed=config.seed + 1000 + seed,
                          class_weights=data.class_weights, epochs=epochs, distill=data.distill)
    if data.distill is None:
        ds, loss = ds.map(lambda x, y, w, n: (x, y, w)), keras.losses.SparseCategoricalCrossentropy()
    else:  # the teacher's soft targets, as the model was trained: a fine-tune on labels alone forgets
        ds, loss = ds.map(lambda x, y, w, n, soft: (x, soft, w)), keras.losses.CategoricalCrossentropy()
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=epochs * steps, alpha=0.05)
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss=loss, metrics=["accuracy"])
    model.fit(ds, epochs=epochs, steps_per_epoch=steps, verbose=0,
              callbacks=[*callbacks, keep, RichProgress(epochs, steps, enabled=progress)])
    return history

# --- the three techniques ------------------------------------------------------------------
def _qat(model, data: FineTuneData, settings: OptimizeSettings, progress: bool) -> tuple[Any, dict[str, Any]]:
    trainer = qat_model(model)
    ranges = calibrate(trainer, data.representative())
    history = fine_tune(trainer, data, epochs=settings.epochs, learning_rate=settings.learning_rate,
                        seed=settings.seed, progress=progress)
    return model, {"activation_ranges": ranges, "history": history,
                   "note": "fake-quant fine-tuning (BN folded, per-channel int8 weights), then the standard "
                           "full-int8 conversion of the float weights"}


def _prune(model, data: FineTuneData, settings: OptimizeSettings, progress: bool) -> tuple[Any, dict[str, Any]]:
    from kws.train.models import build_model  # lazy: the model zoo imports Keras (seconds); only training needs it

    config = data.config
    shape, classes = data.source.config.input_shape, len(data.source.labels)
    before = keras_macs(model)
    params, after = width_for_macs(config.arch, dict(config.arch_params), shape, classes,
                                   (1 - settings.macs_reduction) * before)
    pruned = build_model(config.arch, shape, classes, **params)
    kept = transfer_channels(model, pruned)
    history = fine_tune(pruned, data, epochs=settings.epochs, learning_rate=settings.learning_rate,
                        seed=settings.seed, progress=progress)
    return pruned, {"arch_params": params, "keras_macs_before": before, "keras_macs_after": after,
                    "kept_channels": {k: list(v) for k, v in kept.items()}, "history": history}


def _cluster(model, data: FineTuneData, settings: OptimizeSettings, progress: bool) -> tuple[Any, dict[str, Any]]:
    clusters = cluster_model(model, settings.clusters, settings.seed)
    history = fine_tune(model, data, epochs=settings.epochs, learning_rate=settings.learning_rate,
                        seed=settings.seed, callbacks=[projection_callback(clusters)], progress=progress)
    return model, {"clusters": settings.clusters, "unique_kernel_values": unique_counts(model), "history": history}


def _finetune(model, data: FineTuneData, settings: OptimizeSettings, progress: bool) -> tuple[Any, dict[str, Any]]:
    history = fine_tune(model, data, epochs=settings.epochs, learning_rate=settings.learning_rate,
                        seed=settings.seed, progress=progress)
    return model, {"history": history}

_TECHNIQUES: dict[str, Callable[..., tuple[Any, dict[str, Any]]]] = {
    "qat": _qat, "prune": _prune, "cluster": _cluster, "finetune": _finetune}


# How a model directory kws wrote is recognised (what --force may replace).
MODEL_MARKS = (OPTIMIZE_JSON, artifact.TRAIN_CONFIG, artifact.FEATURES)


def refuse_out(out: Path, force: bool) -> None:
    """Before any data is read: ``out`` must be new, empty, or (with ``force``) kws's own."""
    refuse_existing(out, force, marks=MODEL_MARKS, hint="replace it")


def write_model(out: Path, data: FineTuneData, float_model, *, seed: int, verify_samples: int,
                arch_params: dict[str, Any] | None = None, label: str = "") -> tuple[dict[str, Any], Any, bytes]:
    """Convert ``float_model`` to full int8 as ``kws train`` does, check it bit-exact in TFLite
    Micro on real validation inputs, and write a complete model directory (the source's
    front end, labels and normalisation; its training recipe) with its float and int8
    accuracies; returns (metrics, the bit-exact check, the int8 flatbuffer)."""
    source = data.source
    int8 = quantize(float_model, data.representative(), "int8")
    x_val, _ = data.validation
    rows = np.random.default_rng(seed).permutation(len(x_val))[:verify_samples]
    check = verify_bit_exact(int8, TFLiteModel(int8).quantize_input(x_val[rows]))
    if not check.bit_exact:
        raise ModelError(f"{label}: the int8 model is not bit-exact in TFLite Micro "
                         f"({check.mismatched_samples} of {check.samples} inputs differ)")

    for name in (artifact.FEATURES, artifact.LABELS, artifact.NORMALIZATION):
        write_bytes_atomic(out / name, (source.path / name).read_bytes())
    partial = out / f".{artifact.MODEL_KERAS}.tmp.keras"
    float_model.save(partial)
    os.replace(partial, out / artifact.MODEL_KERAS)
    write_bytes_atomic(out / artifact.MODEL_INT8, int8)
    train_config = source.metadata(artifact.TRAIN_CONFIG)
    if arch_params is not None:
        train_config["arch_params"] = arch_params
    artifact.write_json(out / artifact.TRAIN_CONFIG, train_config)
    opened = ModelDir.open(out)
    metrics: dict[str, Any] = {"stage": data.config.stage, "arch": data.config.arch, "labels": list(source.labels)}
    for split in ("validation", "testing"):
        x, y = data.split(split)
        if len(y):
            metrics[split] = accuracy_of(opened, x, y, float_model)
    artifact.write_json(out / artifact.METRICS, metrics)
    return metrics, check, int8


def optimize(model_dir: Path, out: Path, settings: OptimizeSettings, *, data_dir: Path | None = None,
             force: bool = False, cache_dir: Path | None = None, progress: bool = False,
             data: FineTuneData | None = None) -> dict[str, Any]:
    """Optimize ``model_dir`` into ``out``; returns what ``optimize.json`` records (written
    last: its presence marks a finished run). ``data`` reuses an already loaded recipe."""

    import_tensorflow()
    import keras

    source = ModelDir.open(model_dir)
    if not source.keras_path.is_file():
        raise ModelError(f"{source.path}: no {artifact.MODEL_KERAS}; optimizing needs the float model")
    if Path(out).resolve() == source.path.resolve():
        raise KwsError(f"{out}: the output must not be the source model directory")
    refuse_out(out, force)
    data = data or load_data(source, data_dir, cache_dir)
    if data.source.path.resolve() != source.path.resolve():
        raise KwsError(f"fine-tuning data was loaded for {data.source.path}, not {source.path}")
    keras.utils.set_random_seed(settings.seed)
    model = load_keras(source.keras_path)
    float_model, details = _TECHNIQUES[settings.method](model, data, settings, progress)

    with atomic_dir(out, force, marks=MODEL_MARKS) as building:  # a previous result goes only now
        metrics, check, int8 = write_model(building, data, float_model, seed=settings.seed,
                                           verify_samples=settings.verify_samples,
                                           arch_params=details.get("arch_params"), label=settings.method)
        before = sum(layer.macs for layer in graph_layers(source.int8_path.read_bytes())[0])
        after = sum(layer.macs for layer in graph_layers(int8)[0])
        record = {"method": settings.method, "source": str(source.path), "settings": dataclasses.asdict(settings),
                  "int8_macs_before": before, "int8_macs_after": after, "bit_exact": check.to_dict(),
                  "metrics": metrics, "teacher": data.config.teacher or None, **details}
        artifact.write_json(building / OPTIMIZE_JSON, record)
    return record
