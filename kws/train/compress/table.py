"""The TensorFlow optimization guide's table, measured on our own models.

One row per technique for each model: the post-training conversions of the trained float
model (float32, float16, dynamic range, full int8, int16x8) and the fine-tuned int8 models of
``kws optimize`` (QAT, channel pruning, clustering). Columns: the data each technique needs,
.tflite and gzip bytes, MACs, TFLM arena, float and converted accuracy on one split (test
speakers by default), and latency / energy per inference on every MCU profile.

Measured, never assumed: a format TFLite Micro cannot run gets "n/a" with TFLM's own reason;
latency and energy come from the profiles' int8 CMSIS-NN cycles per MAC, so they are given
for int8 models only.
"""

from __future__ import annotations

import gzip
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cascade.energy.arena import measure_arena
from cascade.energy.bundle_energy import model_cost
from cascade.energy.estimate import estimate_single
from cascade.energy.model_stats import graph_layers
from cascade.evaluation.model_eval import stage_of
from cascade.runtime.int8_model import TFLiteModel
from cascade.runtime.model_dir import ModelDir, load_keras
from data_prep.errors import ModelError
from export.quantize import quantize
from kws.train.compress.optimize import load_data

PTQ_MODES = ("float32", "float16", "dynamic", "int8", "int16x8")
DATA_NEEDED = {
    "float32": "none", "float16": "none", "dynamic": "none",
    "int8": "unlabelled calibration set", "int16x8": "unlabelled calibration set",
    "qat": "labelled training set", "prune": "labelled training set", "cluster": "labelled training set",
    "finetune": "labelled training set",
}
TECHNIQUE_NAMES = {
    "float32": "float32 (no quantization)", "float16": "PTQ float16", "dynamic": "PTQ dynamic range",
    "int8": "PTQ full int8", "int16x8": "PTQ int16x8", "qat": "QAT int8", "prune": "channel pruning int8",
    "cluster": "weight clustering int8", "finetune": "fine-tune only, PTQ int8 (control)",
}
INT8_ONLY = "n/a: the profiles' cycles per MAC are for int8 CMSIS-NN kernels"


def _accuracy(model_bytes: bytes, x: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(TFLiteModel(model_bytes).predict(x, workers=2).argmax(-1) == y))


def _arena(model_bytes: bytes) -> tuple[int | None, str | None]:
    try:
        return measure_arena(model_bytes), None
    except ModelError as exc:
        return None, f"n/a: {exc}"


def _cost_per_profile(model_bytes: bytes, features, profiles, inference_stride_ms: float) -> dict[str, dict[str, float]]:
    with tempfile.TemporaryDirectory(prefix="kws-opt-") as tmp:
        path = Path(tmp) / "model.tflite"
        path.write_bytes(model_bytes)
        cost = model_cost(path)
    out = {}
    for profile in profiles:
        est = estimate_single(cost, features, profile, inference_stride_ms=inference_stride_ms)
        out[profile.name] = {"latency_ms": est.latency_ms["model"], "energy_uj": est.energy_uj["model"]}
    return out


def measure_row(technique: str, model_bytes: bytes, float_accuracy: float | None, x: np.ndarray, y: np.ndarray,
                features, profiles, inference_stride_ms: float) -> dict[str, Any]:

    layers, io = graph_layers(model_bytes)
    arena, arena_note = _arena(model_bytes)
    is_int8 = io["input_dtype"] == "int8"
    return {
        "technique": technique,
        "name": TECHNIQUE_NAMES[technique],
        "data_needed": DATA_NEEDED[technique],
        "tflite_bytes": len(model_bytes),
        "gzip_bytes": len(gzip.compress(model_bytes, compresslevel=9, mtime=0)),
        "macs": int(sum(layer.macs for layer in layers)),
        "arena_bytes": arena,
        "arena_note": arena_note,
        "float_accuracy": float_accuracy,
        "accuracy": _accuracy(model_bytes, x, y),
        "io": f"{io['input_dtype']} -> {io['output_dtype']}",
        "per_profile": _cost_per_profile(model_bytes, features, profiles, inference_stride_ms) if is_int8 and arena else None,
        "per_profile_note": None if is_int8 and arena else INT8_ONLY,
    }


def model_rows(base_dir: Path, optimized: dict[str, Path], *, data_dir: Path | None = None, split: str = "testing",
               profiles: Sequence[Any], inference_stride_ms: float = 100.0, cache_dir: Path | None = None,
               log=None) -> dict[str, Any]:
    """Rows for one trained model: its PTQ conversions, then each optimized model directory."""
    log = log or (lambda line: None)
    source = ModelDir.open(base_dir)
    data = load_data(source, data_dir, cache_dir)
    x, y = data.split(split)
    if len(y) == 0:
        raise ModelError(f"{base_dir}: no {split} examples to measure accuracy on")
    float_model = load_keras(source.keras_path)
    float_accuracy = float(np.mean(float_model.predict(x, batch_size=256, verbose=0).argmax(-1) == y))
    representative = data.representative()
    rows = []
    for mode in PTQ_MODES:
        log(f"{source.path.name}: {TECHNIQUE_NAMES[mode]}")
        model_bytes = source.int8_path.read_bytes() if mode == "int8" else quantize(float_model, representative, mode)
        rows.append(measure_row(mode, model_bytes, float_accuracy, x, y, source.config, profiles, inference_stride_ms))
    for method, path in optimized.items():
        log(f"{source.path.name}: {TECHNIQUE_NAMES[method]} ({path})")
        opt = ModelDir.open(path)
        opt.config.require_same(source.config, f"{path} vs {base_dir}")
        opt_float = load_keras(opt.keras_path)
        acc = float(np.mean(opt_float.predict(x, batch_size=256, verbose=0).argmax(-1) == y))
        row = measure_row(method, opt.int8_path.read_bytes(), acc, x, y, source.config, profiles, inference_stride_ms)
        rows.append(row | {"model_dir": str(path)})
    return {"model": str(source.path), "stage": stage_of(source), "arch": data.config.arch, "split": split,
            "n": len(y), "rows": rows}


def targets(model: dict[str, Any]) -> dict[str, Any]:
    """The issue's targets: QAT recovers >= half the PTQ int8 loss (or there was none);
    pruning removes >= 30 % of MACs for <= 1 point of int8 accuracy."""
    rows = {r["technique"]: r for r in model["rows"]}
    out: dict[str, Any] = {}
    ptq = rows["int8"]
    loss = ptq["float_accuracy"] - ptq["accuracy"]
    if "qat" in rows:
        recovered = rows["qat"]["accuracy"] - ptq["accuracy"]
        out["qat"] = {"ptq_int8_loss": loss, "ptq_int8_loss_clips": round(loss * model["n"]), "recovered": recovered,
                      "met": bool(loss <= 0 or recovered >= loss / 2)}
        if "finetune" in rows:  # what the same epochs give without fake quantization
            out["qat"]["recovered_vs_finetune_control"] = rows["qat"]["accuracy"] - rows["finetune"]["accuracy"]
    if "prune" in rows:
        fewer = 1 - rows["prune"]["macs"] / ptq["macs"]
        drop = ptq["accuracy"] - rows["prune"]["accuracy"]
        out["prune"] = {"macs_reduction": fewer, "accuracy_drop": drop, "met": bool(fewer >= 0.3 and drop <= 0.01)}
    return out

# --- rendering ------------------------------------------------------------------------------
def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.2f}"


def _main_cells(row: dict[str, Any]) -> list[str]:
    arena = f"{row['arena_bytes']:,}" if row["arena_bytes"] is not None else "n/a"
    return [row["name"], row["data_needed"], f"{row['tflite_bytes']:,}", f"{row['gzip_bytes']:,}", f"{row['macs']:,}",
            arena, _pct(row["float_accuracy"]), _pct(row["accuracy"])]

MAIN_HEADER = ["technique", "data needed", ".tflite B", "gzip B", "MACs", "arena B", "float acc %", "model acc %"]


def _profile_names(result: dict[str, Any]) -> list[str]:
    return list(result["profiles"])


def _cost_cell(row: dict[str, Any], profile: str) -> str:
    if not row["per_profile"]:
        return "n/a"
    c = row["per_profile"][profile]
    return f"{c['latency_ms']:.2f} ms / {c['energy_uj']:.0f} µJ"


def markdown(result: dict[str, Any]) -> str:
    lines = [f"# Optimization table ({result['split']} split)", ""]
    for model in result["models"]:
        lines += [f"## stage {model['stage']}: {model['arch']} ({model['model']}), n = {model['n']}", ""]
        header = MAIN_HEADER + [f"{p} latency / energy" for p in _profile_names(result)]
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for row in model["rows"]:
            cells = _main_cells(row) + [_cost_cell(row, p) for p in _profile_names(result)]
            lines.append("| " + " | ".join(cells) + " |")
        notes = sorted({r["arena_note"] for r in model["rows"] if r["arena_note"]})
        lines += [""] + [f"- arena {n}" for n in notes]
        for name, t in model.get("targets", {}).items():
            lines.append(f"- target {name}: {'met' if t['met'] else 'NOT met'} "
                         + ", ".join(f"{k} {v:.4f}" for k, v in t.items() if k != "met"))
        lines.append("")
    lines.append("Latency/energy: per inference, from each MCU profile's int8 cycles per MAC (cascade.energy); "
                 "model accuracy: the converted model itself on the host (reference kernels).")
    return "\n".join(lines) + "\n"


def print_rich(result: dict[str, Any], console) -> None:
    from rich.table import Table

    for model in result["models"]:
        table = Table(title=f"stage {model['stage']} {model['arch']} — {model['model']} ({result['split']}, n={model['n']})")
        for i, name in enumerate(MAIN_HEADER):
            table.add_column(name, justify="left" if i < 2 else "right")
        for row in model["rows"]:
            table.add_row(*_main_cells(row))
        console.print(table)
        cost = Table(title="latency / energy per inference")
        cost.add_column("technique")
        for p in _profile_names(result):
            cost.add_column(p, justify="right")
        for row in model["rows"]:
            cost.add_row(row["name"], *[_cost_cell(row, p) for p in _profile_names(result)])
        console.print(cost)
        for name, t in model.get("targets", {}).items():
            console.print(f"target {name}: {'met' if t['met'] else 'NOT met'} "
                          + ", ".join(f"{k} {v:.4f}" for k, v in t.items() if k != "met"))
