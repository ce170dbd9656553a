"""``kws data ...``: look at (and fetch) Speech Commands folders.

One function per command, each registered on ``app`` below it, so commands can be added
independently.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from data_prep.atomic import write_text_atomic
from data_prep.outputs import refuse_existing
from data_prep.speech_commands import load_dataset
from data_prep.splits import SPLITS

app = typer.Typer(help="Speech Commands datasets: inspect and download.", no_args_is_help=True)

LABELS_HELP = "Label set: 12, 35, 30 (add '+silence' to 35/30) or a comma-separated keyword list."


@app.command("info")
def info(
    directory: Annotated[Path, typer.Argument(exists=True, file_okay=False, help="Speech Commands folder (release or test-set layout).")],
    labels: Annotated[str, typer.Option(help=LABELS_HELP)] = "12",
    silence_pct: Annotated[float, typer.Option(help="_silence_ clips per split, % of its keyword clips.")] = 10.0,
    unknown_pct: Annotated[float, typer.Option(help="_unknown_ clips per split, % of its keyword clips.")] = 10.0,
    seed: Annotated[int, typer.Option(help="Seed of the _silence_/_unknown_ draws.")] = 0,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Also write the summary as JSON.")] = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing --json file.")] = False,
) -> None:
    """Counts per label and split, speakers per split, noise files and the layout detected."""
    import json

    from rich.console import Console

    refuse_existing(json_out, force)
    dataset = load_dataset(directory, labels, silence_pct=silence_pct, unknown_pct=unknown_pct, seed=seed)
    summary = dataset.summary()
    console = Console()
    _print_summary(console, summary)
    if json_out is not None:
        write_text_atomic(json_out, json.dumps(summary, indent=2) + "\n")
        console.print(f"wrote {json_out}")


def _print_summary(console: Any, summary: dict[str, Any]) -> None:
    from rich.table import Table

    console.print(f"[bold]{summary['root']}[/]")
    console.print(f"layout: {summary['layout']} ({summary['layout_description']})")
    console.print(
        f"labels: {summary['label_set']} ({len(summary['labels'])} classes); "
        f"silence {summary['silence_pct']:g} %, unknown {summary['unknown_pct']:g} %, seed {summary['seed']}"
    )
    table = Table("label", *SPLITS, "total", title="examples per label and split")
    counts = summary["counts"]
    for label in summary["labels"]:
        row = [counts[s][label] for s in SPLITS]
        table.add_row(label, *map(str, row), str(sum(row)))
    totals = [summary["totals"][s] for s in SPLITS]
    table.add_row("[bold]total[/]", *map(str, totals), str(sum(totals)), end_section=True)
    table.add_row("speakers", *(str(summary["speakers"][s]) for s in SPLITS), str(summary["speakers_total"]))
    console.print(table)
    noise = summary["background_noise_files"]
    console.print(f"background noise files: {len(noise)}" + (f" ({', '.join(noise)})" if noise else ""))
