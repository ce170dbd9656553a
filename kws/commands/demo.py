"""``kws demo``: the whole pipeline on the embedded samples (what `make demo` runs)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from kws.commands.common import SAMPLES, load_feature_config
from kws.demo.pipeline import DemoConfig, demo_steps
from kws.recipe.runner import run_steps
from kws.train.warm_start import REFERENCE_CONFIG, REFERENCE_FEATURES


def demo(
    out: Annotated[Path, typer.Option(help="Run directory; each step writes into OUT/<step>/.")] = Path("runs/demo"),
    data: Annotated[Path, typer.Option(exists=True, file_okay=False, help="Speech Commands folder.")] = SAMPLES / "speech_commands",
    config: Annotated[Path, typer.Option(exists=True, dir_okay=False, help="FeatureConfig .toml/.json (another front end than the default, the MLPerf reference's, trains stage 2 from scratch).")] = REFERENCE_CONFIG,
    force: Annotated[bool, typer.Option(help="Redo every step, even those whose outputs are current.")] = False,
) -> None:
    """Features -> train both stages -> int8 -> TFLM check -> cascade -> eval -> stream -> energy."""
    import json

    from rich.console import Console
    from rich.table import Table

    console = Console()
    features = load_feature_config(config)
    cfg = DemoConfig(data=str(data))
    if features != REFERENCE_FEATURES:  # the reference's weights need its front end
        cfg = cfg.from_scratch()
    steps = demo_steps(out, cfg, features)
    console.print(f"[bold]kws demo[/] on {data} -> {out}  (features {features.num_frames} x {features.n_mfcc}, "
                  f"config {features.fingerprint()})", soft_wrap=True)

    def start(step) -> None:
        console.rule(f"[bold]{step.name}[/]: {step.title}")

    def done(step, summary, cached) -> None:
        tag = "[dim]up to date, skipped[/]" if cached else f"done in {summary.get('seconds', 0):.0f} s"
        console.print(f"[green]✓[/] {step.name}: {tag}")

    results = run_steps(out, steps, force=force, on_start=start, on_done=done)
    table = Table("step", "result", title="demo summary")
    for step in steps:
        summary = {k: v for k, v in results[step.name].items() if k != "seconds"}
        points = summary.pop("operating_points", None)  # one line each: the point the demo runs
        table.add_row(step.name, json.dumps(summary, default=_short)[:300] + (f"\n{points['balanced']}" if points else ""))
    console.print(table)


def _short(value):
    return round(value, 4) if isinstance(value, float) else str(value)
