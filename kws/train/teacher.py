"""Distillation from a teacher model that has its own front end and its own label order.

A teacher is a ``TeacherAdapter``: what it is (name, source, label order, feature recipe) and a
function from a waveform batch to probabilities. It sees the *same* augmented waveform as the
student (after noise, shift and gain, before our MFCC) and computes its own features from it.

The student's target for a clip is ``weight * teacher + (1 - weight) * one-hot``, with the
teacher's probabilities softened by ``temperature`` (on log-probabilities, which are its logits
up to a per-row constant, so the softmax is the same) and mapped onto the student's classes by
name:

- a teacher word that is a student class goes to it; stage 1 sums every keyword's mass into
  ``keyword``; ``_silence_`` goes to ``_silence_``;
- a teacher word the student does not classify, and the teacher's ``_unknown_``, go to the
  student's ``_unknown_``;
- mass with nowhere to go (e.g. the student has no ``_unknown_``) goes to the clip's own label,
  so no class the teacher cannot speak of gets invented mass;
- a clip whose label is a word the teacher does not know (a custom keyword) gets its one-hot
  only: the teacher's ``_unknown_`` would teach "not a keyword" for the keyword itself. So does
  a clip the teacher's front end cannot read (digital silence: NaN probabilities);
- for stage 2, a window of ``--negatives`` audio (music, other speech, mined windows: known to
  hold no keyword) keeps the teacher's split between ``_silence_`` and ``_unknown_``, but the mass
  the teacher puts on keywords goes to its own label: there the teacher is wrong by construction,
  and copying it teaches the decider the teacher's false accepts (measured: docs/distillation.md,
  "The teacher on negatives"). A gate keeps its teacher's keyword mass there: it is a filter for
  stage 2, and the same rule measured worse for it.

Caching: the teacher's output on a *clean* clip never changes, so in an epoch whose
augmentation is an identity (no noise, shift or gain: the student hears the clip itself) it is
computed once per training clip and kept, keyed by the clip's index. Augmented inputs are
drawn anew for every (epoch, clip) from the run's seed, so a teacher output on one is never
asked for again (a resumed epoch recomputes the same one): caching them would cost memory and
save nothing. Validation runs on hard labels (they pick the best model); the teacher's own
validation accuracy is measured once at the start of a run, a check that its front end and
label order are right.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cascade.runtime.stages import KEYWORD, stage_labels
from data_prep.errors import ConfigError
from data_prep.labels import RESERVED, SILENCE, UNKNOWN
from kws.train import teacher_kws, teacher_mlperf


@dataclasses.dataclass(frozen=True)
class TeacherAdapter:
    """A teacher: ``predict`` maps (B, L) audio to (B, len(labels)) probabilities in
    ``labels`` order (NaN rows: no opinion); ``recipe`` is its own front end."""

    name: str
    source: str
    labels: tuple[str, ...]
    recipe: Any
    sample_rate: int
    clip_samples: int
    predict: Callable[[np.ndarray], np.ndarray] = dataclasses.field(compare=False, repr=False)


def _mlperf(path: Path) -> TeacherAdapter:
    recipe = teacher_mlperf.MlperfFrontEnd()
    model = teacher_mlperf.MlperfTeacher(path, recipe)
    return TeacherAdapter(teacher_mlperf.NAME, str(model.file), teacher_mlperf.LABELS, recipe,
                          recipe.sample_rate, recipe.clip_samples, model)


def _kws_model(path: Path) -> TeacherAdapter:
    model = teacher_kws.KwsModelTeacher(path)
    config = model.model.config
    return TeacherAdapter(teacher_kws.NAME, str(model.model.path), model.labels, config,
                          config.sample_rate, config.clip_samples, model)


@dataclasses.dataclass(frozen=True)
class _Kind:
    recognises: Callable[[Path], bool]  # does this path hold such a teacher?
    labels: Callable[[Path], tuple[str, ...]]  # what it classifies, without loading the model
    load: Callable[[Path], TeacherAdapter]


ADAPTERS: dict[str, _Kind] = {
    teacher_mlperf.NAME: _Kind(lambda p: teacher_mlperf.model_file(p) is not None, lambda p: teacher_mlperf.LABELS, _mlperf),
    teacher_kws.NAME: _Kind(teacher_kws.recognises, teacher_kws.model_labels, _kws_model),
}


def recognise_teacher(path: Path) -> str:
    """The adapter name for the teacher at ``path``, or a ConfigError naming what is expected."""
    for name, kind in ADAPTERS.items():
        if kind.recognises(path):
            return name
    raise ConfigError(f"--teacher {path}: not a known teacher (expected an MLPerf Tiny KWS folder with "
                      f"{' or '.join(teacher_mlperf.MODEL_FILES)}, or a model directory kws trained)")


def teacher_labels(path: Path) -> tuple[str, ...]:
    """The labels of the teacher at ``path`` (ConfigError if it is none), without loading it."""
    return ADAPTERS[recognise_teacher(path)].labels(path)


def load_teacher(path: Path, adapter: str = "") -> TeacherAdapter:
    """Load the teacher at ``path`` with ``adapter`` (recognised from the files if empty)."""
    name = adapter or recognise_teacher(path)
    if name not in ADAPTERS:
        raise ConfigError(f"teacher adapter {name!r} is not one of {sorted(ADAPTERS)}")
    return ADAPTERS[name].load(path)


def label_map(teacher_labels: Sequence[str], dataset_labels: Sequence[str], stage: int) -> np.ndarray:
    """(K_teacher, K_student) 0/1 matrix, student classes in ``stage_labels`` order: where each
    teacher class's mass goes (module doc); an all-zero row has no destination."""
    student = list(stage_labels(stage, tuple(dataset_labels)))
    out = np.zeros((len(teacher_labels), len(student)), dtype=np.float32)
    for row, name in enumerate(teacher_labels):
        if name in (SILENCE, UNKNOWN):
            dest = name
        elif name in dataset_labels:
            dest = KEYWORD if stage == 1 else name
        else:
            dest = UNKNOWN
        if dest in student:
            out[row, student.index(dest)] = 1.0
    return out


def trusted_labels(teacher_labels: Sequence[str], dataset_labels: Sequence[str]) -> frozenset[str]:
    """Dataset labels whose clips the teacher can judge: ``_silence_``, ``_unknown_`` and the
    words it knows (not a custom keyword it never heard)."""
    return frozenset(name for name in dataset_labels if name in (SILENCE, UNKNOWN) or name in teacher_labels)


def soften(probs: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(log(probs) / T) per row (T = 1: the probabilities themselves); NaN rows stay NaN."""
    if temperature == 1.0:
        return probs
    logits = np.log(np.maximum(probs, 1e-12)) / temperature
    logits -= logits.max(axis=-1, keepdims=True)
    soft = np.exp(logits)
    return (soft / soft.sum(axis=-1, keepdims=True)).astype(np.float32)


def without_keywords(probs: np.ndarray, own: np.ndarray, keyword_columns: np.ndarray) -> np.ndarray:
    """``probs`` (B, K) with the mass on ``keyword_columns`` moved to each row's own label ``own`` (one-hot)."""
    out = np.where(keyword_columns, 0.0, probs)
    return (out + probs[:, keyword_columns].sum(axis=-1, keepdims=True) * own).astype(np.float32)


def one_hot(targets: np.ndarray, num_classes: int) -> np.ndarray:
    return np.eye(num_classes, dtype=np.float32)[np.asarray(targets, dtype=np.int64)]


@dataclasses.dataclass(frozen=True, eq=False)
class Distillation:
    """Soft targets of a training run from its teacher, per clip of the training arrays."""

    teacher: TeacherAdapter
    mapping: np.ndarray  # (K_teacher, K_student), see label_map
    trusted: np.ndarray  # (N,) bool per training clip: its label is one the teacher knows
    weight: float
    temperature: float
    negative: np.ndarray  # (N,) bool per training clip: a negatives window, no keyword mass taught
    keyword_columns: np.ndarray  # (K_s,) bool: the student's keyword classes
    clean: dict[int, np.ndarray] = dataclasses.field(default_factory=dict, compare=False, repr=False)
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock, compare=False, repr=False)

    @classmethod
    def build(cls, teacher: TeacherAdapter, dataset_labels: Sequence[str], stage: int,
              clip_labels: Sequence[str], weight: float, temperature: float,
              negative: Sequence[bool] = ()) -> "Distillation":
        """``clip_labels``: the dataset label of each training clip, in training-array order;
        ``negative``: which of them are negatives windows (none when empty; stage 2 only)."""
        known = trusted_labels(teacher.labels, dataset_labels)
        trusted = np.asarray([label in known for label in clip_labels], dtype=bool)
        negative = np.asarray(negative, dtype=bool) if len(negative) else np.zeros(len(trusted), dtype=bool)
        if negative.shape != trusted.shape:
            raise ValueError(f"negative marks {negative.shape[0]} clips, clip_labels {trusted.shape[0]}")
        if stage != 2:
            negative = np.zeros_like(negative)  # the gate imitates its teacher everywhere (module doc)
        keyword_columns = np.asarray([n not in RESERVED for n in stage_labels(stage, tuple(dataset_labels))], dtype=bool)
        return cls(teacher, label_map(teacher.labels, dataset_labels, stage), trusted, weight, temperature,
                   negative, keyword_columns)

    def student_probs(self, teacher_probs: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """Teacher probabilities (B, K_t) -> softened, mapped (B, K_s); mass without a
        destination goes to the clip's own label."""
        mapped = soften(teacher_probs, self.temperature) @ self.mapping
        own = one_hot(targets, self.mapping.shape[1])
        return mapped + (1.0 - mapped.sum(axis=-1, keepdims=True)) * own

    def soft_targets(self, audio: np.ndarray, indices: np.ndarray, targets: np.ndarray, clean: bool = False) -> np.ndarray:
        """(B, K_s) float32 targets for the clips ``indices`` heard as ``audio``; ``clean``: the
        audio is the unaugmented clip, so the teacher output is cached by clip index."""
        indices = np.asarray(indices, dtype=np.int64)
        probs = self.clean_probs(audio, indices) if clean else self.teacher.predict(audio)
        own = one_hot(targets, self.mapping.shape[1])
        if len(indices) == 0:
            return own
        usable = self.trusted[indices] & ~np.isnan(probs).any(axis=-1)
        out = own.copy()
        if usable.any():
            taught, own_used = self.student_probs(probs[usable], targets[usable]), own[usable]
            negative = self.negative[indices][usable]
            taught[negative] = without_keywords(taught[negative], own_used[negative], self.keyword_columns)
            out[usable] = self.weight * taught + (1.0 - self.weight) * own_used
        return out.astype(np.float32)

    def clean_probs(self, audio: np.ndarray, indices: np.ndarray) -> np.ndarray:
        """Teacher probabilities of clean clips, computed once per clip index."""
        with self.lock:
            missing = [row for row, i in enumerate(indices) if int(i) not in self.clean]
        if missing:
            fresh = self.teacher.predict(audio[missing])
            with self.lock:
                for row, probs in zip(missing, fresh):
                    self.clean[int(indices[row])] = probs
        if len(indices) == 0:
            return np.zeros((0, len(self.teacher.labels)), np.float32)
        with self.lock:
            return np.stack([self.clean[int(i)] for i in indices])


def teacher_accuracy(teacher: TeacherAdapter, audio: np.ndarray, targets: np.ndarray,
                     dataset_labels: Sequence[str], stage: int) -> float:
    """Share of clips whose mapped teacher argmax is the stage target (NaN rows count as wrong):
    the check that its front end and label order are right before it teaches anything."""
    mapped = np.nan_to_num(teacher.predict(audio), nan=0.0) @ label_map(teacher.labels, dataset_labels, stage)
    return float(np.mean(mapped.argmax(axis=-1) == np.asarray(targets))) if len(targets) else float("nan")
