"""A trained model directory: the self-describing artefact every later step reads.

    features.toml        FeatureConfig the model was trained on
    labels.txt           class names, one per line, in output order
    normalization.json   per-coefficient mean/std applied before the model (and before int8)
    model.keras          best float model (by validation accuracy)
    model_int8.tflite    full-integer int8 model (int8 input and output)
    train_config.json    how it was trained;  history.json: per-epoch metrics
    metrics.json         float and int8 accuracy on validation and test speakers
"""

from __future__ import annotations

import dataclasses
import json
import math
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from cascade.runtime.int8_model import TFLiteModel
from data_prep.atomic import write_text_atomic
from data_prep.config import FeatureConfig
from data_prep.errors import ConfigMismatch, KwsError, ModelError
from data_prep.labels import RESERVED, SILENCE, UNKNOWN, LabelSet, parse_labels
from data_prep.normalize import FeatureStats
from data_prep.tensorflow_quiet import import_tensorflow

FEATURES = "features.toml"
LABELS = "labels.txt"
NORMALIZATION = "normalization.json"
MODEL_KERAS = "model.keras"
MODEL_INT8 = "model_int8.tflite"
TRAIN_CONFIG = "train_config.json"
HISTORY = "history.json"
METRICS = "metrics.json"
REQUIRED = (FEATURES, LABELS, NORMALIZATION, MODEL_INT8)


def write_json(path: Path, data: Any) -> None:
    write_text_atomic(Path(path), json.dumps(data, indent=2, sort_keys=False) + "\n")


def read_json(path: Path) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path}: cannot read JSON ({exc})") from None


def is_finite_number(value: Any) -> bool:
    """A JSON value that is a finite number (Python's bool is an int; JSON's true is not a number)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def load_keras(path: Path, *, compile: bool = True):
    """A ``.keras`` model, always with Keras's ``safe_mode=True`` stated: a model file is then
    data only, and one carrying Python code (a ``Lambda`` layer) is refused, not run. A damaged
    file is one ``ModelError`` naming it (Keras itself says "File not found" for a file that is
    there but is not a zip archive, which sends the user looking in the wrong place)."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: no such Keras model file")
    if not zipfile.is_zipfile(path):
        raise ModelError(f"{path}: corrupt or not a Keras model (not a .keras zip archive)")
    import_tensorflow()
    import keras  # lazy: Keras/TensorFlow load only for commands that need the float model

    try:
        return keras.saving.load_model(path, compile=compile, safe_mode=True)
    except (ValueError, TypeError, KeyError, OSError, EOFError, zipfile.BadZipFile) as exc:
        if "safe_mode" in str(exc):
            raise ModelError(f"{path}: refused: the model holds Python code (a Lambda layer), which kws does not "
                             "run (Keras safe_mode=True)") from None
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"{path}: corrupt Keras model ({first[:200]})") from None


def write_labels(path: Path, labels: tuple[str, ...] | list[str]) -> None:
    write_text_atomic(Path(path), "".join(f"{label}\n" for label in labels))


@dataclasses.dataclass(frozen=True)
class ModelDir:
    """An opened, validated model directory."""

    path: Path
    config: FeatureConfig
    labels: tuple[str, ...]
    stats: FeatureStats

    @classmethod
    def open(cls, path: Path) -> "ModelDir":
        path = Path(path)
        if not path.is_dir():
            raise ModelError(f"{path}: not a model directory")
        missing = [name for name in REQUIRED if not (path / name).is_file()]
        if missing:
            raise ModelError(f"{path}: incomplete model directory, missing {', '.join(missing)}")
        try:
            config = FeatureConfig.load(path / FEATURES)
            stats = FeatureStats.load(path / NORMALIZATION, config.n_mfcc)
        except KwsError as exc:
            raise ModelError(str(exc)) from None
        try:
            text = (path / LABELS).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ModelError(f"{path / LABELS}: cannot read ({getattr(exc, 'strerror', None) or exc})") from None
        labels = tuple(line.strip() for line in text.splitlines() if line.strip())
        if len(labels) < 2:
            raise ModelError(f"{path / LABELS}: needs at least two class names")
        return cls(path, config, labels, stats)

    def check_int8(self) -> TFLiteModel:
        """The int8 model, after checking it is the model these files describe: int8 in and
        out, one output per label, the feature config's input shape. A model swapped in from
        another directory otherwise runs and gives silently wrong answers (or crashes later)."""
        model = TFLiteModel(self.int8_path)
        if model.input.dtype != np.int8 or model.output.dtype != np.int8 or not model.input.quantized:
            raise ModelError(f"{self.int8_path}: not a full-integer int8 model "
                             f"(input {model.input.dtype}, output {model.output.dtype})")
        if model.input_shape != self.config.input_shape:
            raise ConfigMismatch(f"{self.int8_path}: input shape {model.input_shape} does not match "
                             f"{self.path / FEATURES} (T, n_mfcc) = {self.config.input_shape}")
        if model.num_classes != len(self.labels):
            raise ModelError(f"{self.int8_path}: {model.num_classes} outputs but {len(self.labels)} labels in "
                             f"{self.path / LABELS}")
        return model

    @property
    def int8_path(self) -> Path:
        return self.path / MODEL_INT8

    @property
    def keras_path(self) -> Path:
        return self.path / MODEL_KERAS

    def inputs(self, features: np.ndarray) -> np.ndarray:
        """Raw MFCC (..., T, n_mfcc) -> the normalised float input of the model."""
        return self.stats.apply(features)

    def dataset_labels(self) -> LabelSet:
        """The dataset label set the model was trained on (its train config, else its labels)."""
        spec = self.metadata(TRAIN_CONFIG).get("labels")
        if spec:
            return parse_labels(spec)
        words = tuple(label for label in self.labels if label not in RESERVED)
        return LabelSet(words, silence=SILENCE in self.labels, unknown=UNKNOWN in self.labels)

    def metadata(self, name: str) -> dict[str, Any]:
        file = self.path / name
        return read_json(file) if file.is_file() else {}
