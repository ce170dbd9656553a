"""``kws cascade build``: calibrate the stage-1 gate and write a cascade bundle."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cascade.energy.profiles import load_profile
from cascade.evaluation.calibrate import build_cascade
from cascade.evaluation.noisy_copies import NoisyCopies
from cascade.evaluation.search import pareto_png
from cascade.evaluation.search import search as run
from cascade.runtime.bundle import MANIFEST
from cascade.runtime.decision import SmoothingConfig
from cascade.runtime.gate import lowest_keyword
from cascade.runtime.model_dir import write_json
from data_prep.locate import long_clips_notice
from data_prep.outputs import refuse_existing
from kws.commands.cascade_train import CALIBRATE_SNR_HELP, snr_option
from kws.commands.cascade_train import train as train_command

SEARCH_JSON = "cascade_search.json"


def noisy_copies(snr_db: str, copies: int) -> NoisyCopies | None:
    snr = snr_option(snr_db, "--calibrate-snr")
    return None if snr is None else NoisyCopies(snr, copies)


app = typer.Typer(help="Train, build and inspect cascade bundles.", no_args_is_help=True)
app.command("train")(train_command)


@app.command("build")
def build(
    stage1: Annotated[Path, typer.Option(exists=True, file_okay=False, help="Stage-1 model directory (kws train --stage 1).")],
    stage2: Annotated[Path, typer.Option(exists=True, file_okay=False, help="Stage-2 model directory (kws train --stage 2).")],
    data: Annotated[Path, typer.Option(exists=True, file_okay=False, help="Speech Commands folder whose validation split calibrates tau.")],
    out: Annotated[Path, typer.Option(help="Bundle directory to write.")],
    recall: Annotated[float, typer.Option(help="Share of keyword clips stage 1 must pass.")] = 0.98,
    inference_stride_ms: Annotated[float, typer.Option(help="Stage 1 runs every this many ms.")] = 100.0,
    window_ms: Annotated[float, typer.Option(help="Posterior averaging window.")] = 500.0,
    threshold: Annotated[float, typer.Option(help="Detection threshold on the averaged posterior.")] = 0.7,
    suppression_ms: Annotated[float, typer.Option(help="No second detection within this time.")] = 1000.0,
    min_count: Annotated[int, typer.Option(help="Posteriors needed in the window before a detection.")] = 2,
    calibrate_snr: Annotated[str, typer.Option(help=CALIBRATE_SNR_HELP)] = "off",
    calibrate_copies: Annotated[int, typer.Option(help="Noisy copies of each validation keyword clip.")] = 4,
    force: Annotated[bool, typer.Option(help="Replace an existing bundle.")] = False,
) -> None:
    """Calibrate tau on validation data for a target keyword recall, then write the bundle."""
    from rich.console import Console

    smoothing = SmoothingConfig(window_ms=window_ms, threshold=threshold, suppression_ms=suppression_ms, min_count=min_count)
    bundle, cal = build_cascade(stage1, stage2, data, out, recall=recall, inference_stride_ms=inference_stride_ms,
                                smoothing=smoothing, force=force, noisy=noisy_copies(calibrate_snr, calibrate_copies))
    console = Console()
    if cal["long_recordings"]:
        console.print(long_clips_notice(cal["long_recordings"], bundle.config.clip_ms), soft_wrap=True, markup=False)
    console.print(
        f"tau = {cal['tau']:.4f}: stage-1 recall {cal['recall']:.3f} (target {recall}; lowest "
        f"keyword {lowest_keyword(cal['per_keyword'])}) on {cal['n_keyword']} keyword "
        f"clips{' incl. noisy copies' if 'noisy_copies' in cal else ''}, gate opens on "
        f"{cal['invocation_rate']:.1%} of validation clips ({cal['false_open_rate']:.1%} of non-keyword)\n"
        f"keyword-free audio ({cal['keyword_free']['seconds']:.0f} s of noise and other speech): stage 2 runs "
        f"{cal['keyword_free']['stage2_per_s']:.3f} times/s ({cal['keyword_free']['stage2_share']:.1%} of steps)\n"
        f"wrote {bundle.path}", soft_wrap=True)


@app.command("search")
def search(
    stage1: Annotated[list[Path], typer.Option(exists=True, file_okay=False, help="Stage-1 model directories to choose from (repeatable).")],
    stage2: Annotated[Path, typer.Option(exists=True, file_okay=False, help="Stage-2 model directory.")],
    data: Annotated[Path, typer.Option(exists=True, file_okay=False, help="Speech Commands folder (its validation split is used).")],
    out: Annotated[Path, typer.Option(help="Folder for cascade_search.json and pareto.png.")],
    profile: Annotated[str, typer.Option(help="MCU profile whose energy is minimised.")] = "nrf52840",
    max_drop: Annotated[float, typer.Option(help="Allowed accuracy loss against stage 2 alone.")] = 0.01,
    inference_stride_ms: Annotated[float, typer.Option()] = 100.0,
    bundle: Annotated[bool, typer.Option(help="Also write the chosen cascade as OUT/bundle.")] = False,
    force: Annotated[bool, typer.Option(help="Replace existing outputs.")] = False,
) -> None:
    """Pick the stage-1 model and tau with the least energy within MAX_DROP of stage 2 alone."""
    from rich.console import Console

    refuse_existing(out, force, marks=(SEARCH_JSON,), hint="replace its contents")
    if bundle:  # the bundle is written last: refused now, not after the search replaced OUT's results
        refuse_existing(out / "bundle", force, marks=(MANIFEST,), hint="replace it")
    result = run(stage1, stage2, data, load_profile(profile), inference_stride_ms=inference_stride_ms, max_drop=max_drop)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / SEARCH_JSON, result)
    pareto_png(result, out / "pareto.png")
    console = Console()
    best = result["best"]
    if best is None:
        console.print(f"no stage-1 model and tau reach accuracy {result['required_accuracy']:.4f}")
        raise typer.Exit(1)
    console.print(
        f"stage 2 alone {result['stage2_accuracy']:.4f}; chosen {best['stage1']} at tau {best['tau']:.4f}: accuracy "
        f"{best['accuracy']:.4f}, recall {best['recall']:.3f}, stage 2 {best['stage2_per_s']:.3f}/s on keyword-free "
        f"audio, {best['energy_j_per_hour']:.2f} J/h on {profile} (stage 2 always on "
        f"{result['stage2_always_on_energy_j_per_hour']:.2f} J/h)\nwrote {out}", soft_wrap=True)
    if bundle:
        build_cascade(Path(best["stage1"]), stage2, data, out / "bundle", recall=best["recall"],
                      inference_stride_ms=inference_stride_ms, force=force)
