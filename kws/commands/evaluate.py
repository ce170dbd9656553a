"""``kws eval DATA --model DIR``: top-1, per-label recall/precision (and, for a cascade, what
the gate dropped), confusion (float and int8); ``--sensitivity``: at an operating point."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from cascade.evaluation.bundle_eval import evaluate_bundle
from cascade.evaluation.eval_report import EvalReport, LabelResult, ModelEvalReport
from cascade.evaluation.model_eval import confusion_png, confusion_text
from cascade.evaluation.model_eval import evaluate as run
from cascade.evaluation.speaker_spread import paired_difference
from cascade.runtime.bundle import Bundle
from cascade.runtime.model_dir import ModelDir, write_json
from data_prep.errors import ConfigError, DatasetError
from data_prep.example_features import skipped_note
from data_prep.locate import long_clips_notice
from data_prep.outputs import refuse_result_files
from kws.commands.choices import Sensitivity, Split
from kws.commands.common import default_bundle, is_bundle, load_feature_config


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def label_table(rows: tuple[LabelResult, ...]):
    """One line per label: clips, recall, precision; for a cascade also stage 2 alone's recall
    and the clips on which the gate stayed closed (for a keyword: dropped before stage 2 saw them)."""
    from rich.table import Table

    cascade = bool(rows) and rows[0].gate_closed is not None
    table = Table("label", "n", "recall", "precision", *(("stage 2 alone", "gate closed") if cascade else ()))
    for r in rows:
        table.add_row(r.label, str(r.n), _rate(r.recall), _rate(r.precision),
                      *((_rate(r.stage2_recall), str(r.gate_closed)) if cascade else ()))
    return table


def _measure(model: Path, data: Path, split: str, *, sensitivity, config: Path | None, no_cache: bool,
             workers: int, say) -> tuple[EvalReport | ModelEvalReport, str, int]:
    """One model directory or bundle on the split: its report, its headline and its clip length."""
    if is_bundle(model):
        bundle = Bundle.open(model).at(sensitivity)
        if config is not None:
            bundle.require_config(load_feature_config(config), str(config))
        if sensitivity is not None:
            say(f"{bundle.operating_point.describe()}; a keyword clip below its threshold counts as not detected")
        report = evaluate_bundle(bundle, data, split, use_cache=not no_cache, workers=workers,
                                 at_operating_point=sensitivity is not None)
        acc = (f"cascade accuracy {report.accuracy:.4f}  stage 2 alone {report.stage2_accuracy:.4f}  "
               f"stage-1 recall {report.stage1_recall:.3f} at tau {report.tau:.3f}  "
               f"stage-2 invocation rate {report.stage2_invocation_rate:.3f}")
        return report, acc, bundle.config.clip_ms
    if sensitivity is not None:
        raise ConfigError(f"{model}: --sensitivity needs a cascade bundle (operating points), not a model directory")
    model_dir = ModelDir.open(model)
    if config is not None:
        load_feature_config(config).require_same(model_dir.config, f"{config} vs model {model}")
    report = run(model_dir, data, split, use_cache=not no_cache, workers=workers)
    acc = f"int8 accuracy {report.accuracy:.4f}"
    if report.float_ is not None:
        acc = f"float accuracy {report.float_.accuracy:.4f}  " + acc
    return report, acc, model_dir.config.clip_ms


def evaluate(
    data: Annotated[Path, typer.Argument(exists=True, file_okay=False, help="Speech Commands folder (release or canonical test-set layout).")],
    model: Annotated[Optional[Path], typer.Option(exists=True, file_okay=False, help="Model directory (kws train) or cascade bundle (default: samples/cascade).")] = None,
    split: Annotated[Split, typer.Option(help="Split to evaluate.")] = "testing",
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Write the report as JSON.")] = None,
    png: Annotated[Optional[Path], typer.Option(help="Write the int8 confusion matrix as PNG.")] = None,
    no_cache: Annotated[bool, typer.Option(help="Do not read or fill the feature cache.")] = False,
    force: Annotated[bool, typer.Option(help="Overwrite existing --json/--png files.")] = False,
    workers: Annotated[int, typer.Option(min=1, help="Interpreter threads for the int8 models.")] = 2,
    config: Annotated[Optional[Path], typer.Option(exists=True, dir_okay=False, help="FeatureConfig the data is meant for: refused unless the model's is the same.")] = None,
    sensitivity: Annotated[Optional[Sensitivity], typer.Option(help="Decide at this operating point of the bundle: a keyword below its threshold is not detected. Default: each clip's top label.")] = None,
    against: Annotated[Optional[Path], typer.Option(exists=True, file_okay=False, help="Another model directory or bundle (the one you would use instead) measured on the same clips: the difference, paired by speaker.")] = None,
) -> None:
    """Evaluate a model directory or a cascade bundle on a Speech Commands split."""
    from rich.console import Console
    from rich.markup import escape

    refuse_result_files({"--json": json_out, "--png": png}, force)

    model = model or default_bundle()
    console = Console()

    def say(line: str) -> None:
        console.print(line, soft_wrap=True, markup=False)

    report, acc, clip_ms = _measure(model, data, split, sensitivity=sensitivity, config=config,
                                    no_cache=no_cache, workers=workers, say=say)
    classes = report.classes
    if report.long_recordings:
        say(long_clips_notice(report.long_recordings, clip_ms))
    console.print(f"[bold]{escape(str(model))}[/] on {escape(str(data))} ({split}, n={report.n}): {acc}", soft_wrap=True)
    if report.speakers is not None:
        say(report.speakers.describe())
    if getattr(report, "gate_speakers", None) is not None:  # a bundle: its tau was set on the validation speakers
        say(f"stage-1 recall {report.gate_speakers.accuracy:.3f}: " + report.gate_speakers.describe("keyword clips"))
    if report.skipped:
        console.print(f"[yellow]{escape(skipped_note([s.reason for s in report.skipped]))}[/]", soft_wrap=True)
    console.print(label_table(report.per_label))
    console.print(confusion_text(classes), soft_wrap=True)
    out = report.to_json()
    if against is not None:
        other, other_acc, _ = _measure(against, data, split, sensitivity=sensitivity, config=config,
                                       no_cache=no_cache, workers=workers, say=say)
        say(f"against {against}: {other_acc}")
        if report.speakers is None or other.speakers is None:
            raise DatasetError(f"{data}: the {split} clips name fewer than two speakers; nothing to pair by")
        try:
            paired = paired_difference(report.speakers, other.speakers)
        except ValueError as exc:
            raise DatasetError(f"{model} vs {against}: {exc}") from None
        say(paired.describe(model.name, against.name))
        out["against"] = {"model": str(against), "accuracy": other.accuracy, **paired.to_json()}
    if json_out is not None:
        write_json(json_out, out)
    if png is not None:
        confusion_png(classes, png, f"{model.name} int8, {split}")
