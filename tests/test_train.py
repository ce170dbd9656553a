"""Training: the artefact it writes, --force, resume after an interrupt, bad input."""

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

from cascade.runtime.model_dir import ModelDir
from cascade.runtime.stages import STAGE1_LABELS
from data_prep.config import FeatureConfig
from data_prep.errors import ConfigError, DatasetError
from kws.cli import app
from kws.train.data import balanced_class_weights
from ctrl_c import default_sigint

runner = CliRunner()


def test_artifact_is_self_describing(trained_models: dict[str, Path]) -> None:
    for stage, path in trained_models.items():
        names = {p.name for p in path.iterdir()}
        assert {"features.toml", "labels.txt", "normalization.json", "model.keras", "model_int8.tflite",
                "train_config.json", "history.json", "metrics.json"} <= names
        assert "checkpoint" not in names  # removed once the run is complete
        model = ModelDir.open(path)
        assert model.config == FeatureConfig()
        metrics = json.loads((path / "metrics.json").read_text())
        for split in ("validation", "testing"):
            assert 0.0 <= metrics[split]["int8_accuracy"] <= 1.0 and metrics[split]["n"] > 0
        history = json.loads((path / "history.json").read_text())
        assert [e["epoch"] for e in history] == list(range(len(history))) and "val_accuracy" in history[0]
    assert ModelDir.open(trained_models["stage1"]).labels == STAGE1_LABELS
    assert len(ModelDir.open(trained_models["stage2"]).labels) == 12


def test_int8_model_takes_int8(trained_models: dict[str, Path]) -> None:
    from cascade.runtime.int8_model import TFLiteModel

    model = TFLiteModel(trained_models["stage2"] / "model_int8.tflite")
    assert model.input.dtype == np.int8 and model.output.dtype == np.int8
    assert model.input_shape == FeatureConfig().input_shape


def test_existing_output_is_not_overwritten(trained_models: dict[str, Path], samples_dir: Path) -> None:
    target = trained_models["stage1"]
    before = (target / "model_int8.tflite").read_bytes()
    result = runner.invoke(app, ["train", str(samples_dir / "speech_commands"), "--out", str(target), "--stage", "1", "--arch", "tiny"])
    assert result.exit_code == 1 and "--force" in result.output
    assert (target / "model_int8.tflite").read_bytes() == before


def test_class_weights_balance_and_boost() -> None:
    w = balanced_class_weights(np.array([0, 0, 0, 1, 2, 2]), 4, boost={2: 2.0})
    assert w[0] == pytest.approx(6 / (3 * 3)) and w[1] == pytest.approx(6 / 3)
    assert w[2] == pytest.approx(2 * 6 / (3 * 2)) and w[3] == 0.0


def test_empty_dataset_is_a_clear_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", str(tmp_path), "--out", str(tmp_path / "m")])
    assert result.exit_code == 1 and str(tmp_path) in result.output
    assert isinstance(result.exception, SystemExit) or result.exception is None


def _history(path: Path) -> list[dict]:
    try:
        return json.loads((path / "history.json").read_text())
    except (OSError, ValueError):
        return []


def test_interrupted_training_resumes(tmp_path: Path, samples_dir: Path) -> None:
    """Ctrl-C (SIGINT) mid-run leaves a checkpoint; the same command continues from it."""
    out = tmp_path / "run"
    cmd = [sys.executable, "-c", "from kws.cli import main; main()", "train", str(samples_dir / "speech_commands"),
           "--out", str(out), "--stage", "1", "--arch", "tiny", "--epochs", "6", "--batch-size", "32", "--quiet"]
    env = dict(os.environ, KWS_CACHE_DIR=str(tmp_path / "cache"))
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=default_sigint)
    deadline = time.time() + 240
    while len(_history(out)) < 2 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "Traceback" not in err
    before = _history(out)
    done = len(before)
    assert 2 <= done < 6 and (out / "checkpoint").is_dir() and not (out / "metrics.json").exists()

    resumed = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=400)
    assert resumed.returncode == 0, resumed.stderr
    after = _history(out)
    assert [e["epoch"] for e in after] == list(range(len(after))) and len(after) > done
    # the epochs finished before the interrupt were kept, not trained again from zero
    assert after[: done - 1] == before[: done - 1]
    assert (out / "metrics.json").is_file()


def test_config_mismatch_is_refused(trained_models: dict[str, Path], tmp_path: Path) -> None:
    from data_prep.errors import ConfigMismatch

    model = ModelDir.open(trained_models["stage2"])
    with pytest.raises(ConfigMismatch, match="n_mfcc"):
        model.config.require_same(FeatureConfig(n_mfcc=13), "data config")


def test_dataset_error_type(tmp_path: Path) -> None:
    from data_prep.speech_commands import load_dataset

    with pytest.raises(DatasetError):
        load_dataset(tmp_path)


def test_fine_tune_with_negatives_and_music_backgrounds(trained_models: dict[str, Path], samples_dir: Path,
                                                        tmp_path: Path) -> None:
    """--init-from keeps the source's normalisation and weights; negatives and background
    folders join training (a long recording gives many _unknown_ windows)."""
    import soundfile as sf

    noise_dir = samples_dir / "speech_commands" / "_background_noise_"
    long = np.concatenate([sf.read(p, dtype="float32")[0] for p in sorted(noise_dir.glob("*.wav"))[:2]])
    music = tmp_path / "music"
    music.mkdir()
    sf.write(music / "track.flac", long, 16000)
    out = tmp_path / "ft"
    args = ["train", str(samples_dir / "speech_commands"), "--out", str(out), "--stage", "2", "--arch", "ds_cnn",
            "--arch-params", '{"filters": 16, "blocks": 2}', "--epochs", "1", "--batch-size", "32", "--unknown-pct", "50",
            "--negatives", str(music), "--background", str(music), "--noise-mode", "snr", "--snr-db", "0,20",
            "--reverb", "0.5", "--rt60", "0.2,0.5", "--reverb-rooms", "2", "--eq", "0.5", "--eq-db", "9",
            "--init-from", str(trained_models["stage2"]), "--quiet"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    saved = json.loads((out / "train_config.json").read_text())
    assert saved["backgrounds"] == [str(music)] and saved["init_from"] == str(trained_models["stage2"])
    assert saved["augment"]["noise_mode"] == "snr" and saved["augment"]["snr_db_range"] == [0.0, 20.0]
    assert (saved["augment"]["reverb_prob"], saved["augment"]["rt60_range"], saved["augment"]["reverb_rooms"]) \
        == (0.5, [0.2, 0.5], 2)
    assert (saved["augment"]["eq_prob"], saved["augment"]["eq_db"]) == (0.5, 9.0)
    source, tuned = ModelDir.open(trained_models["stage2"]), ModelDir.open(out)
    assert np.array_equal(source.stats.mean, tuned.stats.mean) and np.array_equal(source.stats.std, tuned.stats.std)
    wrong = runner.invoke(app, args[:-3] + ["--init-from", str(trained_models["stage1"]), "--force", "--quiet"])
    assert wrong.exit_code != 0 and "labels" in wrong.output and "Traceback" not in wrong.output


def test_a_damaged_newest_checkpoint_costs_one_epoch_not_the_run(tmp_path: Path) -> None:
    """A kill (or power cut) while the epoch-3 checkpoint is written: resume at epoch 2, not 0."""
    import keras

    from kws.train.callbacks import TrainingBackup
    from kws.train.distribute import make_placement

    placement = make_placement("auto")
    directory = tmp_path / "checkpoint"

    def backup() -> TrainingBackup:
        with placement.strategy.scope():
            model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
            optimizer = keras.optimizers.Adam(1e-3)
            optimizer.build(model.trainable_variables)
        return TrainingBackup(directory, model, optimizer, placement)

    saver = backup()
    for epoch in (1, 2, 3):
        saver.save(epoch)
    index = directory / "ckpt-3.index"
    index.write_bytes(index.read_bytes()[: len(index.read_bytes()) // 2])  # cut short mid-write
    (directory / "ckpt-4_temp").mkdir()  # a save killed before its files were merged
    assert backup().restore() == 2
    assert not (directory / "ckpt-4_temp").exists()
    (directory / "checkpoint").write_text("")  # the state file naming them lost as well
    assert backup().restore() == 2


@pytest.mark.parametrize("option, value, says", [("--reverb", "1.5", "reverb_prob=1.5 not in [0, 1]"),
                                                 ("--rt60", "0.5", "--rt60 '0.5': expected LOW,HIGH in seconds"),
                                                 ("--reverb-rooms", "0", "reverb_rooms=0 must be >= 1"),
                                                 ("--eq", "2", "Invalid value for '--eq'"),
                                                 ("--eq-db", "30", "Invalid value for '--eq-db'")])
def test_bad_reverb_options_are_one_line(tmp_path: Path, option: str, value: str, says: str) -> None:
    result = runner.invoke(app, ["train", str(tmp_path), "--out", str(tmp_path / "run"), option, value])
    assert result.exit_code in (1, 2) and says in result.output and "Traceback" not in result.output
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("arch_params, says", [
    ("[1]", "--arch-params [1]: expected a JSON object of the model's parameters"),
    ('{"filters": "many"}', "model 'ds_cnn': cannot build with parameters {'filters': 'many'}"),
    ('{"dropout": 5}', "model 'ds_cnn': cannot build with parameters {'dropout': 5}: Invalid value"),
    ('{"width": 2}', "model 'ds_cnn': unknown parameter(s) ['width']"),
])
def test_bad_arch_params_are_one_line_and_write_nothing(tmp_path: Path, samples_dir: Path, arch_params: str,
                                                         says: str) -> None:
    """They were tracebacks once the data was read, and left a run folder behind that a corrected
    command then refused as "an interrupted run with different settings"."""
    out = tmp_path / "run"
    result = runner.invoke(app, ["train", str(samples_dir / "speech_commands"), "--out", str(out), "--arch-params", arch_params])
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(f"error: {says}"), result.output
    assert not out.exists()


@pytest.mark.parametrize("option", ["--unknown-pct", "--silence-pct"])
@pytest.mark.parametrize("value", ["nan", "inf"])
def test_a_non_finite_share_of_extra_clips_is_one_line(tmp_path: Path, samples_dir: Path, option: str, value: str) -> None:
    out = tmp_path / "run"
    result = runner.invoke(app, ["train", str(samples_dir / "speech_commands"), "--out", str(out), option, value])
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert "silence_pct and unknown_pct must be >= 0 and finite" in result.output and not out.exists()


@pytest.mark.parametrize("keep", ["best", "last"])
def test_keep_best_or_last(tmp_path: Path, keep: str) -> None:
    """Validation peaks at epoch 1, then falls: ``best`` keeps epoch 1's weights and stops once out
    of patience; ``last`` keeps saving the end of the schedule and never stops early."""
    import keras

    from kws.train.callbacks import BestAndStop
    from kws.train.config import TrainConfig

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    entries: list[dict] = []
    cb = BestAndStop(tmp_path / "model.keras", patience=2, entries=entries, keep=keep)
    cb.set_model(model)
    model.stop_training = False  # as fit() sets it
    saved = []
    for epoch, acc in enumerate([0.5, 0.9, 0.6, 0.7, 0.8]):
        if model.stop_training:
            break
        model.layers[0].bias.assign([float(epoch)])
        entries.append({"epoch": epoch, "val_accuracy": acc, "val_loss": 1.0})
        cb.on_epoch_end(epoch)
        saved.append(float(keras.models.load_model(tmp_path / "model.keras").layers[0].bias.numpy()[0]))
    if keep == "best":
        assert saved == [0.0, 1.0, 1.0, 1.0] and model.stop_training  # stopped after epoch 3
    else:
        assert saved == [0.0, 1.0, 2.0, 3.0, 4.0] and not model.stop_training
    assert TrainConfig(keep=keep).resumable_with(TrainConfig())
    with pytest.raises(ConfigError, match="keep"):
        TrainConfig(keep="first")
