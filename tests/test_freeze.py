"""Transfer learning (`kws train --freeze N`, `--frozen-bn`): real fine-tunes in which the first N
weighted layers and their batch norms, or every batch norm, keep the warm start's weights to the
bit, and the rest train."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from cascade.runtime.model_dir import load_keras
from kws.cli import app
from kws.train.freeze import weighted_layers

runner = CliRunner()


def _fine_tune(samples_dir: Path, source: Path, out: Path, *extra: str):
    return runner.invoke(app, ["train", str(samples_dir / "speech_commands"), "--out", str(out), "--stage", "2",
                               "--arch", "ds_cnn", "--arch-params", '{"filters": 16, "blocks": 2}', "--epochs", "1",
                               "--batch-size", "32", "--unknown-pct", "50", "--learning-rate", "0.01",
                               "--init-from", str(source), "--quiet", *extra])


def test_frozen_layers_keep_the_warm_start_and_the_rest_trains(trained_models: dict[str, Path], samples_dir: Path,
                                                              tmp_path: Path) -> None:
    result = _fine_tune(samples_dir, trained_models["stage2"], tmp_path / "ft", "--freeze", "3")
    assert result.exit_code == 0, result.output
    assert "transfer learning: " in result.output
    before, after = load_keras(trained_models["stage2"] / "model.keras"), load_keras(tmp_path / "ft" / "model.keras")
    boundary = before.layers.index(weighted_layers(before)[3])  # layers pair up by position (names are counters)
    pairs = list(zip(before.layers, after.layers))
    frozen = [(b, a) for b, a in pairs[:boundary] if b.weights]
    trained = [(b, a) for b, a in pairs[boundary:] if b.trainable_weights]
    assert len(frozen) >= 3 + 2 and trained  # 3 convolutions and their batch norms; the rest trains
    for b, a in frozen:  # kernels, biases, batch-norm statistics: bit for bit
        assert all(np.array_equal(w0, w1) for w0, w1 in zip(b.get_weights(), a.get_weights())), a.name
    assert all(any(not np.array_equal(w0, w1) for w0, w1 in zip(b.get_weights(), a.get_weights())) for b, a in trained)
    assert json.loads((tmp_path / "ft" / "train_config.json").read_text())["freeze"] == 3
    assert json.loads((tmp_path / "ft" / "metrics.json").read_text())["testing"]["n"] > 0  # quantized and measured


def test_frozen_batch_norms_keep_their_statistics_while_every_kernel_trains(trained_models: dict[str, Path],
                                                                           samples_dir: Path, tmp_path: Path) -> None:
    result = _fine_tune(samples_dir, trained_models["stage2"], tmp_path / "ft", "--frozen-bn")
    assert result.exit_code == 0, result.output
    assert "frozen batch norms: " in result.output
    before, after = load_keras(trained_models["stage2"] / "model.keras"), load_keras(tmp_path / "ft" / "model.keras")
    pairs = [(b, a) for b, a in zip(before.layers, after.layers) if b.weights]
    norms = [(b, a) for b, a in pairs if type(b).__name__ == "BatchNormalization"]
    kernels = [(b, a) for b, a in pairs if b in weighted_layers(before)]
    assert len(norms) >= 3 and len(kernels) >= 3
    for b, a in norms:  # moving mean and variance, scale and shift: bit for bit
        assert all(np.array_equal(w0, w1) for w0, w1 in zip(b.get_weights(), a.get_weights())), a.name
    assert all(not np.array_equal(b.get_weights()[0], a.get_weights()[0]) for b, a in kernels)
    assert json.loads((tmp_path / "ft" / "train_config.json").read_text())["frozen_bn"] is True
    scratch = runner.invoke(app, ["train", str(samples_dir / "speech_commands"), "--out", str(tmp_path / "b"),
                                  "--frozen-bn", "--quiet"])
    assert scratch.exit_code != 0 and "needs a warm start" in scratch.output and "Traceback" not in scratch.output
    assert not (tmp_path / "b").exists()


def test_freeze_is_refused_in_one_line_without_a_warm_start_or_beyond_the_classifier(trained_models, samples_dir,
                                                                                    tmp_path: Path) -> None:
    many = _fine_tune(samples_dir, trained_models["stage2"], tmp_path / "a", "--freeze", "99")
    assert many.exit_code != 0 and "--freeze 99: the model has" in many.output and "Traceback" not in many.output
    assert not (tmp_path / "a").exists()
    scratch = runner.invoke(app, ["train", str(samples_dir / "speech_commands"), "--out", str(tmp_path / "b"),
                                  "--freeze", "2", "--quiet"])
    assert scratch.exit_code != 0 and "needs a warm start" in scratch.output and "Traceback" not in scratch.output


def test_the_freezing_fields_name_a_recipe_step_only_when_set() -> None:
    """A work folder made before these options existed keeps its trained stages (its step keys
    did not hold them); setting one retrains."""
    from kws.train.config import TrainConfig

    plain = TrainConfig(stage=2).step_key()
    assert "freeze" not in plain and "frozen_bn" not in plain and plain["epochs"] == TrainConfig.epochs
    assert TrainConfig(stage=2, init_from="x", frozen_bn=True).step_key()["frozen_bn"] is True
    assert TrainConfig(stage=2, init_from="x", freeze=3).step_key()["freeze"] == 3
    assert TrainConfig(stage=2).to_dict()["frozen_bn"] is False  # train_config.json still says everything
