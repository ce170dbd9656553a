"""``make demo``: the whole pipeline on the embedded samples, as resumable steps.

features -> train stage 1 and stage 2 (int8 quantization inside) -> TFLite Micro check ->
cascade calibration -> batch evaluation -> streaming detection on a long mixed recording ->
energy on every MCU profile -> firmware export -> report. Each step writes into
``runs/demo/<step>/``; a step whose inputs did not change is skipped on a re-run.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from cascade.energy.bundle_energy import bundle_energy
from cascade.energy.results import estimates_json
from cascade.evaluation.bundle_eval import evaluate_bundle
from cascade.evaluation.det import det_point
from cascade.evaluation.miss_reasons import tally
from cascade.evaluation.model_eval import confusion_png
from cascade.evaluation.stream_build import build_stream_folder
from cascade.evaluation.stream_eval import energy_rows, hit_spread, judge_stream, keyword_results
from cascade.evaluation.stream_make import StreamRecipe
from cascade.runtime.bundle import SAMPLES, Bundle
from cascade.runtime.model_dir import write_json
from data_prep.config import FeatureConfig
from data_prep.example_features import example_features
from data_prep.labels import WORDS_V2
from data_prep.speech_commands import load_dataset
from export.firmware import export_firmware
from kws.recipe.config import CascadeRecipe
from kws.recipe.runner import Step
from kws.recipe.steps import cascade_steps
from kws.report.build import build_report
from kws.train.config import TrainConfig
from kws.train.warm_start import LEARNING_RATE, SHIPPED_REFERENCE

SCRATCH_EPOCHS = 40  # stage 2 without a warm start (another front end) needs the longer schedule


@dataclasses.dataclass(frozen=True, kw_only=True)
class DemoConfig:
    data: str
    # The tiny gate at the arch's kernels 7/5, not kws cascade train's 11/9: on the demo's 240 clips
    # the longer kernels kept the headline (85.0 % of test clips, 31 of 55 stream keywords) but
    # stage 2 ran on 54 % of the validation stream's steps instead of 46 % (nRF52840 0.36, not 0.20).
    stage1_arch: str = "tiny"
    stage1_epochs: int = 20
    stage2_arch: str = "ds_cnn"
    # Stage 2 starts as the MLPerf reference shipped in samples/teachers (a warm start: its weights
    # behind our front end, the demo's features being its recipe, samples/features/mlperf.toml) and
    # is fine-tuned on the demo's clips at a third of the usual learning rate; "" trains it from
    # scratch (what `kws demo --config` with another front end does).
    stage2_params: tuple[tuple[str, Any], ...] = (("filters", 64), ("dropout", 0.2), ("level", True))
    stage2_init: str = str(SHIPPED_REFERENCE)
    stage2_learning_rate: float = LEARNING_RATE
    # Ten epochs with the warm start's batch norms frozen (kws train --frozen-bn), the full-data
    # finding: over training seeds 0/1/2 of both (data and streams fixed), the validation stream's
    # best hits at <= 25 / 50 / 100 FA/h averaged 0.685 / 0.720 / 0.744 against 0.607 / 0.649 / 0.685
    # for 40 epochs with batch norms trained, validation clips 88.5 % against 89.7 % (52 clips),
    # at 0 FA/h 0.399 against 0.464; test stream 40 / 37 / 42 of 55 keywords against 31 / 34 / 35
    # (docs/distillation.md, "The demo's stage 2: frozen batch norms, ten epochs").
    stage2_epochs: int = 10
    stage2_freeze: int = 0  # kws train --freeze: the warm start's first N weighted layers stay
    stage2_frozen_bn: bool = True
    unknown_pct: float = 100.0
    recall: float = 0.98
    # The test stream, and the validation stream the operating points are calibrated on: 8 minutes
    # play every one of the 50 sample test keyword clips (55 keywords). The 2 minutes of before
    # played 13, one keyword 8 points: the same models found 9 of those 13 and 27 of the 55.
    stream_minutes: float = 8.0
    synth_voices: int = 20  # espeak-ng voices per word added to training (0: none)
    # The shipped Kokoro clips (samples/kokoro) train too, the shipped full-data teacher labels
    # every clip both stages hear, at 0-20 dB SNR and 0.85-1.15x speed (kws train --extra-data /
    # --teacher / --noise-mode snr --snr-db 0,20 --speed 0.85,1.15): the SNR noise is what lets
    # stage 2 find keywords in the noisy stream (9 of 13 on the 2-minute stream, 2 with volume noise).
    extra_data: tuple[str, ...] = (str(SAMPLES / "kokoro"),)
    teacher: str = str(SHIPPED_REFERENCE)
    # The gate learns from the labels and the reference, not from the demo's own stage 2: that
    # measured the same headline (85.0 % of the test clips, 9 of 13 stream keywords) with stage 2
    # on 91 % of the stream's steps instead of 49 % (docs/gate.md: a stage 2 trained on 240 real
    # clips teaches a vaguer keyword mass than the shipped one, trained on 1,541).
    gate_from_stage2: bool = False
    speed: tuple[float, float] = (0.85, 1.15)
    snr_db: tuple[float, float] | None = (0.0, 20.0)
    # The demo's gate is calibrated on clean clips, as measured in the README (kws cascade train
    # adds noisy copies: its validation keywords may be synthetic). On the 8-minute streams noisy
    # copies (10-30 dB) found the same 33 of 55 test keywords with stage 2 on 52 % of steps, not 35 %.
    calibrate_snr: tuple[float, float] | None = None
    # The best validation epoch. Keeping the last one (as the 80-epoch study of the full data
    # does) measured the same on idle cores: 68.3 % of the sample test clips and 8 of 13 stream
    # keywords for both; the same recipe gave 75.0 % and 9 of 13 in an earlier run, so the
    # run-to-run spread was larger than the choice. (A rerun now gives byte-identical int8 models:
    # compare recipes over training seeds, as the stage-2 note above does.)
    keep: str = "best"
    seed: int = 0

    def from_scratch(self) -> "DemoConfig":
        """Stage 2 as it was trained before the warm start (another front end than the
        reference's cannot start from its weights): no level layer, batch norms trained, 40
        epochs at the usual learning rate."""
        params = tuple((k, v) for k, v in self.stage2_params if k != "level")
        return dataclasses.replace(self, stage2_init="", stage2_params=params, stage2_freeze=0,
                                   stage2_frozen_bn=False, stage2_epochs=SCRATCH_EPOCHS,
                                   stage2_learning_rate=TrainConfig.learning_rate)


def features_step(cfg: DemoConfig, features: FeatureConfig):
    def run(out: Path) -> dict[str, Any]:
        dataset = load_dataset(Path(cfg.data))
        summary: dict[str, Any] = {"config": features.to_dict(), "fingerprint": features.fingerprint(),
                                   "T": features.num_frames, "n_mfcc": features.n_mfcc, "splits": {}}
        for split in ("training", "validation", "testing"):
            x = example_features(dataset.examples(split), features)
            summary["splits"][split] = {"clips": int(len(x)), "mean": float(x.mean()), "std": float(x.std()),
                                        "c0_mean": float(x[..., 0].mean())}
        summary["counts"] = dataset.counts()
        features.save(out / "features.toml")
        write_json(out / "summary.json", summary)
        return {"clips": sum(s["clips"] for s in summary["splits"].values()), "shape": [features.num_frames, features.n_mfcc]}
    return run


def evaluate_step(root: Path, cfg: DemoConfig):
    def run(out: Path) -> dict[str, Any]:
        report = evaluate_bundle(Bundle.open(root / "cascade" / "bundle"), Path(cfg.data))
        write_json(out / "eval.json", report.to_json())
        confusion_png(report.cascade, out / "confusion.png", "cascade (int8), test speakers")
        return {"accuracy": report.accuracy, "stage2_accuracy": report.stage2_accuracy,
                "stage1_recall": report.stage1_recall, "stage2_invocation_rate": report.stage2_invocation_rate,
                "n": report.n}
    return run


def stream_step(root: Path, cfg: DemoConfig):
    def run(out: Path) -> dict[str, Any]:
        bundle = Bundle.open(root / "cascade" / "bundle")
        build_stream_folder(Path(cfg.data), [], out / "recording", StreamRecipe(minutes=cfg.stream_minutes, seed=cfg.seed),
                            config=bundle.config)
        judged = judge_stream(bundle, out / "recording")  # as kws stream eval judges a stream
        result, score = judged.result, judged.score.to_json()
        sweep, keywords = keyword_results(bundle, [judged.trace], [judged.events])  # the report's per-keyword table and DET
        np.savez_compressed(out / "trace.npz", t=result.trace_t, p_keyword=result.trace_p_keyword,
                            opened=result.trace_opened, latency_ms=result.latency_ms)
        write_json(out / "detections.json", {"events": judged.events, "score": score, "tau": bundle.tau,
                                             "stage2_runs": result.stage2_runs, "steps": result.steps,
                                             "det": [det_point(p.threshold, p.total) for p in sweep], **keywords,
                                             **hit_spread(judged.found, judged.trace.keywords),
                                             "energy": energy_rows(bundle, result.stage2_per_hour / 3600.0),
                                             "misses": tally(judged.reasons)})
        return score | {"stage2_per_hour": result.stage2_per_hour, "stage2_duty": result.stage2_duty}
    return run


def energy_step(root: Path):
    def run(out: Path) -> dict[str, Any]:
        results = bundle_energy(root / "cascade" / "bundle")
        write_json(out / "energy.json", estimates_json(results))
        return {name: {"cascade_vs_stage2_energy": r.cascade_vs_stage2_energy, "battery_days": r.battery_days,
                       "fits": r.fits.ok} for name, r in results.items()}
    return run


def export_step(root: Path, cfg: DemoConfig):
    def run(out: Path) -> dict[str, Any]:
        import shutil
        import subprocess

        result = export_firmware(root / "cascade" / "bundle", out / "firmware", data=Path(cfg.data), target="tflm")
        summary: dict[str, Any] = {"files": len(result.files), "verification": result.verification}
        if shutil.which("gcc") and shutil.which("make"):
            proc = subprocess.run(["make", "-C", str(result.out / "host_test"), "check"], capture_output=True, text=True, timeout=300)
            summary["host_selftest"] = "passed" if proc.returncode == 0 else f"FAILED: {proc.stdout[-300:]}{proc.stderr[-300:]}"
        return summary
    return run


def report_step(root: Path):
    def run(out: Path) -> dict[str, Any]:
        html, md = build_report(root, force=True)
        return {"html": str(html), "md": str(md)}
    return run


def recipe_of(cfg: DemoConfig) -> CascadeRecipe:
    """The shared recipe with the demo's values: the 12 Speech Commands classes, every v0.02
    word spoken by espeak-ng voices."""
    return CascadeRecipe(data=cfg.data, labels="12", stage1_arch=cfg.stage1_arch, stage1_epochs=cfg.stage1_epochs,
                         stage2_arch=cfg.stage2_arch, stage2_params=cfg.stage2_params, stage2_epochs=cfg.stage2_epochs,
                         stage2_init=cfg.stage2_init, stage2_learning_rate=cfg.stage2_learning_rate,
                         stage2_freeze=cfg.stage2_freeze, stage2_frozen_bn=cfg.stage2_frozen_bn,
                         unknown_pct=cfg.unknown_pct, recall=cfg.recall, synth=cfg.synth_voices, synth_engine="espeak",
                         synth_words=WORDS_V2, extra_data=cfg.extra_data, teacher=cfg.teacher,
                         gate_from_stage2=cfg.gate_from_stage2, speed=cfg.speed,
                         snr_db=cfg.snr_db, calibrate_snr=cfg.calibrate_snr, keep=cfg.keep, seed=cfg.seed,
                         stream_minutes=cfg.stream_minutes)


def demo_steps(root: Path, cfg: DemoConfig, features: FeatureConfig) -> list[Step]:
    settings = dataclasses.asdict(cfg) | {"features": features.fingerprint()}
    return [
        Step("features", "extract MFCC features", features_step(cfg, features), settings),
        *cascade_steps(root, recipe_of(cfg), features, after=("features",)),
        Step("evaluate", "batch evaluation on test speakers", evaluate_step(root, cfg), {}, ("cascade",)),
        Step("stream", "streaming detection on a long recording", stream_step(root, cfg), settings, ("cascade",)),
        Step("energy", "energy on every MCU profile", energy_step(root), {}, ("cascade",)),
        Step("export", "firmware export, compiled and self-tested", export_step(root, cfg), {}, ("cascade",)),
        Step("report", "HTML and Markdown report", report_step(root), {},
             ("features", "train_stage2", "train_stage1", "tflm", "cascade", "evaluate", "stream", "energy", "export")),
    ]
