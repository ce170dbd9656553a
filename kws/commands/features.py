"""``kws features FILE``: MFCC of one audio file, exactly as the models and firmware see it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from data_prep.atomic import save_npy_atomic
from data_prep.audio import load_clip
from data_prep.features import mfcc
from data_prep.outputs import refuse_existing
from kws.commands.common import load_feature_config


def features(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="Audio file (WAV/FLAC/OGG/MP3, any rate, mono or stereo).")],
    config: Annotated[Optional[Path], typer.Option(exists=True, dir_okay=False, help="FeatureConfig as .toml or .json.")] = None,
    out: Annotated[Optional[Path], typer.Option(help="Write the (T, n_mfcc) float32 array to .npy.")] = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing --out file.")] = False,
) -> None:
    """Print T x n_mfcc and statistics of one clip's MFCC, or save them to .npy."""
    from rich.console import Console
    from rich.table import Table

    cfg = load_feature_config(config)
    feats = mfcc(load_clip(file, cfg), cfg)
    if out is not None:
        refuse_existing(out, force)
        save_npy_atomic(out, feats)
    console = Console()
    t, c = feats.shape
    console.print(f"[bold]{file}[/]: T x n_mfcc = {t} x {c}  (config {cfg.fingerprint()})", soft_wrap=True)
    table = Table("coef", "mean", "std", "min", "max")
    for i in range(c):
        col = feats[:, i]
        table.add_row(f"c{i}", f"{col.mean():.3f}", f"{col.std():.3f}", f"{col.min():.3f}", f"{col.max():.3f}")
    console.print(table)
    if out is not None:
        console.print(f"wrote {out}")
