"""The gate calibrated on noisy copies of the validation keywords (kws cascade build/train
--calibrate-snr), on the real sample models and the release's noise files."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cascade.evaluation.noisy_copies import NoisyCopies, noisy_keyword_scores
from cascade.runtime.bundle import Bundle
from cascade.runtime.model_dir import ModelDir
from cascade.runtime.pipeline import StageRunner
from cascade.runtime.stages import KEYWORD
from data_prep.errors import ConfigError
from data_prep.example_features import example_features
from data_prep.labels import RESERVED
from data_prep.speech_commands import load_dataset
from kws.cli import app
from kws.recipe.config import CascadeRecipe, check_data, without_missing_noise

runner = CliRunner()


def test_noisy_copies_lower_tau_and_travel_with_the_bundle(trained_models: dict[str, Path], bundle_dir: Path,
                                                          samples_dir: Path, tmp_path: Path) -> None:
    clean = Bundle.open(bundle_dir)  # built with recall 0.9 on clean clips
    out = tmp_path / "noisy"
    result = runner.invoke(app, ["cascade", "build", "--stage1", str(trained_models["stage1"]), "--stage2",
                                 str(trained_models["stage2"]), "--data", str(samples_dir / "speech_commands"),
                                 "--out", str(out), "--recall", "0.9", "--calibrate-snr", "-5,0",
                                 "--calibrate-copies", "2"])
    assert result.exit_code == 0, result.output
    assert "incl. noisy copies" in result.output
    noisy = Bundle.open(out)
    assert noisy.calibration["noisy_copies"] == {"snr_db": [-5.0, 0.0], "copies": 2, "seed": 0}
    assert noisy.calibration["n_keyword"] == 3 * clean.calibration["n_keyword"]  # clean + 2 copies
    assert noisy.tau < clean.tau  # at 0 dB SNR the gate hears less keyword: it must open lower
    assert noisy.calibration["recall"] >= 0.9
    # each keyword's recall over its clean clips and their copies; weighted by its clips, the pool's
    keywords = [e.label for e in load_dataset(samples_dir / "speech_commands", noisy.stage2.dataset_labels())
                .examples("validation") if e.label not in RESERVED]
    per_keyword = noisy.calibration["per_keyword"]
    assert set(per_keyword) == set(keywords)
    pooled = sum(per_keyword[w] * keywords.count(w) for w in per_keyword) / len(keywords)
    assert pooled == pytest.approx(noisy.calibration["recall"])


def test_noisy_scores_are_seeded_and_really_noisy(trained_models: dict[str, Path], samples_dir: Path) -> None:
    stage1 = ModelDir.open(trained_models["stage1"])
    data = samples_dir / "speech_commands"
    dataset = load_dataset(data, ModelDir.open(trained_models["stage2"]).dataset_labels())
    keywords = [e for e in dataset.examples("validation") if e.label not in RESERVED]

    def scores(snr: tuple[float, float], seed: int) -> np.ndarray:
        return noisy_keyword_scores(stage1, dataset, keywords, NoisyCopies(snr, 1, seed))

    first = scores((-5.0, 0.0), 0)
    assert first.shape == (len(keywords),)
    np.testing.assert_array_equal(first, scores((-5.0, 0.0), 0))
    assert not np.array_equal(first, scores((-5.0, 0.0), 1))
    clean = StageRunner(stage1)(example_features(keywords, stage1.config))[:, stage1.labels.index(KEYWORD)]
    # the copies differ from the clean clips by their noise: far at 0 dB SNR, near at 40 dB
    assert np.abs(first - clean).mean() > np.abs(scores((40.0, 40.0), 0) - clean).mean()


def test_noisy_calibration_without_noise_files_is_one_line(trained_models: dict[str, Path], samples_dir: Path,
                                                           tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(samples_dir / "speech_commands", data, ignore=shutil.ignore_patterns("_background_noise_"))
    args = ["cascade", "build", "--stage1", str(trained_models["stage1"]), "--stage2", str(trained_models["stage2"]),
            "--data", str(data), "--out", str(tmp_path / "b"), "--calibrate-snr", "10,30"]
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert "_background_noise_" in result.output and str(data) in result.output and "Traceback" not in result.output
    assert runner.invoke(app, args[:-1] + ["off"]).exit_code == 0  # clean calibration still works


def test_cascade_train_without_noise_files_calibrates_clean_and_says_so(samples_dir: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(samples_dir / "speech_commands", data, ignore=shutil.ignore_patterns("_background_noise_"))
    recipe = CascadeRecipe(data=str(data), labels="yes,no")
    clean, notice = without_missing_noise(recipe, check_data(recipe))
    assert clean.calibrate_snr is None and "_background_noise_" in notice and str(data) in notice
    noisy = CascadeRecipe(data=str(samples_dir / "speech_commands"), labels="yes,no")
    assert without_missing_noise(noisy, check_data(noisy)) == (noisy, "")


@pytest.mark.parametrize("snr", [(30.0, 10.0), "loud"])
def test_bad_calibration_snr_is_refused(snr, tmp_path: Path) -> None:
    if isinstance(snr, tuple):
        with pytest.raises(ConfigError, match="low <= high"):
            CascadeRecipe(data=str(tmp_path), labels="yes,no", calibrate_snr=snr)
    else:
        result = runner.invoke(app, ["cascade", "train", str(tmp_path), "--labels", "yes,no", "--out",
                                     str(tmp_path / "b"), "--calibrate-snr", snr])
        assert result.exit_code != 0 and "--calibrate-snr" in result.output
