"""Shared fixtures: real data locations, a tiny config, seeded randomness."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from data_prep.config import FeatureConfig

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("KWS_SHARED_DATA", REPO.parent / "shared" / "data"))
SAMPLES = REPO / "samples"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real Speech Commands subsets beside the repo (skip where they are absent)."""
    if not (SHARED_DATA / "speech_commands_dev").is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def dev_data(shared_data: Path) -> Path:
    return shared_data / "speech_commands_dev"


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    """The embedded default dataset shipped in the repo."""
    return SAMPLES


@pytest.fixture()
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture(scope="session")
def config() -> FeatureConfig:
    return FeatureConfig()


@pytest.fixture(scope="session")
def keyword_wav(shared_data: Path) -> Path:
    return shared_data / "speech_commands_dev" / "yes" / "022cd682_nohash_0.wav"
