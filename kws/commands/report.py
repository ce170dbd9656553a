"""``kws report RUN_DIR``: rebuild report.html and report.md from a run directory."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from kws.report.build import build_report


def report(
    run_dir: Annotated[Path, typer.Argument(exists=True, file_okay=False, help="Run directory: `kws demo --out` or a folder of your own outputs.")],
    out: Annotated[Optional[Path], typer.Option(help="Write the report here instead of into RUN_DIR.")] = None,
    force: Annotated[bool, typer.Option(help="Replace report files that a previous `kws report` did not write.")] = False,
) -> None:
    """Write RUN_DIR/report.html (self-contained) and report.md + report_files/.

    Artefacts are recognised by content anywhere under RUN_DIR, so a folder
    assembled from the individual commands works too:

      model dirs      metrics.json + model_int8.tflite     (kws train)
      cascade bundle  cascade.toml, threshold_curve.json   (kws cascade build)
      evaluation      JSON: accuracy, labels, confusion    (kws eval --json)
      energy          JSON keyed by MCU profile            (kws energy --json)
      recording       truth.json                           (kws stream make)
      detections      JSON or .jsonl of {t, label}         (kws detect)
      stage-1 trace   .npz with t, p_keyword, opened       (kws demo)
      features        features.toml, summary.json          (kws demo)
      TFLM check      JSON of bit_exact, arena_bytes       (kws demo)
      search          cascade_search.json                  (kws cascade search)
      firmware        a folder with kws_export.json        (kws export)

    kws demo lays them out as features/, train_stage1/model/,
    train_stage2/model/, tflm/, cascade/bundle/, evaluate/, stream/,
    energy/, export/. A section whose inputs are missing becomes a note.
    """
    from rich.console import Console

    console = Console()
    html_path, md_path = build_report(run_dir, out, force=force,
                                      log=lambda note: console.print(f"note: {note}", soft_wrap=True, markup=False))
    console.print(f"wrote {html_path} and {md_path}", soft_wrap=True)
