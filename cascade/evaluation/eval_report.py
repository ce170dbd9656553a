"""What a clip evaluation returns: typed reports, so commands, the demo and benches read
``report.accuracy`` and ``report.stage1_recall`` instead of spelling keys.

``to_json`` writes the JSON ``kws eval --json`` has always written (same keys, same order),
then the keys added since (``per_label``, ``operating_point``): ``kws report`` and files
written before read the same.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from cascade.evaluation.speaker_spread import SpeakerSpread
from cascade.runtime.operating_points import OperatingPoint
from data_prep.example_features import Skipped


@dataclasses.dataclass(frozen=True)
class ClassMetrics:
    precision: float
    recall: float
    f1: float
    support: int


@dataclasses.dataclass(frozen=True, kw_only=True)
class LabelResult:
    """One label's clips, in counts that add up over labels to the report's totals; the rates
    are None where they are undefined (no clips of the label, nothing predicted as it).
    For a cascade also the clips the stage-1 gate kept from stage 2 (for a keyword: lost
    before stage 2 could see them) and those stage 2 alone got right."""

    label: str
    n: int
    correct: int
    predicted: int  # clips of any label predicted as this one
    gate_closed: int | None = None
    stage2_correct: int | None = None

    @property
    def recall(self) -> float | None:
        return self.correct / self.n if self.n else None

    @property
    def precision(self) -> float | None:
        return self.correct / self.predicted if self.predicted else None

    @property
    def stage2_recall(self) -> float | None:
        return self.stage2_correct / self.n if self.n and self.stage2_correct is not None else None

    def to_json(self) -> dict[str, Any]:
        out = {"n": self.n, "correct": self.correct, "recall": self.recall, "predicted": self.predicted,
               "precision": self.precision}
        if self.gate_closed is not None:
            out["gate_closed"] = self.gate_closed
        if self.stage2_correct is not None:
            out |= {"stage2_correct": self.stage2_correct, "stage2_recall": self.stage2_recall}
        return out


@dataclasses.dataclass(frozen=True, kw_only=True)
class ClassReport:
    """Top-1 accuracy, per-class metrics and the confusion matrix (rows = truth) of one classifier."""

    accuracy: float
    n: int
    labels: tuple[str, ...]
    per_class: dict[str, ClassMetrics]
    confusion: list[list[int]]

    def to_json(self) -> dict[str, Any]:
        return {"accuracy": self.accuracy, "n": self.n, "labels": list(self.labels),
                "per_class": {k: dataclasses.asdict(m) for k, m in self.per_class.items()},
                "confusion": [list(row) for row in self.confusion]}

    def per_label(self, gate_closed: tuple[int, ...] = (), stage2_correct: tuple[int, ...] = ()) -> tuple[LabelResult, ...]:
        """Per label, read off the confusion matrix (so an old JSON gives them too); the
        cascade's per-label gate and stage-2 counts when given (in ``labels`` order)."""
        conf = [[int(v) for v in row] for row in self.confusion]
        return tuple(LabelResult(label=label, n=sum(conf[i]), correct=conf[i][i], predicted=sum(row[i] for row in conf),
                                 gate_closed=gate_closed[i] if gate_closed else None,
                                 stage2_correct=stage2_correct[i] if stage2_correct else None)
                     for i, label in enumerate(self.labels))

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ClassReport:
        """Read back from an evaluation JSON (``labels`` and ``confusion`` at least)."""
        return cls(accuracy=data.get("accuracy"), n=data.get("n"), labels=tuple(data["labels"]),
                   per_class={k: ClassMetrics(**m) for k, m in (data.get("per_class") or {}).items()},
                   confusion=data["confusion"])


class _Headline:
    """accuracy and n of a report: those of its main classifier (``classes``)."""

    @property
    def classes(self) -> ClassReport:
        raise NotImplementedError

    @property
    def accuracy(self) -> float:
        return self.classes.accuracy

    @property
    def n(self) -> int:
        return self.classes.n


@dataclasses.dataclass(frozen=True, kw_only=True)
class EvalReport(_Headline):
    """A cascade bundle on clips: the cascade's report, stage 2 alone, and the gate."""

    cascade: ClassReport
    model: str
    data: str
    split: str
    tau: float
    stage2_accuracy: float
    stage1_recall: float  # share of keyword clips the gate passes
    stage2_invocation_rate: float  # share of all clips that run stage 2
    stage2_invocation_rate_non_keyword: float
    skipped: tuple[Skipped, ...] = ()  # clips that could not be read, left out of n
    long_recordings: int = 0  # files longer than a clip, their word located by energy
    gate_closed: tuple[int, ...] = ()  # per label (``labels`` order): clips the gate kept from stage 2
    stage2_correct: tuple[int, ...] = ()  # per label: clips stage 2 alone got right
    operating_point: OperatingPoint | None = None  # whose thresholds the decisions used (None: argmax)
    speakers: SpeakerSpread | None = None  # the cascade accuracy's spread over speakers
    # the gate's recall over the keyword clips' speakers: its tau was set on the validation
    # speakers, and on others it passes fewer (docs/gate.md, "Every gate at equal stage-2 time")
    gate_speakers: SpeakerSpread | None = None

    @property
    def classes(self) -> ClassReport:
        return self.cascade

    @property
    def per_label(self) -> tuple[LabelResult, ...]:
        return self.cascade.per_label(self.gate_closed, self.stage2_correct)

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        for added in ("cascade", "gate_closed", "stage2_correct", "operating_point", "speakers", "gate_speakers"):
            del data[added]
        data["skipped"] = [s.to_dict() for s in self.skipped]
        out = {**self.cascade.to_json(), **data, "per_label": {r.label: r.to_json() for r in self.per_label}}
        if self.operating_point is not None:
            out["operating_point"] = {"name": self.operating_point.name, **self.operating_point.to_dict()}
        if self.speakers is not None:
            out["speakers"] = self.speakers.to_json()
        if self.gate_speakers is not None:
            out["stage1_recall_speakers"] = self.gate_speakers.to_json()
        return out


@dataclasses.dataclass(frozen=True, kw_only=True)
class ModelEvalReport(_Headline):
    """One model directory on clips: its int8 report (the default) and the float one when
    the Keras model is there."""

    model: str
    data: str
    split: str
    stage: int
    int8: ClassReport
    float_: ClassReport | None = None  # "float" in JSON
    skipped: tuple[Skipped, ...] = ()  # clips that could not be read, left out of n
    long_recordings: int = 0  # files longer than a clip, their word located by energy
    speakers: SpeakerSpread | None = None  # the int8 accuracy's spread over speakers

    @property
    def classes(self) -> ClassReport:
        return self.int8

    @property
    def per_label(self) -> tuple[LabelResult, ...]:
        return self.int8.per_label()

    def to_json(self) -> dict[str, Any]:
        out = {"model": self.model, "data": self.data, "split": self.split, "stage": self.stage,
               **self.int8.to_json(), "int8": {"accuracy": self.int8.accuracy}}
        if self.float_ is not None:
            out["float"] = self.float_.to_json()
        out["skipped"] = [s.to_dict() for s in self.skipped]
        out["long_recordings"] = self.long_recordings
        out["per_label"] = {r.label: r.to_json() for r in self.per_label}
        if self.speakers is not None:
            out["speakers"] = self.speakers.to_json()
        return out
