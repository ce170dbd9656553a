"""Clips of the words that sound like the keywords, in the Speech Commands layout, for training.

For each keyword, ``per_word`` confusable words (data_prep.confusables; the other keywords are
never among them) are synthesized with many voices through the shared synthesis run
(data_prep.synth_run: espeak-ng or Kokoro), one folder per word, and ``confusables.json`` lists
keyword -> words with their phoneme distances. None of these folders is a label, so the folder
trains as ``_unknown_`` with ``kws train --negatives OUT``: every clip is used. (With
``--extra-data`` the folder is refused, as it lacks the keywords' folders, and its unknown
words would be drawn down to ``--unknown-pct`` of its zero keyword clips anyway.)

A rerun with the same settings continues into the folder (Kokoro skips the clips on disk);
other settings need ``--force``, which replaces a folder kws wrote (moved aside, deleted once
the new one is complete, put back if the new run fails).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from data_prep.atomic import temp_sibling, write_text_atomic
from data_prep.config import FeatureConfig
from data_prep.confusables import Confusable, confusables, default_index
from data_prep.errors import KwsError
from data_prep.outputs import refuse_existing
from data_prep.synth_clips import word_folder
from data_prep.synth_output import CONFUSABLES_MANIFEST as MANIFEST
from data_prep.synth_output import MANIFEST as SYNTH_MANIFEST
from data_prep.synth_run import SynthJob, prepare_synth

PER_WORD = 20


@dataclasses.dataclass(frozen=True)
class ConfusablesJob:
    out: Path
    picks: dict[str, list[Confusable]]  # keyword -> its confusables, closest first
    settings: dict[str, Any]
    synth: SynthJob
    replace: bool  # --force over an earlier folder of other settings
    word_lists: tuple[str, ...]

    @property
    def words(self) -> list[str]:
        """Every confusable once, in keyword order."""
        return list(dict.fromkeys(c.text for picks in self.picks.values() for c in picks))

    def manifest(self, complete: bool, counts: dict[str, Any] | None = None) -> dict[str, Any]:
        return {"complete": complete, "settings": self.settings, "word_lists": list(self.word_lists),
                "keywords": {k: [c.as_json() | {"folder": word_folder(c.text)} for c in v] for k, v in self.picks.items()},
                "counts": counts or {}, "use": f"kws train --negatives {self.out}"}

    def run(self, progress: Callable[[], None] | None = None) -> dict[str, Any]:
        """Synthesize every confusable into ``out``; returns the manifest written there."""
        old = temp_sibling(self.out, "old") if self.replace else None
        if old is not None:
            self.out.rename(old)
        try:
            self.out.mkdir(parents=True, exist_ok=True)
            write_text_atomic(self.out / MANIFEST, json.dumps(self.manifest(False), indent=2) + "\n")
            result = self.synth.run(progress)
        except BaseException:
            if old is not None:
                shutil.rmtree(self.out, ignore_errors=True)
                old.rename(self.out)
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        manifest = self.manifest(True, result["counts"])
        write_text_atomic(self.out / MANIFEST, json.dumps(manifest, indent=2) + "\n")
        return manifest


def pick_confusables(keywords: Sequence[str], per_word: int = PER_WORD,
                     exclude: Iterable[str] = ()) -> dict[str, list[Confusable]]:
    """keyword -> ``per_word`` confusables, never one of the keywords or of ``exclude``."""
    if per_word < 1:
        raise KwsError(f"--per-word {per_word}: at least 1")
    keywords = list(dict.fromkeys(" ".join(k.lower().split()) for k in keywords if k.strip()))
    if not keywords:
        raise KwsError("no keywords given (--words)")
    banned = [*keywords, *exclude]
    picks = {k: confusables(k, per_word, exclude=[b for b in banned if b != k]) for k in keywords}
    empty = [k for k, v in picks.items() if not v]
    if empty:
        raise KwsError(f"no confusable words found for {', '.join(map(repr, empty))}")
    return picks


def plan_confusables(keywords: Sequence[str], out: Path, *, per_word: int = PER_WORD, exclude: Iterable[str] = (),
                     engine: str = "espeak", voices: str | None = None, speeds: str = "1.0",
                     model_dir: Path | None = None, jobs: int | None = None, validation_share: float = 0.1,
                     seed: int = 0, config: FeatureConfig | None = None, force: bool = False) -> ConfusablesJob:
    """Choose the words and check everything (engine, voices, output folder) before any audio."""
    exclude = sorted({" ".join(e.lower().split()) for e in exclude if e.strip()})
    picks = pick_confusables(keywords, per_word, exclude)
    words = list(dict.fromkeys(c.text for v in picks.values() for c in v))
    out = Path(out)
    synth_options = {"engine": engine, "voices": voices, "speeds": speeds, "validation_share": validation_share,
                     "seed": seed}
    config = config or FeatureConfig()
    settings = {"keywords": list(picks), "per_word": per_word, "exclude": exclude, "words": words, **synth_options,
                "sample_rate": config.sample_rate, "clip_ms": config.clip_ms}
    replace = not _resumes(out, settings) and _occupied(out)
    if replace:
        refuse_existing(out, force, marks=(MANIFEST, SYNTH_MANIFEST), hint="replace it")
    # The folder is decided above (new, resumed or replaced): the synth run may write into it.
    synth = prepare_synth(words, out, engine=engine, voices=voices, speeds=speeds, model_dir=model_dir, jobs=jobs,
                          validation_share=validation_share, seed=seed, config=config, force=True)
    return ConfusablesJob(out, picks, settings, synth, replace, default_index().word_lists)


def make_confusables(keywords: Sequence[str], out: Path, *, per_word: int = PER_WORD, engine: str = "espeak",
                     exclude: Iterable[str] = (), voices: str | None = None, speeds: str = "1.0",
                     model_dir: Path | None = None, jobs: int | None = None, validation_share: float = 0.1,
                     seed: int = 0, config: FeatureConfig | None = None, force: bool = False,
                     progress: Callable[[], None] | None = None) -> Path:
    """Confusable-word clips of ``keywords`` in ``out``, to train with ``--negatives out``; returns
    ``out``. The options are ``kws data confusables``'s; ``progress`` is called once per clip."""
    job = plan_confusables(keywords, out, per_word=per_word, exclude=exclude, engine=engine, voices=voices,
                           speeds=speeds, model_dir=model_dir, jobs=jobs, validation_share=validation_share, seed=seed,
                           config=config, force=force)
    job.run(progress)
    return job.out


def _occupied(out: Path) -> bool:
    return out.exists() and (not out.is_dir() or any(out.iterdir()))


def _resumes(out: Path, settings: dict[str, Any]) -> bool:
    """Whether ``out`` holds an earlier run of exactly these settings."""
    path = out / MANIFEST
    if not path.is_file():
        return False
    try:
        previous = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(previous, dict) and previous.get("settings") == json.loads(json.dumps(settings))
