"""Streaming features and evaluation: the same numbers in bounded batches as all at once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import data_prep.example_features as example_features_module
from data_prep.config import FeatureConfig
from data_prep.example_features import example_features, iter_example_features
from data_prep.speech_commands import load_dataset


def test_streamed_batches_equal_the_whole(samples_dir: Path, tmp_path: Path) -> None:
    dataset = load_dataset(samples_dir / "speech_commands")
    examples = dataset.examples("testing")  # real files and generated _silence_
    assert any(e.path is None for e in examples) and any(e.path is not None for e in examples)
    config = FeatureConfig()
    whole = example_features(examples, config, tmp_path / "cache")
    batches = list(iter_example_features(examples, config, tmp_path / "cache", batch_size=7))
    assert [len(b) for b in batches[:-1]] == [7] * (len(batches) - 1) and 0 < len(batches[-1]) <= 7
    np.testing.assert_array_equal(np.concatenate(batches), whole)
    uncached = np.concatenate(list(iter_example_features(examples, config, use_cache=False, batch_size=16)))
    np.testing.assert_allclose(uncached, whole, rtol=0, atol=0)


def test_evaluation_does_not_depend_on_the_stream_batch(trained_models: dict[str, Path], bundle_dir: Path,
                                                        samples_dir: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from cascade.evaluation.bundle_eval import evaluate_bundle
    from cascade.evaluation.model_eval import evaluate
    from cascade.runtime.bundle import Bundle
    from cascade.runtime.model_dir import ModelDir

    data = samples_dir / "speech_commands"

    def reports() -> tuple[dict, dict]:
        model = evaluate(ModelDir.open(trained_models["stage2"]), data, cache_dir=tmp_path, workers=2)
        bundle = evaluate_bundle(Bundle.open(bundle_dir), data, cache_dir=tmp_path, workers=2)
        return model, bundle

    default = reports()
    monkeypatch.setattr(example_features_module, "STREAM_BATCH", 9)  # many batches, a short last one
    streamed = reports()
    assert default[0].n == streamed[0].n > 9
    assert streamed == default
