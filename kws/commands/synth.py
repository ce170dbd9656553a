"""``kws data synth``: synthetic clips of every word with many espeak-ng voices."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from data_prep.labels import WORDS_V2
from data_prep.outputs import already_exists
from data_prep.synth import synthesize


def synth(
    out: Annotated[Path, typer.Argument(help="Output folder (Speech Commands layout, no lists).")],
    words: Annotated[Optional[str], typer.Option(help="Comma-separated words (default: all 35 v0.02 words).")] = None,
    voices: Annotated[int, typer.Option(help="Voice/speed/pitch combinations per word.")] = 40,
    seed: Annotated[int, typer.Option()] = 0,
    force: Annotated[bool, typer.Option(help="Write into an existing folder.")] = False,
) -> None:
    """Synthesize training clips; use them with `kws train --extra-data OUT`."""
    from rich.progress import Progress

    if out.exists() and any(out.iterdir()) and not force:
        raise already_exists(out, "add to it")  # --force adds clips: nothing is deleted
    chosen = [w.strip() for w in words.split(",")] if words else list(WORDS_V2)
    with Progress() as progress:
        task = progress.add_task("synthesizing", total=len(chosen) * voices)
        n = synthesize(chosen, out, voices=voices, seed=seed, progress=lambda: progress.advance(task))
    typer.echo(f"wrote {n} clips to {out}")
