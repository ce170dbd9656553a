"""Building the exported C without a trained bundle: a bundle that exists only in memory, its
config header, frontend tables and C templates written to a folder, and gcc to compile a main
against them. Shared by the tests of the C frontend and of the C decision logic."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from cascade.runtime.bundle import Bundle
from cascade.runtime.decision import SmoothingConfig
from cascade.runtime.int8_model import TensorInfo
from cascade.runtime.model_dir import ModelDir
from data_prep.config import FeatureConfig
from data_prep.labels import SILENCE, UNKNOWN
from data_prep.normalize import FeatureStats
from export import frontend_c, header
from export.firmware import template

GCC, GXX = shutil.which("gcc"), shutil.which("g++")
needs_gcc = pytest.mark.skipif(GCC is None or GXX is None, reason="gcc/g++ not installed")
CFLAGS = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-pedantic"]
KEYWORDS = ("yes", "no", "up")


def int8_tensor(scale: float, zp: int, shape=(1, 3)) -> TensorInfo:
    return TensorInfo("t", 0, shape, np.dtype(np.int8), float(np.float32(scale)), zp)


def synthetic_export(folder: Path, config: FeatureConfig, *, tau=0.5, smoothing=SmoothingConfig(),
                     stride_ms: float | None = None, silence=True, out_scale=1 / 256, out_zp=-128,
                     stats: FeatureStats | None = None, points: dict | None = None, sensitivity: str | None = None) -> Bundle:
    """Config header, frontend tables and the C templates for a bundle that exists only in
    memory (the stage models are not needed by the frontend or the decision logic)."""
    reserved = ((SILENCE,) if silence else ()) + (UNKNOWN,)
    stats = stats or FeatureStats.identity(config.n_mfcc)
    s1 = ModelDir(folder / "s1", config, reserved + ("keyword",), stats)
    s2 = ModelDir(folder / "s2", config, reserved + KEYWORDS, stats)
    bundle = Bundle(folder, config, s1, s2, tau, stride_ms or 5 * config.stride_ms, smoothing, {}, points or {})
    bundle.validate()
    bundle = bundle.at(sensitivity)
    facts = [header.StageFacts(n, m.labels, stats, int8_tensor(0.05 * n, n - 2, (1, *config.input_shape)),
                               int8_tensor(out_scale, out_zp, (1, len(m.labels))), 100, 1000, ("SOFTMAX",))
             for n, m in ((1, s1), (2, s2))]
    (folder / header.HEADER).write_text(header.cascade_config_header(bundle, *facts))
    (folder / frontend_c.TABLES_HEADER).write_text(frontend_c.frontend_tables_header(config, *facts))
    for name in ("kws_frontend.c", "kws_frontend.h", "kws_decision.c", "kws_decision.h"):
        (folder / name).write_text(template(name))
    return bundle


def build(folder: Path, main_source: str, sources: list[str]) -> Path:
    (folder / "main.c").write_text(main_source)
    exe = folder / "prog"
    subprocess.run([GCC, *CFLAGS, f"-I{folder}", "-o", str(exe), str(folder / "main.c"),
                    *(str(folder / s) for s in sources), "-lm"], check=True, capture_output=True, text=True)
    return exe
