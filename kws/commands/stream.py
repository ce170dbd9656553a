"""``kws stream make`` / ``kws stream score``: long test streams and their scoring."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

app = typer.Typer(help="Long test streams: build them, score detections on them.", no_args_is_help=True)


@app.command("make")
def make(
    keywords: Annotated[Path, typer.Option(help="Speech Commands folder: keyword clips of --split.")],
    out: Annotated[Path, typer.Option(help="Output folder (stream.wav + truth.json).")],
    negatives: Annotated[Optional[list[Path]], typer.Option(help="Folders of non-keyword audio (repeatable).")] = None,
    split: Annotated[str, typer.Option(help="Which split's keywords (and _unknown_ words) to use.")] = "testing",
    minutes: Annotated[float, typer.Option()] = 5.0,
    keyword_share: Annotated[float, typer.Option(help="Share of events that are keywords.")] = 0.5,
    seed: Annotated[int, typer.Option()] = 0,
    force: Annotated[bool, typer.Option(help="Replace an existing output folder.")] = False,
) -> None:
    """Keyword clips and non-keyword speech over background noise, with a truth file."""
    from cascade.stream_build import build_stream_folder
    from cascade.stream_make import StreamRecipe

    recipe = StreamRecipe(minutes=minutes, keyword_share=keyword_share, seed=seed)
    truth = build_stream_folder(keywords, negatives or [], out, recipe, split=split, force=force)
    typer.echo(f"wrote {out}: {truth['duration_s']:.0f} s, {len(truth['keywords'])} keywords, {truth['events']} events")


@app.command("score")
def score(
    truth: Annotated[Path, typer.Option(help="truth.json from `kws stream make`.")],
    events: Annotated[Path, typer.Option(help="Detections as JSON lines (kws detect --events, kws live --json-events).")],
) -> None:
    """Hit rate and false accepts per hour of detections against a truth file."""
    from cascade.stream_score import read_truth, score_events
    from data_prep.errors import DatasetError

    data = read_truth(truth)
    try:
        rows = [json.loads(line) for line in events.read_text().splitlines() if line.strip()]
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{events}: not a JSON-lines events file ({exc})") from None
    result = score_events(rows, data["keywords"], data["duration_s"])
    typer.echo(json.dumps(result, indent=2))
