"""What each cascade stage classifies.

Stage 2 is the full classifier over the dataset's label set. Stage 1 answers the gate's
question only: is this ``_silence_`` (noise), ``_unknown_`` (other speech) or some keyword.
"""

from __future__ import annotations

from data_prep.labels import SILENCE, UNKNOWN

KEYWORD = "keyword"
STAGE1_LABELS = (SILENCE, UNKNOWN, KEYWORD)


def stage_labels(stage: int, dataset_labels: tuple[str, ...]) -> tuple[str, ...]:
    """Class names, in output order, of a model for ``stage`` trained on these labels."""
    if stage == 2:
        return dataset_labels
    if stage == 1:
        return tuple(name for name in STAGE1_LABELS if name == KEYWORD or name in dataset_labels)
    raise ValueError(f"stage must be 1 or 2, got {stage}")


def stage_targets(stage: int, dataset_labels: tuple[str, ...], labels: list[str]) -> list[int]:
    """Map dataset label names to class indices of the stage's model."""
    names = stage_labels(stage, dataset_labels)
    if stage == 2:
        return [names.index(label) for label in labels]
    return [names.index(label if label in (SILENCE, UNKNOWN) else KEYWORD) for label in labels]
