"""Simulated rooms (pyroomacoustics): what the bank's responses look like, their reverberation
time, their seeds and their cache; and reverb in augment on a real clip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from data_prep.audio import load_clip
from data_prep.augment import AugmentConfig, augment, reverberate, rms
from data_prep.errors import ConfigError
from data_prep.rooms import LEAD, Room, RoomConfig, bank_path, room_bank, simulate, simulate_bank

RATE = 16000
ROOMS = RoomConfig(rooms=3, seed=5)


@pytest.fixture(scope="module")
def bank() -> tuple[tuple[np.ndarray, ...], tuple[Room, ...]]:
    return simulate_bank(ROOMS)


def test_each_response_peaks_at_its_direct_path_and_decays(bank) -> None:
    rirs, rooms = bank
    assert len(rirs) == ROOMS.rooms
    for rir, room in zip(rirs, rooms):
        assert rir.dtype == np.float32 and rir.ndim == 1
        assert int(np.argmax(np.abs(rir))) == LEAD and rir[LEAD] == 1.0
        # nothing arrives before the direct sound: only the skirt of its delay filter
        assert np.abs(rir[: LEAD - 3]).max() < 0.15
        energy = rir.astype(np.float64) ** 2
        n = len(rir)
        assert energy[-n // 3 :].sum() < 1e-3 * energy[: n // 10].sum(), room
        # a tail, not a lone click: reverberant energy follows the direct path
        assert energy[LEAD + 2 : LEAD + RATE // 10].sum() > 0.05


def test_measured_rt60_is_near_the_asked_one(bank) -> None:
    """Schroeder backward integration (pyroomacoustics' measure_rt60), T30 extrapolated:
    within a factor 1.6 of the RT60 drawn for the room (the hybrid simulator lands within
    0.65-1.45 on a bank of 100 rooms)."""
    from pyroomacoustics.experimental import measure_rt60

    rirs, rooms = bank
    for rir, room in zip(rirs, rooms):
        measured = measure_rt60(rir.astype(np.float64), fs=RATE, decay_db=30)
        assert room.rt60 / 1.6 < measured < room.rt60 * 1.6, (room, measured)
        assert ROOMS.rt60_range_s[0] <= room.rt60 <= ROOMS.rt60_range_s[1]
        assert ROOMS.distance_range_m[0] <= room.distance <= ROOMS.distance_range_m[1]


def test_a_reflection_louder_than_the_direct_path_is_redrawn() -> None:
    """Talker and microphone at mid-height, 4 m apart, in a low, live room: floor and ceiling
    reflections arrive together and add up above the direct sound. Aligning on that peak
    would move the word, so the room is refused (and simulate_bank draws another)."""
    mid = Room(np.array([10.0, 10.0, 2.5]), 0.8, np.array([2.0, 5.0, 1.25]), np.array([6.0, 5.0, 1.25]))
    assert simulate(mid, RATE, seed=0) is None
    near = Room(np.array([6.0, 5.0, 3.0]), 0.5, np.array([2.0, 2.0, 1.2]), np.array([3.0, 2.5, 1.6]))
    assert simulate(near, RATE, seed=0) is not None


def test_the_bank_is_seeded_and_cached(bank, tmp_path: Path) -> None:
    rirs, _ = bank
    cached = room_bank(ROOMS, tmp_path)  # simulated again, in the same process after other rooms
    assert len(cached) == len(rirs) and all(np.array_equal(a, b) for a, b in zip(cached, rirs))
    path = bank_path(ROOMS, tmp_path)
    stamp = path.stat().st_mtime_ns
    again = room_bank(ROOMS, tmp_path)
    assert path.stat().st_mtime_ns == stamp and all(np.array_equal(a, b) for a, b in zip(again, rirs))
    path.write_bytes(b"not a bank")  # damaged: simulated again and replaced
    assert all(np.array_equal(a, b) for a, b in zip(room_bank(ROOMS, tmp_path), rirs))
    assert np.load(path)["arr_0"].shape == rirs[0].shape

    other = RoomConfig(rooms=1, seed=6)
    assert bank_path(other, tmp_path) != path
    first = room_bank(other, tmp_path)[0]
    n = min(len(first), len(rirs[0]))
    assert not np.array_equal(first[:n], rirs[0][:n])


@pytest.mark.parametrize("bad", [dict(rooms=0), dict(rt60_range_s=(0.5, 0.2)), dict(size_range_m=(0.5, 2.0))])
def test_bad_room_config_is_a_config_error(bad) -> None:
    with pytest.raises(ConfigError, match="room config"):
        RoomConfig(**bad)


# --- reverb in augment ------------------------------------------------------------------------
def test_a_click_becomes_a_decaying_tail_in_place(bank) -> None:
    rirs, _ = bank
    click = np.zeros(RATE, dtype=np.float32)
    click[4000] = 0.5
    cfg = AugmentConfig(noise_prob=0.0, shift_ms=0.0, reverb_prob=1.0)
    out = augment(click, [], cfg, np.random.default_rng(0), sample_rate=RATE, rirs=rirs)
    assert out.shape == click.shape and out.dtype == np.float32
    assert int(np.argmax(np.abs(out))) == 4000  # the direct sound stays where the click was
    assert np.abs(out[: 4000 - LEAD]).max() < 1e-6  # nothing before it but the delay filter's skirt (FFT round-off)
    energy = out.astype(np.float64) ** 2
    early, late = energy[4010:4810].sum(), energy[8000:8800].sum()
    assert early > 0 and 0 < late < 0.1 * early  # a tail, decaying
    assert rms(out) == pytest.approx(rms(click), rel=1e-4)  # as loud as it was


def test_reverb_on_a_real_word_keeps_its_place_and_level(bank, dev_data: Path, config) -> None:
    word = load_clip(dev_data / "yes" / "022cd682_nohash_0.wav", config)
    for rir in bank[0]:
        wet = reverberate(word, rir)
        assert wet.shape == word.shape and rms(wet) == pytest.approx(rms(word), rel=1e-4)
        lag = np.argmax(np.correlate(wet[2000:14000], word[2100:13900], mode="valid")) - 100
        assert abs(lag) <= 2  # the word did not move
        assert not np.allclose(wet, word, atol=1e-3)


def test_reverb_draws_come_last_and_off_means_untouched(bank, config) -> None:
    """Reverb draws after every other draw: a silent batch (nothing to reverberate) gets the
    same noise with reverb on as off; reverb off ignores the bank."""
    rirs, _ = bank
    rng_noise = np.random.default_rng(3)
    pool = [rng_noise.normal(0, 0.1, 3 * RATE).astype(np.float32)]
    silent = np.zeros((6, RATE), dtype=np.float32)
    dry = AugmentConfig(noise_prob=0.7, gain_db_range=(-3.0, 3.0))
    wet = AugmentConfig(noise_prob=0.7, gain_db_range=(-3.0, 3.0), reverb_prob=1.0)
    run = lambda cfg, clips, bank: augment(clips, pool, cfg, np.random.default_rng(9), sample_rate=RATE, rirs=bank)  # noqa: E731
    assert np.array_equal(run(dry, silent, ()), run(wet, silent, rirs))
    speech = np.random.default_rng(1).normal(0, 0.1, (6, RATE)).astype(np.float32)
    assert np.array_equal(run(dry, speech, ()), run(dry, speech, rirs))
    assert not np.array_equal(run(dry, speech, ()), run(wet, speech, rirs))
    with pytest.raises(ConfigError, match="room impulse responses"):
        run(wet, speech, ())
