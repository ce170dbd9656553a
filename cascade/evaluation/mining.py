"""Hard-negative mining: run the cascade over long keyword-free audio and keep the windows
it would fire on, as ``_unknown_`` training clips for the next round.

A window is mined where the step posterior (stage 2's, the gate having opened) gives a
keyword at least ``min_score``, a bar below the detection threshold so near misses are
learnt too; within ``spacing_s`` only the strongest is kept. The clip written is exactly
the audio window the models saw.

With ``gate=True`` the score is stage 1's keyword probability instead: the windows where the
gate opens (``min_score`` = its tau), the material a gate for the wild is trained to shut on
(each opening on music costs a stage-2 run, the energy the cascade exists to save).
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cascade.runtime.bundle import Bundle
from cascade.runtime.model_dir import write_json
from cascade.runtime.pipeline import StreamingCascade
from cascade.runtime.stages import KEYWORD
from cascade.runtime.stream_run import run_blocks
from data_prep.atomic import atomic_dir
from data_prep.audio import audio_files, stream_audio, write_wav
from data_prep.labels import SILENCE, UNKNOWN

MINED = "mined.json"


@dataclasses.dataclass(frozen=True, kw_only=True)
class MiningConfig:
    min_score: float = 0.5
    spacing_s: float = 1.0
    max_per_file: int = 50
    gate: bool = False  # score = stage 1's P(keyword), not stage 2's keyword posterior


def keyword_peaks(times: np.ndarray, posteriors: np.ndarray, labels: Sequence[str], config: MiningConfig) -> list[tuple[float, str, float]]:
    """(t, label, score) of the strongest keyword steps, at least ``spacing_s`` apart."""
    keyword = np.array([name not in (SILENCE, UNKNOWN) for name in labels])
    masked = np.where(keyword[None, :], posteriors, 0.0)
    top, score = masked.argmax(axis=1), masked.max(axis=1)
    chosen: list[int] = []
    for i in np.argsort(-score, kind="stable"):
        if score[i] < config.min_score or len(chosen) >= config.max_per_file:
            break
        if all(abs(times[i] - times[j]) >= config.spacing_s for j in chosen):
            chosen.append(int(i))
    return [(float(times[i]), labels[top[i]], float(score[i])) for i in sorted(chosen)]


def mine_file(bundle: Bundle, path: Path, config: MiningConfig, runner: StreamingCascade) -> tuple[list[tuple[np.ndarray, dict[str, Any]]], float]:
    """(window audio, description) of each mined window of one recording, and its length in
    seconds. Short files are padded with half a window of silence on each side so every part
    of them is heard. The file is read block by block twice (run, then cut the chosen windows),
    so a long recording is never whole in memory."""
    cfg = bundle.config
    pad = np.zeros(cfg.clip_samples // 2, np.float32)

    def padded() -> Iterator[np.ndarray]:
        return itertools.chain([pad], stream_audio(path, cfg.sample_rate), [pad])

    runner.reset()
    result = run_blocks(bundle, padded(), runner=runner)
    if config.gate:
        peaks = keyword_peaks(result.trace_t, result.trace_p_keyword[:, None], (KEYWORD,), config)
    else:
        peaks = keyword_peaks(result.trace_t, result.trace_posterior, bundle.labels, config)
    windows = cut_windows(padded(), [int(round(t * cfg.sample_rate)) for t, _, _ in peaks], cfg.clip_samples)
    out = [(window, {"file": str(path), "t": round(t - len(pad) / cfg.sample_rate, 3), "label": label,
                     "score": round(score, 4)}) for window, (t, label, score) in zip(windows, peaks, strict=True)]
    return out, result.duration_s - 2 * len(pad) / cfg.sample_rate


def cut_windows(blocks: Iterable[np.ndarray], ends: Sequence[int], length: int) -> list[np.ndarray]:
    """The ``length`` samples before each of ``ends`` (ascending sample indices) of a stream
    of blocks, keeping only one window of history."""
    out, todo = [], list(ends)
    tail, pos = np.zeros(0, np.float32), 0  # pos: index of the sample after ``tail``
    for block in blocks:
        buf = np.concatenate([tail, block])
        pos += len(block)
        first = pos - len(buf)  # stream index of buf[0]
        while todo and todo[0] <= pos:
            end = todo.pop(0)
            out.append(buf[max(0, end - length) - first : end - first].copy())
        tail = buf[-length:]
    return out


def mine(bundle: Bundle, folders: Sequence[Path], out: Path, config: MiningConfig = MiningConfig(), *,
         force: bool = False, tick: Callable[[], None] = lambda: None) -> dict[str, Any]:
    """Write mined windows to ``out/<folder name>/<file>_<ms>.wav`` and ``mined.json``
    (temp folder + rename: an interrupted run leaves nothing half-written)."""
    runner = StreamingCascade(bundle)
    rows, seconds = [], 0.0
    with atomic_dir(out, force, marks=(MINED,)) as tmp:
        for folder in folders:
            for path in audio_files(folder):
                windows, length = mine_file(bundle, path, config, runner)
                for window, row in windows:
                    target = tmp / Path(folder).name / f"{path.stem}_{int(row['t'] * 1000):07d}.wav"
                    write_wav(target, window, bundle.config.sample_rate)
                    rows.append(row | {"clip": str(target.relative_to(tmp))})
                seconds += length
                tick()
        by_label: dict[str, int] = {}
        for row in rows:
            by_label[row["label"]] = by_label.get(row["label"], 0) + 1
        summary = {"model": str(bundle.path), "folders": [str(f) for f in folders], "config": dataclasses.asdict(config),
                   "hours": seconds / 3600.0, "mined": len(rows), "per_hour": len(rows) * 3600.0 / seconds if seconds else 0.0,
                   "by_label": by_label, "clips": rows}
        write_json(tmp / MINED, summary)
    return summary
