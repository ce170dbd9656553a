"""The recipe's hard-negative mining, run for real: the shipped pair as the draft cascade, a folder
it fires on as the "keyword-free" audio (the sample Kokoro "yes" clips: certain to be mined), the
windows cut out, then a real one-epoch fine-tune of stage 2 that learns them as ``_unknown_``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from cascade.runtime.model_dir import ModelDir
from kws.recipe.config import CascadeRecipe
from kws.recipe.steps import CLIPS, DRAFT, MINE, MINED_STAGE2, MODEL, mine_step, mined_train_step, stage_model


@pytest.fixture(scope="module")
def mined(tmp_path_factory, samples_dir: Path):
    root = tmp_path_factory.mktemp("mining")
    for stage in (1, 2):
        shutil.copytree(samples_dir / "models" / f"stage{stage}", stage_model(root, stage))
    shipped = json.loads((samples_dir / "models" / "stage2" / "train_config.json").read_text())
    recipe = CascadeRecipe(data=str(samples_dir / "speech_commands"), labels="12", mine_epochs=1,
                           stage2_arch=shipped["arch"], stage2_params=tuple(shipped["arch_params"].items()),
                           negatives=(str(samples_dir / "kokoro" / "yes"),), calibrate_snr=None, batch_size=64)
    (root / MINE).mkdir()
    summary = mine_step(root, recipe)(root / MINE)
    return root, recipe, summary


def test_the_draft_cascade_is_run_over_the_negatives_and_its_firings_cut_out(mined) -> None:
    root, _, summary = mined
    report = json.loads((root / MINE / CLIPS / "mined.json").read_text())
    clips = sorted((root / MINE / CLIPS).rglob("*.wav"))
    assert summary["clips"] == report["mined"] == len(clips) > 0
    assert summary["by_label"].get("yes", 0) > summary["clips"] / 2  # it fires on "yes" as "yes"
    assert 0 < summary["hours"] < 0.1 and (root / MINE / DRAFT / "cascade.toml").is_file()


def test_stage2_is_fine_tuned_from_the_draft_with_the_mined_windows(mined, samples_dir: Path) -> None:
    root, recipe, _ = mined
    draft = ModelDir.open(stage_model(root, 2))
    (root / MINED_STAGE2).mkdir()
    result = mined_train_step(root, recipe, draft.config, progress=False)(root / MINED_STAGE2)
    config = json.loads((root / MINED_STAGE2 / MODEL / "train_config.json").read_text())
    assert config["init_from"] == str(stage_model(root, 2)) and config["epochs"] == 1
    assert str(root / MINE / CLIPS) in config["negatives"] and config["learning_rate"] == 0.001
    tuned = ModelDir.open(root / MINED_STAGE2 / MODEL)
    assert tuned.labels == draft.labels and tuned.int8_path.read_bytes() != draft.int8_path.read_bytes()
    assert result["testing"]["n"] > 0


def test_nothing_mined_keeps_the_draft_as_it_is(tmp_path: Path, samples_dir: Path) -> None:
    shutil.copytree(samples_dir / "models" / "stage2", stage_model(tmp_path, 2))
    (tmp_path / MINE / CLIPS).mkdir(parents=True)
    recipe = CascadeRecipe(data=str(samples_dir / "speech_commands"), labels="12", mine_epochs=1, negatives=("n",))
    (tmp_path / MINED_STAGE2).mkdir()
    result = mined_train_step(tmp_path, recipe, ModelDir.open(stage_model(tmp_path, 2)).config)(tmp_path / MINED_STAGE2)
    kept = tmp_path / MINED_STAGE2 / MODEL / "model_int8.tflite"
    assert kept.read_bytes() == (stage_model(tmp_path, 2) / "model_int8.tflite").read_bytes()
    assert "fired nowhere" in result["note"]
