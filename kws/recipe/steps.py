"""The recipe's steps: synthesize, confusable words -> train stage 2 and stage 1 (int8 inside) -> [mine the
draft cascade's false accepts, fine-tune stage 2 on them] -> TFLite Micro bit-exactness -> calibrate the gate
into a bundle. Each writes into ``root/<step>/`` (the layout
``kws report`` reads); ``kws demo`` adds its evaluation steps after these.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cascade.energy.arena import measure_arena
from cascade.evaluation.calibrate import build_cascade
from cascade.evaluation.mining import MiningConfig, mine
from cascade.runtime.bundle import Bundle
from cascade.runtime.int8_model import TFLiteModel
from cascade.runtime.model_dir import METRICS, ModelDir, read_json, write_json
from data_prep import synth_kokoro as kokoro
from data_prep.config import FeatureConfig
from data_prep.confusable_clips import plan_confusables
from data_prep.errors import KwsError
from data_prep.example_features import example_features
from data_prep.phones import cmudict_path
from data_prep.speech_commands import load_dataset
from data_prep.synth_run import prepare_synth
from export.tflm import verify_bit_exact
from kws.commands.synth import run_with_progress
from kws.recipe.config import CascadeRecipe, folder_fingerprint
from kws.recipe.runner import Step
from kws.recipe.stream_points import calibrate_on_validation
from kws.train.config import TrainConfig
from kws.train.run import train

SYNTH, CONFUSABLES, CLIPS = "synth", "confusables", "clips"
MINE, MINED_STAGE2 = "mine", "train_stage2_mined"
DRAFT = "draft"
CONFUSABLE_VOICES = 20  # espeak-ng voices per confusable word: 20 words x 20 voices ~ a keyword's real clips
MODEL = "model"
CASCADE, BUNDLE = "cascade", "bundle"
CLIP_BUNDLE, VALIDATION_STREAM = "clip_calibrated", "validation_stream"  # the gate's tau alone; the stream it is tuned on
TFLM_CLIPS = 1000  # enough to catch a kernel that differs; TFLM's Python interpreter is slow on big test sets

Log = Callable[[str], None]


def stage_model(root: Path, stage: int) -> Path:
    return root / f"train_stage{stage}" / MODEL


def final_stage2(root: Path, recipe: CascadeRecipe) -> Path:
    """The stage 2 the bundle carries: the fine-tune on mined windows when the recipe mines."""
    return root / MINED_STAGE2 / MODEL if recipe.mines else stage_model(root, 2)


def bundle_path(root: Path) -> Path:
    return root / CASCADE / BUNDLE


def synth_step(recipe: CascadeRecipe, features: FeatureConfig, *, progress: bool = False):
    def run(out: Path) -> dict[str, Any]:
        words = recipe.words_to_synthesize()
        if recipe.synth == 0:
            return {"clips": 0}
        if recipe.synth_engine == "espeak" and espeak_missing():
            return {"clips": 0, "note": "espeak-ng not installed: training on the real clips only"}
        voices, blend = str(recipe.synth), 0
        if recipe.synth_engine == "kokoro":  # one speed per speaker; resumes inside: clips on disk are kept
            voices, blend = kokoro.voices_for_clips(recipe.synth, kokoro.voice_names(), recipe.seed)
        job = prepare_synth(words, out / CLIPS, engine=recipe.synth_engine, voices=voices, blend=blend,
                            speeds=kokoro.SPEED_RANGE, seed=recipe.seed, config=features)
        counts = (run_with_progress(job.label, job.total, job.run) if progress else job.run(None))["counts"]
        return {"clips": counts["written"] + counts["existing"], "engine": job.engine, "words": len(job.words),
                "speakers": job.speakers, "too_long": counts["too_long"]}
    return run


def espeak_missing() -> bool:
    return shutil.which("espeak-ng") is None


def confusables_unavailable() -> str | None:
    """Why confusable words cannot be made here (espeak-ng or the CMU dictionary missing), or
    None: the step then notes it and trains without them, as a default must not fail a run."""
    if espeak_missing():
        return "espeak-ng not installed: no confusable words (apt-get install espeak-ng)"
    try:
        cmudict_path()
    except KwsError as exc:
        return f"no confusable words: {exc}"
    return None


def confusables_step(recipe: CascadeRecipe, features: FeatureConfig, *, progress: bool = False):
    """Words that sound like each keyword, spoken by espeak-ng voices (or Kokoro's:
    ``confusables_engine``), for both stages' ``_unknown_``; the keywords are never among each
    other's confusables."""
    def run(out: Path) -> dict[str, Any]:
        if recipe.confusables == 0:
            return {"clips": 0}
        missing = confusables_unavailable()
        if missing:
            return {"clips": 0, "note": missing}
        voices, speeds = str(CONFUSABLE_VOICES), "1.0"
        if recipe.confusables_engine == "kokoro":  # as many speakers, drawn from its voices, one speed each
            voices, speeds = kokoro.voices_for_clips(CONFUSABLE_VOICES, kokoro.voice_names(), recipe.seed)[0], kokoro.SPEED_RANGE
        job = plan_confusables(recipe.spoken_keywords(), out / CLIPS, per_word=recipe.confusables,
                               engine=recipe.confusables_engine, voices=voices, speeds=speeds, seed=recipe.seed,
                               config=features, force=True)
        manifest = run_with_progress(job.synth.label, job.synth.total, job.run) if progress else job.run(None)
        counts = manifest["counts"]
        return {"clips": counts["written"] + counts["existing"], "words": len(job.words),
                "engine": recipe.confusables_engine, "too_long": counts["too_long"]}
    return run


def made_folders(root: Path, step: str) -> tuple[str, ...]:
    """The clips folder an earlier step made, if it made one."""
    clips = root / step / CLIPS
    return (str(clips),) if clips.is_dir() else ()


def synth_folders(root: Path, recipe: CascadeRecipe) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(extra data, negatives) from the synth step. Its folder trains as a dataset: keywords in
    their classes, other words drawn as _unknown_ in proportion to its keyword clips. When every
    keyword is text-only it holds other words alone, which that draw leaves out (nothing to be
    in proportion to), so they are negatives, all of them: as many as the recipe asked for."""
    made = made_folders(root, SYNTH)
    return ((), made) if set(recipe.keywords) <= set(recipe.text_only) else (made, ())


def train_step(root: Path, recipe: CascadeRecipe, features: FeatureConfig, stage: int, *,
               progress: bool = True, log: Log | None = None):
    def run(out: Path) -> dict[str, Any]:
        extra, synth_negatives = synth_folders(root, recipe)
        config = recipe.train_config(stage, extra, (*synth_negatives, *made_folders(root, CONFUSABLES)),
                                     str(stage_model(root, 2)))
        model = out / MODEL
        return _accuracies(_trained(recipe, model, config, features, progress=progress, log=log))
    return run


def _trained(recipe: CascadeRecipe, model: Path, config: TrainConfig, features: FeatureConfig, *, progress: bool,
             log: Log | None) -> dict[str, Any]:
    """A model's metrics: trained now, or kept when it finished and the step was killed before its marker."""
    if (model / METRICS).is_file():
        return read_json(model / METRICS)
    return train(Path(recipe.data), model, config, features, progress=progress, log=log)


def _accuracies(metrics: dict[str, Any]) -> dict[str, Any]:
    return {"testing": metrics.get("testing"), "validation": metrics.get("validation")}


def tflm_step(root: Path, recipe: CascadeRecipe):
    def run(out: Path) -> dict[str, Any]:
        models = {"stage1": ModelDir.open(stage_model(root, 1)), "stage2": ModelDir.open(final_stage2(root, recipe))}
        models["stage1"].config.require_same(models["stage2"].config, "stage 1 vs stage 2")
        dataset = load_dataset(Path(recipe.data), models["stage2"].dataset_labels())
        examples = dataset.examples("testing") or dataset.examples("validation")
        examples = examples[:: max(1, -(-len(examples) // TFLM_CLIPS))]
        raw = example_features(examples, models["stage1"].config)  # both stages read the same features
        summary = {}
        for stage, model in models.items():
            x = model.inputs(raw)
            tfl = TFLiteModel(model.int8_path)
            data = model.int8_path.read_bytes()
            report = verify_bit_exact(data, tfl.quantize_input(x))
            summary[stage] = report.to_dict() | {"arena_bytes": measure_arena(data), "flash_bytes": len(data)}
        write_json(out / "tflm.json", summary)
        return summary
    return run


def mine_step(root: Path, recipe: CascadeRecipe):
    """The draft cascade (both stages, gate calibrated as the bundle's will be) over the recipe's
    keyword-free audio: the windows it would fire on, as clips (cascade.evaluation.mining)."""
    def run(out: Path) -> dict[str, Any]:
        build_cascade(stage_model(root, 1), stage_model(root, 2), Path(recipe.data), out / DRAFT,
                      recall=recipe.mining_recall, force=True, noisy=recipe.noisy_copies())
        summary = mine(Bundle.open(out / DRAFT), [Path(f) for f in recipe.mining_folders()], out / CLIPS,
                       MiningConfig(), force=True)
        return {"clips": summary["mined"], "hours": round(summary["hours"], 3),
                "per_hour": round(summary["per_hour"], 1), "by_label": summary["by_label"]}
    return run


def mined_train_step(root: Path, recipe: CascadeRecipe, features: FeatureConfig, *, progress: bool = True,
                     log: Log | None = None):
    """Stage 2 fine-tuned with its mined windows as ``_unknown_``; nothing mined: the draft as it is."""
    def run(out: Path) -> dict[str, Any]:
        model, draft, mined = out / MODEL, stage_model(root, 2), root / MINE / CLIPS
        if not any(mined.rglob("*.wav")):
            shutil.copytree(draft, model, dirs_exist_ok=True)
            return _accuracies(read_json(model / METRICS)) | {
                "note": "the draft cascade fired nowhere in the keyword-free audio: stage 2 kept as trained"}
        extra, synth_negatives = synth_folders(root, recipe)
        config = recipe.mined_config(extra, (*synth_negatives, *made_folders(root, CONFUSABLES), str(mined)), str(draft))
        return _accuracies(_trained(recipe, model, config, features, progress=progress, log=log))
    return run


def cascade_step(root: Path, recipe: CascadeRecipe):
    """The gate's tau on validation clips, then the smoothing and the named operating points on a
    validation stream (kws.recipe.stream_points): the bundle runs as calibrated, not at defaults."""
    def run(out: Path) -> dict[str, Any]:
        _, cal = build_cascade(stage_model(root, 1), final_stage2(root, recipe), Path(recipe.data),
                               out / CLIP_BUNDLE, recall=recipe.recall, force=True, noisy=recipe.noisy_copies())
        points = calibrate_on_validation(out / CLIP_BUNDLE, Path(recipe.data), recipe.labels, out / VALIDATION_STREAM,
                                         out / BUNDLE, minutes=recipe.stream_minutes, seed=recipe.seed,
                                         negatives=[Path(f) for f in recipe.validation_negatives],
                                         beds=[Path(f) for f in recipe.validation_beds])
        return {k: cal[k] for k in ("tau", "recall", "per_keyword", "invocation_rate", "false_open_rate")} | {
            "keyword_free_stage2_per_s": cal["keyword_free"]["stage2_per_s"]} | points
    return run


def cascade_steps(root: Path, recipe: CascadeRecipe, features: FeatureConfig, *, progress: bool = True,
                  log: Log | None = None, after: tuple[str, ...] = ()) -> list[Step]:
    """synth, confusables, train_stage2, train_stage1, [mine, train_stage2_mined,] tflm, cascade under ``root``; ``after``: earlier steps
    (of the caller) the training waits for. Each step's inputs are the settings it reads, and a
    fingerprint of the audio folders (new recordings retrain)."""
    base = {"features": features.fingerprint(), "data": folder_fingerprint(recipe.folders())}
    synth_inputs = {"features": features.fingerprint(), "synth": recipe.synth, "engine": recipe.synth_engine,
                    "words": recipe.words_to_synthesize(), "seed": recipe.seed}
    synth_title = (f"synthesize {recipe.synth} clips per word ({recipe.synth_engine})" if recipe.synth
                   else "no synthetic speech (synth 0)")
    confusable_inputs = {"features": features.fingerprint(), "per_word": recipe.confusables,
                         "keywords": recipe.spoken_keywords(), "voices": CONFUSABLE_VOICES, "seed": recipe.seed,
                         "espeak": not espeak_missing()}
    if recipe.confusables_engine != "espeak":  # only then: espeak-ng's work folders keep their digests
        confusable_inputs["engine"] = recipe.confusables_engine
    missing = confusables_unavailable()
    if missing:
        confusable_inputs["missing"] = missing  # installing what was missing makes them
    confusable_title = (f"synthesize {recipe.confusables} confusable words per keyword ({recipe.confusables_engine})" if recipe.confusables
                        else "no confusable words (confusables 0)")
    train_inputs = {stage: base | {"train": recipe.train_config(stage, stage2_model=str(stage_model(root, 2))).step_key(),
                                   "data_dir": recipe.data} for stage in (1, 2)}
    # The gate distilled from stage 2 waits for it (and is retrained when it changes).
    gate_after = ("train_stage2",) if recipe.gate_from_stage2 else ()
    steps = [
        Step(SYNTH, synth_title, synth_step(recipe, features, progress=progress),
             synth_inputs, keep_partial=True),
        Step(CONFUSABLES, confusable_title, confusables_step(recipe, features, progress=progress),
             confusable_inputs, keep_partial=True),
        Step("train_stage2", f"train stage 2 ({recipe.stage2_arch} classifier) + int8",
             train_step(root, recipe, features, 2, progress=progress, log=log), train_inputs[2],
             (*after, SYNTH, CONFUSABLES), keep_partial=True),
        Step("train_stage1", f"train stage 1 ({recipe.stage1_arch} gate) + int8",
             train_step(root, recipe, features, 1, progress=progress, log=log), train_inputs[1],
             (*after, SYNTH, CONFUSABLES, *gate_after), keep_partial=True),
    ]
    final = ("train_stage1", "train_stage2")
    if recipe.mines:
        mined_inputs = base | {"train": recipe.mined_config((), (), str(stage_model(root, 2))).step_key(),
                               "data_dir": recipe.data}
        steps += [
            Step(MINE, "mine the draft cascade's false accepts in the negatives", mine_step(root, recipe),
                 base | {"folders": recipe.mining_folders(), "recall": recipe.mining_recall,
                         "calibrate_snr": recipe.calibrate_snr, "mining": dataclasses.asdict(MiningConfig())},
                 ("train_stage1", "train_stage2")),
            Step(MINED_STAGE2, f"fine-tune stage 2 on its mined windows ({recipe.mine_epochs} epochs) + int8",
                 mined_train_step(root, recipe, features, progress=progress, log=log), mined_inputs,
                 ("train_stage2", MINE), keep_partial=True),
        ]
        final = ("train_stage1", MINED_STAGE2)
    return steps + [
        Step("tflm", "TFLite Micro bit-exactness and arena", tflm_step(root, recipe), {"data": recipe.data}, final),
        Step(CASCADE, "calibrate the gate, build the bundle", cascade_step(root, recipe),
             base | {"recall": recipe.recall, "data_dir": recipe.data, "calibrate_snr": recipe.calibrate_snr,
                     "stream_minutes": recipe.stream_minutes, "operating_points": "validation stream",
                     "validation_audio": [recipe.validation_negatives, recipe.validation_beds,
                                          folder_fingerprint(recipe.validation_folders())]}, final),
    ]
