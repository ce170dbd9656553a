"""``kws train DATA --stage {1,2} --arch NAME --out DIR``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from data_prep.augment import EQ_MAX_DB, AugmentConfig
from data_prep.errors import ConfigError
from kws.commands.choices import Arch, Keep, NoiseMode, Stage, Strategy
from kws.commands.common import load_feature_config
from kws.train.config import TrainConfig
from kws.train.run import train as run
from kws.train.teacher import recognise_teacher, teacher_labels


def value_range(text: str, option: str, unit: str = "") -> tuple[float, float]:
    try:
        low, high = (float(v) for v in text.split(","))
    except ValueError:
        raise ConfigError(f"{option} {text!r}: expected LOW,HIGH{unit}") from None
    return low, high


def augment_config(noise_mode: str, snr_db: str, speed: str = "1,1", reverb: float = 0.0, rt60: str = "0.15,0.8",
                   reverb_rooms: int = 100, eq: float = 0.0, eq_db: float = 6.0):
    return AugmentConfig(noise_mode=noise_mode, snr_db_range=value_range(snr_db, "--snr-db", " in dB"),
                         speed_range=value_range(speed, "--speed"), reverb_prob=reverb,
                         rt60_range=value_range(rt60, "--rt60", " in seconds"), reverb_rooms=reverb_rooms,
                         eq_prob=eq, eq_db=eq_db)


def train(
    data: Annotated[Path, typer.Argument(exists=True, file_okay=False, help="Speech Commands folder (release or test-set layout).")],
    out: Annotated[Path, typer.Option(help="Output model directory.")],
    stage: Annotated[Stage, typer.Option(help="1: tiny gate (silence/unknown/keyword); 2: full classifier.")] = 2,
    arch: Annotated[Arch, typer.Option(help="Architecture from the model zoo (kws/train/models.py); `kws model-stats MODEL` "
                                           "measures a trained one: params, MACs, flash, arena.")] = "ds_cnn",
    arch_params: Annotated[Optional[str], typer.Option("--arch-params", help='JSON, e.g. \'{"width": 32}\'.')] = None,
    labels: Annotated[str, typer.Option(help="12, 35, 30 or a comma-separated keyword list.")] = "12",
    epochs: Annotated[int, typer.Option()] = 60,
    batch_size: Annotated[int, typer.Option()] = 64,
    learning_rate: Annotated[float, typer.Option()] = 3e-3,
    patience: Annotated[int, typer.Option(help="Stop after this many epochs without a better validation accuracy.")] = 15,
    keep: Annotated[Keep, typer.Option(help="The model kept: best (validation accuracy) or last (the end of the "
                                            "schedule; no early stopping; better with a validation set of few speakers).")] = "best",
    seed: Annotated[int, typer.Option()] = 0,
    unknown_pct: Annotated[float, typer.Option(help="_unknown_ clips as a % of keyword clips.")] = 10.0,
    silence_pct: Annotated[float, typer.Option(help="_silence_ clips as a % of keyword clips.")] = 10.0,
    extra_data: Annotated[Optional[list[Path]], typer.Option(exists=True, file_okay=False, help="More Speech Commands-layout folders; all their clips train (repeatable).")] = None,
    negatives: Annotated[Optional[list[Path]], typer.Option(exists=True, file_okay=False, help="Folders of other speech/music used as _unknown_ (repeatable).")] = None,
    background: Annotated[Optional[list[Path]], typer.Option(exists=True, file_okay=False, help="Folders of music/speech mixed under training clips as background (repeatable).")] = None,
    background_share: Annotated[float, typer.Option(help="Share of noisy clips whose background comes from --background folders.")] = 0.5,
    init_from: Annotated[Optional[Path], typer.Option(exists=True, file_okay=False, help="Trained model dir (same arch and labels): fine-tune from its weights. Or the MLPerf reference folder (samples/teachers/mlperf_tiny_ds_cnn): stage 2 starts as the full-data model (--arch ds_cnn --arch-params '{\"level\": true}' --config samples/features/mlperf.toml).")] = None,
    freeze: Annotated[int, typer.Option(help="With --init-from: the first N weighted layers (convolutions, dense) keep the warm start's weights (transfer learning); 0: all train.")] = 0,
    frozen_bn: Annotated[bool, typer.Option("--frozen-bn", help="With --init-from: every batch norm keeps the warm start's statistics (runs as at inference) instead of re-estimating them on the fine-tune's noisier batches.")] = False,
    noise_mode: Annotated[NoiseMode, typer.Option(help="volume (reference recipe) or snr (noise level relative to the clip).")] = "volume",
    snr_db: Annotated[str, typer.Option(help="SNR range in dB for --noise-mode snr, LOW,HIGH.")] = "5,20",
    speed: Annotated[str, typer.Option(help="Speed perturbation LOW,HIGH drawn per clip (pitch and tempo together), e.g. 0.85,1.15; 1,1: off.")] = "1,1",
    reverb: Annotated[float, typer.Option(help="Share of clips heard in a simulated room (0: off), e.g. 0.3; the run simulates its rooms once (seconds) and caches them.")] = 0.0,
    rt60: Annotated[str, typer.Option(help="Reverberation time range of the simulated rooms in seconds, LOW,HIGH (with --reverb).")] = "0.15,0.8",
    reverb_rooms: Annotated[int, typer.Option(help="How many rooms --reverb simulates (more: more variety, a longer first build).")] = 100,
    eq: Annotated[float, typer.Option(min=0, max=1, help="Share of clips given a random microphone response (seven bands within ±--eq-db), as other microphones colour a voice; 0: off.")] = 0.0,
    eq_db: Annotated[float, typer.Option(min=0, max=EQ_MAX_DB, help="Largest band gain of --eq, dB.")] = 6.0,
    keyword_boost: Annotated[float, typer.Option(help="Stage 1: weight multiplier of the keyword class (recall).")] = 2.0,
    teacher: Annotated[Optional[Path], typer.Option(
        exists=True, file_okay=False,
        help="Distil from this teacher (teachers/mlperf_tiny_ds_cnn, or a stage-2 model directory kws trained, e.g. "
             "samples/models/stage2): it hears the same augmented clips through its own front end; its probabilities, "
             "mapped onto this run's labels, become soft targets.")] = None,
    teacher_weight: Annotated[float, typer.Option(help="Targets = A x teacher + (1 - A) x one-hot.")] = 0.7,
    temperature: Annotated[float, typer.Option(help="Softens the teacher's logits (1: as it is).")] = 1.0,
    config: Annotated[Optional[Path], typer.Option(exists=True, dir_okay=False, help="FeatureConfig .toml/.json (default: 49x10 MFCC).")] = None,
    clip_ms: Annotated[Optional[float], typer.Option(help="Clip length in ms (overrides the config's): e.g. 1500 for a two-word wake phrase.")] = None,
    force: Annotated[bool, typer.Option(help="Replace an existing output directory.")] = False,
    quiet: Annotated[bool, typer.Option(help="No progress bar.")] = False,
    strategy: Annotated[Strategy, typer.Option(
        help="auto, one-device, mirrored (every local GPU) or multi-worker (reads TF_CONFIG; "
             "--batch-size stays the global batch). auto: multi-worker if TF_CONFIG is set, "
             "mirrored with >1 GPU, else one-device.")] = "auto",
) -> None:
    """Train a cascade stage; Ctrl-C leaves a checkpoint and the same command resumes.

    On a cluster, run the same command on every worker with its own TF_CONFIG (README:
    "Scaling out"); only the chief writes --out.
    """
    from rich.console import Console

    try:
        params = json.loads(arch_params) if arch_params else {}
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--arch-params is not valid JSON: {exc}") from None
    if teacher:
        teacher_labels(teacher)  # a teacher it cannot learn from is one line now, before any data is read
    cfg = TrainConfig(stage=stage, arch=arch, arch_params=params, labels=labels, epochs=epochs,
                      batch_size=batch_size, learning_rate=learning_rate, patience=patience, keep=keep, seed=seed,
                      unknown_pct=unknown_pct, silence_pct=silence_pct, keyword_boost=keyword_boost,
                      extra_data=tuple(str(p) for p in extra_data or ()),
                      negatives=tuple(str(p) for p in negatives or ()),
                      backgrounds=tuple(str(p) for p in background or ()), background_share=background_share,
                      init_from=str(init_from) if init_from else "", freeze=freeze, frozen_bn=frozen_bn,
                      augment=augment_config(noise_mode, snr_db, speed, reverb, rt60, reverb_rooms, eq, eq_db),
                      teacher=str(teacher.resolve()) if teacher else "",
                      teacher_adapter=recognise_teacher(teacher) if teacher else "",
                      teacher_weight=teacher_weight, temperature=temperature)
    console = Console()
    metrics = run(data, out, cfg, load_feature_config(config, clip_ms), force=force, progress=not quiet,
                  strategy=strategy, log=lambda line: console.print(line, soft_wrap=True, markup=False))
    if not metrics:
        console.print(f"training done on this worker; the chief writes {out}")
        return
    for split in ("validation", "testing"):
        m = metrics.get(split)
        if m:
            console.print(f"{split:10s} n={m['n']:5d}  float {m.get('float_accuracy', float('nan')):.4f}  int8 {m['int8_accuracy']:.4f}")
    console.print(f"wrote {out}")
