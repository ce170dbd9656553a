"""``kws data synth``: synthetic clips of every word with many voices (espeak-ng or Kokoro)."""

from __future__ import annotations

import enum
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Optional, TypeVar

import typer
from rich.progress import MofNCompleteColumn, Progress

from data_prep.config import FeatureConfig
from data_prep.errors import ConfigError
from data_prep.labels import WORDS_V2
from data_prep.synth_run import SynthJob, prepare_synth

T = TypeVar("T")


class Engine(str, enum.Enum):
    espeak = "espeak"
    kokoro = "kokoro"


def synth(
    out: Annotated[Path, typer.Argument(help="Output folder (Speech Commands layout; kokoro also writes the split lists).")],
    engine: Annotated[Engine, typer.Option(help="espeak: espeak-ng voices; kokoro: the Kokoro-82M neural voices.")] = Engine.espeak,
    words: Annotated[Optional[str], typer.Option(help="Comma-separated words or phrases, e.g. 'hey kws' "
                                                      "(default: all 35 v0.02 words).")] = None,
    voices: Annotated[Optional[str], typer.Option(help="espeak: number of voice/speed/pitch combinations (40); "
                                                       "kokoro: all (54), english (28) or names, e.g. af_bella,bm_george.")] = None,
    blend: Annotated[int, typer.Option(help="kokoro: extra pseudo-speakers, each a random mix of two voices.")] = 0,
    speeds: Annotated[str, typer.Option(help="kokoro: speeds for every voice (0.8,1.0,1.2) or a range to draw one "
                                             "speed per voice from (0.85-1.15).")] = "1.0",
    model_dir: Annotated[Optional[Path], typer.Option(help="kokoro: folder of the model files "
                                                           "(default $KWS_KOKORO_DIR, else ../shared/tts/kokoro).")] = None,
    jobs: Annotated[Optional[int], typer.Option(min=1, help="kokoro: worker processes (default: all cores).")] = None,
    validation_share: Annotated[float, typer.Option(help="kokoro: share of voices/blends that are validation-only.")] = 0.1,
    testing_share: Annotated[float, typer.Option(help="kokoro: share of voices/blends that are testing-only.")] = 0.0,
    clip_ms: Annotated[Optional[float], typer.Option(help="Clip length in ms (default: the feature config's, 1000).")] = None,
    seed: Annotated[int, typer.Option()] = 0,
    force: Annotated[bool, typer.Option(help="Write into a folder kws wrote with other settings (one kws did not write is refused).")] = False,
) -> None:
    """Synthesize training clips; use them with `kws train --extra-data OUT`. A rerun into the
    same folder continues an interrupted run."""
    config = FeatureConfig() if clip_ms is None else FeatureConfig(clip_ms=clip_ms)
    chosen = [w.strip() for w in words.split(",") if w.strip()] if words is not None else list(WORDS_V2)
    if not chosen:  # an empty $WORDS in a script meant all 35 words, an hour of synthesis
        raise ConfigError(f"--words {words!r}: no word in it (leave --words out for all {len(WORDS_V2)} v0.02 words)")
    job = prepare_synth(chosen, out, engine=engine.value, voices=voices, blend=blend, speeds=speeds, model_dir=model_dir,
                        jobs=jobs, validation_share=validation_share, testing_share=testing_share, seed=seed,
                        config=config, force=force)  # before the progress bar: errors print alone
    manifest = run_with_progress(job.label, job.total, job.run)
    report_synth(job, manifest)


def run_with_progress(label: str, total: int, run: Callable[[Callable[[], None]], T]) -> T:
    """``run(tick)`` under a progress bar of ``total`` ticks."""
    columns = (*Progress.get_default_columns(), MofNCompleteColumn())
    with Progress(*columns) as progress:
        task = progress.add_task(label, total=total)
        return run(lambda: progress.advance(task))


def report_synth(job: SynthJob, manifest: dict) -> None:
    counts = manifest["counts"]
    if job.engine == "espeak":
        typer.echo(f"wrote {counts['written']} clips to {job.out}")
        return
    typer.echo(f"wrote {counts['written']} clips to {job.out} ({counts['existing']} already there); "
               f"{job.speakers} speakers, clips per split {counts['clips_per_split']}")
    if counts["too_long"]:
        worst = max(manifest["too_long"], key=manifest["too_long"].get)
        typer.echo(f"skipped {counts['too_long']} clips longer than the {job.config.clip_ms:g} ms clip "
                   f"(e.g. {worst!r}); raise --clip-ms to keep them")
