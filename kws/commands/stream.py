"""``kws stream make`` / ``kws stream score``: long test streams and their scoring."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from cascade.evaluation.det import det_png, keyword_det_png, keyword_marks
from cascade.evaluation.mining import MiningConfig
from cascade.evaluation.mining import mine as run
from cascade.evaluation.miss_reasons import describe as describe_misses
from cascade.evaluation.stream_build import build_stream_folder
from cascade.evaluation.stream_eval import calibrate_bundle, evaluate_streams
from cascade.evaluation.stream_make import StreamRecipe
from cascade.evaluation.stream_score import check_stream_folder, read_events, read_truth, score_events
from cascade.runtime.model_dir import write_json
from data_prep.audio import audio_files
from data_prep.example_features import skipped_note
from data_prep.outputs import refuse_existing, refuse_result_files
from kws.commands.choices import Split
from kws.commands.common import BundleOption, SensitivityOption, open_bundle
from kws.commands.train import value_range

app = typer.Typer(help="Long test streams: build them, score detections on them.", no_args_is_help=True)


@app.command("make")
def make(
    keywords: Annotated[Path, typer.Option(exists=True, file_okay=False, help="Speech Commands folder: keyword clips of --split.")],
    out: Annotated[Path, typer.Option(help="Output folder (stream.wav + truth.json).")],
    negatives: Annotated[Optional[list[Path]], typer.Option(exists=True, file_okay=False, help="Folders of non-keyword audio (repeatable); the source (music, synth, speech...) is read from folder names.")] = None,
    bed: Annotated[Optional[list[Path]], typer.Option(exists=True, file_okay=False, help="Folders of long recordings (music) added to the noise bed (repeatable).")] = None,
    split: Annotated[Split, typer.Option(help="Which split's keywords (and _unknown_ words) to use.")] = "testing",
    labels: Annotated[str, typer.Option(help="The keywords: folder names of --keywords, comma-separated (as kws cascade train --labels), or 12 for the Speech Commands ten.")] = "12",
    minutes: Annotated[float, typer.Option()] = 5.0,
    keyword_share: Annotated[float, typer.Option(help="Share of events that are keywords.")] = 0.5,
    snr_db: Annotated[str, typer.Option(help="Level of each word over the bed, LOW,HIGH dB.")] = "5,20",
    seed: Annotated[int, typer.Option()] = 0,
    force: Annotated[bool, typer.Option(help="Replace an existing output folder.")] = False,
) -> None:
    """Keyword clips and non-keyword speech over background noise, with a truth file."""

    recipe = StreamRecipe(minutes=minutes, keyword_share=keyword_share, seed=seed, snr_db=value_range(snr_db, "--snr-db", " in dB"))
    truth = build_stream_folder(keywords, negatives or [], out, recipe, split=split, force=force, bed_dirs=bed or [],
                               labels=labels)
    if truth["skipped"]:
        typer.echo(skipped_note([s["reason"] for s in truth["skipped"]]))
    typer.echo(f"wrote {out}: {truth['duration_s']:.0f} s, {len(truth['keywords'])} keywords, {truth['events']} events")


@app.command("score")
def score(
    truth: Annotated[Path, typer.Option(exists=True, dir_okay=False, help="truth.json from `kws stream make`.")],
    events: Annotated[Path, typer.Option(exists=True, dir_okay=False, help="Detections as JSON lines (kws detect --events, kws live --json-events).")],
) -> None:
    """Hit rate and false accepts per hour of detections against a truth file."""

    data = read_truth(truth)
    result = score_events(read_events(events), data["keywords"], data["duration_s"])
    typer.echo(json.dumps(result.to_json(), indent=2))


def sources_table(rows: dict):
    """False accepts and stage-2 duty per source of negative material (stream_sources.py)."""
    from rich.table import Table

    table = Table("source", "hours", "false accepts", "per hour", "stage 2 duty",
                  title="false accepts and stage 2 by source")
    for name, r in sorted(rows.items(), key=lambda kv: -kv[1]["seconds"]):
        table.add_row(name, f"{r['hours']:.3f}", str(r["false_accepts"]), f"{r['false_accepts_per_hour']:.1f}",
                      f"{r['stage2_duty']:.1%}")
    return table


def keywords_table(rows: dict):
    """Per keyword at the operating point: hits, misses, hit rate, and false accepts of that
    label (detected where it was not spoken) per hour of stream."""
    from rich.table import Table

    table = Table("keyword", "spoken", "hits", "misses", "hit rate", "false accepts", "per hour", title="per keyword")
    for name, r in rows.items():
        table.add_row(name, str(r["keywords"]), str(r["hits"]), str(r["misses"]),
                      "-" if r["hit_rate"] is None else f"{r['hit_rate']:.3f}", str(r["false_accepts"]),
                      f"{r['false_accepts_per_hour']:.1f}")
    return table


def _write_report(path: Optional[Path], data: dict, force: bool) -> None:
    if path is None:
        return
    refuse_existing(path, force)
    write_json(path, data)


@app.command("eval")
def evaluate(
    streams: Annotated[list[Path], typer.Argument(exists=True, file_okay=False, help="Stream folders from `kws stream make` (stream.wav + truth.json).")],
    model: BundleOption = None,
    sensitivity: SensitivityOption = None,
    target_fa: Annotated[float, typer.Option(min=0.0, help="False accepts per hour at which to report the hit rate.")] = 5.0,
    hit_target: Annotated[float, typer.Option(min=0.0, max=1.0, help="Hit rate at which to report false accepts per hour.")] = 0.95,
    profile: Annotated[Optional[list[str]], typer.Option(help="MCU profiles for the energy table (default: all).")] = None,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Write every figure as JSON.")] = None,
    det: Annotated[Optional[Path], typer.Option(help="Write the DET curve as PNG.")] = None,
    det_per_keyword: Annotated[Optional[Path], typer.Option(help="Write a DET curve per keyword as PNG (one panel each).")] = None,
    force: Annotated[bool, typer.Option(help="Overwrite existing output files.")] = False,
) -> None:
    """Hit rate, false accepts/hour, DET curve (overall and per keyword), stage-2 share and
    energy of a cascade on streams."""
    from rich.console import Console

    refuse_result_files({"--json": json_out, "--det": det, "--det-per-keyword": det_per_keyword}, force)
    for folder in streams:  # a bad folder is the only line, before the operating point's
        check_stream_folder(folder)
    bundle = open_bundle(model, sensitivity, announce=True)
    report = evaluate_streams(bundle, streams, target_fa_per_hour=target_fa, hit_target=hit_target, profiles=profile)
    console = Console()
    for row in report["streams"]:
        console.print(f"{row['stream']}: hits {row['hits']}/{row['keywords']} ({row['hit_rate']:.3f}), "
                      f"{row['false_accepts']} false accepts ({row['false_accepts_per_hour']:.1f}/h), "
                      f"stage 2 on {row['stage2_duty']:.1%} of steps", soft_wrap=True)
    t = report["total"]
    console.print(f"[bold]total[/] {t['hours']:.2f} h: hit rate {t['hit_rate']:.3f}, {t['false_accepts_per_hour']:.1f} false "
                  f"accepts/h, stage 2 {t['stage2_per_hour']:.0f} runs/h ({t['stage2_duty']:.1%} of steps)")
    if "speakers" in report:
        console.print(f"hit rate {t['hit_rate']:.3f}: {report['speakers']['text']}", soft_wrap=True, markup=False)
    console.print("misses: " + describe_misses(report["misses"]), soft_wrap=True, markup=False)
    console.print(sources_table(report["by_source"]))
    console.print(keywords_table(report["per_keyword"]))
    at_hits = report[f"false_accepts_per_hour_at_{round(hit_target * 100)}pct_hits"]
    at_fa = report[f"hit_rate_at_{target_fa:g}_fa_per_hour"]
    console.print(f"DET: {'not reached' if at_hits is None else f'{at_hits:.1f} false accepts/h'} at {hit_target:.0%} hits; "
                  f"hit rate {'-' if at_fa is None else f'{at_fa:.3f}'} at <= {target_fa:g} false accepts/h")
    for row in report["energy"]:
        console.print(f"  {row['profile']:10s} {row['energy_j_per_hour']:8.2f} J/h (stage 2 always on "
                      f"{row['stage2_always_on_j_per_hour']:8.2f}, ratio {row['ratio']:.3f}), "
                      f"{row['battery_days']:.1f} days{'' if row['fits'] else ' (does not fit)'}")
    _write_report(json_out, report, True)
    if det is not None:
        det_png(report["det"], det, f"{bundle.path.name}: {t['hours']:.1f} h of streams")
    if det_per_keyword is not None:
        keyword_det_png(report["det_per_keyword"], det_per_keyword, f"{bundle.path.name}: {t['hours']:.2f} h of streams",
                        report["det"], keyword_marks(report["per_keyword"]))


@app.command("calibrate")
def calibrate(
    streams: Annotated[list[Path], typer.Argument(exists=True, file_okay=False, help="Validation stream folders (never the test streams).")],
    out: Annotated[Path, typer.Option(help="New bundle with the calibrated smoothing.")],
    model: BundleOption = None,
    target_fa: Annotated[float, typer.Option(min=0.0, help="False accepts per hour to stay within.")] = 5.0,
    per_keyword: Annotated[bool, typer.Option(help="A threshold per keyword (else one for all).")] = True,
    hit_target: Annotated[float, typer.Option(min=0.0, max=1.0, help="balanced: fewest false accepts finding at least this share of keywords.")] = 0.95,
    high_hit_target: Annotated[float, typer.Option(min=0.0, max=1.0, help="high: fewest false accepts finding at least this share.")] = 0.98,
    clean: Annotated[Optional[list[Path]], typer.Option(
        exists=True, file_okay=False,
        help="Validation streams of keywords spoken near the microphone over quiet noise (repeatable): "
             "the hit targets of balanced and high are judged there, false accepts on STREAMS.")] = None,
    gate_loss: Annotated[float, typer.Option(
        min=0.0, max=1.0,
        help="Each point's gate tau rises above the clip-calibrated one while its validation hits stay within "
             "this share of the keywords (no more false accepts): energy for hits. 0: only what costs no keyword.")] = 0.0,
    force: Annotated[bool, typer.Option(help="Replace an existing output bundle.")] = False,
) -> None:
    """Choose smoothing window, suppression and per-keyword thresholds for a false-accept target,
    then the operating points high / balanced (default) / low around them, each with its gate tau."""

    result = calibrate_bundle(open_bundle(model), streams, out, target_fa_per_hour=target_fa,
                              per_keyword=per_keyword, force=force, hit_target=hit_target, high_hit_target=high_hit_target,
                              clean=clean or (), gate_loss=gate_loss)
    s = result["smoothing"]
    typer.echo(f"window {s['window_ms']:g} ms, suppression {s['suppression_ms']:g} ms, balanced threshold "
               f"{s['threshold']:g}, per keyword {s['label_thresholds'] or '-'}")
    print_gate_curve(result["gate_curve"], list(result["operating_points"]))
    for point in result["operating_points"].values():
        typer.echo(point.describe())
    typer.echo(f"wrote {out}")


def print_gate_curve(curve: list[dict], points: list[str]) -> None:
    """The energy/hits trade-off of the gate on the validation streams, one row per tau."""
    from rich.console import Console
    from rich.table import Table

    clean = "clean_hit_rate" in curve[0][points[0]] if curve else False
    table = Table("tau", "stage 2", "music", "speech", *[p for p in points],
                  title="the gate on the validation streams: stage-2 duty; each point's hits / FA per h"
                        + (" / clean hits" if clean else ""))
    for row in curve:
        src = row["stage2_duty_by_source"]
        cells = [f"{row[p]['hit_rate']:.3f} / {row[p]['false_accepts_per_hour']:.0f}"
                 + (f" / {row[p]['clean_hit_rate']:.3f}" if clean else "") for p in points]
        table.add_row(f"{row['tau']:.3f}", f"{row['stage2_duty']:.1%}", *(f"{src[k]:.1%}" if k in src else "-"
                                                                            for k in ("music", "speech")), *cells)
    Console().print(table)


@app.command("mine")
def mine(
    negatives: Annotated[list[Path], typer.Argument(exists=True, file_okay=False, help="Folders of keyword-free TRAINING audio (music, speech).")],
    out: Annotated[Path, typer.Option(help="Output folder of mined 1-s clips (use with kws train --negatives).")],
    model: BundleOption = None,
    min_score: Annotated[Optional[float], typer.Option(
        min=0.0, max=1.0, help="Keep windows whose keyword score reaches this [default: 0.5; with --gate the bundle's tau].")] = None,
    gate: Annotated[bool, typer.Option(
        help="Mine where the stage-1 gate opens (its P(keyword)), for training a gate that stays shut.")] = False,
    max_per_file: Annotated[int, typer.Option(min=1, help="At most this many windows per recording.")] = 50,
    force: Annotated[bool, typer.Option(help="Replace an existing output folder.")] = False,
) -> None:
    """Hard-negative mining: the windows the cascade would fire on, as training clips."""
    from rich.progress import Progress

    bundle = open_bundle(model)
    if min_score is None:
        min_score = bundle.tau if gate else MiningConfig().min_score
    config = MiningConfig(min_score=min_score, gate=gate, max_per_file=max_per_file)
    with Progress() as progress:
        task = progress.add_task("mining", total=sum(len(audio_files(f)) for f in negatives))
        summary = run(bundle, negatives, out, config, force=force, tick=lambda: progress.advance(task))
    typer.echo(f"mined {summary['mined']} windows from {summary['hours']:.2f} h ({summary['per_hour']:.0f}/h): "
               f"{summary['by_label']}; wrote {out}")
