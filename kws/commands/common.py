"""Small helpers shared by CLI commands."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from cascade.runtime.bundle import MANIFEST
from data_prep.config import FeatureConfig
from data_prep.errors import ModelError


def load_feature_config(path: Optional[Path]) -> FeatureConfig:
    """The config a user named, or the defaults (16 kHz, 1 s, 40/20 ms, 40 mels, 10 MFCC)."""
    return FeatureConfig.load(path) if path is not None else FeatureConfig()

SAMPLES = Path(__file__).resolve().parents[2] / "samples"


def default_bundle() -> Path:
    """The cascade shipped in samples/cascade: the default --model of every cascade command."""

    path = SAMPLES / "cascade"
    if not is_bundle(path):
        raise ModelError(f"{path}: no shipped cascade bundle here; pass --model BUNDLE")
    return path

def is_bundle(path: Path) -> bool:

    return (Path(path) / MANIFEST).is_file()
