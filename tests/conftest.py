"""Shared fixtures: real data locations, a tiny config, seeded randomness."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from tar_archives import make_release, make_tree

from data_prep import synth_kokoro as kokoro
from data_prep.config import FeatureConfig
from data_prep.errors import KwsError

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
def kokoro_dir() -> Path:
    """The Kokoro model folder, when its files and packages are here (skip where they are absent)."""
    model_dir = kokoro.default_model_dir()
    try:
        kokoro.model_files(model_dir)
        kokoro.check_packages()
    except KwsError as exc:
        pytest.skip(str(exc))
    return model_dir


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


@pytest.fixture(scope="session")
def trained_models(tmp_path_factory, samples_dir: Path) -> dict[str, Path]:
    """Stage-1 and stage-2 models trained briefly on samples/ (real training, real int8
    conversion); shared by every test that needs a model, so the suite trains only once."""
    from kws.train.config import TrainConfig
    from kws.train.run import train

    data = samples_dir / "speech_commands"
    root = tmp_path_factory.mktemp("models")
    cfg = FeatureConfig()
    out = {}
    for stage, arch, params in ((1, "tiny", {}), (2, "ds_cnn", {"filters": 16, "blocks": 2})):
        train_cfg = TrainConfig(stage=stage, arch=arch, arch_params=params, epochs=3, batch_size=32,
                                unknown_pct=50.0, representative_samples=64)
        out[f"stage{stage}"] = root / f"stage{stage}"
        train(data, out[f"stage{stage}"], train_cfg, cfg, progress=False, cache_dir=root / "cache")
    return out


@pytest.fixture(scope="session")
def bundle_dir(tmp_path_factory, trained_models: dict[str, Path], samples_dir: Path) -> Path:
    from cascade.evaluation.calibrate import build_cascade

    out = tmp_path_factory.mktemp("bundles") / "cascade"
    build_cascade(trained_models["stage1"], trained_models["stage2"], samples_dir / "speech_commands", out,
                  recall=0.9, cache_dir=out.parent / "cache")
    return out


@pytest.fixture(scope="module")
def bundle(request) -> Path:
    """The shipped cascade when there is one (no training needed), else the session's."""
    path = SAMPLES / "cascade"
    return path if (path / "cascade.toml").is_file() else request.getfixturevalue("bundle_dir")


@pytest.fixture(scope="module")
def stage2(request) -> Path:
    """The shipped stage 2 when there is one, else the session's."""
    path = SAMPLES / "models" / "stage2"
    return path if (path / "metrics.json").is_file() else request.getfixturevalue("trained_models")["stage2"]


@pytest.fixture(scope="session", autouse=True)
def _private_feature_cache(tmp_path_factory) -> None:
    """Tests never read or fill the user's ~/.cache/kws."""
    os.environ["KWS_CACHE_DIR"] = str(tmp_path_factory.mktemp("feature-cache"))


@pytest.fixture(scope="session")
def tree() -> dict[str, bytes]:
    """A Speech-Commands-like tree of real WAVs (tests/tar_archives.py), for archive tests."""
    return make_tree()


@pytest.fixture(scope="session")
def release(tree) -> bytes:
    """That tree as a release .tar.gz."""
    return make_release(tree)
