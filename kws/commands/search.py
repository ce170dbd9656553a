"""``kws search --profile NAME [--flash-kb N] [--sram-kb N] [--budget-min M]``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from cascade.energy.profiles import load_profile
from cascade.runtime.model_dir import ModelDir
from data_prep.errors import ConfigError
from kws.commands.choices import Arch, Stage
from kws.commands.common import load_feature_config
from kws.search.arch import DEFAULT_RESOLUTIONS, DEFAULT_WIDTHS, SearchSpec, parse_resolution
from kws.search.run import run_search
from kws.train.config import TrainConfig


def search(
    data: Annotated[Path, typer.Option(exists=True, file_okay=False, help="Speech Commands folder the candidates train on (validation picks the best).")],
    out: Annotated[Path, typer.Option(help="Search folder: search.json, models/, logs/, memory_map.png, pareto.png. Rerun to resume.")],
    profile: Annotated[str, typer.Option(help="MCU profile (name or .toml) whose flash and SRAM bound the search.")] = "nrf52840",
    flash_kb: Annotated[Optional[float], typer.Option(help="Flash for the model(s), KB (default: the profile's flash minus its runtime estimate).")] = None,
    sram_kb: Annotated[Optional[float], typer.Option(help="SRAM for arena(s) + frontend buffers, KB (default: the profile's SRAM minus its runtime estimate).")] = None,
    budget_min: Annotated[float, typer.Option(help="Wall-clock minutes for training; runs still going are stopped and resume on the next call.")] = 60.0,
    stage: Annotated[Stage, typer.Option(help="2: most accurate classifier that fits; 1: cheapest gate (and tau) within --max-drop of --stage2 alone.")] = 2,
    stage2: Annotated[Optional[Path], typer.Option(exists=True, file_okay=False, help="Stage 1: the stage-2 model directory the gate runs in front of.")] = None,
    arch: Annotated[Optional[Arch], typer.Option(help="Model family (default: ds_cnn for stage 2, tiny for stage 1).")] = None,
    arch_params: Annotated[Optional[str], typer.Option("--arch-params", help="JSON base parameters that W scales.")] = None,
    width: Annotated[Optional[list[float]], typer.Option(help="Width multipliers W (repeatable; default 0.25 0.5 0.75 1).")] = None,
    resolution: Annotated[Optional[list[str]], typer.Option(help="Resolutions N_MFCCxFRAMES (repeatable; default 10x49 8x49 10x32 6x25). Stage 1 uses stage 2's.")] = None,
    config: Annotated[Optional[Path], typer.Option(exists=True, dir_okay=False, help="Base FeatureConfig .toml/.json that R modifies (default: 49x10 MFCC).")] = None,
    labels: Annotated[str, typer.Option(help="12, 35, 30 or a comma-separated keyword list (stage 1: stage 2's).")] = "12",
    epochs: Annotated[int, typer.Option(help="Training epochs per candidate (a short run ranks them).")] = 12,
    batch_size: Annotated[int, typer.Option()] = 64,
    learning_rate: Annotated[float, typer.Option()] = 3e-3,
    unknown_pct: Annotated[float, typer.Option()] = 10.0,
    silence_pct: Annotated[float, typer.Option()] = 10.0,
    keyword_boost: Annotated[float, typer.Option(help="Stage 1: keyword class weight multiplier.")] = 2.0,
    seed: Annotated[int, typer.Option()] = 0,
    parallel: Annotated[int, typer.Option(help="Candidates trained at once.")] = 2,
    max_drop: Annotated[float, typer.Option(help="Stage 1: allowed cascade accuracy loss against stage 2 alone.")] = 0.01,
    inference_stride_ms: Annotated[float, typer.Option(help="Stage 1: the gate runs every this many ms.")] = 100.0,
    force: Annotated[bool, typer.Option(help="Discard an existing search in OUT and start over.")] = False,
) -> None:
    """Scale a model family by width W and MFCC resolution R, reject every (W, R) whose int8
    model does not fit the board before training it, train the rest within the budget and
    report the most accurate that fits (MCUNet-style), with a flash x SRAM map and a Pareto plot."""
    from rich.console import Console

    console = Console()
    board = load_profile(profile)
    if parallel < 1:
        raise ConfigError(f"--parallel must be >= 1, got {parallel}")
    if budget_min < 0:
        raise ConfigError(f"--budget-min must be >= 0, got {budget_min}")
    try:
        params = json.loads(arch_params) if arch_params else {}
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--arch-params is not valid JSON: {exc}") from None
    features = load_feature_config(config)
    resolutions = tuple(parse_resolution(r) for r in resolution) if resolution else DEFAULT_RESOLUTIONS
    if stage == 1:
        if stage2 is None:
            raise ConfigError("--stage 1 needs --stage2 (the stage-2 model directory)")
        if resolution or config:
            raise ConfigError("--stage 1 uses the stage-2 model's features: drop --resolution/--config")
        second = ModelDir.open(stage2)
        features, labels = second.config, second.dataset_labels().spec
        resolutions = ((features.n_mfcc, features.num_frames),)
    train = TrainConfig(stage=stage, arch=arch or ("tiny" if stage == 1 else "ds_cnn"), arch_params=params, labels=labels,
                        epochs=epochs, patience=epochs, batch_size=batch_size, learning_rate=learning_rate,
                        unknown_pct=unknown_pct, silence_pct=silence_pct, keyword_boost=keyword_boost, seed=seed)
    spec = SearchSpec(
        data=str(data.resolve()), profile=str(profile), train=train,
        widths=tuple(width) if width else DEFAULT_WIDTHS, resolutions=resolutions,
        base_features=features.to_dict(), stage2=str(stage2.resolve()) if stage2 else None,
        flash_limit=round(flash_kb * 1024) if flash_kb is not None else board.flash_bytes - board.runtime_flash_bytes,
        sram_limit=round(sram_kb * 1024) if sram_kb is not None else board.sram_bytes - board.runtime_sram_bytes,
    )
    result = run_search(spec, out.resolve(), budget_s=budget_min * 60, parallel=parallel, force=force, max_drop=max_drop,
                        inference_stride_ms=inference_stride_ms,
                        log=lambda line: console.print(line, soft_wrap=True, markup=False))
    print_result(result, console)
    console.print(f"wrote {out}/search.json, memory_map.png, pareto.png" + (", cascade_pareto.png" if stage == 1 else ""))


def print_result(result: dict, console) -> None:
    from rich.table import Table

    spec = SearchSpec.from_dict(result["spec"])
    table = Table(title=f"stage {spec.train.stage} {spec.train.arch} on {spec.profile}: flash <= {spec.flash_limit / 1024:.0f} KB, "
                        f"SRAM <= {spec.sram_limit / 1024:.0f} KB")
    for name in ("candidate", "params", "MACs", "flash KB", "SRAM KB", "fits", "status", "val int8 %", "test int8 %"):
        table.add_column(name, justify="left" if name in ("candidate", "status") else "right")
    best_id = (result.get("best") or {}).get("id")

    def pct(v) -> str:
        return f"{100 * v:.2f}" if v is not None else "-"

    for row in sorted(result["candidates"].values(), key=lambda r: r["macs"]):
        table.add_row(("* " if row["id"] == best_id else "") + row["id"], f"{row['params']:,}", f"{row['macs']:,}",
                      f"{row['flash_bytes'] / 1024:.1f}", f"{row['sram_bytes'] / 1024:.1f}", "yes" if row["fits"] else "no",
                      row["status"], pct(row.get("val_accuracy")), pct(row.get("test_accuracy")))
    console.print(table)
    best = result.get("best")
    if best:
        what = "most accurate gate (on its own 3-class task)" if spec.train.stage == 1 else "best that fits"
        console.print(f"{what}: {best['id']} (W {best['width']:g}, {best['n_mfcc']} MFCC x {best['frames']} frames, "
                      f"stride {best['stride_ms']:g} ms): val {pct(best['val_accuracy'])} %, test {pct(best.get('test_accuracy'))} %, "
                      f"{best['model_bytes']:,} B flash, {best['arena_bytes']:,} B arena"
                      + ("" if result.get("complete") else " (search incomplete: rerun to train the rest)"), soft_wrap=True)
        console.print(f"rerun it: {best['command']}", soft_wrap=True, markup=False)
    else:
        console.print("no candidate that fits has been trained yet" if any(r["fits"] for r in result["candidates"].values())
                      else "no candidate fits the limits")
    cascade = result.get("cascade")
    if cascade and cascade.get("best"):
        c = cascade["best"]
        console.print(f"cascade: stage 1 {Path(c['stage1']).name} at tau {c['tau']:.4f}: accuracy {c['accuracy']:.4f} "
                      f"(stage 2 alone {cascade['stage2_accuracy']:.4f}), {c['energy_j_per_hour']:.2f} J/h on {spec.profile} "
                      f"(stage 2 always on {cascade['stage2_always_on_energy_j_per_hour']:.2f} J/h)", soft_wrap=True)
    elif cascade:
        console.print(f"cascade: no trained stage 1 reaches accuracy {cascade['required_accuracy']:.4f}")
