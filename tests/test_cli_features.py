"""`kws features` and the CLI's one-line error contract, through the real console script."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from data_prep.audio import load_clip
from data_prep.config import FeatureConfig
from data_prep.features import mfcc
from kws.cli import app

runner = CliRunner()
KWS = [sys.executable, "-c", "from kws.cli import main; main()"]


def test_prints_shape_and_stats(keyword_wav: Path) -> None:
    result = runner.invoke(app, ["features", str(keyword_wav)])
    assert result.exit_code == 0, result.output
    assert "49 x 10" in result.output and "c9" in result.output


def test_writes_npy_with_custom_config(tmp_path: Path, keyword_wav: Path) -> None:
    cfg = FeatureConfig(n_mfcc=13, stride_ms=10)
    cfg_path = tmp_path / "cfg.toml"
    cfg.save(cfg_path)
    out = tmp_path / "x.npy"
    result = runner.invoke(app, ["features", str(keyword_wav), "--config", str(cfg_path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    arr = np.load(out)
    assert arr.shape == (97, 13) and arr.dtype == np.float32
    np.testing.assert_array_equal(arr, mfcc(load_clip(keyword_wav, cfg), cfg))
    again = runner.invoke(app, ["features", str(keyword_wav), "--out", str(out)])
    assert again.exit_code == 1 and "--force" in again.output
    assert np.load(out).shape == (97, 13)  # not overwritten


def test_bad_audio_is_one_line_no_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "notes.wav"
    bad.write_text("hello")
    proc = subprocess.run([*KWS, "features", str(bad)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0 and str(bad) in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


def test_help_does_not_import_tensorflow() -> None:
    code = ("import sys\nfrom kws.cli import app\n"
            "assert not {'tensorflow', 'librosa', 'pyroomacoustics', 'scipy.signal'} & set(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_modules_that_import_keras_at_import_time_print_nothing() -> None:
    """TensorFlow logs oneDNN/CUDA notices before its log level is read; a module importing Keras
    at the top printed them ahead of a command's one-line error (`kws cascade train` imports the
    model zoo first). They import it through data_prep.tensorflow_quiet."""
    code = "import kws.train.models, kws.train.progress, kws.train.callbacks, sys; assert 'keras' in sys.modules"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
