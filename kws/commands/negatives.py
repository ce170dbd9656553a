"""``kws data negatives``: the non-keyword corpus (music, speech, synthetic speech), split once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from data_prep.errors import ConfigError
from data_prep.negatives import Source, build_negatives, count_files, ensure_music


def _sources(specs: list[str], held_out: bool):
    out = []
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise ConfigError(f"--source/--held-out {spec!r}: expected NAME=FOLDER")
        out.append(Source(name=name, path=Path(path), held_out=held_out))
    return out


def negatives(
    out: Annotated[Path, typer.Argument(help="Output folder: <split>/<source>/*.flac + negatives.json.")],
    source: Annotated[Optional[list[str]], typer.Option(help="NAME=FOLDER split by file hash 70/15/15 (repeatable).")] = None,
    held_out: Annotated[Optional[list[str]], typer.Option(help="NAME=FOLDER used for testing only (repeatable).")] = None,
    music: Annotated[bool, typer.Option(help="Add the Debian music package as source 'music' (split by track; "
                                              "apt-get installs it when run as root).")] = False,
    synth_voices: Annotated[int, typer.Option(min=0, help="espeak-ng voices reading non-keyword sentences (split by voice).")] = 0,
    kokoro_voices: Annotated[int, typer.Option(min=0, help="Kokoro-82M speakers (its 54 voices, then blends of two) reading "
                                                    "non-keyword sentences as source 'kokoro' (split by speaker; "
                                                    "needs kws[tts] and the model).")] = 0,
    model_dir: Annotated[Optional[Path], typer.Option(help="Folder of the Kokoro model files (default: "
                                                           "$KWS_KOKORO_DIR or ../shared/tts/kokoro).")] = None,
    seed: Annotated[int, typer.Option()] = 0,
    force: Annotated[bool, typer.Option(help="Replace an existing output folder.")] = False,
) -> None:
    """Decode and split negative audio so training and false-accept measurement never share a file."""
    from rich.progress import Progress

    sources = _sources(source or [], False) + _sources(held_out or [], True)
    if music:
        sources.append(Source(name="music", path=ensure_music()))
    with Progress() as progress:
        task = progress.add_task("decoding", total=count_files(sources) + synth_voices + kokoro_voices)
        manifest = build_negatives(out, sources, synth_voices=synth_voices, kokoro_voices=kokoro_voices,
                                   kokoro_dir=model_dir, seed=seed, force=force,
                                   tick=lambda: progress.advance(task))
    for key, row in manifest["summary"].items():
        if row["files"]:
            typer.echo(f"{key:24s} {row['files']:5d} files {row['seconds'] / 60:7.1f} min")
    for line in manifest["skipped"]:
        typer.echo(f"skipped {line}")
    typer.echo(f"wrote {out} ({len(manifest['skipped'])} unreadable files skipped)")
