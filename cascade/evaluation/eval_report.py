"""What a clip evaluation returns: typed reports, so commands, the demo and benches read
``report.accuracy`` and ``report.stage1_recall`` instead of spelling keys.

``to_json`` writes the JSON ``kws eval --json`` has always written (same keys, same order):
``kws report`` and files written before read the same.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from data_prep.example_features import Skipped


@dataclasses.dataclass(frozen=True)
class ClassMetrics:
    precision: float
    recall: float
    f1: float
    support: int


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

    @property
    def classes(self) -> ClassReport:
        return self.cascade

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        del data["cascade"]
        data["skipped"] = [s.to_dict() for s in self.skipped]
        return {**self.cascade.to_json(), **data}


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

    @property
    def classes(self) -> ClassReport:
        return self.int8

    def to_json(self) -> dict[str, Any]:
        out = {"model": self.model, "data": self.data, "split": self.split, "stage": self.stage,
               **self.int8.to_json(), "int8": {"accuracy": self.int8.accuracy}}
        if self.float_ is not None:
            out["float"] = self.float_.to_json()
        out["skipped"] = [s.to_dict() for s in self.skipped]
        out["long_recordings"] = self.long_recordings
        return out
