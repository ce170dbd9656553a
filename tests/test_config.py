"""FeatureConfig: T formula, validation, persistence round-trips, fingerprint."""

from __future__ import annotations

import dataclasses

import pytest

from data_prep.config import FeatureConfig
from data_prep.errors import ConfigError, ConfigMismatch


def test_defaults_give_49_frames_of_10_mfcc() -> None:
    cfg = FeatureConfig()
    assert (cfg.sample_rate, cfg.clip_samples, cfg.window_samples, cfg.stride_samples) == (16000, 16000, 640, 320)
    assert cfg.n_fft == 1024  # next power of two >= 640
    assert cfg.num_frames == 49
    assert cfg.input_shape == (49, 10)


@pytest.mark.parametrize(
    ("clip_ms", "window_ms", "stride_ms", "expected"),
    [(1000, 40, 20, 49), (1000, 30, 20, 49), (1000, 30, 10, 98), (1500, 40, 20, 74), (1000, 25, 10, 98), (640, 40, 20, 31)],
)
def test_num_frames_formula(clip_ms: float, window_ms: float, stride_ms: float, expected: int) -> None:
    cfg = FeatureConfig(clip_ms=clip_ms, window_ms=window_ms, stride_ms=stride_ms)
    L, l, s = cfg.clip_samples, cfg.window_samples, cfg.stride_samples
    assert cfg.num_frames == (L - l) // s + 1 == expected


def test_frozen_and_keyword_only() -> None:
    cfg = FeatureConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.n_mfcc = 13  # type: ignore[misc]
    with pytest.raises(TypeError):
        FeatureConfig(16000)  # type: ignore[misc]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"window_ms": 2000},
        {"n_mfcc": 50},
        {"fmax": 9000},
        {"window": "kaiser"},
        {"window_ms": 40.03},
        {"n_fft": 256},
        {"log_floor": 0},
        {"sample_rate": 0},
        {"spectrum": "energy"},
        {"mel_bank": "htk"},
    ],
)
def test_invalid_configs_are_refused(kwargs: dict) -> None:
    with pytest.raises(ConfigError):
        FeatureConfig(**kwargs)


@pytest.mark.parametrize("suffix", [".toml", ".json"])
def test_round_trip(tmp_path, suffix: str) -> None:
    cfg = FeatureConfig(n_mfcc=13, stride_ms=10, window="hamming")
    path = tmp_path / f"features{suffix}"
    cfg.save(path)
    loaded = FeatureConfig.load(path)
    assert loaded == cfg
    assert loaded.fingerprint() == cfg.fingerprint()


def test_types_are_canonical() -> None:
    assert FeatureConfig(stride_ms=10).fingerprint() == FeatureConfig(stride_ms=10.0).fingerprint()
    assert isinstance(FeatureConfig(n_mels=40.0).n_mels, int)
    with pytest.raises(ConfigError, match="n_mels"):
        FeatureConfig(n_mels="forty")  # type: ignore[arg-type]


def test_fingerprint_changes_with_any_field() -> None:
    base = FeatureConfig()
    assert base.fingerprint() == FeatureConfig().fingerprint()
    others = (FeatureConfig(n_mfcc=12), FeatureConfig(fmin=0), FeatureConfig(spectrum="magnitude"),
              FeatureConfig(mel_bank="tensorflow"))
    assert len({base.fingerprint(), *(c.fingerprint() for c in others)}) == 5


def test_fields_added_later_keep_saved_fingerprints(tmp_path) -> None:
    """spectrum and mel_bank came after bundles were shipped: at their defaults they are not
    hashed, so the default config keeps the fingerprint every saved manifest holds."""
    assert FeatureConfig().fingerprint() == "2a0e03cc7a608a6f"  # what every bundle of the default front end holds
    old = tmp_path / "old.toml"  # a features.toml written before the fields existed
    old.write_text("[features]\nsample_rate = 16000\nn_mfcc = 10\n")
    assert FeatureConfig.load(old) == FeatureConfig()


def test_load_reports_bad_files(tmp_path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[features\n")
    with pytest.raises(ConfigError, match="bad.toml"):
        FeatureConfig.load(bad)
    unknown = tmp_path / "u.json"
    unknown.write_text('{"n_mfcc": 10, "bogus": 1}')
    with pytest.raises(ConfigError, match="bogus"):
        FeatureConfig.load(unknown)
    with pytest.raises(ConfigError, match="cannot read"):
        FeatureConfig.load(tmp_path / "missing.toml")


def test_require_same_names_the_difference() -> None:
    with pytest.raises(ConfigMismatch, match="n_mfcc: 10 != 13"):
        FeatureConfig().require_same(FeatureConfig(n_mfcc=13), "model.tflite")
    FeatureConfig().require_same(FeatureConfig(), "same")


def test_toml_writer_round_trips_what_tomllib_reads() -> None:
    """NaN/Inf were written as JSON spells them (NaN, Infinity: not TOML, so the file could not be
    read back), and a key such as a spoken label "hey kws" was written bare."""
    import math
    import tomllib

    from data_prep.toml_io import dumps

    data = {"top": 1, "smoothing": {"window_ms": math.inf, "floor": -math.inf, "nan": math.nan,
                                    "label_thresholds": {"hey kws": 0.5, "yes": 0.9, "x.y": 0.1}},
            "cascade": {"labels": ["hey kws", "yes"], "quote": 'a "b"'}}
    back = tomllib.loads(dumps(data))
    assert back["smoothing"]["window_ms"] == math.inf and back["smoothing"]["floor"] == -math.inf
    assert math.isnan(back["smoothing"]["nan"])
    assert back["smoothing"]["label_thresholds"] == data["smoothing"]["label_thresholds"]
    assert back["cascade"] == data["cascade"] and back["top"] == 1
