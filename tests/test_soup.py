"""`kws soup`: two real fine-tunes of one warm start (frozen batch norms, seeds 0 and 1)
averaged into a model directory whose float weights are their mean, converted to int8,
checked bit-exact in TFLite Micro and measured; ingredients that are not fine-tunes of one warm start on one dataset
are refused in one line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cascade.runtime.model_dir import load_keras
from kws.cli import app
from kws.train.compress.soup import average_weights

runner = CliRunner()


@pytest.fixture(scope="module")
def ingredients(trained_models: dict[str, Path], samples_dir: Path, tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("soup")
    outs = []
    for seed in (0, 1):
        out = root / f"ft{seed}"
        result = runner.invoke(app, ["train", str(samples_dir / "speech_commands"), "--out", str(out), "--stage", "2",
                                     "--arch", "ds_cnn", "--arch-params", '{"filters": 16, "blocks": 2}',
                                     "--epochs", "1", "--batch-size", "32", "--unknown-pct", "50",
                                     "--learning-rate", "0.01", "--init-from", str(trained_models["stage2"]),
                                     "--frozen-bn", "--seed", str(seed), "--quiet"])
        assert result.exit_code == 0, result.output
        outs.append(out)
    return outs


def test_a_soup_is_the_mean_of_its_ingredients_converted_and_measured(ingredients: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "soup"
    result = runner.invoke(app, ["soup", *map(str, ingredients), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "soup: validation int8" in result.output and "bit-exact" in result.output
    weights = [load_keras(p / "model.keras").get_weights() for p in ingredients]
    assert any(not np.array_equal(a, b) for a, b in zip(*weights))  # the seeds trained apart
    for mean, got in zip(average_weights(weights), load_keras(out / "model.keras").get_weights()):
        np.testing.assert_allclose(got, mean, rtol=1e-6, atol=1e-7)
    record = json.loads((out / "soup.json").read_text())
    assert [r["model"] for r in record["ingredients"]] == [str(p) for p in ingredients]
    assert record["bit_exact"]["bit_exact"] and record["metrics"]["testing"]["n"] > 0
    assert (out / "model_int8.tflite").stat().st_size > 0
    again = runner.invoke(app, ["soup", *map(str, ingredients), "--out", str(out)])
    assert again.exit_code != 0 and "--force" in again.output and "Traceback" not in again.output
    forced = runner.invoke(app, ["soup", *map(str, ingredients), "--out", str(out), "--force"])
    assert forced.exit_code == 0, forced.output
    assert json.loads((out / "soup.json").read_text())["metrics"] == record["metrics"]  # the same soup again
    assert [p.name for p in tmp_path.iterdir()] == ["soup"]  # built beside it, then put in its place


def test_a_soup_refuses_models_that_are_not_seed_siblings(ingredients: list[Path], trained_models: dict[str, Path],
                                                          tmp_path: Path) -> None:
    one = runner.invoke(app, ["soup", str(ingredients[0]), "--out", str(tmp_path / "a")])
    assert one.exit_code != 0 and "at least two models" in one.output and "Traceback" not in one.output
    scratch = runner.invoke(app, ["soup", str(trained_models["stage2"]), str(ingredients[0]), "--out", str(tmp_path / "b")])
    assert scratch.exit_code != 0 and "trained from scratch" in scratch.output and "Traceback" not in scratch.output
    other = runner.invoke(app, ["soup", str(ingredients[0]), str(trained_models["stage1"]), "--out", str(tmp_path / "c")])
    assert other.exit_code != 0 and str(trained_models["stage1"]) in other.output and "Traceback" not in other.output
    moved = tmp_path / "moved"  # its recipe names a negatives folder that is not where it runs
    shutil.copytree(ingredients[1], moved)
    config = json.loads((moved / "train_config.json").read_text())
    (moved / "train_config.json").write_text(json.dumps(config | {"negatives": ["no/such/negatives"]}))
    lost = runner.invoke(app, ["soup", str(moved), str(ingredients[0]), "--out", str(tmp_path / "e")])
    assert lost.exit_code != 0 and "'no/such/negatives', which is not here" in lost.output
    assert "Traceback" not in lost.output
    for name in "abce":
        assert not (tmp_path / name).exists()
