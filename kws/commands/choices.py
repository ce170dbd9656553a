"""The fixed sets of CLI values, as typer choices built from the constants the packages check
against: ``--help`` lists them and a typo is a usage error (exit code 2) before any work starts."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from cascade.energy.battery import BATTERIES
from cascade.runtime.operating_points import SENSITIVITIES
from data_prep.augment import NOISE_MODES
from data_prep.splits import SPLITS
from data_prep.synth_run import ENGINES
from export.firmware import TARGETS
from kws.train.compress.optimize import METHODS
from kws.train.config import ARCHS, KEEP
from kws.train.distribute import STRATEGIES

Stage = Literal[1, 2]
Split = Literal[SPLITS]  # type: ignore[valid-type]
EvalSplit = Literal[SPLITS[1:]]  # type: ignore[valid-type]  # the splits a trained model never saw
Arch = Literal[ARCHS]  # type: ignore[valid-type]
NoiseMode = Literal[NOISE_MODES]  # type: ignore[valid-type]
Strategy = Literal[STRATEGIES]  # type: ignore[valid-type]
Battery = Literal[tuple(BATTERIES)]  # type: ignore[valid-type]
Target = Literal[TARGETS]  # type: ignore[valid-type]
Sensitivity = Literal[SENSITIVITIES]  # type: ignore[valid-type]
Keep = Literal[KEEP]  # type: ignore[valid-type]
SynthEngine = Literal[("auto", *ENGINES)]  # type: ignore[valid-type]
Engine = Literal[ENGINES]  # type: ignore[valid-type]
# typer takes no Literal inside a list: a repeatable choice is an Enum (a str: compares equal to its value).
Method = StrEnum("Method", {name: name for name in METHODS})  # type: ignore[misc]
