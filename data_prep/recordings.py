"""Training clips of recordings of any length: the located window, the audio around it for
jitter, and what the user should hear about long recordings.

A recording longer than the clip is cut where its word is (``data_prep.locate``), the same
window every other path sees; training then moves that window by up to ``JITTER_MS`` either
way, within the recording, so the model does not learn one exact alignment. A clip of
exactly one clip length has no room to move and trains exactly as before.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import soundfile as sf

from data_prep.audio import clip_of, load_recording
from data_prep.config import FeatureConfig
from data_prep.errors import AudioError
from data_prep.example_features import Skipped
from data_prep.locate import JITTER_MS, is_long, long_clips_notice, speech_span, too_long_notice, word_start
from data_prep.speech_commands import Example, example_audio

JITTER_STREAM = 0x6A  # the jitter draws its own stream: adding it changes no other draw
TOO_LONG_SHARE = 0.25  # this share of a word's long recordings with longer speech: warn
TOO_LONG_MIN = 3


@dataclasses.dataclass(frozen=True)
class Context:
    """``margin`` samples before and after each clip's window, and how far (samples) the
    window may move left / right inside its recording: (N, 2), zero for one-clip files."""

    before: np.ndarray  # (N, margin) float32
    after: np.ndarray  # (N, margin) float32
    room: np.ndarray  # (N, 2) int64

    def jittered(self, clip: np.ndarray, index: int, seed: int, epoch: int) -> np.ndarray:
        """``clip`` moved by this (seed, epoch, clip)'s draw within its room."""
        left, right = (int(v) for v in self.room[index])
        if left == right == 0:
            return clip
        shift = int(np.random.default_rng([seed, epoch, index, JITTER_STREAM]).integers(-left, right + 1))
        margin = self.before.shape[1]
        whole = np.concatenate([self.before[index], clip, self.after[index]])
        return whole[margin + shift : margin + shift + len(clip)]

    @staticmethod
    def join(parts: Sequence[Context]) -> Context:
        return Context(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in dataclasses.fields(Context)))

    @staticmethod
    def none(n: int, margin: int) -> Context:
        return Context(np.zeros((n, margin), np.float32), np.zeros((n, margin), np.float32), np.zeros((n, 2), np.int64))


@dataclasses.dataclass(frozen=True)
class RecordingClips:
    clips: np.ndarray  # (N, L) float32: the located windows
    context: Context | None  # None: no recording is longer than a clip
    notices: tuple[str, ...]  # what to tell the user, once


def count_long(examples: Sequence[Example], config: FeatureConfig) -> int:
    """How many example files are longer than a clip, from their headers only (cheap: a pass
    over cached features does not decode, yet should still say that words were located)."""
    count = 0
    for example in examples:
        if example.path is None or not Path(example.path).is_file():
            continue  # a FIFO would block the header read; the loader names what is wrong
        try:
            info = sf.info(str(example.path))
        except (sf.LibsndfileError, RuntimeError, OSError):
            continue  # the loader names the problem when the features are made
        n = int(info.frames * config.sample_rate / info.samplerate) if info.samplerate else 0
        count += is_long(n, config.clip_samples, config.sample_rate)
    return count


def jitter_margin(config: FeatureConfig) -> int:
    return round(config.sample_rate * JITTER_MS / 1000.0)


def recording_clips(examples: Sequence[Example], config: FeatureConfig,
                    skipped: list[Skipped] | None = None) -> RecordingClips:
    """(N, L) audio of the examples (the input of on-the-fly augmentation), with context.
    With ``skipped``, unreadable clips are left out (N shrinks) and recorded there."""
    length, margin = config.clip_samples, jitter_margin(config)
    clips = np.empty((len(examples), length), dtype=np.float32)
    context = Context.none(len(examples), margin)
    spans: dict[str, list[int]] = defaultdict(list)
    row = 0
    for i, example in enumerate(examples):
        if example.path is None:
            clips[row] = example_audio(example, config)
            row += 1
            continue
        try:
            samples = load_recording(example.path, config)
        except AudioError as exc:
            if skipped is None:
                raise
            skipped.append(Skipped(i, example.path, str(exc)))
            continue
        clips[row] = clip_of(samples, config)
        if is_long(len(samples), length, config.sample_rate):
            start = word_start(samples, length, config.sample_rate)
            before = samples[max(0, start - margin) : start]
            after = samples[start + length : start + length + margin]
            context.before[row, margin - len(before) :] = before
            context.after[row, : len(after)] = after
            context.room[row] = (len(before), len(after))
            spans[example.label].append(speech_span(samples, config.sample_rate))
        row += 1
    long = sum(len(v) for v in spans.values())
    notices = [long_clips_notice(long, config.clip_ms)] if long else []
    notices += phrase_notices(spans, config)
    kept = Context(context.before[:row], context.after[:row], context.room[:row]) if long else None
    return RecordingClips(clips[:row], kept, tuple(notices))


def phrase_notices(spans: dict[str, list[int]], config: FeatureConfig) -> list[str]:
    """A warning per word whose recordings often hold more speech than fits in a clip."""
    out = []
    for label, values in sorted(spans.items()):
        over = [v for v in values if v > config.clip_samples]
        if len(over) >= TOO_LONG_MIN and len(over) >= TOO_LONG_SHARE * len(values):
            median_ms = float(np.median(over)) * 1000.0 / config.sample_rate
            out.append(too_long_notice(label, len(over), len(values), median_ms, config.clip_ms))
    return out
