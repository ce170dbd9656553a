"""``kws cascade build``: calibrate the gate on validation data and write the bundle."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from cascade.evaluation.keyword_free import KEYWORD_FREE, keyword_free_rate, keyword_free_streams
from cascade.evaluation.noisy_copies import NoisyCopies, noisy_keyword_scores
from cascade.runtime.bundle import MANIFEST, Bundle, check_inference_stride, check_stage_roles, write_bundle
from cascade.runtime.decision import SmoothingConfig
from cascade.runtime.gate import calibrate, threshold_curve
from cascade.runtime.model_dir import ModelDir, write_json
from cascade.runtime.pipeline import StageRunner
from cascade.runtime.stages import KEYWORD
from data_prep.errors import DatasetError
from data_prep.example_features import Skipped, example_features, kept_mask
from data_prep.labels import RESERVED
from data_prep.outputs import refuse_existing
from data_prep.recordings import count_long
from data_prep.speech_commands import load_dataset

CURVE = "threshold_curve.json"
def stage1_scores(stage1: ModelDir, data_dir: Path, split: str, labels, cache_dir: Path | None = None,
                  skipped: list[Skipped] | None = None, noisy: NoisyCopies | None = None):
    """(P(keyword) from the int8 stage 1, is-keyword flags, each clip's label, files longer than
    a clip) over a split of ``data_dir``, with ``noisy`` copies of the keyword clips appended. Unreadable clips
    are left out (and recorded in ``skipped``): one damaged recording must not stop the
    calibration."""
    dataset = load_dataset(data_dir, labels)
    examples = dataset.examples(split)
    if not examples:
        raise DatasetError(f"{data_dir}: no {split} examples to calibrate the gate on")
    bad: list[Skipped] = []
    features = example_features(examples, stage1.config, cache_dir, skipped=bad)
    examples = [e for e, keep in zip(examples, kept_mask(len(examples), bad)) if keep]
    if skipped is not None:
        skipped.extend(bad)
    p = StageRunner(stage1)(features)[:, stage1.labels.index(KEYWORD)]
    is_kw = np.array([e.label not in RESERVED for e in examples])
    names = np.array([e.label for e in examples])
    if noisy is not None:
        extra = noisy_keyword_scores(stage1, dataset, [e for e, k in zip(examples, is_kw) if k], noisy)
        copies = np.tile(names[is_kw], noisy.copies)  # noisy_keyword_scores: copy after copy of the same clips
        if len(copies) != len(extra):
            raise DatasetError(f"{data_dir}: {len(extra)} noisy copies scored for {len(copies)} keyword clips")
        p, is_kw = np.concatenate([p, extra]), np.concatenate([is_kw, np.ones(len(extra), bool)])
        names = np.concatenate([names, copies])
    return p, is_kw, names, count_long(examples, stage1.config)


def build_cascade(
    stage1_dir: Path,
    stage2_dir: Path,
    data_dir: Path,
    out: Path,
    *,
    recall: float = 0.98,
    inference_stride_ms: float = 100.0,
    smoothing: SmoothingConfig = SmoothingConfig(),
    split: str = "validation",
    force: bool = False,
    cache_dir: Path | None = None,
    noisy: NoisyCopies | None = None,
) -> tuple[Bundle, dict[str, Any]]:
    """``noisy``: also calibrate on noisy copies of the keyword clips (see noisy_copies)."""
    refuse_existing(out, force, marks=(MANIFEST,), hint="replace it")  # before the costly scoring
    stage1, stage2 = ModelDir.open(stage1_dir), ModelDir.open(stage2_dir)
    stage1.config.require_same(stage2.config, f"{stage1_dir} vs {stage2_dir}")
    check_stage_roles(stage1, stage2)  # as Bundle.open would, but before the costly scoring
    check_inference_stride(inference_stride_ms, stage1.config, "--inference-stride-ms")
    skipped: list[Skipped] = []
    p, is_kw, names, long = stage1_scores(stage1, data_dir, split, stage2.dataset_labels(), cache_dir, skipped, noisy)
    cal = calibrate(p, is_kw, recall, names)
    calibration = dataclasses.asdict(cal) | {"data": str(data_dir), "split": split,
                                             "skipped": [s.reason for s in skipped]}  # TOML: strings
    if noisy is not None:
        calibration["noisy_copies"] = noisy.to_dict()
    free: dict[str, Any] = {}

    def figures(draft: Bundle) -> None:
        write_json(draft.path / CURVE, threshold_curve(p, is_kw))
        streams, about = keyword_free_streams(data_dir, stage2.dataset_labels(), split, draft.config.sample_rate)
        free.update(keyword_free_rate(draft, streams) | about)
        write_json(draft.path / KEYWORD_FREE, free)

    bundle = write_bundle(out, stage1_dir, stage2_dir, tau=cal.tau, inference_stride_ms=inference_stride_ms,
                          smoothing=smoothing, calibration=calibration, force=force, extras=figures)
    return bundle, calibration | {"keyword_free": free, "long_recordings": long}
