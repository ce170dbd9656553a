"""A model kws trained as a teacher (kws.train.teacher_kws): the shipped stage 2 teaching a gate.

It must be the same function the cascade runs (its front end, normalisation and int8 model),
give stage 1 its keyword mass, refuse a gate as a teacher in one line, and work in a real run
whose student hears another front end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cascade.runtime.model_dir import ModelDir
from cascade.runtime.stages import stage_targets
from data_prep.features import mfcc
from data_prep.recordings import recording_clips
from data_prep.speech_commands import load_dataset
from kws.cli import app
from kws.train.teacher import Distillation, load_teacher, recognise_teacher, teacher_accuracy, teacher_labels

runner = CliRunner()


@pytest.fixture(scope="module")
def stage2(samples_dir: Path) -> Path:
    return samples_dir / "models" / "stage2"


@pytest.fixture(scope="module")
def testing(samples_dir: Path, stage2: Path):
    """(dataset, clips, examples) of the samples' testing speakers, at the teacher's clip length."""
    dataset = load_dataset(samples_dir / "speech_commands", "12")
    examples = dataset.examples("testing")
    return dataset, recording_clips(examples, ModelDir.open(stage2).config).clips, examples


def test_it_is_the_model_the_cascade_runs(stage2: Path, testing) -> None:
    """Same features, normalisation and int8 model as the runtime. The runtime uses TFLite's
    reference kernels (bit-exact with the firmware), the teacher the optimised ones (fast enough
    for every training batch), whose rounding differs: measured on the 60 sample test clips, a
    mean difference of 0.6 int8 steps (1/256), 32 at worst, the same top class on every clip."""
    dataset, clips, examples = testing
    assert recognise_teacher(stage2) == "kws_model"
    model = ModelDir.open(stage2)
    assert teacher_labels(stage2) == model.labels
    teacher = load_teacher(stage2)
    assert teacher.labels == model.labels and teacher.recipe == model.config
    probs = teacher.predict(clips)
    runtime = model.check_int8().predict(model.inputs(mfcc(clips, model.config)))
    assert probs.shape == runtime.shape == (len(clips), len(model.labels))
    assert np.abs(probs - runtime).mean() <= 2 / 256
    assert np.abs(probs - runtime).max() <= 64 / 256
    assert np.mean(probs.argmax(1) == runtime.argmax(1)) >= 0.97
    targets = np.asarray(stage_targets(2, dataset.labels, [e.label for e in examples]))
    ours = float(np.mean(runtime.argmax(1) == targets))
    assert teacher_accuracy(teacher, clips, targets, dataset.labels, 2) == pytest.approx(ours, abs=0.02)
    assert ours > 0.6  # a stage 2 that knows the words (83 % measured), not chance (1/12)


def test_stage1_targets_are_the_keyword_mass(stage2: Path, testing) -> None:
    dataset, clips, examples = testing
    teacher = load_teacher(stage2)
    labels = [e.label for e in examples]
    distill = Distillation.build(teacher, dataset.labels, 1, labels, weight=1.0, temperature=1.0)
    targets = np.asarray(stage_targets(1, dataset.labels, labels))
    soft = distill.soft_targets(clips, np.arange(len(clips)), targets)
    probs = teacher.predict(clips)
    words = [i for i, name in enumerate(teacher.labels) if not name.startswith("_")]
    np.testing.assert_allclose(soft.sum(axis=1), 1.0, atol=1e-5)
    # _silence_, _unknown_, keyword; int8 softmax rows sum to 1 within a few steps, renormalised
    np.testing.assert_allclose(soft[:, 2], probs[:, words].sum(axis=1), atol=4 / 256)


def test_a_gate_is_not_a_teacher(samples_dir: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", str(samples_dir / "speech_commands"), "--stage", "1", "--arch", "tiny",
                                 "--epochs", "1", "--teacher", str(samples_dir / "models" / "stage1"),
                                 "--out", str(tmp_path / "run"), "--quiet"])
    assert result.exit_code == 1
    assert "a stage-1 gate" in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_a_gate_learns_from_its_stage2(samples_dir: Path, stage2: Path, tmp_path: Path) -> None:
    """A real run: the student on the default front end, the teacher on its own (the reference's)."""
    out = tmp_path / "gate"
    result = runner.invoke(app, ["train", str(samples_dir / "speech_commands"), "--stage", "1", "--arch", "tiny",
                                 "--epochs", "1", "--batch-size", "32", "--teacher", str(stage2), "--out", str(out),
                                 "--quiet"], env={"KWS_CACHE_DIR": str(tmp_path / "cache")})
    assert result.exit_code == 0, result.output
    assert f"teacher kws_model ({stage2.resolve()})" in result.output
    saved = json.loads((out / "train_config.json").read_text())
    assert saved["teacher_adapter"] == "kws_model" and saved["teacher"] == str(stage2.resolve())
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["teacher"]["adapter"] == "kws_model"
    assert metrics["teacher"]["validation_accuracy"] > 0.6  # the gate's 3 classes, from stage 2's 12
