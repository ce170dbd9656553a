"""Warm start from the MLPerf reference weights (`kws train --init-from TEACHER`): the preset front
end reproduces the reference's features, the mapped model starts at the reference's accuracy on
real clips, a real training run from it, and the one-line refusals."""

from __future__ import annotations

import json
import math
from pathlib import Path

import keras
import numpy as np
import pytest
from typer.testing import CliRunner

from cascade.runtime.stages import stage_targets
from data_prep.config import FeatureConfig
from data_prep.features import mfcc
from data_prep.recordings import recording_clips
from data_prep.speech_commands import load_dataset
from kws.cli import app
from kws.train import teacher_mlperf
from kws.train.models import build_model
from kws.train.teacher import load_teacher, teacher_accuracy
from kws.train.warm_start import (REFERENCE_CONFIG, REFERENCE_FEATURES, SHIPPED_REFERENCE, fit_bridge, load_reference,
                                  measure_bridge)

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
REFERENCE, PRESET = SHIPPED_REFERENCE, REFERENCE_CONFIG
DB_PER_NEPER = 10.0 / math.log(10.0)
runner = CliRunner()


@pytest.fixture(scope="module")
def sample_splits() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{split: (clips, 12-class targets)} of the shipped sample dataset (real recordings)."""
    dataset = load_dataset(SAMPLES / "speech_commands", "12")
    out = {}
    for split in ("training", "testing"):
        examples = dataset.examples(split)
        clips = recording_clips(examples, REFERENCE_FEATURES).clips
        out[split] = (clips, np.asarray(stage_targets(2, dataset.labels, [e.label for e in examples])))
    return out


def test_preset_is_the_reference_front_end(sample_splits) -> None:
    """On peak-normalised real clips the preset gives the reference's MFCC in dB instead of
    nepers (and the orthonormal DCT's c0, sqrt(2) smaller): the same features, other units."""
    assert FeatureConfig.load(PRESET) == REFERENCE_FEATURES
    clips, targets = sample_splits["training"]
    words = clips[targets >= 2][:40]
    words = words / words.max(axis=1, keepdims=True)
    ours, theirs = mfcc(words, REFERENCE_FEATURES), teacher_mlperf.features(words, teacher_mlperf.MlperfFrontEnd())
    np.testing.assert_allclose(ours[..., 1:], DB_PER_NEPER * theirs[..., 1:], atol=0.05)
    np.testing.assert_allclose(ours[..., 0], DB_PER_NEPER / math.sqrt(2.0) * theirs[..., 0], atol=0.05)
    # the default front end is another one: no per-coefficient map reproduces the reference there
    default = fit_bridge(mfcc(words, FeatureConfig()), teacher_mlperf.features(words, teacher_mlperf.MlperfFrontEnd()))
    assert min(default.fit_r2[1:]) < 0.9


def test_mapped_reference_starts_at_its_accuracy(sample_splits) -> None:
    """The student before any training: the reference's weights behind our front end, the map
    fitted on training clips, scored on the sample test clips (60 real clips, 83 % measured for
    both); the reference through its own front end scores the same clips."""
    train_clips, _ = sample_splits["training"]
    test_clips, y = sample_splits["testing"]
    train_mfcc = mfcc(train_clips, REFERENCE_FEATURES)
    bridge = measure_bridge(train_clips, train_mfcc)
    assert min(bridge.fit_r2[1:]) > 0.999 and bridge.fit_r2[0] > 0.9  # c0: the peak vs the loudest frame
    labels = load_dataset(SAMPLES / "speech_commands", "12").labels
    model = build_model("ds_cnn", REFERENCE_FEATURES.input_shape, len(labels), level=True)
    load_reference(model, REFERENCE, labels, bridge, bridge.stats.apply(train_mfcc))
    student = float((model.predict(bridge.stats.apply(mfcc(test_clips, REFERENCE_FEATURES)), verbose=0).argmax(1) == y).mean())
    teacher = teacher_accuracy(load_teacher(REFERENCE), test_clips, y, labels, 2)
    print(f"sample test clips (n={len(y)}): mapped reference {student:.3f}, reference itself {teacher:.3f}")
    assert len(y) >= 50 and teacher >= 0.75 and student >= teacher - 0.04


def test_labels_the_reference_does_not_know_start_fresh(sample_splits) -> None:
    train_clips, _ = sample_splits["training"]
    train_mfcc = mfcc(train_clips[:60], REFERENCE_FEATURES)
    bridge = measure_bridge(train_clips[:60], train_mfcc)
    labels = ("_silence_", "_unknown_", "yes", "marvin")
    model = build_model("ds_cnn", REFERENCE_FEATURES.input_shape, len(labels), level=True)
    classifier = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)][-1]
    fresh = classifier.get_weights()[0][0, 0].copy()
    load_reference(model, REFERENCE, labels, bridge, bridge.stats.apply(train_mfcc))
    kernel = classifier.get_weights()[0][0, 0]
    np.testing.assert_array_equal(kernel[:, 3], fresh[:, 3])
    assert not np.array_equal(kernel[:, 2], fresh[:, 2])


def _train(tmp_path: Path, *extra: str):
    return runner.invoke(app, ["train", str(SAMPLES / "speech_commands"), "--out", str(tmp_path / "run"),
                               "--quiet", "--init-from", str(REFERENCE), *extra])


@pytest.mark.parametrize("args, message", [
    (["--stage", "1", "--arch", "tiny", "--config", str(PRESET)], "needs --stage 2 --arch ds_cnn"),
    (["--config", str(PRESET)], '"level": true'),
    (["--arch-params", '{"level": true}'], "spectrum='power' (needs 'magnitude')"),
    (["--arch-params", '{"level": true, "filters": 32}', "--config", str(PRESET)], "default shape"),
])
def test_runs_the_reference_cannot_start_are_refused_in_one_line(tmp_path, args, message) -> None:
    result = _train(tmp_path, *args)
    assert result.exit_code != 0 and message in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_train_from_the_reference(tmp_path) -> None:
    """One epoch from the reference on the sample clips: a real run (int8, measured), starting
    where the reference is instead of at chance."""
    result = _train(tmp_path, "--arch-params", '{"level": true}', "--config", str(PRESET), "--epochs", "1",
                    "--learning-rate", "0.0003")
    assert result.exit_code == 0, result.output
    assert "warm start from the MLPerf reference" in result.output
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["testing"]["n"] >= 50 and metrics["testing"]["int8_accuracy"] >= 0.7
    assert FeatureConfig.load(tmp_path / "run" / "features.toml") == REFERENCE_FEATURES


def test_cascade_train_warm_start_needs_one_second_clips(tmp_path) -> None:
    """`kws cascade train --warm-start` takes the reference's front end; a longer clip (a wake
    phrase) cannot start from it: one line, before any step runs."""
    result = runner.invoke(app, ["cascade", "train", str(SAMPLES / "speech_commands"), "--labels", "yes",
                                 "--out", str(tmp_path / "b"), "--warm-start", "--clip-ms", "1500"])
    assert result.exit_code != 0 and "clip_ms=1500.0 (needs 1000.0)" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "b.work").exists()
