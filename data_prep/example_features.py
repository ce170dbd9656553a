"""Features of a dataset listing: cached for real files, computed for generated silence.

Evaluation, validation and calibration all call this, so every pass over clean clips goes
through the one cache and the one feature function. ``iter_example_features`` streams them
a bounded batch at a time, so a pass over a dataset larger than memory needs memory for one
batch (plus the cache's few open shard maps), not for the dataset.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from data_prep.audio import load_clip
from data_prep.cache import FeatureCache, compute_features
from data_prep.config import FeatureConfig
from data_prep.errors import AudioError
from data_prep.features import mfcc
from data_prep.speech_commands import Example, example_audio

STREAM_BATCH = 1024  # clips per streamed batch: ~2 MB of features, ~65 MB of audio when decoding


@dataclasses.dataclass(frozen=True)
class Skipped:
    """A clip left out of a pass because it cannot be read: one bad file among thousands
    must not stop an evaluation or a training run, but it must be named."""

    index: int  # position in the examples of the pass
    path: Path
    reason: str  # the loader's one-line error

    def to_dict(self) -> dict[str, Any]:
        return {"file": str(self.path), "reason": self.reason}


def skipped_note(reasons: Sequence[str]) -> str:
    """One line for the user: how many clips were skipped, and the first one's problem."""
    more = f" (and {len(reasons) - 1} more)" if len(reasons) > 1 else ""
    return f"skipped {len(reasons)} unreadable clip{'s' if len(reasons) > 1 else ''}: {reasons[0]}{more}"


def kept_mask(n: int, skipped: Sequence[Skipped]) -> np.ndarray:
    """(n,) bool: True for the examples a pass kept."""
    keep = np.ones(n, dtype=bool)
    keep[[s.index for s in skipped]] = False
    return keep


def _unreadable(examples: Sequence[Example], rows: Sequence[int], config: FeatureConfig) -> dict[int, str]:
    """{row: error} of the file examples that cannot be loaded (only run on a failed batch)."""
    bad = {}
    for i in rows:
        try:
            load_clip(examples[i].path, config)
        except AudioError as exc:
            bad[i] = str(exc)
    return bad


def _batch_features(examples: Sequence[Example], config: FeatureConfig, cache: FeatureCache | None,
                    offset: int = 0, skipped: list[Skipped] | None = None) -> np.ndarray:
    out = np.empty((len(examples), *config.input_shape), dtype=np.float32)
    files = [i for i, e in enumerate(examples) if e.path is not None]
    generated = [i for i, e in enumerate(examples) if e.path is None]

    def features_of(rows: list[int]) -> np.ndarray:
        paths = [examples[i].path for i in rows]
        return cache.features_for(paths) if cache is not None else compute_features(paths, config)

    bad: dict[int, str] = {}
    if files:
        try:
            out[files] = features_of(files)
        except AudioError:
            if skipped is None:
                raise
            bad = _unreadable(examples, files, config)
            if not bad:
                raise
            good = [i for i in files if i not in bad]
            if good:
                out[good] = features_of(good)
    if generated:
        out[generated] = mfcc(np.stack([example_audio(examples[i], config) for i in generated]), config)
    if not bad:
        return out
    assert skipped is not None
    skipped.extend(Skipped(offset + i, examples[i].path, reason) for i, reason in sorted(bad.items()))
    return out[[i for i in range(len(examples)) if i not in bad]]


def iter_example_features(
    examples: Sequence[Example], config: FeatureConfig, cache_dir: Path | None = None, use_cache: bool = True,
    batch_size: int | None = None, skipped: list[Skipped] | None = None,
) -> Iterator[np.ndarray]:
    """(b, T, n_mfcc) float32 MFCC of the examples, in order, ``batch_size`` (default
    ``STREAM_BATCH``) clips at a time. With a ``skipped`` list, unreadable clips are left out
    of the batches and recorded there instead of stopping the pass."""
    batch_size = batch_size or STREAM_BATCH
    with FeatureCache(cache_dir, config) if use_cache else contextlib.nullcontext() as cache:
        for start in range(0, len(examples), batch_size):
            yield _batch_features(examples[start : start + batch_size], config, cache, start, skipped)


def example_features(
    examples: Sequence[Example], config: FeatureConfig, cache_dir: Path | None = None, use_cache: bool = True,
    skipped: list[Skipped] | None = None,
) -> np.ndarray:
    """(N, T, n_mfcc) float32 MFCC of the examples, in order (all in memory: for the small
    splits training validates on; passes over a whole dataset use ``iter_example_features``).
    With ``skipped``, unreadable clips are left out (N shrinks) and recorded there."""
    batches = list(iter_example_features(examples, config, cache_dir, use_cache, skipped=skipped))
    return np.concatenate(batches) if batches else np.zeros((0, *config.input_shape), np.float32)
