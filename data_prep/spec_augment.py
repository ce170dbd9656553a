"""SpecAugment-style masking on feature matrices (Park et al. 2019), seeded numpy."""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True, kw_only=True)
class MaskConfig:
    """Up to ``time_masks`` bands of <= ``time_width`` frames and ``freq_masks`` bands of
    <= ``freq_width`` coefficients set to 0 (the mean, once features are normalised)."""

    time_masks: int = 2
    time_width: int = 5
    freq_masks: int = 1
    freq_width: int = 2


def spec_augment(features: np.ndarray, config: MaskConfig, rng: np.random.Generator) -> np.ndarray:
    """(B, T, C) -> masked copy; each row gets its own bands."""
    out = np.array(features, dtype=np.float32, copy=True)
    rows, frames, coefs = out.shape
    for axis, count, width, size in ((1, config.time_masks, config.time_width, frames), (2, config.freq_masks, config.freq_width, coefs)):
        for _ in range(count):
            widths = rng.integers(0, min(width, size) + 1, size=rows)
            starts = rng.integers(0, size - widths + 1)
            idx = np.arange(size)
            mask = (idx[None, :] >= starts[:, None]) & (idx[None, :] < (starts + widths)[:, None])
            if axis == 1:
                out[mask] = 0.0
            else:
                out.transpose(0, 2, 1)[mask] = 0.0
    return out
