"""Per-coefficient feature normalisation, measured on training data and stored with a model.

MFCC c0 spans hundreds of dB-units while c1..c9 span tens; an int8 input tensor has one
scale, so without this step the higher coefficients would get a handful of levels. The same
affine map runs before quantization in Python, in the streaming cascade and in the C frontend.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from data_prep.atomic import write_text_atomic
from data_prep.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class FeatureStats:
    """Mean and standard deviation per MFCC coefficient."""

    mean: tuple[float, ...]
    std: tuple[float, ...]

    @classmethod
    def measure(cls, features: np.ndarray) -> "FeatureStats":
        """From (N, T, n_mfcc) training features; std has a floor so a constant column is safe."""
        flat = np.asarray(features, dtype=np.float64).reshape(-1, features.shape[-1])
        std = np.maximum(flat.std(axis=0), 1e-3)
        return cls(tuple(float(v) for v in flat.mean(axis=0)), tuple(float(v) for v in std))

    @classmethod
    def identity(cls, n_mfcc: int) -> "FeatureStats":
        return cls((0.0,) * n_mfcc, (1.0,) * n_mfcc)

    def apply(self, features: np.ndarray) -> np.ndarray:
        mean = np.asarray(self.mean, dtype=np.float32)
        std = np.asarray(self.std, dtype=np.float32)
        return ((features - mean) / std).astype(np.float32)

    def save(self, path: Path) -> None:
        write_text_atomic(Path(path), json.dumps({"mean": self.mean, "std": self.std}, indent=2) + "\n")

    @classmethod
    def load(cls, path: Path, n_mfcc: int) -> "FeatureStats":
        try:
            data = json.loads(Path(path).read_text())
            stats = cls(tuple(map(float, data["mean"])), tuple(map(float, data["std"])))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{path}: not a valid normalisation file ({exc})") from None
        if len(stats.mean) != n_mfcc or len(stats.std) != n_mfcc or min(stats.std) <= 0:
            raise ConfigError(f"{path}: expected {n_mfcc} means and positive stds")
        return stats
