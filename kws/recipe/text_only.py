"""Keywords with no recordings: ``kws cascade train DATA --labels hey_kws --synth N`` where DATA
has no ``hey_kws/`` folder. Kokoro speaks the keyword in N speakers (voices, then blends of
two); a tenth of them (at least one) are held out, so the gate's tau and the operating points
are set on voices nobody trained on; and the recipe's data becomes a view (WORK/data): DATA's
clips in their own splits plus those voices (data_prep/dataset_view.py), which every later step
reads as it would read recordings. Before this, such a run stopped at "labels not in the
dataset" and a user without recordings had to assemble that folder by hand.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from data_prep import synth_kokoro as kokoro
from data_prep.config import FeatureConfig
from data_prep.dataset_view import build_view
from data_prep.errors import KwsError
from data_prep.speech_commands import scan_folder
from data_prep.synth_clips import word_folder
from data_prep.synth_output import read_manifest
from data_prep.synth_run import prepare_synth
from kws.recipe.config import CascadeRecipe, check_data, spoken

VOICES, VIEW = "keyword_voices", "data"  # under the work folder
HELD_OUT = 0.1  # share of the keyword's speakers that only validate and calibrate
MEASURED = 500  # speakers per keyword in docs/custom_keywords.md's text-only study

Runner = Callable[[str, int, Callable[[Callable[[], None]], dict[str, Any]]], dict[str, Any]]


def unrecorded(recipe: CascadeRecipe) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(the keywords with no folder in the data, the data's word folders)."""
    present = scan_folder(Path(recipe.data)).words
    return tuple(k for k in recipe.keywords if k not in present), present


def check_text_only(recipe: CascadeRecipe) -> tuple[str, ...]:
    """The unrecorded keywords, once the run can train them from text (else one line saying
    what to add): called before the work folder is made, so a refused run writes nothing."""
    words, present = unrecorded(recipe)
    if not words:
        return words
    folders = {k: word_folder(spoken(k)) for k in words}  # where the synthesis puts each one's voices
    renamed = {k: f for k, f in folders.items() if f != k}
    if renamed:  # a label that names another folder would find none of them
        raise KwsError(f"{', '.join(renamed)}: a keyword trained from text is the name of the folder its voices go "
                       f"in; write it as {', '.join(renamed.values())} (lower case, '_' between words)")
    data = Path(recipe.data)
    if recipe.synth == 0:
        raise KwsError(f"{data}: no recordings of {', '.join(words)} (its word folders: {', '.join(present)}); to "
                       f"train from text only add --synth N (N Kokoro speakers say it; {MEASURED} measured, "
                       f"docs/custom_keywords.md), or record it into {data / words[0]}/")
    if recipe.synth_engine != "kokoro":
        raise KwsError(f"{', '.join(words)}: no recordings, and training from text needs the Kokoro voices "
                       "(held-out speakers calibrate the gate; espeak-ng's voices are too few and too alike): "
                       "put the model in $KWS_KOKORO_DIR (kws data synth --help) or record the keyword")
    if recipe.synth < 2:
        raise KwsError(f"--synth {recipe.synth}: a keyword trained from text needs at least 2 speakers "
                       f"(one to train, one to hold out); {MEASURED} measured")
    recorded = [k for k in recipe.keywords if k not in words]
    if recorded:  # what check_data would refuse after the synthesis, refused before it
        check_data(dataclasses.replace(recipe, labels=",".join(recorded)))
    return words


def with_text_only(recipe: CascadeRecipe, words: tuple[str, ...], work: Path, features: FeatureConfig,
                   run: Runner | None = None) -> tuple[CascadeRecipe, str]:
    """The recipe reading the view, for the unrecorded ``words`` (``check_text_only``'s), and
    what to tell the user. ``run(label, total, job)``: how to run the synthesis (a progress
    bar); None runs it bare. Synthesis resumes: clips on disk are kept while the settings hold."""
    data = Path(recipe.data)
    folder = Path(work) / VOICES
    names = kokoro.voice_names()
    voices, blend = kokoro.voices_for_clips(recipe.synth, names, recipe.seed)
    said = [spoken(k) for k in words]
    settings = dict(voices=voices, blend=blend, speeds=kokoro.SPEED_RANGE,
                    validation_share=max(HELD_OUT, 1.0 / recipe.synth), seed=recipe.seed, config=features)
    planned = kokoro.plan(said, names, **settings).settings
    previous = read_manifest(folder) if folder.is_dir() else None
    if previous is not None and previous.get("settings") != json.loads(json.dumps(planned)):
        shutil.rmtree(folder)  # ours (inside the work folder): other settings start over
    job = prepare_synth(said, folder, engine="kokoro", **settings)
    manifest = run(f"{job.label}: {', '.join(said)}", job.total, job.run) if run else job.run(None)
    counts = manifest["counts"]
    if counts["too_long"] and not counts["written"] + counts["existing"]:
        raise KwsError(f"{', '.join(said)}: longer than the {features.clip_ms:g} ms clip in every voice; "
                       "raise --clip-ms (e.g. 1500 for a two-word phrase)")
    per_split = build_view(data, folder, words, Path(work) / VIEW)
    view = dataclasses.replace(recipe, data=str(Path(work) / VIEW), text_only=words)
    splits = "; ".join(f"{w}: {c['training']} training, {c['validation']} held-out clips" for w, c in per_split.items())
    return view, (f"no recordings of {', '.join(words)} in {data}: trained from text ({len(job.plan.speakers)} Kokoro "
                  f"speakers; {splits}); the steps read {view.data} ({data}'s clips linked, plus those voices)")
