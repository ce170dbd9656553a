"""How often the gate opens on audio with no keyword in it: the figure that sets a cascade's
energy, since an always-on listener hears mostly noise and other speech."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cascade.bundle import Bundle
from cascade.pipeline import StreamingCascade
from cascade.stream_run import run_stream
from data_prep.audio import load_audio


def keyword_free_rate(bundle: Bundle, noise_files: Sequence[Path], speech_files: Sequence[Path] = (),
                      gap_s: float = 0.5) -> dict[str, Any]:
    """Stream background noise files, then non-keyword speech clips (joined by ``gap_s`` of
    silence), through the streaming cascade; stage-2 runs per second and per step."""
    rate = bundle.config.sample_rate
    streams = [load_audio(p, rate) for p in noise_files]
    if speech_files:
        gap = np.zeros(int(gap_s * rate), np.float32)
        streams.append(np.concatenate([part for p in speech_files for part in (load_audio(p, rate), gap)]))
    runner = StreamingCascade(bundle)
    seconds = steps = runs = 0
    for audio in streams:
        runner.reset()
        result = run_stream(bundle, audio, runner=runner, chunk_samples=rate)
        seconds, steps, runs = seconds + result.duration_s, steps + result.steps, runs + result.stage2_runs
    return {"seconds": seconds, "steps": steps, "stage2_runs": runs,
            "stage2_per_s": runs / seconds if seconds else 0.0, "stage2_share": runs / steps if steps else 0.0,
            "noise_files": [Path(p).name for p in noise_files], "speech_clips": len(speech_files)}
