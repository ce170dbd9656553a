"""Batch evaluation of a cascade bundle: cascade vs stage 2 alone, gate recall, invocations,
and each label's share of them (how many of a keyword's clips the gate dropped)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cascade.evaluation.eval_report import EvalReport
from cascade.evaluation.model_eval import classification_report
from cascade.evaluation.speaker_spread import speaker_spread
from cascade.runtime.bundle import Bundle
from cascade.runtime.decision import clip_predictions
from cascade.runtime.pipeline import Cascade
from data_prep.errors import DatasetError
from data_prep.example_features import Skipped, iter_example_features, kept_mask
from data_prep.labels import RESERVED
from data_prep.recordings import count_long
from data_prep.speech_commands import load_dataset


def evaluate_bundle(bundle: Bundle, data_dir: Path, split: str = "testing", cache_dir: Path | None = None,
                    use_cache: bool = True, workers: int = 1, at_operating_point: bool = False) -> EvalReport:
    """The cascade's per-class report and confusion matrix, stage 2 alone, the gate's recall
    and invocation rates, and the clips ``skipped`` because they could not be read (n counts
    only the clips evaluated). Features stream through in bounded batches; only per-clip
    predictions are kept.

    ``at_operating_point``: decide as the bundle's operating point (``bundle.at(...)``) would,
    a keyword below its threshold counting as not detected (``decision.clip_label``), for the
    cascade and stage 2 alone; otherwise each clip gets its argmax (the classifiers' accuracy)."""

    dataset = load_dataset(data_dir, bundle.stage2.dataset_labels())
    examples = dataset.examples(split)
    if not examples:
        raise DatasetError(f"{data_dir}: no {split} examples for labels {list(dataset.labels)}")
    labels = bundle.labels
    y = np.array([labels.index(e.label) for e in examples])
    is_kw = np.array([e.label not in RESERVED for e in examples])
    cascade = Cascade(bundle, workers)
    predictions, opened, stage2_preds = [], [], []
    skipped: list[Skipped] = []
    thresholds = bundle.smoothing if at_operating_point else None
    for features in iter_example_features(examples, bundle.config, cache_dir, use_cache, skipped=skipped):  # bounded memory
        stage2_probs = cascade.stage2_only(features)
        result = cascade.classify_clips(features, stage2_probs, thresholds)
        predictions.append(result["predictions"])
        opened.append(result["opened"])
        always = np.ones(len(features), dtype=bool)  # stage 2 alone: as if the gate always opened
        stage2_preds.append(clip_predictions(result["p1"], stage2_probs, always, bundle.stage1.labels, labels, thresholds))
    keep = kept_mask(len(examples), skipped)
    if not keep.any():
        raise DatasetError(f"{data_dir}: none of the {len(examples)} {split} clips could be read ({skipped[0].reason})")
    y, is_kw = y[keep], is_kw[keep]
    opened, stage2_preds = np.concatenate(opened), np.concatenate(stage2_preds)
    predicted = np.concatenate(predictions)

    def per_label(mask: np.ndarray) -> tuple[int, ...]:  # how many clips of each label ``mask`` holds
        return tuple(int(c) for c in np.bincount(y[mask], minlength=len(labels)))

    speakers = [e.speaker for e, k in zip(examples, keep) if k]

    return EvalReport(
        cascade=classification_report(y, predicted, labels),
        model=str(bundle.path),
        data=str(data_dir),
        split=split,
        tau=bundle.tau,
        stage2_accuracy=float(np.mean(stage2_preds == y)),
        stage1_recall=float(opened[is_kw].mean()) if is_kw.any() else 0.0,
        stage2_invocation_rate=float(opened.mean()),
        stage2_invocation_rate_non_keyword=float(opened[~is_kw].mean()) if (~is_kw).any() else 0.0,
        skipped=tuple(skipped),
        long_recordings=count_long(examples, bundle.config),
        gate_closed=per_label(~opened),
        stage2_correct=per_label(stage2_preds == y),
        operating_point=bundle.operating_point if at_operating_point else None,
        speakers=speaker_spread(predicted == y, speakers),
        gate_speakers=speaker_spread(opened[is_kw], [s for s, kw in zip(speakers, is_kw) if kw]),
    )
