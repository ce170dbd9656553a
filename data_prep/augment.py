"""Training-time augmentation: speed, time shift, room reverb, microphone EQ, background noise, gain, clipping.

Pure numpy on the last axis, so every function takes one clip (L,) or a batch (B, L) with one
random draw per row; all randomness comes from the ``np.random.Generator`` passed in, so a seed
reproduces a batch exactly. Durations are in ms and become samples only through the caller's
sample rate (the FeatureConfig's), never a rate written here.

The defaults follow the Speech Commands release's reference pipeline (``input_data.py``):
background noise on 80 % of clips at a volume drawn from [0, 0.1], a shift of up to ±100 ms
with zero fill, then clipping to [-1, 1]. ``noise_mode="snr"`` mixes at a drawn SNR instead.
Speed perturbation (off by default) plays a clip faster or slower, pitch and tempo together, as
Kaldi's 0.9/1.0/1.1 recipe does: another speaker's vocal tract and speaking rate, for free.
Reverb (off by default) convolves a share of clips with a room impulse response from a bank
passed in like the noise pool (data_prep.rooms simulates one): the talker heard across a room,
before the background noise is added (the noise is not in that room).
Microphone EQ (off by default) gives a share of clips a random smooth frequency response, as a
different microphone, casing or distance would: synthetic voices are studio-clean and every
real recording went through some channel. openWakeWord and microWakeWord train their synthetic
positives with audiomentations' SevenBandParametricEQ for the same reason; here it is seven
log-spaced band gains interpolated over log-frequency and applied in one FFT per row, so it is
batched and its draws come from the run's seeded generator like everything else.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
import soxr

from data_prep.errors import ConfigError

NOISE_MODES = ("volume", "snr")
_RANGES = ("volume_range", "snr_db_range", "gain_db_range", "speed_range", "rt60_range")
RT60_LIMITS = (0.1, 3.0)  # seconds: from a padded booth to a church
EQ_BANDS_HZ = (60.0, 7000.0)  # the outer band centres; a 16 kHz clip's speech band lies between
EQ_BANDS = 7
EQ_MAX_DB = 24.0  # beyond this a "microphone" is a filter bank, not a channel


# --- the math ---------------------------------------------------------------------------------
def rms(x: np.ndarray) -> np.ndarray:
    """Root mean square over the last axis (float32 dot products: ~1e-6 relative, 30x faster
    than a float64 copy of the batch)."""
    x = np.asarray(x, dtype=np.float32)
    return np.sqrt(np.einsum("...i,...i->...", x, x) / x.shape[-1]).astype(np.float64)


def db_to_amplitude(db: np.ndarray | float) -> np.ndarray:
    return np.power(10.0, np.asarray(db, dtype=np.float64) / 20.0)


def _per_row(value: np.ndarray | float, batch_shape: tuple[int, ...]) -> np.ndarray:
    """A scalar or one value per row, as float32 shaped to broadcast against (..., L)."""
    return np.broadcast_to(np.asarray(value, dtype=np.float32), batch_shape)[..., None]


def mix_at_volume(clip: np.ndarray, noise: np.ndarray, volume: np.ndarray | float) -> np.ndarray:
    """clip + volume * noise, as the reference pipeline mixes (no clipping here)."""
    clip = np.asarray(clip, dtype=np.float32)
    scale = _per_row(volume, clip.shape[:-1])
    return clip + scale * np.asarray(noise, dtype=np.float32)


def mix_at_snr(clip: np.ndarray, noise: np.ndarray, snr_db: np.ndarray | float) -> np.ndarray:
    """Add noise scaled so that 20·log10(rms(clip) / rms(scaled noise)) == snr_db per row.

    The SNR is relative to the clip's own RMS, so an all-zero clip (or all-zero noise) has no
    defined level: that row is returned unchanged rather than filled with NaN or infinite noise.
    """
    clip = np.asarray(clip, dtype=np.float32)
    signal, level = rms(clip), rms(noise)
    wanted = signal / db_to_amplitude(np.broadcast_to(snr_db, signal.shape))
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where((signal > 0) & (level > 0), wanted / level, 0.0)
    return mix_at_volume(clip, noise, scale)


def time_shift(clip: np.ndarray, shift: np.ndarray | int) -> np.ndarray:
    """Move content ``shift`` samples later (negative: earlier), zero-filling, no wrap-around.

    ``shift`` is a scalar or one value per row; rows are copied as slices (faster than a
    gather over the whole batch).
    """
    clip = np.asarray(clip, dtype=np.float32)
    shift = np.asarray(shift, dtype=np.int64)
    length = clip.shape[-1]
    rows_shape = np.broadcast_shapes(clip.shape[:-1], shift.shape)
    src = np.broadcast_to(clip, rows_shape + (length,))
    shifts = np.broadcast_to(shift, rows_shape)
    out = np.zeros(rows_shape + (length,), dtype=np.float32)
    for row in np.ndindex(rows_shape):
        s = int(shifts[row])
        if abs(s) >= length:
            continue
        if s >= 0:
            out[row][s:] = src[row][: length - s]
        else:
            out[row][:s] = src[row][-s:]
    return out


def change_speed(clip: np.ndarray, factor: float) -> np.ndarray:
    """(L,) played ``factor`` times faster (pitch and tempo together), centred in L samples.

    Resampling by 1/factor is what a faster tape does; the band-limited soxr resampler keeps
    the result free of aliasing. The output keeps the clip's length: a slower clip loses a
    little of both ends (the word sits in the middle), a faster one is zero-padded.
    """
    clip = np.asarray(clip, dtype=np.float32)
    if factor == 1.0:
        return clip
    length = clip.shape[-1]
    played = soxr.resample(clip, 1.0, 1.0 / factor, quality="MQ").astype(np.float32)
    out = np.zeros(length, dtype=np.float32)
    if played.size >= length:
        start = (played.size - length) // 2
        out[:] = played[start : start + length]
    else:
        start = (length - played.size) // 2
        out[start : start + played.size] = played
    return out


def at_level_of(out: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``out`` scaled row by row to ``reference``'s RMS, so a reverberant or equalised clip is as
    loud as it was and the noise and gain drawn for it mean what they mean for a plain one. A
    silent row has no level to match and is returned as it is."""
    before, after = rms(reference), rms(out)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(after > 0, before / after, 1.0)
    return out * _per_row(scale, out.shape[:-1])


def reverberate(clip: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """(L,) heard in the room of ``rir``, aligned on the response's peak and at the clip's level.

    The peak of a room response is its direct path (data_prep.rooms draws rooms so): the output
    starts there, so the word stays where it was and the reverberant tail follows it; the wet
    clip keeps the dry clip's level (``at_level_of``).
    """
    import scipy.signal  # lazy: scipy.signal costs ~0.7 s to import; `kws --help` does not need it

    clip = np.asarray(clip, dtype=np.float32)
    rir = np.asarray(rir, dtype=np.float32).reshape(-1)
    length = clip.shape[-1]
    peak = int(np.argmax(np.abs(rir)))
    wet = scipy.signal.fftconvolve(clip, rir[: peak + length])[peak : peak + length].astype(np.float32)
    return at_level_of(wet, clip)


def eq_curve_db(freqs_hz: np.ndarray, centres_hz: np.ndarray, gains_db: np.ndarray) -> np.ndarray:
    """(rows, freqs) dB: each row's band gains joined linearly over log-frequency, flat beyond
    its outer bands (DC takes the lowest band's gain)."""
    x = np.log(np.maximum(freqs_hz, 1.0))
    return np.stack([np.interp(x, np.log(c), g) for c, g in zip(np.atleast_2d(centres_hz), np.atleast_2d(gains_db))])


def equalize(clip: np.ndarray, centres_hz: np.ndarray, gains_db: np.ndarray, sample_rate: int) -> np.ndarray:
    """(B, L) through each row's smooth response (``eq_curve_db``), at the row's own RMS.

    Zero-phase, applied to the whole clip's spectrum: a smooth curve has a short impulse
    response, so the circular wrap of one FFT is negligible at 1 s. The level is kept
    (``at_level_of``).
    """
    import scipy.fft  # lazy: scipy costs import time `kws --help` does not need; float32 FFTs, ~10x numpy's here

    clip = np.atleast_2d(np.asarray(clip, dtype=np.float32))
    length = clip.shape[-1]
    curve = eq_curve_db(np.fft.rfftfreq(length, 1.0 / sample_rate), centres_hz, gains_db).astype(np.float32)
    response = np.power(np.float32(10.0), curve / np.float32(20.0))
    out = scipy.fft.irfft(scipy.fft.rfft(clip, axis=-1) * response, n=length, axis=-1).astype(np.float32)
    return at_level_of(out, clip)


def draw_eq(rows: int, max_db: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(centres (rows, EQ_BANDS) Hz, gains (rows, EQ_BANDS) dB): log-spaced centres, each moved
    by up to a third of the spacing either way, gains uniform in [-max_db, max_db]."""
    lo, hi = np.log(EQ_BANDS_HZ)
    step = (hi - lo) / (EQ_BANDS - 1)
    centres = np.exp(np.linspace(lo, hi, EQ_BANDS) + rng.uniform(-step / 3, step / 3, size=(rows, EQ_BANDS)))
    return centres, rng.uniform(-max_db, max_db, size=(rows, EQ_BANDS))


def apply_gain(clip: np.ndarray, gain_db: np.ndarray | float) -> np.ndarray:
    clip = np.asarray(clip, dtype=np.float32)
    return clip * _per_row(db_to_amplitude(gain_db), clip.shape[:-1])


def clip_unit(clip: np.ndarray) -> np.ndarray:
    """Clamp to [-1, 1], the range a 16-bit microphone can deliver."""
    return np.clip(np.asarray(clip, dtype=np.float32), -1.0, 1.0)


def ms_to_samples(ms: float, sample_rate: int) -> int:
    return int(round(ms * sample_rate / 1000.0))


def noise_segments(
    noise_pool: Sequence[np.ndarray], length: int, count: int, rng: np.random.Generator,
    weights: Sequence[float] | None = None,
) -> np.ndarray:
    """(count, length) float32: a random file of the pool, a random segment of it, per row.

    ``weights``: how often each pool entry is drawn (default: uniform), so an hour of music
    and six noise files can each take a chosen share of the clips. A noise array shorter
    than ``length`` is repeated to fill it (the release's noise files are a minute long; a
    user's may not be).
    """
    if not noise_pool:
        raise ConfigError("background noise requested but the noise pool is empty")
    if weights is None:
        which = rng.integers(0, len(noise_pool), size=count)
    else:
        p = np.asarray(weights, dtype=np.float64)
        which = rng.choice(len(noise_pool), size=count, p=p / p.sum())
    starts = rng.random(count)
    out = np.empty((count, length), dtype=np.float32)
    for i, (k, u) in enumerate(zip(which, starts)):
        noise = np.asarray(noise_pool[k], dtype=np.float32).reshape(-1)
        if noise.size == 0:
            raise ConfigError(f"noise pool entry {k} has zero samples")
        if noise.size < length:
            noise = np.resize(noise, length)
        start = int(u * (noise.size - length + 1))
        out[i] = noise[start : start + length]
    return out


# --- the recipe -------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True, kw_only=True)
class AugmentConfig:
    """How to augment: saved next to a training run so it can be reproduced.

    ``noise_prob``: share of clips that get background noise; ``noise_mode``: "volume" draws a
    linear noise volume from ``volume_range`` (reference: [0, 0.1]), "snr" draws an SNR in dB
    from ``snr_db_range``; ``shift_ms``: maximum shift either way; ``gain_db_range``: gain drawn
    per clip, applied after mixing (a louder or quieter microphone); ``speed_range``: playback
    speed drawn per clip before anything else ((1, 1): off); ``reverb_prob``: share of clips
    heard in a simulated room (0: off); the run simulates a bank of ``reverb_rooms`` rooms
    whose RT60 is drawn from ``rt60_range`` (seconds); ``eq_prob``: share of clips given a random
    microphone response of seven bands within ±``eq_db`` dB (0: off).
    """

    noise_prob: float = 0.8
    noise_mode: str = "volume"
    volume_range: tuple[float, float] = (0.0, 0.1)
    snr_db_range: tuple[float, float] = (5.0, 20.0)
    shift_ms: float = 100.0
    gain_db_range: tuple[float, float] = (0.0, 0.0)
    speed_range: tuple[float, float] = (1.0, 1.0)
    reverb_prob: float = 0.0
    rt60_range: tuple[float, float] = (0.15, 0.8)
    reverb_rooms: int = 100
    eq_prob: float = 0.0
    eq_db: float = 6.0

    def __post_init__(self) -> None:
        for name in _RANGES:
            value = getattr(self, name)
            try:
                lo, hi = (float(v) for v in value)
            except (TypeError, ValueError):
                raise ConfigError(f"invalid augment config: {name}={value!r} is not a (low, high) pair") from None
            if not lo <= hi:
                raise ConfigError(f"invalid augment config: {name}={value!r} needs low <= high")
            object.__setattr__(self, name, (lo, hi))
        if not 0.0 <= self.noise_prob <= 1.0:
            raise ConfigError(f"invalid augment config: noise_prob={self.noise_prob} not in [0, 1]")
        if self.noise_mode not in NOISE_MODES:
            raise ConfigError(
                f"invalid augment config: noise_mode={self.noise_mode!r} not one of {', '.join(NOISE_MODES)}"
            )
        if self.volume_range[0] < 0:
            raise ConfigError(f"invalid augment config: volume_range={self.volume_range} must be >= 0")
        if self.shift_ms < 0:
            raise ConfigError(f"invalid augment config: shift_ms={self.shift_ms} must be >= 0")
        if not 0.5 <= self.speed_range[0] <= self.speed_range[1] <= 2.0:
            raise ConfigError(f"invalid augment config: speed_range={self.speed_range} must lie in [0.5, 2]")
        if not 0.0 <= self.reverb_prob <= 1.0:
            raise ConfigError(f"invalid augment config: reverb_prob={self.reverb_prob} not in [0, 1]")
        if not 0.0 <= self.eq_prob <= 1.0:
            raise ConfigError(f"invalid augment config: eq_prob={self.eq_prob} not in [0, 1]")
        if not 0.0 <= self.eq_db <= EQ_MAX_DB:
            raise ConfigError(f"invalid augment config: eq_db={self.eq_db} must lie in [0, {EQ_MAX_DB:g}] dB")
        if self.reverb_rooms < 1:
            raise ConfigError(f"invalid augment config: reverb_rooms={self.reverb_rooms} must be >= 1")
        if not RT60_LIMITS[0] <= self.rt60_range[0] <= self.rt60_range[1] <= RT60_LIMITS[1]:
            raise ConfigError(f"invalid augment config: rt60_range={self.rt60_range} must lie in "
                              f"[{RT60_LIMITS[0]}, {RT60_LIMITS[1]}] seconds")

    def to_dict(self) -> dict[str, Any]:
        """Saved beside a run and hashed into the recipe's step digests. Without EQ its keys are
        left out, so runs and work folders from before it keep their identity (and resume)."""
        data = dataclasses.asdict(self)
        for name in _RANGES:
            data[name] = list(data[name])
        if self.eq_prob == 0:
            del data["eq_prob"], data["eq_db"]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "augment config") -> "AugmentConfig":
        data = dict(data.get("augment", data))
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"{source}: unknown augment config keys {unknown}")
        for name in _RANGES:
            if name in data and isinstance(data[name], list):
                data[name] = tuple(data[name])
        try:
            return cls(**data)
        except TypeError as exc:
            raise ConfigError(f"{source}: {exc}") from None


def augment(
    clip: np.ndarray,
    noise_pool: Sequence[np.ndarray],
    config: AugmentConfig,
    rng: np.random.Generator,
    *,
    sample_rate: int,
    noise_weights: Sequence[float] | None = None,
    rirs: Sequence[np.ndarray] = (),
) -> np.ndarray:
    """Speed, shift, reverb, EQ, add background noise, apply gain, clip to [-1, 1]: (L,) or (B, L) float32.

    ``sample_rate`` (the FeatureConfig's) turns ``shift_ms`` into samples. The same seed and
    inputs give the same output; each row of a batch gets its own draws. In "snr" mode a
    silent row (a _silence_ example) has no level to be relative to and gets the noise at a
    ``volume_range`` volume instead, as in "volume" mode. ``rirs``: the room impulse responses
    a reverberant clip draws from (see ``reverberate``).
    """
    clip = np.asarray(clip, dtype=np.float32)
    if clip.ndim not in (1, 2):
        raise ConfigError(f"augment expects a clip (L,) or a batch (B, L), got shape {clip.shape}")
    if config.noise_prob > 0 and not noise_pool:
        raise ConfigError(f"noise_prob={config.noise_prob} but the background noise pool is empty")
    if config.reverb_prob > 0 and not rirs:
        raise ConfigError(f"reverb_prob={config.reverb_prob} but no room impulse responses were given")
    batch = clip.reshape(-1, clip.shape[-1])
    rows, length = batch.shape

    max_shift = ms_to_samples(config.shift_ms, sample_rate)
    shifts = rng.integers(-max_shift, max_shift + 1, size=rows)
    use_noise = rng.random(rows) < config.noise_prob
    lo, hi = config.volume_range if config.noise_mode == "volume" else config.snr_db_range
    levels = rng.uniform(lo, hi, size=rows)
    gains = rng.uniform(*config.gain_db_range, size=rows)

    volumes = rng.uniform(*config.volume_range, size=rows) if config.noise_mode == "snr" else levels
    if config.speed_range != (1.0, 1.0):  # drawn last: runs without speed keep their old draws
        batch = np.stack([change_speed(row, f) for row, f in zip(batch, rng.uniform(*config.speed_range, size=rows))])

    out = time_shift(batch, shifts)
    noise = noise_segments(noise_pool, length, rows, rng, noise_weights) if use_noise.any() else None
    if config.reverb_prob > 0:  # drawn last: runs without reverb keep their old draws
        rooms = rng.integers(0, len(rirs), size=rows)
        for row in np.flatnonzero(rng.random(rows) < config.reverb_prob):
            out[row] = reverberate(out[row], rirs[rooms[row]])
    if config.eq_prob > 0:  # drawn last: runs without EQ keep their old draws
        centres, eq_gains = draw_eq(rows, config.eq_db, rng)
        picked = np.flatnonzero(rng.random(rows) < config.eq_prob)
        if picked.size:
            out[picked] = equalize(out[picked], centres[picked], eq_gains[picked], sample_rate)
    if noise is not None:
        noise[~use_noise] = 0.0
        if config.noise_mode == "volume":
            out = mix_at_volume(out, noise, levels)
        else:
            silent = rms(out) == 0
            out = np.where(silent[:, None], mix_at_volume(out, noise, volumes), mix_at_snr(out, noise, levels))
    out = clip_unit(apply_gain(out, gains))
    return out.reshape(clip.shape)
