"""``kws cascade train DATA --labels W1,W2 --out BUNDLE``: your keywords to a calibrated cascade."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from cascade.runtime.bundle import MANIFEST, copy_bundle
from cascade.runtime.gate import lowest_keyword
from data_prep.outputs import refuse_existing
from kws.commands.choices import Engine, SynthEngine
from kws.commands.common import load_feature_config
from kws.commands.synth import run_with_progress
from kws.commands.train import value_range
from kws.recipe.config import (
    RECOMMENDED,
    CascadeRecipe,
    check_data,
    check_teacher,
    default_confusables,
    resolve_engine,
    resolve_warm_start,
    with_held_out_validation,
    without_missing_noise,
)
from kws.recipe.runner import run_steps
from kws.recipe.steps import CONFUSABLES, MINE, MINED_STAGE2, SYNTH, bundle_path, cascade_steps
from kws.recipe.text_only import check_text_only, with_text_only
from kws.recipe.work import default_work, open_work, record_recipe
from kws.train.teacher import teacher_labels
from kws.train.warm_start import LEARNING_RATE, REFERENCE_CONFIG, SHIPPED_REFERENCE, check_compatible

OWN_BARS = (SYNTH, CONFUSABLES, "train_stage2", "train_stage1", MINED_STAGE2)  # the other steps get a spinner
Folders = Optional[list[Path]]
CALIBRATE_SNR_HELP = ("Also calibrate the gate on noisy copies of the validation keywords: the data's background noise "
                      "at an SNR drawn from LOW,HIGH dB, so its recall holds in noise and on recordings harder than the "
                      "validation clips (keywords trained from text). 'off': clean clips only.")


def snr_option(text: str, option: str) -> tuple[float, float] | None:
    return None if text == "off" else value_range(text, option, " in dB")


def train(
    data: Annotated[Path, typer.Argument(exists=True, file_okay=False, help="Speech Commands-layout folder: one folder of clips per word, yours among them.")],
    labels: Annotated[str, typer.Option(help="Your keywords, comma-separated folder names of DATA (e.g. marvin,sheila), or 12 for the Speech Commands keywords. A keyword with no folder is trained from text (needs --synth and Kokoro).")],
    out: Annotated[Path, typer.Option(help="Bundle directory to write (kws eval/detect/live/export --model take it).")],
    negatives: Annotated[Folders, typer.Option(exists=True, file_okay=False, help="Folders of other speech/music used as _unknown_ (repeatable).")] = None,
    background: Annotated[Folders, typer.Option(exists=True, file_okay=False, help="Folders of audio mixed under training clips as background (repeatable).")] = None,
    validation_negatives: Annotated[Folders, typer.Option(exists=True, file_okay=False, help="Held-out keyword-free audio (other speech, not used in training) played between the words of the validation stream the operating points are calibrated on; with it or --validation-bed that stream is 20 minutes (repeatable).")] = None,
    validation_bed: Annotated[Folders, typer.Option(exists=True, file_okay=False, help="Held-out long recordings (e.g. music) under the validation stream's words (repeatable).")] = None,
    extra_data: Annotated[Folders, typer.Option(exists=True, file_okay=False, help="More Speech Commands-layout folders; all their clips train (repeatable).")] = None,
    synth: Annotated[int, typer.Option(min=0, help="Synthetic clips per keyword (and per as many other words, as negatives); 0: none. A keyword with no recordings gets this many Kokoro speakers, a tenth held out to calibrate (500 measured).")] = 0,
    synth_engine: Annotated[SynthEngine, typer.Option(help="auto: Kokoro where its model is found ($KWS_KOKORO_DIR), else espeak-ng.")] = "auto",
    confusables: Annotated[Optional[int], typer.Option(min=0, help="Words that sound like each keyword, spoken by espeak-ng (or --confusables-engine), trained as _unknown_ (default: 20 for your own keywords, 0 for --labels 12).")] = None,
    confusables_engine: Annotated[Engine, typer.Option(help="Who speaks the confusable words: espeak-ng, or Kokoro (needs its model; the voices a keyword from text is made of).")] = "espeak",
    teacher: Annotated[Optional[Path], typer.Option(exists=True, file_okay=False, help="Distil stage 2 (and the gate, without --gate-from-stage2) from this teacher (see kws train --teacher); it must know every keyword.")] = None,
    gate_from_stage2: Annotated[Optional[bool], typer.Option(help="Distil the gate from stage 2's keyword mass (kws train --teacher STAGE2) instead of the labels (and --teacher): what the shipped gate does. Default: on when a keyword has no recordings (trained from text: measured better there), else off (docs/custom_keywords.md).", show_default=False)] = None,
    warm_start: Annotated[Optional[bool], typer.Option(help="Start stage 2 as the MLPerf Tiny reference in samples/teachers (trained on ~2,600 speakers): its layers, new classifier rows for your keywords; both stages use its front end (samples/features/mlperf.toml, 1-s clips). Default: on for 1-s clips, off (with a note) for another --clip-ms.", show_default=False)] = None,
    epochs: Annotated[int, typer.Option(min=1, help="Stage-2 epochs.")] = RECOMMENDED.epochs,
    stage1_epochs: Annotated[Optional[int], typer.Option(min=1, help="Stage-1 epochs (default: half of --epochs).")] = None,
    unknown_pct: Annotated[float, typer.Option(min=0, help="Other words as _unknown_, in % of keyword clips.")] = 300.0,
    speed: Annotated[str, typer.Option(help="Speed perturbation LOW,HIGH per clip; 1,1: off.")] = RECOMMENDED.speed,
    snr_db: Annotated[str, typer.Option(help="Background noise at an SNR drawn from LOW,HIGH dB (kws train --noise-mode snr); off: the reference volumes.")] = RECOMMENDED.snr_db,
    reverb: Annotated[float, typer.Option(min=0, max=1, help="Share of clips heard in a simulated room (kws train --reverb); 0: none.")] = RECOMMENDED.reverb,
    eq: Annotated[float, typer.Option(min=0, max=1, help="Share of clips given a random microphone response (kws train --eq); 0: none.")] = RECOMMENDED.eq,
    freeze: Annotated[int, typer.Option(min=0, help="Transfer learning: stage 2's first N weighted layers keep the warm start's weights (kws train --freeze); 0: all train.")] = 0,
    frozen_bn: Annotated[bool, typer.Option("--frozen-bn", help="Stage 2's batch norms keep the warm start's statistics (kws train --frozen-bn).")] = False,
    mine_epochs: Annotated[int, typer.Option(min=0, help="Hard-negative mining: run the draft cascade over the --negatives and --background audio, then fine-tune stage 2 this many epochs with the windows it fired on as _unknown_ (needs --negatives or --background); 0: off.")] = 10,
    recall: Annotated[float, typer.Option(help="Share of validation keyword clips (and noisy copies) the gate must pass: tau's floor, raised per operating point on the validation stream. 0.98 saves stage-2 time (battery) and finds fewer keywords (docs/custom_keywords.md).")] = RECOMMENDED.recall,
    calibrate_snr: Annotated[str, typer.Option(help=CALIBRATE_SNR_HELP)] = "10,30",
    clip_ms: Annotated[Optional[float], typer.Option(help="Clip length in ms, e.g. 1500 for a two-word phrase.")] = None,
    seed: Annotated[int, typer.Option()] = 0,
    work: Annotated[Optional[Path], typer.Option(help="Folder for the steps (default: OUT.work beside the bundle); kept so a re-run resumes.")] = None,
    quiet: Annotated[bool, typer.Option(help="No progress bars.")] = False,
    force: Annotated[bool, typer.Option(help="Replace an existing bundle at OUT (one kws wrote).")] = False,
) -> None:
    """Your keywords to a calibrated int8 cascade bundle, in one command.

    Steps: synthesize (--synth) and confusable words (--confusables) -> train stage 2 (DS-CNN), then stage 1 (the tiny gate), int8 -> [mine false accepts, fine-tune stage 2 (--mine-epochs)] -> TFLite Micro check -> calibrate tau.

    Interrupted (Ctrl-C, a kill)? Run the same command again: finished steps are skipped, training resumes from its checkpoint.

    Changed settings or recordings redo only the steps they touch; delete the work folder to start over.
    """
    from rich.console import Console

    refuse_existing(out, force, marks=(MANIFEST,), hint="replace it")  # before hours of work
    warm_start, warm_note = resolve_warm_start(warm_start, clip_ms)
    features = load_feature_config(REFERENCE_CONFIG if warm_start else None, clip_ms)
    start: dict[str, Any] = {}
    if warm_start:
        start = {"stage2_init": str(SHIPPED_REFERENCE), "stage2_params": (("level", True),), "stage2_learning_rate": LEARNING_RATE}
        check_compatible(2, "ds_cnn", dict(start["stage2_params"]), features, SHIPPED_REFERENCE)
    recipe = CascadeRecipe(
        data=str(data), labels=labels, stage1_params=RECOMMENDED.stage1_params,
        stage1_epochs=stage1_epochs or max(1, epochs // 2), stage2_epochs=epochs,
        unknown_pct=unknown_pct, extra_data=_strs(extra_data), negatives=_strs(negatives),
        backgrounds=_strs(background), validation_negatives=_strs(validation_negatives),
        validation_beds=_strs(validation_bed), speed=value_range(speed, "--speed"), recall=recall, seed=seed, synth=synth,
        mine_epochs=mine_epochs, stage2_freeze=freeze, stage2_frozen_bn=frozen_bn,
        calibrate_snr=snr_option(calibrate_snr, "--calibrate-snr"), snr_db=snr_option(snr_db, "--snr-db"), reverb=reverb, eq=eq,
        synth_engine=resolve_engine(synth_engine) if synth else "espeak",
        confusables=default_confusables(labels) if confusables is None else confusables,
        # espeak-ng missing is a note of the confusables step (a default must not fail); Kokoro asked for and missing, one line now
        confusables_engine=resolve_engine(confusables_engine) if confusables_engine == "kokoro" else "espeak",
        teacher=str(teacher.resolve()) if teacher else "", gate_from_stage2=bool(gate_from_stage2), **start)
    if teacher:
        check_teacher(recipe, teacher_labels(teacher))
    work = work or default_work(out)
    console = Console()
    unrecorded = check_text_only(recipe)
    gate_note = ""
    if unrecorded:  # no recordings of a keyword: its voices are made in the work folder first
        if gate_from_stage2 is None:
            recipe = dataclasses.replace(recipe, gate_from_stage2=RECOMMENDED.text_only_gate_from_stage2)
            gate_note = ("the gate learns stage 2's keyword mass (the default for a keyword from text; "
                         "--no-gate-from-stage2: from the labels)")
        resumed = open_work(work, out, recipe, features)
        recipe, text_note = with_text_only(recipe, unrecorded, work, features, None if quiet else run_with_progress)
        console.print(text_note, soft_wrap=True, markup=False)
    recipe, notice = without_missing_noise(recipe, check_data(recipe))
    recipe, held_out = with_held_out_validation(recipe)
    for line in (warm_note, gate_note, notice, held_out):
        if line:
            console.print(line, soft_wrap=True, markup=False)
    if recipe.text_only:
        record_recipe(work, out, recipe, features)
    else:
        resumed = open_work(work, out, recipe, features)
    console.print(f"[bold]kws cascade train[/] {', '.join(recipe.keywords)} from {data} -> {out} "
                  f"(steps in {work}{', resuming' if resumed else ''})", soft_wrap=True)
    steps = cascade_steps(work, recipe, features, progress=not quiet,
                          log=lambda line: console.print(line, soft_wrap=True, markup=False))
    cached: set[str] = set()
    spinner: list[Any] = []

    def start(step) -> None:
        if not quiet:
            console.rule(f"[bold]{step.name}[/]: {step.title}")
        if step.name not in OWN_BARS and not quiet:
            spinner.append(console.status(step.title))
            spinner[-1].start()

    def done(step, summary, was_cached) -> None:
        while spinner:
            spinner.pop().stop()
        if was_cached:
            cached.add(step.name)
        tag = "up to date, skipped" if was_cached else f"done in {summary.get('seconds', 0):.0f} s"
        console.print(f"[green]✓[/] {step.name}: {tag}")
        if summary.get("note") and not was_cached:
            console.print(f"note: {summary['note']}", soft_wrap=True, markup=False)

    try:
        results = run_steps(work, steps, on_start=start, on_done=done)
    finally:
        while spinner:
            spinner.pop().stop()
    bundle = copy_bundle(bundle_path(work), out, force=force)
    print_summary(console, steps, results, cached, recipe, bundle.path, work)


def _strs(paths: Folders) -> tuple[str, ...]:
    return tuple(str(p) for p in paths or ())


def _acc(metrics: dict[str, Any] | None) -> str:
    return f"{metrics['int8_accuracy']:.4f} (n={metrics['n']})" if metrics else "-"


def print_summary(console, steps, results: dict[str, dict[str, Any]], cached: set[str], recipe: CascadeRecipe,
                  bundle: Path, work: Path) -> None:
    """Per-step times, int8 accuracy of both stages, the gate, where everything is."""
    from rich.table import Table

    table = Table("step", "time", "result", title="kws cascade train")
    for step in steps:
        summary = results[step.name]
        time = f"{summary.get('seconds', 0):.0f} s" + (" (earlier run)" if step.name in cached else "")
        table.add_row(step.name, time, _describe(step.name, summary))
    console.print(table)
    cal = results["cascade"]
    inexact = [stage for stage in ("stage1", "stage2") if not results["tflm"][stage]["bit_exact"]]
    if inexact:
        console.print(f"[yellow]warning:[/] {' and '.join(inexact)} not bit-exact in TFLite Micro "
                      f"(see {work / 'tflm' / 'tflm.json'}): firmware outputs will differ from kws eval's", soft_wrap=True)
    console.print(
        f"gate tau = {cal['tau']:.4f} (its floor, from clips): passes {cal['recall']:.1%} of validation keyword clips "
        f"(target {recipe.recall:.0%}; lowest keyword {lowest_keyword(cal.get('per_keyword', {}))}), "
        f"opens on {cal['false_open_rate']:.1%} of the other validation clips\n"
        f"operating points on a {cal['validation_stream_minutes']:g}-minute stream of the validation split"
        f"{' and the held-out audio' if recipe.validation_folders() else ''} "
        f"(kws live/detect/eval --sensitivity NAME; balanced runs by default):\n  "
        + "\n  ".join(cal["operating_points"].values()) + "\n"
        f"bundle: {bundle}   (try: kws detect --model {bundle} FILE.wav; kws eval {recipe.data} --model {bundle}"
        f"{' --split validation' if recipe.text_only else ''})\n"
        f"steps kept in {work} (a re-run resumes; `kws report {work}` renders them)", soft_wrap=True, markup=False)
    if recipe.text_only:
        console.print(f"{', '.join(recipe.text_only)}: trained and calibrated on synthetic voices only; the figures above "
                      "are on held-out Kokoro voices (the view's validation split), not people: record a few people "
                      "saying it into a Speech Commands-layout folder and run kws eval on it", soft_wrap=True, markup=False)


def _describe(name: str, summary: dict[str, Any]) -> str:
    if name.startswith("train_stage"):
        return f"int8 accuracy: validation {_acc(summary.get('validation'))}, test {_acc(summary.get('testing'))}"
    if name == "tflm":
        parts = [f"{stage}: {'bit-exact' if summary[stage]['bit_exact'] else 'NOT bit-exact'} on "
                 f"{summary[stage]['samples']} clips, arena {summary[stage]['arena_bytes']} B" for stage in ("stage1", "stage2")]
        return "; ".join(parts)
    if name == SYNTH:
        return summary.get("note") or (f"{summary['clips']} clips ({summary.get('engine', 'espeak')})" if summary["clips"] else "none")
    if name == CONFUSABLES:
        return summary.get("note") or (f"{summary['clips']} clips of {summary['words']} words ({summary.get('engine', 'espeak')}), trained as _unknown_"
                                       if summary["clips"] else "none")
    if name == MINE:
        return (f"{summary['clips']} windows where the draft cascade fires in {summary['hours']:.2f} h of keyword-free "
                f"audio ({summary['per_hour']:.0f}/h): {summary['by_label']}")
    if name == "cascade":
        return (f"tau {summary['tau']:.4f}, gate recall {summary['recall']:.3f}, opens on {summary['invocation_rate']:.1%} "
                f"of validation clips; stage 2 runs {summary['keyword_free_stage2_per_s']:.2f}/s on keyword-free audio")
    return json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in summary.items() if k != "seconds"})
