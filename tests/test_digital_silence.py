"""Digital silence: windows of exact zeros (a muted microphone) run neither stage, in batch and
in streams, with the shipped cascade; anything with a trace of signal still goes to the models.
The firmware's side (KWS_SILENT_C0, the frame counter) is checked against these decisions by the
exported self-test (tests/test_export_firmware.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cascade.runtime.bundle import Bundle
from cascade.runtime.digital_silence import silent_c0, silent_output, silent_windows
from cascade.runtime.pipeline import Cascade, StreamingCascade
from data_prep.audio import load_audio
from data_prep.features import mfcc
from data_prep.labels import SILENCE

RATE = 16000


@pytest.fixture(scope="module")
def shipped(samples_dir: Path) -> Bundle:
    path = samples_dir / "cascade"
    if not path.is_dir():
        pytest.skip("samples/cascade is not shipped in this checkout")
    return Bundle.open(path)


def test_a_muted_microphone_runs_no_stage(shipped: Bundle) -> None:
    steps = StreamingCascade(shipped).push(np.zeros(5 * RATE, np.float32))
    assert steps and all(s.silent and not s.opened and s.p_keyword == 0.0 for s in steps)
    assert all(s.label == SILENCE and s.detection is None for s in steps)
    silent = Cascade(shipped).stage1.silent_raw()
    assert all(np.array_equal(s.stage1_raw, silent) for s in steps)


def test_clips_of_zeros_are_silence_and_others_are_classified(shipped: Bundle, samples_dir: Path) -> None:
    word = load_audio(sorted((samples_dir / "speech_commands" / "yes").glob("*.wav"))[0], RATE)
    clips = np.zeros((2, RATE), np.float32)
    clips[1, : len(word[:RATE])] = word[:RATE]
    result = Cascade(shipped).classify_clips(mfcc(clips, shipped.config))
    labels1 = shipped.stage1.labels
    assert np.argmax(result["p1"][0]) == labels1.index(SILENCE) and not result["opened"][0]
    assert shipped.labels[result["predictions"][0]] == SILENCE
    assert result["opened"][1]  # a word padded with zeros is not silence: the gate hears it


def test_only_exact_zeros_count(shipped: Bundle) -> None:
    cfg, rng = shipped.config, np.random.default_rng(0)
    dither = (rng.integers(-1, 2, RATE) / 32768).astype(np.float32)  # one LSB of a 16-bit converter
    quiet = rng.normal(0, 1e-7, RATE).astype(np.float32)  # -140 dBFS
    half = np.concatenate([np.zeros(RATE // 2, np.float32), dither[: RATE // 2]])
    windows = mfcc(np.stack([np.zeros(RATE, np.float32), dither, quiet, half]), cfg)
    assert silent_windows(windows, cfg).tolist() == [True, False, False, False]
    assert windows[0, :, 0].max() < silent_c0(cfg) < windows[2, :, 0].min()
    assert silent_output(("_silence_", "_unknown_", "keyword")).tolist() == [1.0, 0.0, 0.0]
    assert silent_output(("_unknown_", "keyword")).tolist() == [1.0, 0.0]  # a gate without _silence_
    assert silent_output(("keyword",)).tolist() == [0.0]  # nor _unknown_: P(keyword) 0, the gate shut


def test_zeros_around_a_signal_stop_only_the_windows_that_are_all_zeros(shipped: Bundle) -> None:
    noise = np.random.default_rng(1).normal(0, 1e-3, 3 * RATE).astype(np.float32)
    steps = StreamingCascade(shipped).push(np.concatenate([np.zeros(2 * RATE, np.float32), noise]))
    flags = [s.silent for s in steps]
    first_loud = next(i for i, f in enumerate(flags) if not f)
    assert all(flags[:first_loud]) and not any(flags[first_loud:])  # one switch, where the window meets signal
    assert steps[first_loud].t - 2.0 <= 0.1 + 1e-9  # within one inference stride of the first non-zero sample
