"""One synthesis run of a word list with either engine, in two steps: ``prepare_synth`` checks
everything (engine installed, voices, output folder) and plans the clips, so a bad input is one
line before any progress bar; ``SynthJob.run`` writes them. ``kws data synth`` and
``kws data confusables`` both synthesize through it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from data_prep import synth_kokoro as kokoro
from data_prep.config import FeatureConfig
from data_prep.errors import KwsError
from data_prep.synth import espeak_binary, synthesize
from data_prep.synth_output import check_output_folder

ENGINES = ("espeak", "kokoro")
ESPEAK_VOICES = 40


@dataclasses.dataclass(frozen=True)
class SynthJob:
    engine: str
    words: tuple[str, ...]
    out: Path
    total: int  # clips planned
    settings: dict[str, Any]  # what the run depends on, recorded by the engines that write a manifest
    config: FeatureConfig
    espeak_voices: int = ESPEAK_VOICES
    plan: kokoro.Plan | None = None
    model_dir: Path | None = None
    jobs: int | None = None
    force: bool = False

    @property
    def label(self) -> str:
        return "synthesizing" if self.engine == "espeak" else "synthesizing (kokoro)"

    @property
    def speakers(self) -> int:
        return self.espeak_voices if self.plan is None else len(self.plan.speakers)

    def run(self, progress: Callable[[], None] | None = None) -> dict[str, Any]:
        """Write the clips; returns ``{"counts": {"written": ...}}``, for Kokoro its whole manifest."""
        if self.plan is None:
            n = synthesize(self.words, self.out, voices=self.espeak_voices, seed=self.settings["seed"],
                           config=self.config, progress=progress)
            return {"engine": "espeak", "counts": {"written": n, "existing": 0, "too_long": 0}}
        return kokoro.synthesize_kokoro(self.plan, self.out, model_dir=self.model_dir, jobs=self.jobs, force=self.force,
                                        config=self.config, progress=progress)


def prepare_synth(words: Sequence[str], out: Path, *, engine: str = "espeak", voices: str | None = None, blend: int = 0,
                  speeds: str = "1.0", model_dir: Path | None = None, jobs: int | None = None,
                  validation_share: float = 0.1, testing_share: float = 0.0, seed: int = 0,
                  config: FeatureConfig | None = None, force: bool = False) -> SynthJob:
    """Check and plan a run of ``words`` into ``out`` (see ``kws data synth`` for the options)."""
    config = config or FeatureConfig()
    words = tuple(words)
    if engine == "espeak":
        try:
            count = int(voices) if voices is not None else ESPEAK_VOICES
        except ValueError:
            count = 0
        if count < 1:
            raise KwsError(f"--voices {voices!r}: the espeak engine takes a number of voices (>= 1)")
        espeak_binary()
        settings = {"engine": "espeak"}
        check_output_folder(out, settings, force=force)
        return SynthJob("espeak", words, Path(out), len(words) * count, {**settings, "voices": count, "seed": seed},
                        config, espeak_voices=count, force=force)
    if engine != "kokoro":
        raise KwsError(f"unknown synthesis engine {engine!r} (use {' or '.join(ENGINES)})")
    kokoro.check_packages()
    plan = kokoro.plan(words, kokoro.voice_names(model_dir), voices=voices or "all", blend=blend, speeds=speeds,
                       validation_share=validation_share, testing_share=testing_share, seed=seed, config=config)
    check_output_folder(out, plan.settings, force=force)
    return SynthJob("kokoro", plan.words, Path(out), len(plan.tasks()), plan.settings, config, plan=plan,
                    model_dir=model_dir, jobs=jobs, force=force)
