"""Distillation from the MLPerf Tiny reference DS-CNN: its front end, its accuracy, the label
mapping, and a real ``kws train --teacher`` run that records the teacher and resumes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cascade.runtime.stages import stage_labels, stage_targets
from data_prep.config import FeatureConfig
from data_prep.labels import KEYWORDS, UNKNOWN
from data_prep.recordings import recording_clips
from data_prep.speech_commands import load_dataset
from kws.cli import app
from kws.train import teacher_mlperf
from kws.train.teacher import Distillation, label_map, load_teacher, soften, teacher_accuracy
from ctrl_c import default_sigint

runner = CliRunner()


@pytest.fixture(scope="module")
def teacher_dir(shared_data: Path) -> Path:
    """teachers/mlperf_tiny_ds_cnn beside the shared data (or $KWS_TEACHER); skip when absent."""
    path = Path(os.environ.get("KWS_TEACHER", shared_data.parent / "teachers" / "mlperf_tiny_ds_cnn"))
    if teacher_mlperf.model_file(path) is None:
        pytest.skip(f"MLPerf Tiny teacher not found at {path}")
    return path


@pytest.fixture(scope="module")
def teacher(teacher_dir: Path):
    return load_teacher(teacher_dir)


@pytest.fixture(scope="module")
def dev_testing(dev_data: Path):
    """(dataset, clean audio, examples) of the dev set's testing speakers, 12-class."""
    dataset = load_dataset(dev_data, "12")
    examples = dataset.examples("testing")
    return dataset, recording_clips(examples, FeatureConfig()).clips, examples


def test_front_end_matches_tensorflow(dev_testing) -> None:
    """The numpy front end is the reference's TF graph (teacher README), on real clips."""
    import tensorflow as tf

    _, audio, _ = dev_testing
    wav = audio[:48]
    recipe = teacher_mlperf.MlperfFrontEnd()
    x = tf.constant(wav)
    x = x / tf.reduce_max(x, axis=-1, keepdims=True)
    stft = tf.signal.stft(x, frame_length=640, frame_step=320, fft_length=None, window_fn=tf.signal.hann_window)
    mel_matrix = tf.signal.linear_to_mel_weight_matrix(40, 513, 16000, 20.0, 4000.0)
    mel = tf.tensordot(tf.abs(stft), mel_matrix, 1)
    expected = tf.signal.mfccs_from_log_mel_spectrograms(tf.math.log(mel + 1e-6))[..., :10].numpy()
    np.testing.assert_allclose(teacher_mlperf.tables(recipe)[1], mel_matrix.numpy(), atol=1e-5)
    got = teacher_mlperf.features(wav, recipe)
    assert got.shape == expected.shape == (48, 49, 10)
    np.testing.assert_allclose(got, expected, atol=2e-3, rtol=1e-4)


def test_teacher_accuracy_on_dev_testing_speakers(teacher, dev_testing) -> None:
    """Published ~92 % on the full test set; measured here 0.8703 (n=401, 18 speakers)."""
    dataset, audio, examples = dev_testing
    y = np.asarray(stage_targets(2, dataset.labels, [e.label for e in examples]))
    accuracy = teacher_accuracy(teacher, audio, y, dataset.labels, 2)
    print(f"teacher accuracy on dev testing speakers: {accuracy:.4f} (n={len(y)})")
    assert len(y) > 300 and accuracy >= 0.85


def test_stage1_targets_sum_to_one_and_keep_the_keyword_mass(teacher, dev_testing) -> None:
    dataset, audio, examples = dev_testing
    probs = teacher.predict(audio[:64])
    keyword_mass = probs[:, [teacher.labels.index(k) for k in KEYWORDS]].sum(axis=1)
    mapping = label_map(teacher.labels, dataset.labels, stage=1)  # -> (_silence_, _unknown_, keyword)
    mapped = probs @ mapping
    np.testing.assert_allclose(mapped.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(mapped[:, 2], keyword_mass, atol=1e-6)
    labels = [e.label for e in examples[:64]]
    y = np.asarray(stage_targets(1, dataset.labels, labels))
    distill = Distillation.build(teacher, dataset.labels, 1, labels, weight=0.7, temperature=1.0)
    soft = distill.soft_targets(audio[:64], np.arange(64), y)
    np.testing.assert_allclose(soft.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(soft, 0.7 * mapped + 0.3 * np.eye(3)[y], atol=1e-5)
    # clean clips: computed once, then served from the cache
    assert np.allclose(distill.soft_targets(audio[:64], np.arange(64), y, clean=True), soft, atol=1e-6)
    assert len(distill.clean) == 64


def test_custom_labels_and_temperature(teacher, dev_testing) -> None:
    """A keyword the teacher never heard gets its one-hot; teacher words the student does
    not classify go to _unknown_; temperature flattens but keeps the order."""
    dataset, audio, examples = dev_testing
    student = ("_silence_", "_unknown_", "yes", "marvin")
    mapping = label_map(teacher.labels, student, stage=2)
    assert mapping[teacher.labels.index("down"), student.index(UNKNOWN)] == 1.0
    assert mapping[:, student.index("marvin")].sum() == 0.0 and np.allclose(mapping.sum(axis=1), 1.0)
    labels = ["yes", "marvin", UNKNOWN, "yes"]
    y = np.asarray([student.index(label) for label in labels])
    distill = Distillation.build(teacher, student, 2, labels, weight=0.7, temperature=2.0)
    soft = distill.soft_targets(audio[:4], np.arange(4), y)
    assert distill.trusted.tolist() == [True, False, True, True]
    np.testing.assert_array_equal(soft[1], np.eye(4)[y[1]])
    np.testing.assert_allclose(soft.sum(axis=1), 1.0, atol=1e-5)
    probs = teacher.predict(audio[:8])
    warm = soften(probs, 2.0)
    entropy = lambda p: -(p * np.log(np.maximum(p, 1e-12))).sum(axis=1)
    assert np.all(entropy(warm) >= entropy(probs) - 1e-6)
    assert np.array_equal(warm.argmax(axis=1), probs.argmax(axis=1)) and soften(probs, 1.0) is probs


def test_negatives_windows_get_no_keyword_mass_in_stage2(teacher, dev_testing) -> None:
    """Keyword clips passed off as negatives (_unknown_ windows, the case where the teacher is
    surely fooled): for stage 2 the teacher's keyword mass goes to _unknown_ and its silence share
    stays; the same clips not marked negative, and a gate's clips, keep what the teacher says."""
    dataset, audio, examples = dev_testing
    picked = [i for i, e in enumerate(examples) if e.label in KEYWORDS][:32]
    clips, n, labels = audio[picked], len(picked), [UNKNOWN] * len(picked)
    mapped = teacher.predict(clips) @ label_map(teacher.labels, dataset.labels, stage=2)
    soft_of = {}
    for stage in (1, 2):
        targets = np.asarray(stage_targets(stage, dataset.labels, labels))
        for marked in (False, True):
            distill = Distillation.build(teacher, dataset.labels, stage, labels, weight=0.7, temperature=1.0,
                                         negative=[marked] * n)
            soft_of[stage, marked] = distill.soft_targets(clips, np.arange(n), targets)
        assert distill.keyword_columns.sum() == (1 if stage == 1 else 10)
    keyword = np.asarray([name not in ("_silence_", UNKNOWN) for name in stage_labels(2, tuple(dataset.labels))])
    assert soft_of[2, False][:, keyword].sum(axis=1).mean() > 0.5  # the teacher hears keywords in them
    assert np.all(soft_of[2, True][:, keyword] == 0.0)
    np.testing.assert_allclose(soft_of[2, True].sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(soft_of[2, True][:, 0], 0.7 * mapped[:, 0], atol=1e-5)  # _silence_ share kept
    np.testing.assert_array_equal(soft_of[1, True], soft_of[1, False])  # the gate imitates its teacher
    assert soft_of[1, True][:, 2].mean() > 0.35
    with pytest.raises(ValueError, match="negative marks 2 clips"):
        Distillation.build(teacher, dataset.labels, 2, [UNKNOWN] * 3, weight=0.7, temperature=1.0, negative=[True, False])


class _Context:
    """What tf.distribute passes to a dataset function (its InputContext's fields)."""

    def __init__(self, replicas: int, pipelines: int, pipeline: int) -> None:
        self.num_replicas_in_sync, self.num_input_pipelines, self.input_pipeline_id = replicas, pipelines, pipeline


def test_soft_targets_through_replicas_and_the_loop(teacher, dev_testing, config: FeatureConfig) -> None:
    """Soft targets travel with their examples into each replica's slice of a global batch,
    and one-hot soft targets train exactly as hard labels do (the loop's one other branch)."""
    import keras

    from data_prep.augment import AugmentConfig
    from data_prep.normalize import FeatureStats
    from data_prep.spec_augment import MaskConfig
    from kws.train.data import TrainingArrays, training_dataset
    from kws.train.distribute import make_placement
    from kws.train.loop import make_train_step
    from kws.train.models import build_model

    dataset, audio, examples = dev_testing
    labels = [e.label for e in examples[:10]]
    y = np.asarray(stage_targets(2, dataset.labels, labels), np.int32)
    arrays = TrainingArrays(audio[:10], y, (audio[10:14].reshape(-1),), clip_labels=tuple(labels))
    distill = Distillation.build(teacher, dataset.labels, 2, labels, weight=0.7, temperature=1.0)

    def elements(context, distill):
        ds = training_dataset(arrays, config, FeatureStats.identity(config.n_mfcc), AugmentConfig(), MaskConfig(),
                              batch_size=4, seed=3, class_weights=[1.0] * 12, epochs=1, input_context=context,
                              distill=distill)
        return [tuple(t.numpy() for t in element) for element in ds]

    whole, halves = elements(None, distill), elements(_Context(2, 1, 0), distill)
    assert len(halves) == 2 * len(whole) and all(len(e) == 5 for e in whole)
    for step, (x, yb, w, length, soft) in enumerate(whole):
        np.testing.assert_allclose(soft.sum(axis=1), 1.0, atol=1e-5)
        assert not np.allclose(soft, np.eye(12)[yb])  # the teacher did speak
        np.testing.assert_array_equal(np.concatenate([halves[2 * step][4], halves[2 * step + 1][4]]), soft)

    placement = make_placement("one-device")
    hard = [e[:4] for e in elements(None, None)]
    runs = []
    for batch in (hard[0], (*hard[0], np.eye(12, dtype=np.float32)[hard[0][1]])):
        keras.utils.set_random_seed(0)
        model = build_model("tiny", config.input_shape, 12)
        optimizer = keras.optimizers.SGD(0.1)
        step = make_train_step(model, optimizer, placement)
        totals = step(iter([tuple(np.asarray(t) for t in batch)])).numpy()
        runs.append((totals, [w.numpy() for w in model.trainable_variables]))
    np.testing.assert_allclose(runs[0][0], runs[1][0], rtol=1e-5)
    for a, b in zip(runs[0][1], runs[1][1]):
        np.testing.assert_allclose(a, b, atol=1e-5)


def _history(path: Path) -> list[dict]:
    try:
        return json.loads((path / "history.json").read_text())
    except (OSError, ValueError):
        return []


def test_train_with_teacher_records_it_and_resumes(teacher_dir: Path, samples_dir: Path, tmp_path: Path) -> None:
    """A real run, interrupted (SIGINT) after its first epoch and resumed by the same command."""
    out = tmp_path / "run"
    args = ["train", str(samples_dir / "speech_commands"), "--out", str(out), "--stage", "1", "--arch", "tiny",
            "--epochs", "3", "--batch-size", "32", "--teacher", str(teacher_dir), "--teacher-weight", "0.6",
            "--temperature", "2", "--quiet"]
    cmd = [sys.executable, "-c", "from kws.cli import main; main()", *args]
    env = dict(os.environ, KWS_CACHE_DIR=str(tmp_path / "cache"))
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=default_sigint)
    deadline = time.time() + 120
    saved_state = out / "checkpoint" / "checkpoint"  # written once the first epoch's backup is complete
    while not saved_state.is_file() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in err
    done = len(_history(out))
    assert 1 <= done < 3 and (out / "checkpoint").is_dir()
    saved = json.loads((out / "train_config.json").read_text())
    assert saved["teacher"] == str(teacher_dir.resolve()) and saved["teacher_adapter"] == "mlperf_tiny_ds_cnn"
    assert saved["teacher_weight"] == 0.6 and saved["temperature"] == 2.0

    changed = runner.invoke(app, [a if a != "0.6" else "0.5" for a in args])
    assert changed.exit_code == 1 and "different settings" in changed.output

    resumed = runner.invoke(app, args, env={"KWS_CACHE_DIR": str(tmp_path / "cache")})
    assert resumed.exit_code == 0, resumed.output
    assert "resuming at epoch" in resumed.output and "teacher mlperf_tiny_ds_cnn" in resumed.output
    assert [e["epoch"] for e in _history(out)] == [0, 1, 2]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["teacher"]["adapter"] == "mlperf_tiny_ds_cnn" and metrics["teacher"]["validation_n"] > 0
    assert 0.0 <= metrics["testing"]["int8_accuracy"] <= 1.0
