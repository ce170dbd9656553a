"""``kws optimize MODEL --method {qat,prune,cluster} --out DIR`` and ``--table``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from cascade.energy.profiles import load_all, load_profile
from cascade.runtime.model_dir import write_json
from data_prep.atomic import write_text_atomic
from data_prep.errors import ConfigError
from data_prep.outputs import refuse_existing
from kws.commands.choices import EvalSplit, Method
from kws.train.compress.optimize import METHODS, OPTIMIZE_JSON, OptimizeSettings, refuse_out
from kws.train.compress.optimize import optimize as run
from kws.train.compress.table import markdown, model_rows, print_rich, targets

TABLE_JSON = "optimization_table.json"
TABLE_MD = "optimization_table.md"


def table_target(out: Path, model: Path, method: str) -> Path:
    """Where --table writes ``model`` optimized with ``method``: OUT/<model>-<method>."""
    return out / f"{Path(model).resolve().name}-{method}"


def optimize(
    models: Annotated[list[Path], typer.Argument(exists=True, file_okay=False, help="Trained model directories (from `kws train`).")],
    out: Annotated[Path, typer.Option(help="Output model directory; with --table, a folder for every optimized model and the table.")],
    method: Annotated[Optional[list[Method]], typer.Option(help="finetune is the control (same epochs, no technique); repeatable, --table defaults to all four.")] = None,
    table: Annotated[bool, typer.Option(help="Optimize every MODEL with every method into OUT/<model>-<method> (reusing finished ones), "
                                             "then measure the PTQ and optimized rows into OUT/optimization_table.{json,md}.")] = False,
    data: Annotated[Optional[Path], typer.Option(exists=True, file_okay=False, help="Speech Commands folder (default: the one the model was trained on).")] = None,
    epochs: Annotated[Optional[int], typer.Option(help="Fine-tuning epochs (default: 20 for prune, 8 otherwise).")] = None,
    learning_rate: Annotated[Optional[float], typer.Option(help="Initial fine-tuning learning rate, cosine decay (default: 1e-3 for prune, 1e-4 otherwise).")] = None,
    macs_reduction: Annotated[float, typer.Option(help="prune: share of MACs to remove.")] = 0.3,
    clusters: Annotated[int, typer.Option(help="cluster: distinct values per layer kernel.")] = 16,
    split: Annotated[EvalSplit, typer.Option(help="--table: split the accuracies are measured on.")] = "testing",
    profile: Annotated[Optional[list[str]], typer.Option(help="--table: MCU profiles for latency/energy (default: all).")] = None,
    seed: Annotated[int, typer.Option()] = 0,
    force: Annotated[bool, typer.Option(help="Replace existing outputs.")] = False,
    quiet: Annotated[bool, typer.Option(help="No progress bars.")] = False,
) -> None:
    """Quantization-aware training, channel pruning or weight clustering, fine-tuned on the
    model's own training recipe; each result is an int8 model directory checked bit-exact in
    TensorFlow Lite Micro."""
    from rich.console import Console

    console = Console()
    methods = [str(m.value) for m in method] if method else list(METHODS if table else ())

    def settings(name: str) -> OptimizeSettings:
        return OptimizeSettings(method=name, epochs=epochs, learning_rate=learning_rate,
                                macs_reduction=macs_reduction, clusters=clusters, seed=seed)

    def report(record: dict, where: Path) -> None:
        test = record["metrics"].get("testing", {})
        console.print(f"{record['method']}: MACs {record['int8_macs_before']:,} -> {record['int8_macs_after']:,}, "
                      f"test float {test.get('float_accuracy', float('nan')):.4f} int8 {test.get('int8_accuracy', float('nan')):.4f}, "
                      f"TFLM bit-exact on {record['bit_exact']['samples']} inputs; wrote {where}", soft_wrap=True)

    if not table:
        if len(models) != 1 or len(methods) != 1:
            raise ConfigError("give exactly one MODEL and one --method (or --table for the full comparison)")
        report(run(models[0], out, settings(methods[0]), data_dir=data, force=force, progress=not quiet), out)
        return

    for path in (out / TABLE_JSON, out / TABLE_MD):
        refuse_existing(path, force, hint="replace it")
    for model in models:  # each target is replaced (or reused): a folder not kws's is refused before any training
        for name in methods:
            refuse_out(table_target(out, model, name), True)
    profiles = [load_profile(p) for p in profile] if profile else load_all()
    out.mkdir(parents=True, exist_ok=True)
    result = {"split": split, "profiles": [p.name for p in profiles], "models": []}
    for model in models:
        done = {}
        for name in methods:
            target = table_target(out, model, name)
            if (target / OPTIMIZE_JSON).is_file() and not force:
                console.print(f"{name}: reusing {target}")
            else:
                console.print(f"{name}: optimizing {model} -> {target}")
                report(run(model, target, settings(name), data_dir=data, force=True, progress=not quiet), target)
            done[name] = target
        rows = model_rows(model, done, data_dir=data, split=split, profiles=profiles,
                          log=lambda line: console.print(f"measuring {line}", soft_wrap=True))
        rows["targets"] = targets(rows)
        result["models"].append(rows)
    write_json(out / TABLE_JSON, result)
    write_text_atomic(out / TABLE_MD, markdown(result))
    print_rich(result, console)
    console.print(f"wrote {out / TABLE_JSON} and {out / TABLE_MD}")
