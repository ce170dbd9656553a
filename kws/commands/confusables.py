"""``kws data confusables``: clips of words that sound like the keywords, to train as ``_unknown_``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from data_prep.config import FeatureConfig
from data_prep.confusable_clips import PER_WORD, pick_confusables, plan_confusables
from data_prep.errors import KwsError
from kws.commands.synth import Engine, run_with_progress


def _split(text: str | None) -> list[str]:
    return [w.strip() for w in (text or "").split(",") if w.strip()]


def confusables(
    words: Annotated[str, typer.Option(help="Comma-separated keywords (words or phrases), e.g. 'alexa,hey snowboy'.")],
    out: Annotated[Optional[Path], typer.Option(help="Output folder: one folder per confusable word + confusables.json.")] = None,
    per_word: Annotated[int, typer.Option(min=1, help="Confusable words per keyword.")] = PER_WORD,
    exclude: Annotated[Optional[str], typer.Option(help="Comma-separated words never to use (e.g. your other labels); "
                                                        "the keywords themselves never are.")] = None,
    engine: Annotated[Engine, typer.Option(help="espeak: espeak-ng voices; kokoro: the Kokoro-82M neural voices.")] = Engine.espeak,
    voices: Annotated[Optional[str], typer.Option(help="espeak: number of voice/speed/pitch combinations (40); "
                                                       "kokoro: all (54), english (28) or names.")] = None,
    speeds: Annotated[str, typer.Option(help="kokoro: speeds (0.8,1.0,1.2) or a range (0.85-1.15).")] = "1.0",
    model_dir: Annotated[Optional[Path], typer.Option(help="kokoro: folder of the model files.")] = None,
    jobs: Annotated[Optional[int], typer.Option(min=1, help="kokoro: worker processes (default: all cores).")] = None,
    validation_share: Annotated[float, typer.Option(help="kokoro: share of voices that are validation-only.")] = 0.1,
    clip_ms: Annotated[Optional[float], typer.Option(help="Clip length in ms (default 1000; raise it for phrases).")] = None,
    seed: Annotated[int, typer.Option()] = 0,
    dry_run: Annotated[bool, typer.Option(help="Only list the confusable words; synthesize nothing.")] = False,
    force: Annotated[bool, typer.Option(help="Replace an output folder written by kws with other settings.")] = False,
) -> None:
    """Synthesize words that sound like each keyword ("left": lift, loft, theft...) so a model learns
    the keyword's boundary, not only speech vs not. Train with `kws train --negatives OUT`. A rerun
    with the same settings continues into OUT."""
    keywords, excluded = _split(words), _split(exclude)
    if dry_run:
        for keyword, picks in pick_confusables(keywords, per_word, excluded).items():
            typer.echo(f"{keyword}: " + ", ".join(f"{c.text} ({c.distance})" for c in picks))
        return
    if out is None:
        raise KwsError("--out is required (or use --dry-run to only list the words)")
    config = FeatureConfig() if clip_ms is None else FeatureConfig(clip_ms=clip_ms)
    job = plan_confusables(keywords, out, per_word=per_word, exclude=excluded, engine=engine.value, voices=voices,
                           speeds=speeds, model_dir=model_dir, jobs=jobs, validation_share=validation_share, seed=seed,
                           config=config, force=force)
    for keyword, picks in job.picks.items():
        typer.echo(f"{keyword}: " + ", ".join(f"{c.text} ({c.distance})" for c in picks))
    if not job.word_lists:
        typer.echo("note: no word list in /usr/share/dict (apt-get install wamerican-small wamerican): "
                   "ranked by the CMU dictionary alone, names included")
    counts = run_with_progress(job.synth.label, job.synth.total, job.run)["counts"]
    typer.echo(f"wrote {counts['written']} clips of {len(job.words)} words to {out}"
               + (f" ({counts['existing']} already there)" if counts.get("existing") else "")
               + (f"; skipped {counts['too_long']} longer than {config.clip_ms:g} ms (raise --clip-ms)" if counts.get("too_long") else ""))
    typer.echo(f"train with: kws train --negatives {out} ...")
