"""``kws soup MODEL MODEL ... --out DIR``: average fine-tunes of one warm start into one model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from kws.train.compress.soup import soup as run


def soup(
    models: Annotated[list[Path], typer.Argument(exists=True, file_okay=False, help="Two or more `kws train` model directories: fine-tunes of one warm start on one dataset (other --seed, or other epochs or rates).")],
    out: Annotated[Path, typer.Option(help="Output model directory (a complete one, as `kws train` writes).")],
    data: Annotated[Optional[Path], typer.Option(exists=True, file_okay=False, help="Speech Commands folder (default: the one the models were trained on).")] = None,
    force: Annotated[bool, typer.Option(help="Replace an existing output written by kws.")] = False,
) -> None:
    """A uniform weight soup: the mean of the models' weights, converted to full int8 as `kws
    train` does, checked bit-exact in TensorFlow Lite Micro and measured on the validation and
    test speakers beside its ingredients."""
    from rich.console import Console

    console = Console()
    with console.status(f"averaging {len(models)} models, converting and measuring"):
        record = run(models, out, data_dir=data, force=force)
    for row in record["ingredients"]:
        console.print(f"{row['model']}: validation int8 {row['validation'].get('int8_accuracy', float('nan')):.4f}, "
                      f"test int8 {row['testing'].get('int8_accuracy', float('nan')):.4f}", soft_wrap=True)
    metrics = record["metrics"]
    console.print(f"soup: validation int8 {metrics.get('validation', {}).get('int8_accuracy', float('nan')):.4f}, "
                  f"test float {metrics.get('testing', {}).get('float_accuracy', float('nan')):.4f} "
                  f"int8 {metrics.get('testing', {}).get('int8_accuracy', float('nan')):.4f}, "
                  f"TFLM bit-exact on {record['bit_exact']['samples']} inputs; wrote {out}", soft_wrap=True)
