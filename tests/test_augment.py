"""Augmentation on real clips and the release's real background noise."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from data_prep.audio import load_audio, load_clip
from data_prep.augment import (
    AugmentConfig,
    apply_gain,
    augment,
    clip_unit,
    mix_at_snr,
    mix_at_volume,
    ms_to_samples,
    noise_segments,
    rms,
    time_shift,
)
from data_prep.errors import ConfigError


@pytest.fixture(scope="module")
def noise_pool(dev_data: Path, config) -> list[np.ndarray]:
    files = sorted((dev_data / "_background_noise_").glob("*.wav"))
    assert len(files) == 6
    return [load_audio(f, config.sample_rate) for f in files]


@pytest.fixture(scope="module")
def clips(dev_data: Path, config) -> np.ndarray:
    files = [dev_data / w / n for w, n in (("yes", "022cd682_nohash_0.wav"),)]
    files += sorted((dev_data / "stop").glob("*.wav"))[:3] + sorted((dev_data / "zero").glob("*.wav"))[:2]
    return np.stack([load_clip(f, config) for f in files])


def achieved_snr(clean: np.ndarray, mixed: np.ndarray) -> np.ndarray:
    return 20 * np.log10(rms(clean) / rms(mixed.astype(np.float64) - clean))


@pytest.mark.parametrize("snr_db", [-5.0, 0.0, 10.0, 20.0, 35.0])
def test_snr_is_what_was_asked_on_real_audio_and_noise(clips, noise_pool, config, rng, snr_db):
    noise = noise_segments(noise_pool, config.clip_samples, len(clips), rng)
    mixed = mix_at_snr(clips, noise, snr_db)
    assert mixed.dtype == np.float32 and mixed.shape == clips.shape
    np.testing.assert_allclose(achieved_snr(clips, mixed), snr_db, atol=0.1)


def test_snr_per_row_and_through_augment(clips, noise_pool, config):
    wanted = np.linspace(0.0, 25.0, len(clips))
    noise = noise_segments(noise_pool, config.clip_samples, len(clips), np.random.default_rng(7))
    np.testing.assert_allclose(achieved_snr(clips, mix_at_snr(clips, noise, wanted)), wanted, atol=0.1)

    # halved so the final clip to [-1, 1] (which lowers the SNR of loud clips) does not act
    quiet = clips * np.float32(0.5)
    cfg = AugmentConfig(noise_prob=1.0, noise_mode="snr", snr_db_range=(12.0, 12.0), shift_ms=0.0)
    out = augment(quiet, noise_pool, cfg, np.random.default_rng(3), sample_rate=config.sample_rate)
    np.testing.assert_allclose(achieved_snr(quiet, out), 12.0, atol=0.1)


def test_all_zero_clip_stays_finite_and_silent(noise_pool, config, rng):
    silent = np.zeros(config.clip_samples, dtype=np.float32)
    noise = noise_segments(noise_pool, config.clip_samples, 1, rng)[0]
    out = mix_at_snr(silent, noise, 10.0)
    assert np.isfinite(out).all() and not out.any()
    # zero noise cannot reach any SNR either: the clip comes back unchanged
    clip = np.ones(8, dtype=np.float32) * 0.5
    np.testing.assert_array_equal(mix_at_snr(clip, np.zeros(8), 3.0), clip)


def test_volume_mix_is_linear(clips, noise_pool, config, rng):
    noise = noise_segments(noise_pool, config.clip_samples, len(clips), rng)
    out = mix_at_volume(clips, noise, 0.05)
    np.testing.assert_allclose(out - clips, 0.05 * noise, atol=1e-6)


def test_shift_moves_content_and_zero_fills(clips, config):
    clip = clips[0]
    s = ms_to_samples(100, config.sample_rate)
    later, earlier = time_shift(clip, s), time_shift(clip, -s)
    assert not later[:s].any() and not earlier[-s:].any()
    np.testing.assert_array_equal(later[s:], clip[:-s])
    np.testing.assert_array_equal(earlier[:-s], clip[s:])
    # no wrap-around: a shift as long as the clip leaves nothing
    assert not time_shift(clip, config.clip_samples).any()
    # a batch with one shift per row equals the rows done one by one
    shifts = np.array([-s, 0, 7, s, -1, 3])
    batch = time_shift(clips, shifts)
    for row, shift in zip(range(len(clips)), shifts):
        np.testing.assert_array_equal(batch[row], time_shift(clips[row], shift))


def test_augment_shift_stays_within_the_configured_range(clips, config):
    cfg = AugmentConfig(noise_prob=0.0, shift_ms=20.0)
    limit = ms_to_samples(cfg.shift_ms, config.sample_rate)
    clip = clips[0]
    for seed in range(5):
        out = augment(clip, [], cfg, np.random.default_rng(seed), sample_rate=config.sample_rate)
        matches = [s for s in range(-limit, limit + 1) if np.array_equal(out, time_shift(clip, s))]
        assert matches, f"seed {seed}: output is not a shift within ±{limit} samples"


def test_same_seed_same_output_different_seed_different(clips, noise_pool, config):
    cfg = AugmentConfig(noise_prob=1.0, gain_db_range=(-6.0, 6.0))
    run = lambda seed: augment(clips, noise_pool, cfg, np.random.default_rng(seed), sample_rate=config.sample_rate)  # noqa: E731
    a, b, c = run(42), run(42), run(43)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.dtype == np.float32 and a.shape == clips.shape
    assert np.abs(a).max() <= 1.0


def test_noise_probability_is_respected(noise_pool, config):
    cfg = AugmentConfig(noise_prob=0.8, volume_range=(0.05, 0.05), shift_ms=0.0)
    silent = np.zeros((400, config.clip_samples), dtype=np.float32)
    out = augment(silent, noise_pool, cfg, np.random.default_rng(0), sample_rate=config.sample_rate)
    share = np.mean(np.abs(out).max(axis=1) > 0)
    assert 0.72 < share < 0.88


def test_noise_segments_are_real_slices_and_short_noise_is_repeated(rng):
    ramp = np.arange(1000, dtype=np.float32)
    seg = noise_segments([ramp], 100, 20, rng)
    assert seg.shape == (20, 100)
    assert (np.diff(seg, axis=1) == 1).all() and seg.min() >= 0 and seg.max() <= 999
    short = noise_segments([np.array([1, 2, 3], dtype=np.float32)], 7, 1, rng)[0]
    np.testing.assert_array_equal(short, [1, 2, 3, 1, 2, 3, 1])
    with pytest.raises(ConfigError):
        noise_segments([], 10, 1, rng)


def test_gain_and_clipping():
    x = np.array([0.25, -0.5, 0.9], dtype=np.float32)
    np.testing.assert_allclose(apply_gain(x, 20 * np.log10(2.0)), [0.5, -1.0, 1.8], rtol=1e-6)
    np.testing.assert_array_equal(clip_unit(np.array([1.8, -3.0, 0.1])), np.float32([1.0, -1.0, 0.1]))
    np.testing.assert_allclose(apply_gain(np.stack([x, x]), [0.0, -6.0])[1], x * 10 ** (-6 / 20), rtol=1e-6)


def test_config_defaults_follow_the_reference_and_round_trip():
    cfg = AugmentConfig()
    assert (cfg.noise_prob, cfg.noise_mode, cfg.volume_range, cfg.shift_ms) == (0.8, "volume", (0.0, 0.1), 100.0)
    other = AugmentConfig(noise_mode="snr", snr_db_range=(0, 15), gain_db_range=(-3, 3), shift_ms=50)
    for c in (cfg, other):
        data = json.loads(json.dumps(c.to_dict()))
        assert AugmentConfig.from_dict(data) == c
        assert AugmentConfig.from_dict({"augment": data}) == c


@pytest.mark.parametrize(
    "bad",
    [
        {"noise_prob": 1.5},
        {"noise_mode": "loud"},
        {"snr_db_range": [20, 5]},
        {"volume_range": [-0.1, 0.1]},
        {"shift_ms": -1},
        {"gain_db_range": 3},
        {"noise_level": 0.1},
    ],
)
def test_bad_config_is_a_config_error(bad):
    with pytest.raises(ConfigError):
        AugmentConfig.from_dict(bad)


def test_empty_pool_with_noise_is_refused(clips, config, rng):
    with pytest.raises(ConfigError, match="noise pool is empty"):
        augment(clips, [], AugmentConfig(), rng, sample_rate=config.sample_rate)


def test_speed_shifts_pitch_and_keeps_length():
    """A 1 kHz tone played 1.1x fast is a 1.1 kHz tone; 0.9x slow a 900 Hz one; the length stays."""
    from data_prep.augment import change_speed

    rate = 16000
    tone = np.sin(2 * np.pi * 1000 * np.arange(rate) / rate).astype(np.float32)
    for factor in (0.9, 1.1):
        out = change_speed(tone, factor)
        assert out.shape == tone.shape
        middle = out[3000:13000]
        peak_hz = np.argmax(np.abs(np.fft.rfft(middle))) * rate / middle.size
        assert abs(peak_hz - 1000 * factor) < 5
    fast = change_speed(tone, 1.15)  # shorter than the clip: zero-padded at both ends, centred
    assert fast[:500].max() == 0.0 and fast[-500:].max() == 0.0 and fast[8000] != 0.0
    assert change_speed(tone, 1.0) is not None and np.array_equal(change_speed(tone, 1.0), tone)


def test_speed_range_in_augment_is_seeded_and_validated():
    rate = 16000
    clips = np.random.default_rng(0).normal(0, 0.1, (4, rate)).astype(np.float32)
    cfg = AugmentConfig(noise_prob=0.0, shift_ms=0.0, speed_range=(0.85, 1.15))
    a = augment(clips, [], cfg, np.random.default_rng(3), sample_rate=rate)
    b = augment(clips, [], cfg, np.random.default_rng(3), sample_rate=rate)
    assert np.array_equal(a, b) and not np.allclose(a, clips, atol=1e-3)
    plain = AugmentConfig(noise_prob=0.0, shift_ms=0.0)
    assert np.array_equal(augment(clips, [], plain, np.random.default_rng(3), sample_rate=rate), np.clip(clips, -1, 1))
    assert AugmentConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ConfigError, match="speed_range"):
        AugmentConfig(speed_range=(0.2, 1.0))


def test_draw_order_is_kept_so_runs_without_new_options_reproduce(clips, noise_pool, config):
    """augment's draws, in order: shift, noise or not, level, gain, then the noise segments.
    Options added later (speed, reverb) draw after these and only when on, so a run without
    them gets bit-identical clips to the code before them."""
    cfg = AugmentConfig(noise_prob=0.5, gain_db_range=(-6.0, 6.0))
    rng = np.random.default_rng(11)
    rows, length = clips.shape
    limit = ms_to_samples(cfg.shift_ms, config.sample_rate)
    shifts = rng.integers(-limit, limit + 1, size=rows)
    noisy = rng.random(rows) < cfg.noise_prob
    levels = rng.uniform(*cfg.volume_range, size=rows)
    gains = rng.uniform(*cfg.gain_db_range, size=rows)
    noise = noise_segments(noise_pool, length, rows, rng)
    noise[~noisy] = 0.0
    expected = clip_unit(apply_gain(mix_at_volume(time_shift(clips, shifts), noise, levels), gains))
    assert 0 < noisy.sum() < rows
    out = augment(clips, noise_pool, cfg, np.random.default_rng(11), sample_rate=config.sample_rate)
    assert np.array_equal(out, expected)


def test_configs_saved_before_reverb_load_and_resume():
    from kws.train.config import TrainConfig

    before_speed = {"noise_prob": 0.8, "noise_mode": "volume", "volume_range": [0.0, 0.1], "snr_db_range": [5.0, 20.0],
                    "shift_ms": 100.0, "gain_db_range": [0.0, 0.0]}
    old = AugmentConfig.from_dict(before_speed)
    assert old == AugmentConfig() and old.reverb_prob == 0.0
    assert TrainConfig.from_dict({"stage": 2, "augment": before_speed}).resumable_with(TrainConfig())
    reverb = AugmentConfig(reverb_prob=0.3, rt60_range=(0.2, 0.6), reverb_rooms=50)
    assert AugmentConfig.from_dict(json.loads(json.dumps(reverb.to_dict()))) == reverb
    assert not TrainConfig(augment=reverb).resumable_with(TrainConfig())


@pytest.mark.parametrize("bad", [dict(reverb_prob=1.5), dict(rt60_range=(0.8, 0.2)), dict(rt60_range=(0.01, 0.5)),
                                 dict(reverb_rooms=0)])
def test_bad_reverb_config_is_a_config_error(bad):
    with pytest.raises(ConfigError, match="invalid augment config"):
        AugmentConfig(**bad)


def band_db(x: np.ndarray, rate: int, low: float, high: float) -> float:
    spectrum = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(x.size, 1.0 / rate)
    return float(10 * np.log10(spectrum[(freqs >= low) & (freqs < high)].sum()))


def test_eq_gives_each_band_its_gain_at_the_clip_level(clips, config):
    """Tones at three band centres come out at the band gains relative to one another (the RMS
    is put back, so the common offset is free); a real word keeps its level; silence stays silent."""
    from data_prep.augment import equalize

    rate = config.sample_rate
    t = np.arange(rate) / rate
    tones = sum(np.sin(2 * np.pi * f * t) for f in (100, 1000, 5000)).astype(np.float32)[None]
    centres = np.array([[60, 100, 300, 1000, 2000, 5000, 7000.0]])
    gains = np.array([[0, -6, 0, 6, 0, -12, 0.0]])
    out = equalize(tones, centres, gains, rate)
    change = [band_db(out[0], rate, f - 2, f + 2) - band_db(tones[0], rate, f - 2, f + 2) for f in (100, 1000, 5000)]
    np.testing.assert_allclose(np.diff(change), [12.0, -18.0], atol=0.05)
    np.testing.assert_allclose(rms(out), rms(tones), rtol=1e-4)
    word = clips[:1]
    bright = equalize(word, centres, np.array([[-12, -12, -12, 0, 12, 12, 12.0]]), rate)
    np.testing.assert_allclose(rms(bright), rms(word), rtol=1e-4)
    tilt = lambda x: band_db(x, rate, 2500, 8000) - band_db(x, rate, 50, 500)  # noqa: E731
    assert tilt(bright[0]) - tilt(word[0]) > 20.0
    assert not equalize(np.zeros((1, rate), np.float32), centres, gains, rate).any()


def test_eq_in_augment_is_seeded_shared_and_validated(clips, config):
    rate = config.sample_rate
    clips = clips * np.float32(0.25)  # no peak reaches the final clipping after a boost
    cfg = AugmentConfig(noise_prob=0.0, shift_ms=0.0, eq_prob=0.5, eq_db=12.0)
    a = augment(clips, [], cfg, np.random.default_rng(5), sample_rate=rate)
    b = augment(clips, [], cfg, np.random.default_rng(5), sample_rate=rate)
    assert np.array_equal(a, b)
    changed = ~np.all(np.isclose(a, clips, atol=1e-4), axis=1)
    assert 0 < changed.sum() < len(clips)  # about half the rows (6 real clips, seed 5)
    np.testing.assert_allclose(rms(a), rms(clips), rtol=1e-3)
    data = json.loads(json.dumps(cfg.to_dict()))
    assert AugmentConfig.from_dict(data) == cfg
    assert "eq_prob" not in AugmentConfig().to_dict()  # runs from before EQ keep their digests
    for bad in ({"eq_prob": 1.5}, {"eq_prob": -0.1}, {"eq_db": 40.0}, {"eq_db": -1.0}):
        with pytest.raises(ConfigError, match="eq_"):
            AugmentConfig.from_dict(bad)
