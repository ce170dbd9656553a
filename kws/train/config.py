"""TrainConfig: how a model is trained, saved next to it so the run can be reproduced."""

from __future__ import annotations

import dataclasses
from typing import Any

from data_prep.augment import AugmentConfig
from data_prep.errors import ConfigError
from data_prep.spec_augment import MaskConfig

# The model zoo's names (kws.train.models registers their builders; a test checks both agree):
# spelled here so the CLI can offer them without importing Keras.
ARCHS = ("bc_resnet", "ds_cnn", "tc_resnet", "tiny")
KEEP = ("best", "last")


# TrainConfig fields added after recipe work folders existed, with their defaults (step_key).
LATER_FIELDS: dict[str, Any] = {"freeze": 0, "frozen_bn": False}


@dataclasses.dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """Training settings. ``keyword_boost`` multiplies the keyword class weight of stage 1,
    which trades false wake-ups for recall: the gate must not lose keywords."""

    stage: int = 2
    arch: str = "ds_cnn"
    arch_params: dict[str, Any] = dataclasses.field(default_factory=dict)
    labels: str = "12"
    epochs: int = 60
    batch_size: int = 64
    learning_rate: float = 3e-3
    patience: int = 15
    keep: str = "best"  # "best": the best validation epoch; "last": the end of the schedule
    seed: int = 0
    silence_pct: float = 10.0
    unknown_pct: float = 10.0
    keyword_boost: float = 2.0
    representative_samples: int = 500
    extra_data: tuple[str, ...] = ()  # more Speech Commands-layout folders: all their clips train
    negatives: tuple[str, ...] = ()  # folders of other audio (speech, music): training _unknown_
    # Folders whose audio joins the background-noise pool: keywords are heard over music and
    # other talkers, not only over the six noise files. ``background_share``: the share of
    # noisy clips that draw from these folders (split evenly between them).
    backgrounds: tuple[str, ...] = ()
    background_share: float = 0.5
    init_from: str = ""  # a trained model dir of the same arch/labels: start from its weights and normalisation
    # Transfer learning (kws/train/freeze.py): the first ``freeze`` weighted layers of the warm
    # start keep their weights; 0 trains every layer.
    freeze: int = 0
    frozen_bn: bool = False  # every batch norm keeps the warm start's statistics (freeze.py)
    # Distillation (kws.train.teacher): targets = teacher_weight * teacher soft targets
    # + (1 - teacher_weight) * one-hot; the adapter name says how the teacher at ``teacher``
    # hears a waveform and names its classes ("": recognised from the files). "" = no teacher.
    teacher: str = ""
    teacher_adapter: str = ""
    teacher_weight: float = 0.7
    temperature: float = 1.0
    augment: AugmentConfig = dataclasses.field(default_factory=AugmentConfig)
    masks: MaskConfig = dataclasses.field(default_factory=MaskConfig)

    def __post_init__(self) -> None:
        if self.stage not in (1, 2):
            raise ConfigError(f"stage must be 1 or 2, got {self.stage}")
        if not isinstance(self.arch_params, dict):
            raise ConfigError(f"--arch-params {self.arch_params!r}: expected a JSON object of the model's parameters")
        for name in ("epochs", "batch_size", "patience", "representative_samples"):
            if getattr(self, name) < 1:
                raise ConfigError(f"train config: {name}={getattr(self, name)} must be >= 1")
        if not 0.0 <= self.background_share <= 1.0:
            raise ConfigError(f"train config: background_share={self.background_share} not in [0, 1]")
        if self.keep not in KEEP:
            raise ConfigError(f"train config: keep={self.keep!r} not one of {', '.join(KEEP)}")
        if not self.learning_rate > 0:
            raise ConfigError(f"train config: learning_rate={self.learning_rate} must be > 0")
        if self.freeze < 0 or (self.freeze and not self.init_from):
            raise ConfigError(f"train config: freeze={self.freeze} needs a warm start (kws train --init-from, kws cascade train --warm-start) and must be >= 0")
        if self.frozen_bn and not self.init_from:
            raise ConfigError("train config: frozen_bn needs a warm start "
                              "(kws train --init-from, kws cascade train --warm-start)")
        if not 0.0 <= self.teacher_weight <= 1.0:
            raise ConfigError(f"train config: teacher_weight={self.teacher_weight} not in [0, 1]")
        if not self.temperature > 0:
            raise ConfigError(f"train config: temperature={self.temperature} must be > 0")

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        for key in ("extra_data", "negatives", "backgrounds"):
            data[key] = list(getattr(self, key))
        data["augment"] = self.augment.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        data = dict(data)
        if "augment" in data:
            data["augment"] = AugmentConfig.from_dict(data["augment"])
        for key in ("extra_data", "negatives", "backgrounds"):
            if key in data:
                data[key] = tuple(data[key])
        if "masks" in data:
            data["masks"] = MaskConfig(**data["masks"])
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"train config: unknown keys {unknown}")
        return cls(**data)

    def step_key(self) -> dict[str, Any]:
        """The settings that name a recipe's training step (kws.recipe.steps): fields added after
        work folders existed are left out at their defaults, so upgrading kws does not retrain
        a stage that is already trained."""
        return {k: v for k, v in self.to_dict().items() if k not in LATER_FIELDS or v != LATER_FIELDS[k]}

    def resumable_with(self, other: "TrainConfig") -> bool:
        """A run may resume under a new ``epochs``/``patience``, not under changed data or model."""
        ignore = {"epochs", "patience", "keep"}
        mine, theirs = self.to_dict(), other.to_dict()
        return all(mine[k] == theirs[k] for k in mine if k not in ignore)
