"""FeatureConfig: the single source of truth for framing and MFCC settings.

Training, streaming, the live demo and the firmware header all read the same frozen object;
no other module holds a sample rate, window, stride, mel or MFCC number.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import tomllib
from pathlib import Path
from typing import Any

from data_prep.atomic import write_text_atomic
from data_prep.errors import ConfigError, ConfigMismatch
from data_prep.toml_io import dumps

WINDOWS = ("hann", "hamming", "blackman", "boxcar")
SPECTRA = ("power", "magnitude")
# "slaney": librosa.filters.mel (Slaney scale, area-normalised triangles in Hz);
# "tensorflow": tf.signal.linear_to_mel_weight_matrix (HTK scale, unit-peak triangles in mel, DC
# bin zeroed), the MLPerf Tiny KWS front end's, so a model trained on it can start from the
# MLPerf reference weights (kws/train/warm_start.py).
MEL_BANKS = ("slaney", "tensorflow")
# Fields added after configs were first saved: left out of the fingerprint at their default, so
# every saved bundle keeps the fingerprint it was written with.
_LATER_FIELDS = {"spectrum": "power", "mel_bank": "slaney"}
SUFFIXES = (".toml", ".json")
# Upper bounds: far above any keyword-spotting front end (multi-word wake phrases need clips
# of ~1.5-3 s), far below what would try to allocate gigabytes for one clip.
MAX_SAMPLE_RATE = 192_000
MAX_CLIP_MS = 10_000.0
MAX_WINDOW_MS = 1_000.0
MAX_N_FFT = 65_536
MAX_N_MELS = 512
MAX_SPECTRUM_VALUES = 1_000_000  # frames x bins of one clip (default config: 49 x 513)


def _next_pow2(n: int) -> int:
    return 1 << max(0, math.ceil(math.log2(max(n, 1))))


@dataclasses.dataclass(frozen=True, kw_only=True)
class FeatureConfig:
    """Framing and MFCC parameters; hashable so tables can be cached per config.

    ``n_fft = 0`` means "the next power of two >= the window", which a device FFT can also do;
    it is resolved at construction, so a saved config always holds the concrete value.
    """

    sample_rate: int = 16000
    clip_ms: float = 1000.0
    window_ms: float = 40.0
    stride_ms: float = 20.0
    n_fft: int = 0
    window: str = "hann"
    n_mels: int = 40
    fmin: float = 20.0
    fmax: float = 4000.0
    n_mfcc: int = 10
    log_floor: float = 1e-6
    spectrum: str = "power"  # or "magnitude" (what the mel filters weigh)
    mel_bank: str = "slaney"  # or "tensorflow" (see MEL_BANKS)

    def __post_init__(self) -> None:
        # Canonical types, so 10 and 10.0 give one fingerprint and one saved file.
        for f in dataclasses.fields(self):
            kind = {"int": int, "float": float, "str": str}[f.type]
            value = getattr(self, f.name)
            if kind is int and isinstance(value, float) and value.is_integer():
                value = int(value)
            if not isinstance(value, kind) or isinstance(value, bool):
                if kind is float and isinstance(value, int) and not isinstance(value, bool):
                    value = float(value)
                else:
                    raise ConfigError(f"invalid feature config: {f.name}={value!r} is not {f.type}")
            if kind is float and not math.isfinite(value):
                raise ConfigError(f"invalid feature config: {f.name}={value} is not a finite number")
            object.__setattr__(self, f.name, value)
        self._check_bounds()
        if self.n_fft == 0:
            object.__setattr__(self, "n_fft", _next_pow2(self.window_samples))
        self._validate()

    # --- derived sizes: every path asks these, none recomputes them -------------------------
    @property
    def clip_samples(self) -> int:
        return self._samples(self.clip_ms, "clip_ms")

    @property
    def window_samples(self) -> int:
        return self._samples(self.window_ms, "window_ms")

    @property
    def stride_samples(self) -> int:
        return self._samples(self.stride_ms, "stride_ms")

    @property
    def num_frames(self) -> int:
        """T = (L - l) / s + 1: the one place this formula lives."""
        return (self.clip_samples - self.window_samples) // self.stride_samples + 1

    @property
    def input_shape(self) -> tuple[int, int]:
        """Shape of one clip's features, (T, n_mfcc): what the models take."""
        return (self.num_frames, self.n_mfcc)

    @property
    def n_bins(self) -> int:
        return self.n_fft // 2 + 1

    def _samples(self, ms: float, name: str) -> int:
        exact = self.sample_rate * ms / 1000.0
        n = round(exact)
        if abs(exact - n) > 1e-6:
            raise ConfigError(
                f"{name}={ms} ms is not a whole number of samples at {self.sample_rate} Hz"
            )
        return n

    def _check_bounds(self) -> None:
        """Before any size is derived from them: values that would allocate gigabytes."""
        for name, value, upper in (("sample_rate", self.sample_rate, MAX_SAMPLE_RATE), ("clip_ms", self.clip_ms, MAX_CLIP_MS),
                                   ("window_ms", self.window_ms, MAX_WINDOW_MS), ("n_fft", self.n_fft, MAX_N_FFT),
                                   ("n_mels", self.n_mels, MAX_N_MELS)):
            if value > upper:
                raise ConfigError(f"invalid feature config: {name}={value} above the supported maximum {upper:g}")

    def _validate(self) -> None:
        def bad(msg: str) -> ConfigError:
            return ConfigError(f"invalid feature config: {msg}")

        if self.sample_rate <= 0:
            raise bad(f"sample_rate={self.sample_rate} must be positive")
        if min(self.clip_ms, self.window_ms, self.stride_ms) <= 0:
            raise bad("clip_ms, window_ms and stride_ms must be positive")
        if self.window_samples > self.clip_samples:
            raise bad(f"window ({self.window_samples} samples) longer than clip ({self.clip_samples})")
        if self.n_fft < self.window_samples:
            raise bad(f"n_fft={self.n_fft} shorter than the window ({self.window_samples} samples)")
        if self.num_frames * self.n_bins > MAX_SPECTRUM_VALUES:
            raise bad(f"{self.num_frames} frames x {self.n_bins} bins per clip is above the supported "
                      f"{MAX_SPECTRUM_VALUES} (a longer stride_ms or a smaller n_fft)")
        if self.window not in WINDOWS:
            raise bad(f"window={self.window!r} not one of {', '.join(WINDOWS)}")
        if self.spectrum not in SPECTRA:
            raise bad(f"spectrum={self.spectrum!r} not one of {', '.join(SPECTRA)}")
        if self.mel_bank not in MEL_BANKS:
            raise bad(f"mel_bank={self.mel_bank!r} not one of {', '.join(MEL_BANKS)}")
        if not 0 <= self.fmin < self.fmax <= self.sample_rate / 2:
            raise bad(f"need 0 <= fmin < fmax <= sample_rate/2, got {self.fmin}..{self.fmax}")
        if self.n_mels < 1 or not 1 <= self.n_mfcc <= self.n_mels:
            raise bad(f"need 1 <= n_mfcc <= n_mels, got n_mfcc={self.n_mfcc}, n_mels={self.n_mels}")
        if not self.log_floor > 0:
            raise bad(f"log_floor={self.log_floor} must be positive")

    # --- persistence ------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> "FeatureConfig":
        data = dict(data.get("features", data))
        known = {f.name: f.type for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ConfigError(f"{source}: unknown feature config keys {unknown}")
        try:
            return cls(**data)
        except (TypeError, ConfigError) as exc:
            raise ConfigError(f"{source}: {exc}") from None

    def fingerprint(self) -> str:
        """Short stable hash of every field: equal configs, equal fingerprints."""
        fields = {k: v for k, v in self.to_dict().items()
                  if k not in _LATER_FIELDS or v != _LATER_FIELDS[k]}
        canon = json.dumps(fields, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canon.encode()).hexdigest()[:16]

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    def to_toml(self) -> str:
        return dumps({"features": self.to_dict()})

    def save(self, path: Path) -> None:
        path = Path(path)
        text = self.to_toml() if path.suffix == ".toml" else self.to_json()
        write_text_atomic(path, text)

    @classmethod
    def load(cls, path: Path) -> "FeatureConfig":
        path = Path(path)
        if path.suffix.lower() not in SUFFIXES:
            raise ConfigError(f"{path}: unsupported config format {path.suffix or '(no extension)'!r} "
                              f"(use {' or '.join(SUFFIXES)})")
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read config ({exc.strerror})") from None
        except UnicodeDecodeError:
            raise ConfigError(f"{path}: not a text file (not UTF-8)") from None
        try:
            data = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
        except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
            raise ConfigError(f"{path}: not valid {path.suffix.lstrip('.') or 'JSON'}: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected a table of feature settings")
        return cls.from_dict(data, source=str(path))

    def require_same(self, other: "FeatureConfig", what: str) -> None:
        """Refuse to mix artefacts made with different features."""

        if self != other:
            diff = [
                f"{k}: {a!r} != {b!r}"
                for k, a, b in (
                    (f.name, getattr(self, f.name), getattr(other, f.name))
                    for f in dataclasses.fields(self)
                )
                if a != b
            ]
            raise ConfigMismatch(f"{what}: feature config does not match ({'; '.join(diff)})")
