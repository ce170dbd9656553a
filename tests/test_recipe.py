"""The shared recipe (kws/recipe): the resumable runner, the recipe's settings, its steps, and
`kws demo` built from it."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest

from data_prep import synth_kokoro as kokoro
from data_prep.augment import AugmentConfig
from data_prep.config import FeatureConfig
from data_prep.errors import ConfigError
from data_prep.labels import WORDS_V2
from data_prep.negatives import held_out_twin
from kws.demo.pipeline import DemoConfig, demo_steps, recipe_of
from kws.recipe.config import CascadeRecipe, check_teacher, default_confusables, folder_fingerprint, with_held_out_validation
from kws.recipe.runner import STARTED, Step, run_steps
from kws.recipe.steps import (
    CLIPS,
    CONFUSABLE_VOICES,
    MINE,
    MINED_STAGE2,
    cascade_steps,
    confusables_step,
    final_stage2,
    stage_model,
    train_step,
)
from kws.recipe.stream_points import calibrate_on_validation, stream_minutes
from kws.train import teacher_mlperf
from kws.train.config import TrainConfig
from kws.train.warm_start import is_reference


def _counting(calls: list[str], name: str, fail: bool = False):
    def run(out: Path) -> dict:
        calls.append(name)
        (out / "part").write_text("half done")
        if fail:
            raise KeyboardInterrupt  # as Ctrl-C in the middle of the step
        return {"name": name}
    return run


def test_finished_steps_are_skipped_and_a_partial_training_folder_is_kept(tmp_path: Path) -> None:
    calls: list[str] = []
    steps = [Step("a", "a", _counting(calls, "a"), {"x": 1}),
             Step("b", "b", _counting(calls, "b", fail=True), {"y": 1}, ("a",), keep_partial=True)]
    with pytest.raises(KeyboardInterrupt):
        run_steps(tmp_path, steps)
    assert calls == ["a", "b"] and (tmp_path / "b" / "part").is_file()  # interrupted: the partial folder stays

    steps[1] = dataclasses.replace(steps[1], run=_resume_check(calls, tmp_path / "b"))
    results = run_steps(tmp_path, steps)
    assert calls == ["a", "b", "b resumed"]  # a skipped, b resumed in its own folder
    assert results["a"]["name"] == "a" and results["b"]["name"] == "b"

    run_steps(tmp_path, steps)
    assert calls == ["a", "b", "b resumed"]  # all up to date


def _resume_check(calls: list[str], folder: Path):
    def run(out: Path) -> dict:
        calls.append("b resumed" if (folder / "part").is_file() else "b fresh")
        return {"name": "b"}
    return run


def test_a_partial_folder_started_with_other_inputs_is_not_resumed(tmp_path: Path) -> None:
    calls: list[str] = []
    step = Step("b", "b", _counting(calls, "b", fail=True), {"epochs": 3}, keep_partial=True)
    with pytest.raises(KeyboardInterrupt):
        run_steps(tmp_path, [step])
    assert (tmp_path / "b" / STARTED).is_file()
    changed = Step("b", "b", _resume_check(calls, tmp_path / "b"), {"epochs": 5}, keep_partial=True)
    run_steps(tmp_path, [changed])
    assert calls == ["b", "b fresh"]


def test_a_finished_training_killed_before_its_marker_is_not_retrained(tmp_path: Path, trained_models, samples_dir) -> None:
    """train() refuses a folder that holds a trained model; the step takes the finished model."""
    root = tmp_path / "run"
    shutil.copytree(trained_models["stage1"], root / "train_stage1" / "model")
    recipe = CascadeRecipe(data=str(samples_dir / "speech_commands"), labels="12", stage1_epochs=3)
    summary = train_step(root, recipe, FeatureConfig(), 1)(root / "train_stage1")
    metrics = json.loads((trained_models["stage1"] / "metrics.json").read_text())
    assert summary == {"testing": metrics["testing"], "validation": metrics["validation"]}


def test_the_demo_trains_with_everything_democonfig_gives() -> None:
    cfg = DemoConfig(data="samples/speech_commands")
    recipe = recipe_of(cfg)
    extra = ("runs/demo/synth/clips",)
    stage2 = "runs/demo/train_stage2/model"
    starts = {1: {}, 2: {"init_from": cfg.stage2_init, "learning_rate": cfg.stage2_learning_rate,
                         "frozen_bn": cfg.stage2_frozen_bn}}
    for stage, arch, params, epochs in ((1, cfg.stage1_arch, {}, cfg.stage1_epochs),
                                        (2, cfg.stage2_arch, dict(cfg.stage2_params), cfg.stage2_epochs)):
        assert recipe.train_config(stage, extra, stage2_model=stage2) == TrainConfig(
            stage=stage, arch=arch, arch_params=params, epochs=epochs, patience=epochs, batch_size=32,
            unknown_pct=cfg.unknown_pct, seed=cfg.seed, extra_data=(*cfg.extra_data, *extra), teacher=cfg.teacher,
            augment=AugmentConfig(speed_range=cfg.speed, noise_mode="snr", snr_db_range=cfg.snr_db), keep=cfg.keep,
            **starts[stage])
    assert is_reference(Path(cfg.stage2_init))  # stage 2 starts from the shipped MLPerf reference
    assert recipe.words_to_synthesize() == WORDS_V2 and recipe.synth == cfg.synth_voices and recipe.recall == cfg.recall
    steps = demo_steps(Path("runs/demo"), cfg, FeatureConfig())
    assert [s.name for s in steps] == ["features", "synth", "confusables", "train_stage2", "train_stage1", "tflm", "cascade",
                                       "evaluate", "stream", "energy", "export", "report"]
    gate = next(s for s in steps if s.name == "train_stage1")
    assert not cfg.gate_from_stage2 and "train_stage2" not in gate.after  # measured: docs/gate.md
    own = demo_steps(Path("runs/demo"), dataclasses.replace(cfg, gate_from_stage2=True), FeatureConfig())
    gate = next(s for s in own if s.name == "train_stage1")
    assert "train_stage2" in gate.after and gate.inputs["train"]["teacher"] == stage2  # retrained when stage 2 is


def test_a_gate_from_stage2_needs_its_path_and_otherwise_learns_from_the_teacher() -> None:
    recipe = CascadeRecipe(data="d", labels="yes,no", teacher="T", gate_from_stage2=True)
    with pytest.raises(ValueError, match="path of the recipe's stage 2"):
        recipe.train_config(1)
    assert recipe.train_config(2).teacher == "T"
    plain = dataclasses.replace(recipe, gate_from_stage2=False)
    assert plain.train_config(1).teacher == plain.train_config(2).teacher == "T"
    steps = {s.name: s for s in cascade_steps(Path("w"), plain, FeatureConfig())}
    assert "train_stage2" not in steps["train_stage1"].after  # nothing to wait for


def test_each_step_is_stale_only_when_what_it_reads_changes(tmp_path: Path) -> None:
    base = CascadeRecipe(data=str(tmp_path), labels="yes,no")
    inputs = {s.name: s.inputs for s in cascade_steps(tmp_path, base, FeatureConfig())}
    more = {s.name: s.inputs for s in cascade_steps(tmp_path, dataclasses.replace(base, stage2_epochs=50), FeatureConfig())}
    assert [n for n in inputs if inputs[n] != more[n]] == ["train_stage2"]
    (tmp_path / "yes").mkdir()
    (tmp_path / "yes" / "a.wav").write_bytes(b"new recording")
    newer = {s.name: s.inputs for s in cascade_steps(tmp_path, base, FeatureConfig())}
    assert [n for n in inputs if inputs[n] != newer[n]] == ["train_stage2", "train_stage1", "cascade"]
    fewer = {s.name: s.inputs for s in cascade_steps(tmp_path, dataclasses.replace(base, confusables=5), FeatureConfig())}
    assert [n for n in newer if newer[n] != fewer[n]] == ["confusables"]  # training follows it through `after`
    clean = {s.name: s.inputs for s in cascade_steps(tmp_path, dataclasses.replace(base, calibrate_snr=None), FeatureConfig())}
    assert [n for n in newer if newer[n] != clean[n]] == ["cascade"]  # the gate is recalibrated, nothing retrained
    roomy = {s.name: s.inputs for s in cascade_steps(tmp_path, dataclasses.replace(base, reverb=0.3, snr_db=(0.0, 20.0)),
                                                     FeatureConfig())}
    assert [n for n in newer if newer[n] != roomy[n]] == ["train_stage2", "train_stage1"]
    coloured = {s.name: s.inputs for s in cascade_steps(tmp_path, dataclasses.replace(base, eq=0.5), FeatureConfig())}
    assert [n for n in newer if newer[n] != coloured[n]] == ["train_stage2", "train_stage1"]
    spoken = {s.name: s.inputs for s in cascade_steps(tmp_path, dataclasses.replace(base, confusables_engine="kokoro"),
                                                      FeatureConfig())}
    assert [n for n in newer if newer[n] != spoken[n]] == ["confusables"]
    assert "engine" not in newer["confusables"]  # espeak-ng's work folders keep their digests
    steps = {s.name: s for s in cascade_steps(tmp_path, base, FeatureConfig())}
    assert "confusables" in steps["train_stage1"].after and "confusables" in steps["train_stage2"].after


def test_mining_fine_tunes_stage2_from_the_draft_and_the_bundle_carries_the_fine_tune(tmp_path: Path) -> None:
    plain = CascadeRecipe(data=str(tmp_path), labels="yes,no", negatives=("neg",), backgrounds=("neg", "music"),
                          mine_epochs=0)
    mining = dataclasses.replace(plain, mine_epochs=5)
    assert CascadeRecipe(data=".", labels="yes").mine_epochs == 10  # on by default, where there is audio to mine
    assert not plain.mines and mining.mines and mining.mining_folders() == ("neg", "music")
    assert not dataclasses.replace(mining, negatives=(), backgrounds=()).mines  # nothing keyword-free to mine
    assert [s.name for s in cascade_steps(tmp_path, plain, FeatureConfig())] == [
        "synth", "confusables", "train_stage2", "train_stage1", "tflm", "cascade"]
    steps = {s.name: s for s in cascade_steps(tmp_path, mining, FeatureConfig())}
    assert list(steps) == ["synth", "confusables", "train_stage2", "train_stage1", MINE, MINED_STAGE2, "tflm", "cascade"]
    assert set(steps[MINE].after) == {"train_stage1", "train_stage2"}
    assert steps["tflm"].after == steps["cascade"].after == ("train_stage1", MINED_STAGE2)
    # the bundle's gate floor and the mining draft's are separate: moving one redoes only its steps
    inputs = {s.name: s.inputs for s in cascade_steps(tmp_path, mining, FeatureConfig())}
    for change, stale in (({"recall": 1.0}, ["cascade"]), ({"mining_recall": 1.0}, [MINE])):
        moved = {s.name: s.inputs for s in cascade_steps(tmp_path, dataclasses.replace(mining, **change), FeatureConfig())}
        assert [n for n in inputs if inputs[n] != moved[n]] == stale
    assert final_stage2(tmp_path, mining) == tmp_path / MINED_STAGE2 / "model"
    assert final_stage2(tmp_path, plain) == stage_model(tmp_path, 2)

    draft = str(stage_model(tmp_path, 2))
    tune = mining.mined_config(("synth",), ("confusables", "mined"), draft)
    first = mining.train_config(2, ("synth",), ("confusables",))
    assert (tune.init_from, tune.epochs, tune.patience, tune.learning_rate) == (draft, 5, 5, 0.001)
    assert tune.negatives == ("neg", "confusables", "mined") and tune.augment == first.augment
    assert tune.backgrounds == first.backgrounds and tune.extra_data == first.extra_data
    # more fine-tune epochs retrain only the fine-tune (tflm and cascade follow it through `after`)
    more = {s.name: s.inputs for s in cascade_steps(tmp_path, dataclasses.replace(mining, mine_epochs=9), FeatureConfig())}
    assert [n for n in steps if steps[n].inputs != more[n]] == [MINED_STAGE2]
    with pytest.raises(ConfigError, match="--mine-epochs"):
        dataclasses.replace(plain, mine_epochs=-1)


def test_cascade_train_passes_noise_reverb_and_calibration_to_the_recipe(tmp_path: Path) -> None:
    from kws.commands.cascade_train import snr_option

    recipe = CascadeRecipe(data=str(tmp_path), labels="yes,no", reverb=0.3, snr_db=snr_option("0,20", "--snr-db"),
                           calibrate_snr=snr_option("off", "--calibrate-snr"))
    augment = recipe.train_config(2).augment
    assert (augment.reverb_prob, augment.noise_mode, augment.snr_db_range) == (0.3, "snr", (0.0, 20.0))
    assert augment.eq_prob == 0.0 and dataclasses.replace(recipe, eq=0.5).train_config(1).augment.eq_prob == 0.5
    assert recipe.noisy_copies() is None and CascadeRecipe(data=".", labels="yes").noisy_copies().snr_db == (10.0, 30.0)
    with pytest.raises(ConfigError, match="--snr-db"):
        snr_option("loud", "--snr-db")


def test_confusables_default_to_20_for_your_keywords_and_none_for_speech_commands_sets() -> None:
    assert default_confusables("alexa,snowboy") == 20
    assert default_confusables("12") == default_confusables("35") == 0
    with pytest.raises(ConfigError, match="--confusables -1"):
        CascadeRecipe(data=".", labels="yes", confusables=-1)


def test_keywords_are_never_each_others_confusables(tmp_path: Path) -> None:
    """"on" sounds like "off" (it is third among off's confusables), but it is a keyword too."""
    recipe = CascadeRecipe(data=str(tmp_path), labels="off,on", confusables=3)
    summary = confusables_step(recipe, FeatureConfig())(tmp_path)
    manifest = json.loads((tmp_path / CLIPS / "confusables.json").read_text())
    words = {k: [c["word"] for c in v] for k, v in manifest["keywords"].items()}
    assert set(words) == {"off", "on"} and all(len(v) == 3 for v in words.values())
    assert "on" not in words["off"] and "off" not in words["on"]
    assert summary["clips"] == len(list((tmp_path / CLIPS).rglob("*.wav"))) == 6 * CONFUSABLE_VOICES
    config = recipe.train_config(1, (), (str(tmp_path / CLIPS),))
    assert config.negatives == (str(tmp_path / CLIPS),)  # trained as _unknown_, every clip


def test_kokoro_speaks_the_confusables_when_asked(tmp_path: Path, kokoro_dir: Path) -> None:
    recipe = CascadeRecipe(data=str(tmp_path), labels="off", confusables=1, confusables_engine="kokoro")
    summary = confusables_step(recipe, FeatureConfig())(tmp_path)
    synth = json.loads((tmp_path / CLIPS / "synth.json").read_text())
    assert synth["settings"]["engine"] == summary["engine"] == "kokoro"
    speakers = {Path(c).name.split("_nohash_")[0] for c in (tmp_path / CLIPS).rglob("*.wav")}
    assert summary["clips"] == len(speakers) == CONFUSABLE_VOICES  # one clip per Kokoro speaker of the one word
    with pytest.raises(ConfigError, match="--confusables-engine 'piper': use espeak or kokoro"):
        CascadeRecipe(data=".", labels="off", confusables_engine="piper")


def test_without_espeak_the_confusables_are_one_note(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))  # a PATH without espeak-ng
    summary = confusables_step(CascadeRecipe(data=".", labels="off,on", confusables=3), FeatureConfig())(tmp_path)
    assert summary == {"clips": 0, "note": "espeak-ng not installed: no confusable words (apt-get install espeak-ng)"}
    assert not (tmp_path / CLIPS).exists()


def test_teacher_distils_both_stages_only_for_keywords_it_knows() -> None:
    recipe = CascadeRecipe(data=".", labels="yes,no", teacher="/t")
    assert recipe.train_config(1).teacher == recipe.train_config(2).teacher == "/t"
    check_teacher(recipe, teacher_mlperf.LABELS)
    custom = CascadeRecipe(data=".", labels="yes,alexa", teacher="/t")
    with pytest.raises(ConfigError, match=r"--teacher /t: does not know alexa \(its words: down, go, "):
        check_teacher(custom, teacher_mlperf.LABELS)


def test_synthesis_speaks_the_keywords_and_other_words_as_negatives() -> None:
    recipe = CascadeRecipe(data=".", labels="yes,hey_kws", unknown_pct=300, synth=5)
    words = recipe.words_to_synthesize()
    assert words[:2] == ("yes", "hey kws")  # a folder's underscore is a space when spoken
    others = words[2:]
    assert len(others) == 6 and len(set(others)) == 6 and set(others) <= set(WORDS_V2) - {"yes"}
    assert words == CascadeRecipe(data=".", labels="yes,hey_kws", unknown_pct=300, synth=5).words_to_synthesize()
    assert len(CascadeRecipe(data=".", labels="12", unknown_pct=300).words_to_synthesize()) == 35


def test_kokoro_plan_has_the_asked_clips_per_word() -> None:
    available = [f"af_v{i}" for i in range(6)]
    for clips, blends in ((4, 0), (9, 3)):
        voices, blend = kokoro.voices_for_clips(clips, available, seed=1)
        plan = kokoro.plan(["yes", "hey kws"], available, voices=voices, blend=blend, speeds="0.85-1.15", seed=1)
        assert len(plan.speakers) == clips and len(plan.blends) == blends and len(plan.tasks()) == 2 * clips
    assert kokoro.voices_for_clips(4, available, seed=1) == kokoro.voices_for_clips(4, available, seed=1)


def test_fingerprint_sees_a_new_or_changed_file(tmp_path: Path) -> None:
    (tmp_path / "yes").mkdir()
    before = folder_fingerprint((str(tmp_path),))
    (tmp_path / "yes" / "a.wav").write_bytes(b"1")
    added = folder_fingerprint((str(tmp_path),))
    (tmp_path / "yes" / "a.wav").write_bytes(b"12")
    assert len({before, added, folder_fingerprint((str(tmp_path),))}) == 3


@pytest.mark.slow
def test_demo_runs_every_step_on_the_samples(tmp_path: Path, samples_dir: Path) -> None:
    """`kws demo`'s steps, end to end with one epoch per stage (make demo runs the same list)."""
    cfg = DemoConfig(data=str(samples_dir / "speech_commands"), stage1_epochs=1, stage2_epochs=1,
                     stream_minutes=0.25, synth_voices=1)
    results = run_steps(tmp_path, demo_steps(tmp_path, cfg, FeatureConfig()))
    assert results["tflm"]["stage1"]["bit_exact"] and results["tflm"]["stage2"]["bit_exact"]
    assert 0.0 <= results["cascade"]["tau"] <= 1.0 and results["evaluate"]["n"] > 0
    assert Path(results["report"]["html"]).is_file()
    if shutil.which("gcc") and shutil.which("make"):
        assert results["export"]["host_selftest"] == "passed"
    again = run_steps(tmp_path, demo_steps(tmp_path, cfg, FeatureConfig()))
    assert {k: v.get("seconds") for k, v in again.items()} == {k: v.get("seconds") for k, v in results.items()}


def test_the_demo_on_another_front_end_trains_stage_2_from_scratch() -> None:
    """`kws demo --config other.toml`: the reference's weights need its front end, so stage 2 is
    trained as before the warm start (no init, no level layer, the usual learning rate)."""
    warm = recipe_of(DemoConfig(data="samples/speech_commands")).train_config(2)
    assert warm.init_from and warm.frozen_bn and warm.epochs == 10  # measured: DemoConfig's note
    cfg = DemoConfig(data="samples/speech_commands").from_scratch()
    config = recipe_of(cfg).train_config(2)
    assert config.init_from == "" and "level" not in config.arch_params
    assert config.learning_rate == TrainConfig.learning_rate == 3e-3
    assert not config.frozen_bn and config.epochs == 40  # batch norms without a warm start must train


def test_held_out_validation_audio_recalibrates_only_and_never_is_training_audio(tmp_path: Path) -> None:
    base = CascadeRecipe(data=str(tmp_path), labels="yes,no", negatives=("neg/training",))
    held = dataclasses.replace(base, validation_negatives=("neg/validation/speech",), validation_beds=("neg/validation/music",))
    inputs = {s.name: s.inputs for s in cascade_steps(tmp_path, base, FeatureConfig())}
    moved = {s.name: s.inputs for s in cascade_steps(tmp_path, held, FeatureConfig())}
    assert [n for n in inputs if inputs[n] != moved[n]] == ["cascade"]
    assert held.validation_folders() == ("neg/validation/speech", "neg/validation/music")
    with pytest.raises(ConfigError, match="also a training --negatives/--background"):
        dataclasses.replace(base, validation_beds=("neg/training",))


def test_the_validation_stream_plays_the_held_out_audio(tmp_path: Path, samples_dir: Path) -> None:
    """calibrate_on_validation with held-out speech and music: the speech plays between the words
    of the stream it calibrates on, the music joins its bed (truth.json says so), and with them the
    stream is as long as the bound allows, not as the keywords ask."""
    data = samples_dir / "speech_commands"
    speech, music = tmp_path / "speech", tmp_path / "music"
    speech.mkdir()
    music.mkdir()
    for i, clip in enumerate(sorted((data / "bed").iterdir())[:3]):  # other words, a held-out voice
        shutil.copy(clip, speech / f"{i}{clip.suffix}")
    noise = sorted((data / "_background_noise_").glob("*.wav"))[0]
    shutil.copy(noise, music / noise.name)
    assert stream_minutes(data, "12", held_out=True) == 20.0 > stream_minutes(data, "12")
    points = calibrate_on_validation(samples_dir / "cascade", data, "12", tmp_path / "stream", tmp_path / "bundle",
                                     minutes=0.75, negatives=[speech], beds=[music])
    truth = json.loads((tmp_path / "stream" / "truth.json").read_text())
    assert truth["split"] == "validation" and truth["negatives"] == [str(speech)] and truth["bed"] == [str(music)]
    assert any(str(speech) in e["file"] for e in truth["negative_events"])
    assert set(points["operating_points"]) == {"high", "balanced", "low"}


def test_negatives_from_kws_data_negatives_lend_their_validation_split(tmp_path: Path, samples_dir: Path) -> None:
    """Training folders of a `kws data negatives` corpus have held-out twins: the recipe
    calibrates its operating points with them (music under the words, the rest between), unless
    the user named validation audio; folders of any other layout lend nothing."""
    clip = min((samples_dir / "speech_commands" / "bed").iterdir())
    neg = tmp_path / "neg"
    for split in ("training", "validation"):
        for source in ("music", "synth"):
            (neg / split / source).mkdir(parents=True)
            shutil.copy(clip, neg / split / source / clip.name)
    (neg / "negatives.json").write_text("{}")
    other = tmp_path / "my_music"
    other.mkdir()
    assert held_out_twin(neg / "training" / "music") == neg / "validation" / "music"
    assert held_out_twin(neg / "validation" / "music") is None and held_out_twin(other) is None
    recipe = CascadeRecipe(data=str(tmp_path), labels="yes", negatives=(str(neg / "training" / "synth"), str(other)),
                           backgrounds=(str(neg / "training" / "music"),))
    held, note = with_held_out_validation(recipe)
    assert held.validation_negatives == (str(neg / "validation" / "synth"),)
    assert held.validation_beds == (str(neg / "validation" / "music"),) and "held-out validation split" in note
    chosen = dataclasses.replace(recipe, validation_negatives=(str(other.parent / "elsewhere"),))
    assert with_held_out_validation(chosen) == (chosen, "")
    assert with_held_out_validation(CascadeRecipe(data=str(tmp_path), labels="yes"))[1] == ""
