"""``kws energy``: latency, energy, duty cycle, battery life and fit of a model on MCU profiles.

A single int8 model runs at every inference stride; with ``--stage1`` the two models form a
cascade whose stage 2 runs at ``--invocation-rate`` per second (measured elsewhere, e.g. by
the cascade evaluation on keyword-free audio) and is compared with stage 2 always on.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from cascade.energy.battery import get_battery
from cascade.energy.bundle_energy import bundle_inputs, model_cost
from cascade.energy.estimate import estimate_cascade, estimate_single
from cascade.energy.profiles import load_all, load_profile
from cascade.energy.results import EnergyEstimate, estimates_json
from cascade.runtime.model_dir import FEATURES
from data_prep.atomic import write_text_atomic
from data_prep.errors import KwsError
from data_prep.outputs import refuse_existing
from kws.commands.choices import Battery
from kws.commands.common import default_bundle, is_bundle, load_feature_config


def _features(model: Path, config: Optional[Path]):
    if config is None and model.is_dir() and (model / FEATURES).is_file():
        config = model / FEATURES
    return load_feature_config(config)


def _profiles(names: list[str], all_: bool):
    if all_ and names:
        raise KwsError("give --profile or --all, not both")
    if all_:
        return load_all()
    if not names:
        raise KwsError("give --profile NAME|FILE.toml (repeatable) or --all")
    return [load_profile(name) for name in names]


def _days(days: float) -> str:
    return "inf" if days == float("inf") else f"{days:,.1f}"


def _table(results: dict[str, EnergyEstimate], cascade: bool):
    from rich.table import Table

    table = Table(title="cascade" if cascade else "single model", show_lines=False)
    stages = ("frontend", "stage1", "stage2") if cascade else ("frontend", "model")
    table.add_column("profile")
    for stage in stages:
        table.add_column(f"{stage} ms / µJ", justify="right")
    for col in ("duty", "avg mW", "battery days", "fits", "real time"):
        table.add_column(col, justify="right")
    if cascade:
        table.add_column("vs stage 2 always on", justify="right")
    for name, r in results.items():
        cells = [name] + [f"{r.latency_ms[s]:.2f} / {r.energy_uj[s]:.1f}" for s in stages]
        cells += [
            f"{r.duty_cycle:.2%}",
            f"{r.avg_power_mw:.3f}",
            f"{_days(r.battery_days)} ({r.battery})",
            "yes" if r.fits.ok else f"[red]{r.fits.reason}[/]",
            "yes" if r.realtime.ok else f"[red]{r.realtime.verdict}[/]",
        ]
        if cascade:
            cells.append(f"{r.cascade_vs_stage2_energy:.3f} (compute {r.cascade_vs_stage2_compute_energy:.3f})")
        table.add_row(*cells)
    return table


def energy(
    model: Annotated[Optional[Path], typer.Option(exists=True, help="Cascade bundle (default: samples/cascade), or an int8 .tflite / model directory.")] = None,
    profile: Annotated[Optional[list[str]], typer.Option(help="Built-in profile name or a .toml file; repeatable.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every built-in profile.")] = False,
    stage1: Annotated[Optional[Path], typer.Option(exists=True, help="Stage-1 int8 .tflite or model directory: estimate the cascade.")] = None,
    invocation_rate: Annotated[Optional[float], typer.Option(help="Stage-2 invocations per second (cascade only).")] = None,
    inference_stride_ms: Annotated[Optional[float], typer.Option(help="Milliseconds between inferences (default: the bundle's, else 20).")] = None,
    battery: Annotated[Battery, typer.Option(case_sensitive=False, help="Battery for the life estimate.")] = "cr2032",
    engine: Annotated[Optional[str], typer.Option(help="Named engine factor of the profile instead of the default runtime.")] = None,
    config: Annotated[Optional[Path], typer.Option(exists=True, dir_okay=False, help="FeatureConfig .toml/.json (default: the model directory's, else defaults).")] = None,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Write the results, keyed by profile, as JSON.")] = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing --json file.")] = False,
) -> None:
    """Latency, energy, duty cycle, battery life and fit per MCU profile."""
    from rich.console import Console

    bat = get_battery(battery)
    model = model or default_bundle()
    if is_bundle(model):
        bundle = model
        model, stage1, stride, measured = bundle_inputs(bundle)
        inference_stride_ms = stride if inference_stride_ms is None else inference_stride_ms
        invocation_rate = measured if invocation_rate is None else invocation_rate
        if invocation_rate is None:
            raise KwsError(f"{bundle}: the bundle has no measured keyword-free invocation rate; pass --invocation-rate")
    inference_stride_ms = 20.0 if inference_stride_ms is None else inference_stride_ms
    refuse_existing(json_out, force)
    if stage1 is None and invocation_rate is not None:
        raise KwsError("--invocation-rate applies to a cascade: give --stage1 too")
    if stage1 is not None and invocation_rate is None:
        raise KwsError("a cascade needs --invocation-rate (stage-2 calls per second, measured on your audio)")
    profiles = _profiles(profile or [], all_)
    features = _features(model, config)
    stage2_cost = model_cost(model)
    results = {}
    if stage1 is None:
        for p in profiles:
            results[p.name] = estimate_single(
                stage2_cost, features, p, inference_stride_ms=inference_stride_ms, battery=bat, engine=engine
            )
    else:
        features_1 = _features(stage1, config)
        features.require_same(features_1, f"{stage1} vs {model}")
        stage1_cost = model_cost(stage1)
        for p in profiles:
            results[p.name] = estimate_cascade(
                stage1_cost, stage2_cost, features, p, inference_stride_ms=inference_stride_ms,
                stage2_rate_per_s=invocation_rate, battery=bat, engine=engine,
            )
    console = Console()
    console.print(
        f"[bold]{model}[/]: {stage2_cost.total_macs:,} MACs, {stage2_cost.flash_bytes:,} B flash, "
        f"{stage2_cost.arena_bytes:,} B arena; hop {features.stride_ms:g} ms, inference every {inference_stride_ms:g} ms",
        soft_wrap=True,
    )
    console.print(_table(results, cascade=stage1 is not None))
    if json_out is not None:
        write_text_atomic(json_out, json.dumps(estimates_json(results), indent=2, default=str) + "\n")
        console.print(f"wrote {json_out}")
