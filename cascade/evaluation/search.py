"""``kws cascade search``: the stage-1 model and gate threshold with the least energy for a
required accuracy, and the Pareto plot of the trade-off.

For each stage-1 candidate, stage 1 and stage 2 run once over the validation clips and
stage 1 once over keyword-free audio; every tau is then scored without running anything
again: cascade accuracy from the clip decisions, stage-2 calls per second from the
keyword-free trace, energy per hour from the cost model of the chosen MCU profile.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cascade.energy.battery import get_battery
from cascade.energy.bundle_energy import model_cost
from cascade.energy.estimate import estimate_cascade
from cascade.evaluation.figures import pyplot, save_png
from cascade.evaluation.keyword_free import keyword_free_streams
from cascade.runtime.bundle import check_inference_stride
from cascade.runtime.decision import clip_predictions
from cascade.runtime.gate import gate_open
from cascade.runtime.model_dir import ModelDir
from cascade.runtime.pipeline import StageRunner, step_frames
from cascade.runtime.stages import KEYWORD
from data_prep.errors import ConfigError
from data_prep.example_features import example_features
from data_prep.labels import RESERVED
from data_prep.speech_commands import load_dataset
from data_prep.streaming import StreamingFrontend


@dataclasses.dataclass(frozen=True)
class Candidate:
    stage1: str
    tau: float
    accuracy: float
    recall: float
    stage2_per_s: float
    energy_j_per_hour: float
    flash_bytes: int
    macs: int


def stream_windows(audio: np.ndarray, model: ModelDir, every: int) -> np.ndarray:
    """The (T, n_mfcc) windows a streaming cascade would see, one per inference stride."""
    front = StreamingFrontend(model.config)
    rows = front.push(audio)
    t = model.config.num_frames
    ends = step_frames(0, len(rows), t, every)
    return np.stack([rows[e - t : e] for e in ends]) if len(rows) >= t else np.zeros((0, *model.config.input_shape), np.float32)


def keyword_free_windows(data_dir: Path, model: ModelDir, every: int, split: str) -> tuple[np.ndarray, float]:
    """The stream windows of the keyword-free audio ``kws cascade build`` measures, and its seconds."""
    rate = model.config.sample_rate
    streams, _ = keyword_free_streams(data_dir, model.dataset_labels(), split, rate)
    windows = [stream_windows(s, model, every) for s in streams]
    return np.concatenate(windows), sum(len(s) for s in streams) / rate


def search(stage1_dirs: Sequence[Path], stage2_dir: Path, data_dir: Path, profile, *, inference_stride_ms: float,
           required_accuracy: float | None = None, max_drop: float = 0.01, split: str = "validation",
           taus: int = 40) -> dict[str, Any]:

    stage2 = ModelDir.open(stage2_dir)
    check_inference_stride(inference_stride_ms, stage2.config, "--inference-stride-ms")  # before any clip is scored
    if not 0 <= max_drop <= 1:
        raise ConfigError(f"--max-drop {max_drop}: must be an accuracy loss in [0, 1]")
    examples = load_dataset(data_dir, stage2.dataset_labels()).examples(split)
    labels = stage2.labels
    y = np.array([labels.index(e.label) for e in examples])
    raw = example_features(examples, stage2.config)
    p2 = StageRunner(stage2, workers=2)(raw)
    stage2_accuracy = float(np.mean(p2.argmax(-1) == y))
    need = required_accuracy if required_accuracy is not None else stage2_accuracy - max_drop
    every = round(inference_stride_ms / stage2.config.stride_ms)
    s2_cost = model_cost(stage2_dir)
    battery = get_battery("cr2032")
    candidates: list[Candidate] = []
    always = None
    for stage1_dir in stage1_dirs:
        stage1 = ModelDir.open(stage1_dir)
        stage1.config.require_same(stage2.config, f"{stage1_dir} vs {stage2_dir}")
        if KEYWORD not in stage1.labels:
            raise ConfigError(f"{stage1_dir}: not a stage-1 model")
        runner, k = StageRunner(stage1, workers=2), stage1.labels.index(KEYWORD)
        p1 = runner(raw)
        windows, seconds = keyword_free_windows(data_dir, stage1, every, split)
        free = runner(windows)[:, k]
        s1_cost = model_cost(stage1_dir)
        is_kw = np.array([e.label not in RESERVED for e in examples])
        grid = np.unique(np.quantile(p1[is_kw, k], np.linspace(0, 0.5, taus)))
        for tau in grid:
            opened = gate_open(p1[:, k], tau)
            preds = clip_predictions(p1, p2, opened, stage1.labels, labels)
            rate = float(np.mean(gate_open(free, tau))) * len(free) / seconds
            est = estimate_cascade(s1_cost, s2_cost, stage2.config, profile, inference_stride_ms=inference_stride_ms,
                                   stage2_rate_per_s=rate, battery=battery)
            always = est.stage2_always_on.energy_j_per_hour
            candidates.append(Candidate(str(stage1_dir), float(tau), float(np.mean(preds == y)),
                                        float(opened[is_kw].mean()), rate, est.energy_j_per_hour,
                                        s1_cost.flash_bytes, s1_cost.total_macs))
    feasible = [c for c in candidates if c.accuracy >= need - 1e-9]
    best = min(feasible, key=lambda c: c.energy_j_per_hour) if feasible else None
    return {"profile": profile.name, "split": split, "required_accuracy": need, "stage2_accuracy": stage2_accuracy,
            "stage2_always_on_energy_j_per_hour": always, "inference_stride_ms": inference_stride_ms,
            "best": dataclasses.asdict(best) if best else None,
            "candidates": [dataclasses.asdict(c) for c in candidates]}


def pareto_png(result: dict[str, Any], path: Path) -> Path:
    """Energy per hour against cascade accuracy, one colour per stage-1 model, the Pareto
    front drawn and the chosen point marked; stage 2 always on for reference."""

    cands = [Candidate(**c) for c in result["candidates"]]
    fig, ax = pyplot().subplots(figsize=(7, 4.5))
    for name in sorted({c.stage1 for c in cands}):
        pts = [c for c in cands if c.stage1 == name]
        ax.scatter([c.energy_j_per_hour for c in pts], [c.accuracy for c in pts], s=14,
                   label=f"stage 1 {Path(name).name} ({pts[0].flash_bytes / 1024:.1f} KB)")
    front, best_acc = [], -1.0
    for c in sorted(cands, key=lambda c: c.energy_j_per_hour):
        if c.accuracy > best_acc:
            front.append(c)
            best_acc = c.accuracy
    ax.plot([c.energy_j_per_hour for c in front], [c.accuracy for c in front], "k--", lw=1, label="Pareto front")
    if result["stage2_always_on_energy_j_per_hour"]:
        ax.scatter([result["stage2_always_on_energy_j_per_hour"]], [result["stage2_accuracy"]], marker="s", c="red",
                   s=40, label="stage 2 always on")
    if result["best"]:
        b = Candidate(**result["best"])
        ax.scatter([b.energy_j_per_hour], [b.accuracy], marker="*", s=160, c="gold", edgecolors="k",
                   label=f"chosen: tau {b.tau:.3f}", zorder=5)
    ax.axhline(result["required_accuracy"], color="grey", lw=0.8, ls=":")
    ax.set_xlabel(f"energy per hour of listening on {result['profile']} (J)")
    ax.set_ylabel(f"cascade accuracy ({result['split']})")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return save_png(fig, path)
