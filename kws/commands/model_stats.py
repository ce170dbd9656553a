"""``kws model-stats MODEL``: parameters, MACs per layer, int8 flash and TFLM arena of a model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from cascade.energy.model_stats import collect_stats
from data_prep.atomic import write_text_atomic
from data_prep.outputs import refuse_existing


def _shape(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape))


def model_stats(
    model: Annotated[Path, typer.Argument(exists=True, help="A .tflite file or a model directory with model_int8.tflite.")],
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Also write the figures as JSON.")] = None,
    arena: Annotated[bool, typer.Option(help="Measure the tensor arena in TFLite Micro (a few seconds).")] = True,
    force: Annotated[bool, typer.Option(help="Overwrite an existing --json file.")] = False,
) -> None:
    """Per-layer MACs and parameters from the int8 graph, flash bytes and measured arena bytes."""
    from rich.console import Console
    from rich.table import Table

    refuse_existing(json_out, force)
    console = Console()
    if arena:
        with console.status("measuring the TFLite Micro tensor arena"):
            stats = collect_stats(model, arena=True)
    else:
        stats = collect_stats(model, arena=False)

    table = Table("#", "op", "input", "output", "params", "MACs", title=stats.source)
    for layer in stats.layers:
        table.add_row(str(layer.index), layer.op, _shape(layer.input_shape), _shape(layer.output_shape),
                      f"{layer.params:,}", f"{layer.macs:,}")
    table.add_section()
    table.add_row("", "total", _shape(stats.input_shape), _shape(stats.output_shape),
                  f"{stats.params:,}", f"{stats.macs:,}")
    console.print(table)
    summary = Table("figure", "value", show_header=False)
    summary.add_row("input / output", f"{stats.input_dtype} {_shape(stats.input_shape)} -> "
                                      f"{stats.output_dtype} {_shape(stats.output_shape)}")
    summary.add_row("parameters (device)", f"{stats.params:,}")
    summary.add_row("MACs / inference", f"{stats.macs:,}")
    summary.add_row("flash (.tflite bytes)", f"{stats.flash_bytes:,}")
    summary.add_row("tensor arena (TFLM bytes)", f"{stats.arena_bytes:,}" if stats.arena_bytes else "not measured")
    if stats.keras_bytes is not None:
        summary.add_row("model.keras bytes / params", f"{stats.keras_bytes:,} / {stats.keras_params:,}")
    console.print(summary)
    console.print("MACs count CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED; pooling, ADD, RESHAPE "
                  "and SOFTMAX are listed with 0 MACs.", style="dim")
    if json_out is not None:
        write_text_atomic(json_out, json.dumps(stats.to_dict(), indent=2) + "\n")
        console.print(f"wrote {json_out}")
