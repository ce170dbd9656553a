"""Room impulse responses for reverberation augmentation, simulated by pyroomacoustics.

A bank of shoebox rooms is simulated once per training run and reused for every clip. Each
room draws its size, its reverberation time (RT60, turned into a wall absorption by Sabine's
formula) and a microphone and talker at a drawn distance. The simulation is pyroomacoustics'
hybrid one: image sources up to order ``ISM_ORDER`` give the early reflections exactly, ray
tracing the late tail. An image method alone, cut to an order that runs in milliseconds,
truncates the tail: at order 10 the measured RT60 (T30) was a median 0.78 of the asked one,
0.23 at worst; the hybrid's is a median 1.02 of it (0.65-1.44 over the default 100 rooms).

Every draw comes from a generator seeded by (seed, room index), and pyroomacoustics' own
generators (ray directions) are seeded per room, so a seed gives the same bank on every run
and every worker. Each response is cut to start ``LEAD`` samples before its direct path (the
propagation delay is silence), scaled to a direct path of 1, and its peak IS the direct path
(a room where two reflections add up above it is redrawn): augment aligns a clip on the peak.
A bank takes ~0.2 s a room to simulate (most of it pyroomacoustics turning ray histograms
into responses), so it is cached on disk, keyed by everything that made it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import json
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from data_prep.atomic import write_atomic
from data_prep.cache import default_cache_dir
from data_prep.errors import ConfigError

ISM_ORDER = 3  # image sources for the early reflections; ray tracing does the rest
RECEIVER_RADIUS_M = 0.5  # the ray tracer's microphone sphere
MARGIN_M = 0.5  # microphone and talker keep this far from every wall
HEIGHT_RANGE_M = (2.5, 4.0)
MAX_SECONDS = 1.5  # the tail is cut here: 1 s clips hear no more than 1 s of it
LEAD = 40  # samples kept before the direct path: the first half of pyroomacoustics' 81-tap delay filter
_BANK_FORMAT = 1  # bump when the simulation changes: old cached banks are then not reused
_ATTEMPTS = 1000


@dataclasses.dataclass(frozen=True, kw_only=True)
class RoomConfig:
    """Which rooms a bank holds: ``rooms`` shoeboxes, floor sides drawn from ``size_range_m``,
    RT60 from ``rt60_range_s``, talker-microphone distance from ``distance_range_m``."""

    rooms: int = 100
    rt60_range_s: tuple[float, float] = (0.15, 0.8)
    size_range_m: tuple[float, float] = (3.0, 10.0)
    distance_range_m: tuple[float, float] = (0.5, 4.0)
    sample_rate: int = 16000
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("rt60_range_s", "size_range_m", "distance_range_m"):
            lo, hi = (float(v) for v in getattr(self, name))
            if not 0 < lo <= hi:
                raise ConfigError(f"invalid room config: {name}={getattr(self, name)} needs 0 < low <= high")
            object.__setattr__(self, name, (lo, hi))
        if self.rooms < 1:
            raise ConfigError(f"invalid room config: rooms={self.rooms} must be >= 1")
        if self.size_range_m[0] < 2 * MARGIN_M + self.distance_range_m[0]:
            raise ConfigError(f"invalid room config: rooms of {self.size_range_m[0]} m cannot hold a talker "
                              f"{self.distance_range_m[0]} m from the microphone, {MARGIN_M} m from the walls")

    def key(self) -> str:
        """What makes a bank: this config, the simulation's constants and the library's version."""
        recipe = dataclasses.asdict(self) | {
            "format": _BANK_FORMAT, "ism_order": ISM_ORDER, "lead": LEAD, "max_seconds": MAX_SECONDS,
            "receiver_radius_m": RECEIVER_RADIUS_M, "margin_m": MARGIN_M, "height_range_m": HEIGHT_RANGE_M,
            "pyroomacoustics": importlib.metadata.version("pyroomacoustics")}
        return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]


@dataclasses.dataclass(frozen=True)
class Room:
    """One drawn room: size (m), asked RT60 (s), microphone and talker positions (m)."""

    size: np.ndarray
    rt60: float
    mic: np.ndarray
    talker: np.ndarray

    @property
    def distance(self) -> float:
        return float(np.linalg.norm(self.talker - self.mic))


def draw_room(config: RoomConfig, rng: np.random.Generator) -> Room:
    """A room, then a microphone anywhere in it and a talker at a drawn distance in a drawn
    direction; a talker that would sit in a wall is drawn again (distance too, if it cannot fit)."""
    size = np.array([*rng.uniform(*config.size_range_m, size=2), rng.uniform(*HEIGHT_RANGE_M)])
    rt60 = float(rng.uniform(*config.rt60_range_s))
    inner = size - 2 * MARGIN_M
    for _ in range(_ATTEMPTS):
        distance = rng.uniform(*config.distance_range_m)
        for _ in range(20):
            mic = MARGIN_M + rng.random(3) * inner
            direction = rng.normal(size=3)
            talker = mic + distance * direction / np.linalg.norm(direction)
            if np.all(talker >= MARGIN_M) and np.all(talker <= size - MARGIN_M):
                return Room(size, rt60, mic, talker)
    raise ConfigError(f"no talker position found in a {size.round(2).tolist()} m room")  # unreachable by __post_init__


def simulate(room: Room, sample_rate: int, seed: int) -> np.ndarray | None:
    """The room's impulse response from the direct path on (see the module doc), or None when
    its peak is not the direct path or the RT60 needs walls absorbing more than all sound."""
    import pyroomacoustics as pra  # lazy: imports scipy.signal and sounddevice (~1.5 s); only a reverb run needs it

    try:
        absorption, _ = pra.inverse_sabine(room.rt60, room.size)
    except ValueError:  # too large a room for so short an RT60
        return None
    pra.random.seed(numpy=seed, libroom=seed)  # the ray tracer's directions
    sim = pra.ShoeBox(room.size, fs=sample_rate, materials=pra.Material(absorption), max_order=ISM_ORDER,
                      ray_tracing=True, air_absorption=True)
    sim.set_ray_tracing(receiver_radius=RECEIVER_RADIUS_M, time_thres=MAX_SECONDS)
    sim.add_source(room.talker)
    sim.add_microphone(room.mic)
    sim.compute_rir()
    rir = np.asarray(sim.rir[0][0], dtype=np.float64)
    # The direct sound: the propagation delay plus the centre of the fractional-delay filter.
    direct = round(room.distance / sim.c * sample_rate + pra.constants.get("frac_delay_length") // 2)
    peak = int(np.argmax(np.abs(rir)))
    if abs(peak - direct) > 1:
        return None
    rir = rir[peak - LEAD : peak + int(MAX_SECONDS * sample_rate)]
    return (rir / rir[LEAD]).astype(np.float32)


def simulate_bank(config: RoomConfig) -> tuple[tuple[np.ndarray, ...], tuple[Room, ...]]:
    """Every room's impulse response, and the rooms drawn (a room that cannot be simulated,
    see ``simulate``, is drawn again from the same stream)."""
    rirs, rooms = [], []
    for index in range(config.rooms):
        rng = np.random.default_rng([config.seed, index])
        for attempt in range(_ATTEMPTS):
            room = draw_room(config, rng)
            rir = simulate(room, config.sample_rate, seed=int(np.random.SeedSequence([config.seed, index, attempt])
                                                               .generate_state(1, np.uint64)[0]))
            if rir is not None:
                break
        else:
            raise ConfigError(f"room {index}: no simulable room in {_ATTEMPTS} draws ({config})")
        rirs.append(rir)
        rooms.append(room)
    return tuple(rirs), tuple(rooms)


def bank_path(config: RoomConfig, cache_dir: Path | None = None) -> Path:
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return root / "rooms" / f"{config.key()}.npz"


def room_bank(config: RoomConfig, cache_dir: Path | None = None,
              log: Callable[[str], None] | None = None) -> tuple[np.ndarray, ...]:
    """The bank's impulse responses: read from the cache, or simulated (``log`` hears how long
    it took) and cached. A damaged cache file is simulated again and replaced."""
    path = bank_path(config, cache_dir)
    try:
        with np.load(path, allow_pickle=False) as data:
            rirs = tuple(data[f"arr_{i}"] for i in range(config.rooms))
        if all(r.dtype == np.float32 and r.ndim == 1 and r.size > LEAD for r in rirs):
            return rirs
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        pass
    start = time.perf_counter()
    rirs, _ = simulate_bank(config)
    write_atomic(path, lambda fh: np.savez(fh, *rirs))
    if log:
        log(f"reverb: simulated {config.rooms} rooms (RT60 {config.rt60_range_s[0]:g}-{config.rt60_range_s[1]:g} s) "
            f"in {time.perf_counter() - start:.0f} s; cached in {path}")
    return rirs

