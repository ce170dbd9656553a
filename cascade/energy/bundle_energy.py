"""Energy of a cascade bundle on every MCU profile, at its measured keyword-free invocation rate."""

from __future__ import annotations

from pathlib import Path

from cascade.energy.battery import get_battery
from cascade.energy.cost import ModelCost, layer_from_op
from cascade.energy.estimate import estimate_cascade
from cascade.energy.model_stats import collect_stats
from cascade.energy.profiles import load_all
from cascade.energy.results import EnergyEstimate
from cascade.evaluation.keyword_free import read_keyword_free
from cascade.runtime.bundle import Bundle
from data_prep.errors import KwsError


def model_cost(path: Path, measure_arena: bool = True):
    """ModelCost of an int8 .tflite file or model directory, via cascade.energy.model_stats."""

    stats = collect_stats(path, arena=measure_arena, keras_params=False)
    layers = tuple(
        layer_from_op(f"{layer.index}:{layer.op}", layer.op, layer.macs, layer.input_shape, layer.output_shape)
        for layer in stats.layers
    )
    return ModelCost(Path(stats.source).name, layers, stats.flash_bytes, stats.arena_bytes or 0)


def bundle_inputs(path: Path) -> tuple[Path, Path, float, float | None]:
    """(stage-2 dir, stage-1 dir, inference stride, stage-2 calls/s measured on keyword-free
    audio when the bundle has that measurement)."""

    bundle = Bundle.open(path)
    free = read_keyword_free(path)
    rate = free.get("stage2_per_s") if free is not None else None
    return bundle.stage2.path, bundle.stage1.path, bundle.inference_stride_ms, rate


def bundle_energy(path: Path, profiles=None, battery: str = "cr2032",
                  invocation_rate: float | None = None) -> dict[str, EnergyEstimate]:

    stage2_dir, stage1_dir, stride, measured = bundle_inputs(Path(path))
    rate = measured if invocation_rate is None else invocation_rate
    if rate is None:
        raise KwsError(f"{path}: no keyword-free invocation rate measured (rebuild with `kws cascade build`) — or pass one")
    config = Bundle.open(path).config
    s1, s2 = model_cost(stage1_dir), model_cost(stage2_dir)
    return {p.name: estimate_cascade(s1, s2, config, p, inference_stride_ms=stride, stage2_rate_per_s=rate,
                                     battery=get_battery(battery))
            for p in (profiles or load_all())}
