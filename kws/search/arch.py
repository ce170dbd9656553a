"""``kws search``: the most accurate model that fits a board's flash and SRAM (MCUNet-style).

MCUNet (Lin et al., NeurIPS 2020) scales a network family by a width multiplier W and an
input resolution R, drops every (W, R) that cannot fit the microcontroller *before* training,
and trains what is left. Here R is the MFCC resolution, set through the FeatureConfig:
``n_mfcc`` coefficients and T frames over the same clip (the feature stride is chosen so the
clip gives exactly T frames).

Fit is measured, not estimated: each candidate is built, converted to int8 with a random
calibration set (weights and tensor shapes, hence flash and arena, do not depend on the
values) and its arena measured in TensorFlow Lite Micro.

- flash needed = the int8 .tflite bytes (stage 1: plus the stage-2 model it runs beside);
- SRAM needed  = the TFLM arena + the MFCC frontend's buffers (audio ring, FFT buffers,
  feature window; cascade.energy.cost.frontend_cost); stage 1 adds the stage-2 arena (one arena per
  stage, as the cascade runtime allocates them).

The default limits are what the profile leaves after its runtime estimate (flash and SRAM
minus runtime_flash_bytes / runtime_sram_bytes); ``--flash-kb`` / ``--sram-kb`` override them.
Survivors train with ``kws train`` (kws.arch_search_run); the best is the highest int8
*validation* accuracy (test speakers are reported, never used to choose). For stage 1 the
resolution is the stage-2 model's, and the trained candidates go to cascade.evaluation.search, which
picks the stage-1 model and tau with the least energy within ``max_drop`` of stage 2 alone.

Everything lives in OUT/search.json, rewritten atomically after every step: a rerun with the
same settings skips measured and trained candidates and resumes interrupted trainings; a rerun
with other limits (or another profile) reuses every measurement and trained model and only
trains what newly fits.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shlex
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from cascade.energy.arena import measure_arena
from cascade.energy.cost import frontend_cost
from cascade.energy.model_stats import graph_layers
from cascade.energy.profiles import load_profile
from cascade.evaluation.search import search as cascade_search
from cascade.runtime import model_dir as artifact
from cascade.runtime.model_dir import ModelDir
from cascade.runtime.stages import stage_labels
from data_prep.config import FeatureConfig
from data_prep.errors import ConfigError, KwsError, ModelError
from data_prep.labels import parse_labels
from data_prep.outputs import make_dirs
from export.quantize import quantize
from kws.train.config import TrainConfig
from kws.train.width import scaled_params

SEARCH_JSON = "search.json"
DEFAULT_WIDTHS = (0.25, 0.5, 0.75, 1.0)
DEFAULT_RESOLUTIONS = ((10, 49), (8, 49), (10, 32), (6, 25))
_CALIBRATION_CLIPS = 16


def resolution_config(base: FeatureConfig, n_mfcc: int, frames: int) -> FeatureConfig:
    """``base`` with ``n_mfcc`` coefficients and a stride (whole samples) that gives exactly
    ``frames`` frames per clip."""
    span = base.clip_samples - base.window_samples
    if frames < 2 or frames > span + 1:
        raise ConfigError(f"resolution: {frames} frames is not possible for a {base.clip_ms:g} ms clip")
    stride = span // (frames - 1)
    config = dataclasses.replace(base, n_mfcc=n_mfcc, stride_ms=stride * 1000.0 / base.sample_rate)
    if config.num_frames != frames:
        raise ConfigError(f"resolution: no whole-sample stride gives {frames} frames for this clip")
    return config


def parse_resolution(text: str) -> tuple[int, int]:
    """'10x49' -> (n_mfcc 10, frames 49)."""
    try:
        n_mfcc, frames = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ConfigError(f"resolution {text!r}: expected N_MFCCxFRAMES, e.g. 10x49") from None
    return n_mfcc, frames

SEARCH_EPOCHS = 12  # a short training per candidate: enough to rank them
_TRAIN_KEYS = frozenset(f.name for f in dataclasses.fields(TrainConfig))


@dataclasses.dataclass(frozen=True, kw_only=True)
class SearchSpec:
    """Everything that decides the candidates and their results (a rerun must match it):
    the grid, the limits and the ``TrainConfig`` every candidate trains with."""

    data: str
    profile: str
    flash_limit: int
    sram_limit: int
    widths: tuple[float, ...] = DEFAULT_WIDTHS
    resolutions: tuple[tuple[int, int], ...] = DEFAULT_RESOLUTIONS
    base_features: dict[str, Any] = dataclasses.field(default_factory=lambda: FeatureConfig().to_dict())
    stage2: str | None = None  # stage 1: the stage-2 model directory it gates
    train: TrainConfig = dataclasses.field(default_factory=lambda: TrainConfig(epochs=SEARCH_EPOCHS, patience=SEARCH_EPOCHS))

    def __post_init__(self) -> None:
        if self.train.stage == 1 and not self.stage2:
            raise ConfigError("a stage-1 search needs --stage2 (the model the cascade runs behind the gate)")
        if not self.widths or not all(0 < w < math.inf for w in self.widths):  # NaN too
            raise ConfigError(f"widths must be positive, got {list(self.widths)}")
        if not self.resolutions:
            raise ConfigError("no resolutions to search")
        if self.flash_limit <= 0 or self.sram_limit <= 0:
            raise ConfigError("flash and SRAM limits must be positive")

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["widths"] = list(self.widths)
        data["resolutions"] = [list(r) for r in self.resolutions]
        data["train"] = self.train.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SearchSpec:
        """The nested form ``to_dict`` writes; training settings given at the top level (the
        flat form search.json had before the spec embedded a TrainConfig, or an override)
        are merged into ``train``, so searches saved by an older kws resume."""
        data = dict(data)
        flat = {k: data.pop(k) for k in list(data) if k in _TRAIN_KEYS}
        if "train" in data:
            train = {**data.pop("train"), **flat}
        else:  # the flat form: the search trained with patience = epochs
            train = {"epochs": SEARCH_EPOCHS, **flat}
            train.setdefault("patience", train["epochs"])
        unknown = sorted(set(data) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ConfigError(f"search spec: unknown keys {unknown}")
        data["widths"] = tuple(data.get("widths", DEFAULT_WIDTHS))
        data["resolutions"] = tuple(tuple(r) for r in data.get("resolutions", DEFAULT_RESOLUTIONS))
        return cls(**data, train=TrainConfig.from_dict(train))


@dataclasses.dataclass(frozen=True)
class Candidate:
    """One (W, R) point of the grid."""

    width: float
    n_mfcc: int
    frames: int
    arch_params: dict[str, Any]
    features: FeatureConfig

    @property
    def id(self) -> str:
        return f"w{self.width:g}_m{self.n_mfcc}_t{self.frames}"


def candidates(spec: SearchSpec) -> list[Candidate]:
    base = FeatureConfig.from_dict(spec.base_features)
    out = []
    for n_mfcc, frames in spec.resolutions:
        same = (frames, n_mfcc) == base.input_shape  # keep the base itself (stage 1 must match stage 2)
        features = base if same else resolution_config(base, n_mfcc, frames)
        for width in spec.widths:
            out.append(Candidate(width, n_mfcc, frames, scaled_params(spec.train.arch, spec.train.arch_params, width), features))
    ids = [c.id for c in out]
    if len(set(ids)) != len(ids):
        raise ConfigError("the grid repeats a (width, resolution) pair")
    return out


def num_classes(spec: SearchSpec) -> int:
    return len(stage_labels(spec.train.stage, parse_labels(spec.train.labels).names))


def _stage2_usage(spec: SearchSpec) -> tuple[int, int]:
    """(flash, arena) of the stage-2 model a stage-1 candidate shares the board with."""
    if spec.train.stage != 1:
        return 0, 0

    stage2 = ModelDir.open(Path(spec.stage2))
    data = stage2.int8_path.read_bytes()
    return len(data), measure_arena(data)


def measure(candidate: Candidate, spec: SearchSpec, classes: int, shared: tuple[int, int]) -> dict[str, Any]:
    """Flash, arena, frontend RAM, MACs of one candidate, and whether it fits (no training)."""
    from kws.train.models import build_model  # lazy: the model zoo imports Keras (seconds); only training needs it

    model = build_model(spec.train.arch, candidate.features.input_shape, classes, **candidate.arch_params)
    rng = np.random.default_rng(spec.train.seed)
    calibration = rng.standard_normal((_CALIBRATION_CLIPS, *candidate.features.input_shape)).astype(np.float32)
    int8 = quantize(model, calibration, "int8")
    layers, _ = graph_layers(int8)
    arena = measure_arena(int8)
    front = frontend_cost(candidate.features).total_ram_bytes
    row = {
        "id": candidate.id, "width": candidate.width, "n_mfcc": candidate.n_mfcc, "frames": candidate.frames,
        "stride_ms": candidate.features.stride_ms, "arch_params": candidate.arch_params,
        "params": int(sum(layer.params for layer in layers)), "macs": int(sum(layer.macs for layer in layers)),
        "model_bytes": len(int8), "arena_bytes": arena, "frontend_ram_bytes": front,
        "flash_bytes": len(int8) + shared[0], "sram_bytes": arena + front + shared[1], "status": "pending",
    }
    return judge(row, spec)


def judge(row: dict[str, Any], spec: SearchSpec) -> dict[str, Any]:
    """Set ``fits``/``reason`` against the spec's limits; an untrained candidate that does not
    fit is ``rejected`` (a trained one keeps its results, marked as not fitting)."""
    reasons = []
    if row["flash_bytes"] > spec.flash_limit:
        reasons.append(f"flash {row['flash_bytes']:,} B > {spec.flash_limit:,} B")
    if row["sram_bytes"] > spec.sram_limit:
        reasons.append(f"SRAM {row['sram_bytes']:,} B > {spec.sram_limit:,} B")
    row.update(fits=not reasons, reason="; ".join(reasons) or None)
    if row["status"] != "trained":
        row["status"] = "rejected" if reasons else ("pending" if row["status"] == "rejected" else row["status"])
    return row


def train_command(spec: SearchSpec, candidate: dict[str, Any], out: Path) -> list[str]:
    """The ``kws train`` arguments that train (or resume) one candidate."""
    t = spec.train
    return ["train", spec.data, "--out", str(model_path(out, candidate["id"])), "--stage", str(t.stage),
            "--arch", t.arch, "--arch-params", json.dumps(candidate["arch_params"], sort_keys=True),
            "--config", str(config_path(out, candidate["id"])), "--labels", t.labels,
            "--epochs", str(t.epochs), "--patience", str(t.patience), "--batch-size", str(t.batch_size),
            "--learning-rate", str(t.learning_rate), "--seed", str(t.seed),
            "--unknown-pct", str(t.unknown_pct), "--silence-pct", str(t.silence_pct),
            "--keyword-boost", str(t.keyword_boost), "--quiet"]


def model_path(out: Path, cid: str) -> Path:
    return Path(out) / "models" / cid


def config_path(out: Path, cid: str) -> Path:
    return Path(out) / "features" / f"{cid}.toml"

_LIMITS = ("flash_limit", "sram_limit", "profile")


def _training_key(spec: dict[str, Any]) -> dict[str, Any]:
    """What the measurements and trained models depend on: all but the limits."""
    return {k: v for k, v in spec.items() if k not in _LIMITS}


def _saved_spec(path: Path, saved: dict[str, Any]) -> dict[str, Any]:
    """The spec of a saved search in today's form (older kws wrote it flat)."""
    try:
        return SearchSpec.from_dict(saved["spec"]).to_dict()
    except (KeyError, TypeError, ValueError, KwsError) as exc:
        raise KwsError(f"{path}: not a search state this kws can resume ({exc}); use --force to start over") from None


class SearchState:
    """OUT/search.json: the spec, every candidate's measurements, status and results."""

    def __init__(self, out: Path, spec: SearchSpec, force: bool = False) -> None:
        self.out, self.spec = Path(out), spec
        self.path = self.out / SEARCH_JSON
        self.data: dict[str, Any] = {"spec": spec.to_dict(), "candidates": {}, "training_seconds": 0.0}
        if self.path.is_file() and not force:
            saved = artifact.read_json(self.path)
            if _training_key(_saved_spec(self.path, saved)) != _training_key(spec.to_dict()):
                raise KwsError(f"{self.path}: holds a search with different settings (use --force to start over, "
                               "or rerun with the same options to resume; only the limits and profile may change)")
            self.data = saved
            self.data["spec"] = spec.to_dict()  # new limits: everything measured and trained is reused
            for row in self.candidates.values():
                judge(row, spec)
        elif self.out.exists() and any(self.out.iterdir()) and not (self.path.is_file() and force):
            raise KwsError(f"{self.out}: exists and holds no {SEARCH_JSON}; refusing to replace it")
        elif force and self.out.exists():
            shutil.rmtree(self.out)
        make_dirs(self.out)

    @property
    def candidates(self) -> dict[str, dict[str, Any]]:
        return self.data["candidates"]

    def save(self) -> None:
        artifact.write_json(self.path, self.data)

    def update(self, cid: str, **values: Any) -> None:
        self.candidates[cid].update(values)
        self.save()


def _measure_retrying(candidate: Candidate, spec: SearchSpec, classes: int, shared: tuple[int, int], log,
                      attempts: int = 3) -> dict[str, Any]:
    """``measure``, tried again when a TFLM probe fails: the probe subprocesses occasionally
    crash on a loaded machine (seen once here: a segfault read as "does not allocate")."""

    failure = None
    for _ in range(attempts):
        try:
            return measure(candidate, spec, classes, shared)
        except ModelError as exc:
            failure = exc
            log(f"{candidate.id}: measurement failed ({exc})")
    raise KwsError(f"{candidate.id}: cannot measure it in TFLite Micro after {attempts} tries ({failure}); "
                   "the candidates measured so far are saved, rerun to continue")


def measure_all(state: SearchState, log=None) -> list[dict[str, Any]]:
    """Measure every candidate not measured yet (saved one by one: an interrupted run keeps them)."""
    log = log or (lambda line: None)
    spec = state.spec
    classes = num_classes(spec)
    shared = None
    for candidate in candidates(spec):
        if candidate.id in state.candidates:
            continue
        shared = shared if shared is not None else _stage2_usage(spec)
        row = _measure_retrying(candidate, spec, classes, shared, log)
        candidate.features.save(config_path(state.out, candidate.id))
        row["command"] = shlex.join(["kws", *train_command(spec, row, state.out)])
        state.candidates[candidate.id] = row
        state.save()
        log(f"{candidate.id}: flash {row['flash_bytes']:,} B, SRAM {row['sram_bytes']:,} B, "
            f"{row['macs']:,} MACs -> {'fits' if row['fits'] else 'rejected: ' + row['reason']}")
    return list(state.candidates.values())


def collect(state: SearchState) -> None:
    """Read the metrics of every trained candidate into the state."""
    for cid, row in state.candidates.items():
        metrics_file = model_path(state.out, cid) / artifact.METRICS
        if metrics_file.is_file():
            metrics = artifact.read_json(metrics_file)
            row.update(status="trained",
                       validation=metrics.get("validation"), testing=metrics.get("testing"),
                       val_accuracy=(metrics.get("validation") or {}).get("int8_accuracy"),
                       test_accuracy=(metrics.get("testing") or {}).get("int8_accuracy"))
    state.save()


def best(state: SearchState) -> dict[str, Any] | None:
    """The fitting, trained candidate with the highest int8 validation accuracy (fewer MACs
    break ties)."""
    trained = [r for r in state.candidates.values() if r["fits"] and r.get("val_accuracy") is not None]
    return max(trained, key=lambda r: (r["val_accuracy"], -r["macs"])) if trained else None


def cascade_choice(state: SearchState, inference_stride_ms: float, max_drop: float) -> dict[str, Any] | None:
    """Stage 1: the trained candidate and tau with the least energy within ``max_drop`` of
    stage 2 alone (cascade.evaluation.search over the trained candidates)."""

    dirs = [model_path(state.out, r["id"]) for r in state.candidates.values() if r.get("status") == "trained" and r["fits"]]
    if not dirs:
        return None
    result = cascade_search(dirs, Path(state.spec.stage2), Path(state.spec.data), load_profile(state.spec.profile),
                            inference_stride_ms=inference_stride_ms, max_drop=max_drop)
    state.data["cascade"] = result
    state.save()
    return result
