"""Batch evaluation of a model directory on a Speech Commands split: float vs int8.

Reports what the literature reports (top-1 accuracy on the test speakers) plus per-class
precision/recall and the confusion matrix, for the float model and for the int8 model run
with TFLite's reference kernels (the kernels TFLite Micro matches bit for bit).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from cascade.evaluation.eval_report import ClassMetrics, ClassReport, ModelEvalReport
from cascade.evaluation.figures import pyplot, save_png
from cascade.evaluation.speaker_spread import speaker_spread
from cascade.runtime.int8_model import TFLiteModel
from cascade.runtime.model_dir import ModelDir, load_keras
from cascade.runtime.stages import KEYWORD, stage_targets
from data_prep.errors import DatasetError
from data_prep.example_features import Skipped, iter_example_features, kept_mask
from data_prep.recordings import count_long
from data_prep.speech_commands import load_dataset


def classification_report(targets: np.ndarray, predictions: np.ndarray, labels: tuple[str, ...]) -> ClassReport:
    """accuracy, n, per_class {label: precision, recall, support}, confusion (rows = truth)."""
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    idx = list(range(len(labels)))
    conf = confusion_matrix(targets, predictions, labels=idx)
    precision, recall, f1, support = precision_recall_fscore_support(
        targets, predictions, labels=idx, zero_division=0
    )
    return ClassReport(
        accuracy=float(np.mean(targets == predictions)) if len(targets) else 0.0,
        n=int(len(targets)),
        labels=tuple(labels),
        per_class={
            label: ClassMetrics(float(precision[i]), float(recall[i]), float(f1[i]), int(support[i]))
            for i, label in enumerate(labels)
        },
        confusion=conf.tolist(),
    )


def stage_of(model: ModelDir) -> int:
    return 1 if KEYWORD in model.labels else 2


def _load_keras(model: ModelDir):
    return load_keras(model.keras_path)


def predict_float(model: ModelDir, x: np.ndarray, keras_model=None) -> np.ndarray:
    net = keras_model or _load_keras(model)
    return np.asarray(net.predict(x, batch_size=256, verbose=0))


def predict_int8(model: ModelDir, x: np.ndarray, workers: int = 1) -> np.ndarray:
    return TFLiteModel(model.int8_path).predict(x, workers=workers)


def accuracy_of(model: ModelDir, x: np.ndarray, y: np.ndarray, keras_model=None) -> dict[str, Any]:
    """Float and int8 top-1 accuracy on normalised features ``x``."""
    out: dict[str, Any] = {"n": int(len(y))}
    if keras_model is not None or model.keras_path.is_file():
        out["float_accuracy"] = float(np.mean(predict_float(model, x, keras_model).argmax(-1) == y))
    out["int8_accuracy"] = float(np.mean(predict_int8(model, x).argmax(-1) == y))
    return out


def evaluate(model: ModelDir, data_dir: Path, split: str = "testing", cache_dir: Path | None = None,
             use_cache: bool = True, workers: int = 1) -> ModelEvalReport:
    """Reports for the int8 model (and the float one when present) on ``split`` of ``data_dir``.

    Features stream through batch by batch and only the predicted labels are kept, so the
    pass needs the same memory for a test set of any size.
    """

    dataset = load_dataset(data_dir, model.dataset_labels())
    examples = dataset.examples(split)
    if not examples:
        raise DatasetError(f"{data_dir}: no {split} examples for labels {list(dataset.labels)}")
    stage = stage_of(model)
    y = np.asarray(stage_targets(stage, dataset.labels, [e.label for e in examples]), np.int32)
    int8_model = model.check_int8()
    keras_model = _load_keras(model) if model.keras_path.is_file() else None
    int8_preds, float_preds = [], []
    skipped: list[Skipped] = []
    for features in iter_example_features(examples, model.config, cache_dir, use_cache, skipped=skipped):
        x = model.inputs(features)
        int8_preds.append(int8_model.predict(x, workers=workers).argmax(-1))
        if keras_model is not None:
            float_preds.append(predict_float(model, x, keras_model).argmax(-1))
    keep = kept_mask(len(examples), skipped)
    if not keep.any():
        raise DatasetError(f"{data_dir}: none of the {len(examples)} {split} clips could be read ({skipped[0].reason})")
    y, int8_predicted = y[keep], np.concatenate(int8_preds)
    return ModelEvalReport(
        model=str(model.path), data=str(data_dir), split=split, stage=stage,
        int8=classification_report(y, int8_predicted, model.labels),
        float_=classification_report(y, np.concatenate(float_preds), model.labels) if keras_model is not None else None,
        skipped=tuple(skipped), long_recordings=count_long(examples, model.config),
        speakers=speaker_spread(int8_predicted == y, [e.speaker for e, k in zip(examples, keep) if k]))


def confusion_png(report: ClassReport, path: Path, title: str) -> Path:
    """Confusion matrix as a PNG (rows: truth, columns: prediction), written atomically."""

    labels, conf = report.labels, np.asarray(report.confusion)
    fig, ax = pyplot().subplots(figsize=(1.0 + 0.55 * len(labels), 0.8 + 0.5 * len(labels)))
    ax.imshow(conf, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=60, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    for (i, j), v in np.ndenumerate(conf):
        if v:
            ax.text(j, i, str(v), ha="center", va="center", color="white" if v > conf.max() / 2 else "black", fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    return save_png(fig, path)


def confusion_text(report: ClassReport) -> str:
    labels, conf = report.labels, report.confusion
    width = max(6, *(len(l) for l in labels)) + 1
    lines = ["true\\pred".ljust(width) + "".join(l[:6].rjust(7) for l in labels)]
    for label, row in zip(labels, conf):
        lines.append(label.ljust(width) + "".join(str(v).rjust(7) for v in row))
    return "\n".join(lines)
