"""The exported C99 MFCC frontend against the Python one, compiled with real gcc, on several
feature configs (stride over window, 8 kHz, a 1.5 s wake phrase, Hamming)."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
from c_export import build, int8_tensor, needs_gcc, synthetic_export

from data_prep.config import FeatureConfig
from data_prep.features import mfcc
from data_prep.normalize import FeatureStats
from export import frontend_c

# ---- the frontend on several feature configs ----------------------------------------------------
FRONTEND_MAIN = r"""
#include <stdio.h>
#include <stdlib.h>
#include "kws_frontend.h"
/* argv: input int16 file, output file, chunk size. Writes per frame: n_mfcc floats, then
 * n_mfcc int8 of stage 1 and of stage 2; then one line with sizeof(kws_frontend_t). */
int main(int argc, char **argv) {
    static int16_t pcm[1 << 20];
    static kws_frontend_t fe;
    FILE *in = fopen(argv[1], "rb"), *out = fopen(argv[2], "wb");
    size_t n = fread(pcm, 2, sizeof pcm / 2, in), pos = 0, chunk = (size_t)atoi(argv[3]);
    (void)argc;
    kws_frontend_reset(&fe);
    while (pos < n) {
        size_t want = n - pos < chunk ? n - pos : chunk;
        while (want > 0) {
            int ready = 0;
            size_t used = kws_frontend_push(&fe, pcm + pos, want, &ready);
            pos += used; want -= used;
            if (ready) {
                int8_t q[KWS_N_MFCC];
                fwrite(fe.mfcc, sizeof(float), KWS_N_MFCC, out);
                kws_quantize_features(1, fe.mfcc, q); fwrite(q, 1, KWS_N_MFCC, out);
                kws_quantize_features(2, fe.mfcc, q); fwrite(q, 1, KWS_N_MFCC, out);
            }
        }
    }
    printf("%u %u\n", (unsigned)sizeof(kws_frontend_t), (unsigned)sizeof(kws_feature_ring_t));
    fclose(in); fclose(out);
    return 0;
}
"""

CONFIGS = {
    "default": FeatureConfig(),
    "hamming_25ms_10ms_13mfcc": FeatureConfig(window_ms=25.0, stride_ms=10.0, window="hamming", n_mels=32,
                                              n_mfcc=13, fmax=8000.0),
    "1500ms_wake_phrase": FeatureConfig(clip_ms=1500.0),
    "mlperf_magnitude_tensorflow_mel": FeatureConfig(spectrum="magnitude", mel_bank="tensorflow"),
    "8khz_big_fft_stride_over_window": FeatureConfig(sample_rate=8000, window_ms=32.0, stride_ms=40.0, n_fft=512,
                                                     n_mels=20, fmin=0.0, fmax=4000.0),
}


def _signals(rate: int, rng) -> np.ndarray:
    t = np.arange(int(1.3 * rate)) / rate
    chirp = 0.5 * np.sin(2 * np.pi * (100 + 1500 * t) * t)
    parts = [rng.normal(0, 0.1, len(t)), chirp, np.zeros(rate // 4), rng.normal(0, 3e-4, rate // 2),
             np.sign(np.sin(2 * np.pi * 440 * t[: rate // 2]))]
    return np.clip(np.round(np.concatenate(parts) * 32767), -32768, 32767).astype(np.int16)


@needs_gcc
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_c_frontend_matches_python(name, tmp_path, rng):
    cfg = CONFIGS[name]
    stats = FeatureStats(tuple(rng.normal(0, 20, cfg.n_mfcc)), tuple(rng.uniform(5, 60, cfg.n_mfcc)))
    synthetic_export(tmp_path, cfg, stats=stats)
    exe = build(tmp_path, FRONTEND_MAIN, ["kws_frontend.c"])
    pcm = _signals(cfg.sample_rate, rng)
    (tmp_path / "pcm.raw").write_bytes(pcm.tobytes())
    py = mfcc(pcm.astype(np.float32) / np.float32(32768), cfg)
    for chunk in (1, 333):
        run = subprocess.run([exe, tmp_path / "pcm.raw", tmp_path / "out.raw", str(chunk)], capture_output=True,
                             text=True, check=True)
        raw = np.frombuffer((tmp_path / "out.raw").read_bytes(), np.uint8).reshape(-1, 6 * cfg.n_mfcc)
        c = raw[:, : 4 * cfg.n_mfcc].copy().view(np.float32)
        q1, q2 = raw[:, 4 * cfg.n_mfcc : 5 * cfg.n_mfcc].view(np.int8), raw[:, 5 * cfg.n_mfcc :].view(np.int8)
        assert c.shape == py.shape
        rel = np.abs(c - py) / np.maximum(np.abs(py), 1.0)
        # A magnitude spectrum keeps near-silent frames above the log floor, where a power
        # spectrum clamps them in both implementations: there the float32 FFTs' rounding shows
        # (measured 0.026 dB at most, on a coefficient whose spread is tens of dB).
        tolerance = 3e-2 if cfg.spectrum == "magnitude" else 1e-3
        assert rel.max() < tolerance, f"max relative MFCC error {rel.max():.2e}"
        for n, q in ((1, q1), (2, q2)):
            tensor = int8_tensor(0.05 * n, n - 2, (1, *cfg.input_shape))
            runtime = tensor.quantize(stats.apply(py))
            assert np.abs(runtime.astype(int) - q).max() <= 1
        sizes = [int(v) for v in run.stdout.split()]
        ram = frontend_c.ram_bytes(cfg, 5, 12)
        assert sizes == [ram["frontend"], ram["feature_ring"]]
