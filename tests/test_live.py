"""The live loop's pieces on real audio and a real cascade: queue, streaming resampler, file
source pacing, loop == ``run_stream``, --seconds, Ctrl-C, stalls, energy panel, display."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from rich.console import Console

from cascade.runtime.bundle import Bundle
from cascade.runtime.detector import Detector
from cascade.runtime.near_miss import NearMisses
from cascade.runtime.stream_run import detect_file, run_stream
from data_prep.audio import load_audio, resample
from data_prep.errors import AudioError
from data_prep.resample import StreamResampler
from kws.commands.common import SAMPLES, is_bundle
from kws.live.blocks import BlockQueue, End
from kws.live.display import render
from kws.live.energy import LiveEnergy
from kws.live.loop import SILENT_DB, LiveLoop, level_db
from kws.live.report import summary_dict
from kws.live.session import run_live
from kws.live.sources import FileSource


@pytest.fixture(scope="module")
def live_bundle(request) -> Bundle:
    """The shipped cascade when there is one (no training needed), else the session's."""
    path = SAMPLES / "cascade"
    return Bundle.open(path if is_bundle(path) else request.getfixturevalue("bundle_dir"))


@pytest.fixture(scope="module")
def speech(samples_dir: Path) -> np.ndarray:
    """Six seconds of real speech and noise: three keyword clips over background noise."""
    root = samples_dir / "speech_commands"
    noise = load_audio(sorted((root / "_background_noise_").glob("*.wav"))[0], 16000)[: 6 * 16000] * 0.3
    audio = noise.copy()
    for i, word in enumerate(("yes", "stop", "left")):
        clip = load_audio(sorted((root / word).glob("*.wav"))[0], 16000)
        audio[16000 * (2 * i) + 4000 : 16000 * (2 * i) + 4000 + len(clip)] += clip
    return np.clip(audio, -1, 1).astype(np.float32)


def _wav(path: Path, audio: np.ndarray, rate: int = 16000) -> Path:
    sf.write(str(path), audio, rate, subtype="FLOAT")
    return path


def test_queue_counts_drops_and_close_never_blocks() -> None:
    q = BlockQueue(max_blocks=2)
    assert q.offer(np.zeros((4, 1), np.float32)) and q.offer(np.ones((4, 1), np.float32))
    assert not q.offer(np.zeros((4, 1), np.float32))
    assert q.dropped == 1 and q.blocks == 2
    assert not q.finish(timeout=0.05)  # full: a patient producer gives up after its timeout
    q.close()  # a stopping source never waits for a loop that is gone
    first = q.get(timeout=0.1)
    assert first is not None and not isinstance(first, End) and first.samples.max() == 1.0
    assert isinstance(q.get(timeout=0.1), End)
    assert q.get(timeout=0.01) is None


def test_stream_resampler_is_chunk_invariant(speech: np.ndarray) -> None:
    x = resample(speech, 16000, 44100)  # a 44.1 kHz "device"
    whole = StreamResampler(44100, 16000)
    ref = np.concatenate([whole.push(x), whole.push(np.zeros(0, np.float32), last=True)])
    rng = np.random.default_rng(0)
    cuts = np.sort(rng.choice(len(x), 40, replace=False))
    chunked = StreamResampler(44100, 16000)
    out = [chunked.push(part) for part in np.split(x, cuts)] + [chunked.push(np.zeros(0, np.float32), last=True)]
    got = np.concatenate(out)
    assert len(got) == len(ref) == len(speech)
    np.testing.assert_allclose(got, ref, atol=1e-6)
    # and it is the batch path's resampler, up to the filter's edges
    np.testing.assert_allclose(got[1000:-1000], resample(x, 44100, 16000)[1000:-1000], atol=1e-4)
    same = StreamResampler(16000, 16000)
    assert not same.active and np.array_equal(same.push(speech[:100]), speech[:100])


def test_level_db() -> None:
    t = np.arange(16000) / 16000
    assert level_db(np.sin(2 * np.pi * 440 * t).astype(np.float32)) == pytest.approx(-3.01, abs=0.01)
    assert level_db(np.zeros(100, np.float32)) == SILENT_DB
    assert level_db(np.zeros(0, np.float32)) == SILENT_DB


def test_file_source_plays_in_real_time(tmp_path: Path, speech: np.ndarray) -> None:
    path = _wav(tmp_path / "a.wav", speech[:16000])
    q = BlockQueue()
    source = FileSource(path, 100.0, q, realtime=True)
    start = time.monotonic()
    source.start()
    blocks = []
    while not isinstance(item := q.get(timeout=2.0), End):
        assert item is not None
        blocks.append(item)
    elapsed = time.monotonic() - start
    source.stop()
    assert len(blocks) == 10 and all(b.samples.shape == (1600, 1) for b in blocks)
    assert 0.9 <= elapsed < 2.0
    gaps = np.diff([b.arrived for b in blocks])
    np.testing.assert_allclose(gaps, 0.1, atol=1e-6)  # each block is stamped when a device would deliver it


def test_live_loop_equals_run_stream(live_bundle: Bundle, tmp_path: Path, speech: np.ndarray) -> None:
    """One code path: the live loop (35 ms blocks, fast) makes the same steps as ``kws detect``."""
    path = _wav(tmp_path / "s.wav", speech)
    seen = []
    reference = run_stream(live_bundle, speech, on_step=seen.append)
    q = BlockQueue()
    status = run_live(live_bundle, FileSource(path, 35.0, q, realtime=False), q)
    assert status.stopped_by == "end of input"
    assert status.steps == reference.steps == len(seen) and status.stage2_runs == reference.stage2_runs
    assert [(e.t, e.label, e.score) for e in status.events] == [(d.t, d.label, d.score) for d in reference.detections]
    assert status.audio_s == pytest.approx(len(speech) / 16000)
    assert status.dropped == status.overflows == 0
    cfg = live_bundle.config
    assert len(status.hop_ms) == (len(speech) - cfg.window_samples) // cfg.stride_samples + 1  # one per hop
    assert status.peak_level_db > -30


def test_live_loop_resamples_a_44k_source(live_bundle: Bundle, tmp_path: Path, speech: np.ndarray) -> None:
    path = _wav(tmp_path / "s44.wav", resample(speech, 16000, 44100), 44100)
    q = BlockQueue()
    status = run_live(live_bundle, FileSource(path, 20.0, q, realtime=False), q)
    assert (status.source_rate, status.model_rate) == (44100, 16000)
    assert status.audio_s == pytest.approx(len(speech) / 16000, abs=1e-3)
    assert status.steps == run_stream(live_bundle, speech).steps


def test_seconds_limit_and_ctrl_c(live_bundle: Bundle, tmp_path: Path, speech: np.ndarray) -> None:
    path = _wav(tmp_path / "s.wav", speech)
    q = BlockQueue()
    status = run_live(live_bundle, FileSource(path, 20.0, q, realtime=False), q, seconds=2.5)
    assert status.stopped_by == "--seconds" and status.audio_s == pytest.approx(2.5)

    pressed = []

    def interrupt(s) -> None:  # Ctrl-C arrives while the loop is running
        if s.audio_s >= 1.0 and not pressed:
            pressed.append(s.audio_s)
            raise KeyboardInterrupt

    q = BlockQueue()
    source = FileSource(path, 20.0, q, realtime=True)
    status = run_live(live_bundle, source, q, on_update=interrupt)
    assert status.stopped_by == "Ctrl-C" and status.interrupted
    assert 1.0 <= status.audio_s < 2.0 and status.wall_s < 2.5
    assert not source._thread.is_alive()  # the source was stopped on the way out


def test_a_silent_device_is_an_error_not_a_hang(live_bundle: Bundle) -> None:
    class Mute:
        name, rate, input_latency_s, realtime = "mute device", 16000, 0.0, True

    loop = LiveLoop(Detector(live_bundle), Mute(), BlockQueue(), stall_s=0.2)
    with pytest.raises(AudioError, match="mute device: no audio for 0.2 s"):
        loop.run()


def test_energy_follows_the_measured_rate(live_bundle: Bundle) -> None:
    from cascade.energy.estimate import estimate_cascade

    energy = LiveEnergy(live_bundle, "nrf52840")
    low, high = energy.at(0.0), energy.at(energy.max_rate)
    assert energy.at(-1.0) == low and energy.at(1e9) == high  # clamped to what the cascade can run
    assert low.avg_power_mw < energy.at(1.0).avg_power_mw < high.avg_power_mw
    assert low.battery_days > high.battery_days and high.avg_power_mw > high.always_on_mw
    direct = estimate_cascade(energy.stage1, energy.stage2, live_bundle.config, energy.profile,
                              inference_stride_ms=live_bundle.inference_stride_ms, stage2_rate_per_s=1.0)
    assert energy.at(1.0).avg_power_mw == direct.avg_power_mw


def test_display_shows_the_state(live_bundle: Bundle, tmp_path: Path, speech: np.ndarray) -> None:
    path = _wav(tmp_path / "s.wav", speech)
    q = BlockQueue()
    status = run_live(live_bundle, FileSource(path, 20.0, q, realtime=False), q)
    status.dropped = 3
    energy = LiveEnergy(live_bundle, "apollo3")
    console = Console(record=True, width=140)
    console.print(render(status, energy.at(status.stage2_per_s)))
    text = console.export_text()
    for part in ("level", f"τ {live_bundle.tau:.2f}", "gate", f"{status.stage2_runs} of {status.steps} steps",
                 "energy (apollo3)", "mW avg", "dropped blocks 3", f"detections ({len(status.events)})", "16000 Hz"):
        assert part in text, part
    assert ("OPEN" in text) == status.opened


def test_near_misses_are_bumps_under_the_bar() -> None:
    misses = NearMisses({"left": 0.4, "yes": 0.6})
    for t, label, score, detected in [(0.1, "left", 0.25, False), (0.2, "left", 0.35, False),  # one bump, best 0.35
                                      (0.3, "_silence_", 0.9, False), (0.4, "left", 0.1, False),  # background; too low
                                      (2.0, "yes", 0.4, False), (2.1, "yes", 0.7, True),  # rose past its bar: a hit
                                      (2.5, "yes", 0.5, False), (3.5, "yes", 0.35, False),  # the hit fading: no miss
                                      (4.0, "left", 0.45, False), (5.0, "stop", 0.3, False)]:  # over the bar; not a keyword here
        misses.update(t, label, score, detected)
    assert misses.count == 1 and [m.to_dict() for m in misses.latest] == [
        {"t": 0.2, "label": "left", "score": 0.35, "threshold": 0.4}]


def test_live_names_the_keywords_it_heard_under_the_bar(live_bundle: Bundle, tmp_path: Path, speech: np.ndarray) -> None:
    """The same speech with every bar just above the best score it reached: no detection, and
    the words show up as near misses in the panel and the summary."""
    path = _wav(tmp_path / "s.wav", speech)
    q = BlockQueue()
    heard = run_live(live_bundle, FileSource(path, 20.0, q, realtime=False), q)
    assert heard.events  # the words are detected at the bundle's own bars
    bar = max(e.score for e in heard.events) + 1e-3
    strict = dataclasses.replace(live_bundle, smoothing=dataclasses.replace(
        live_bundle.smoothing, threshold=bar, label_thresholds=()))
    q = BlockQueue()
    status = run_live(strict, FileSource(path, 20.0, q, realtime=False), q)
    assert not status.events and status.near_misses.count >= 1
    floor = live_bundle.smoothing.release_ratio * bar
    assert all(floor <= m.score < bar and m.threshold == bar for m in status.near_misses.latest)
    misses = NearMisses.of(strict)  # kws detect's wiring: the same near misses from the file stream
    detect_file(strict, path, trace=False, on_step=lambda s: misses.update(s.t, s.label, s.score, s.detection is not None))
    assert misses.count == status.near_misses.count and list(misses.latest) == list(status.near_misses.latest)
    console = Console(record=True, width=200)
    console.print(render(status, None))
    summary = summary_dict(status, None)
    assert summary["near_misses"] == status.near_misses.count and "heard under their bar" in console.export_text()
