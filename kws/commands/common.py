"""Small helpers shared by CLI commands."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from cascade.runtime.bundle import SAMPLES, default_bundle, is_bundle  # noqa: F401  (re-exported for the commands)
from data_prep.config import FeatureConfig


def load_feature_config(path: Optional[Path]) -> FeatureConfig:
    """The config a user named, or the defaults (16 kHz, 1 s, 40/20 ms, 40 mels, 10 MFCC)."""
    return FeatureConfig.load(path) if path is not None else FeatureConfig()
