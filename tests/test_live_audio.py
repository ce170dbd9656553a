"""``kws live`` through a real audio stack: a private PulseAudio server with a null sink is the
microphone; ``paplay`` speaks into it; ``kws live`` records its monitor through PortAudio ->
ALSA's pulse plugin, exactly as it records a USB microphone.

Keyword clips are chosen among the samples' *testing* clips that the shipped cascade detects
offline (this test checks the audio path, not the model's accuracy, which `kws eval` measures),
so what must hold live is: the same keywords, in the same order, at the same spacing, and
nothing at all on noise.
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from cascade.runtime.bundle import Bundle
from cascade.runtime.stream_run import run_stream
from data_prep.audio import load_audio
from data_prep.errors import ModelError
from data_prep.speech_commands import load_dataset

pytestmark = pytest.mark.audio

KWS = [sys.executable, "-c", "from kws.cli import main; main()"]
RATE = 16000
LEAD_S, SLOT_S = 1.0, 2.5  # noise before the first word; one word + its noise gap
WORDS = 4
SHIFTS = [int(RATE * ms / 1000) for ms in (0, 10, 30, 50, 70, 90)]  # recording start vs the hop grid


def _skip_unless_audio_stack() -> None:
    missing = [tool for tool in ("pulseaudio", "paplay", "pactl") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (apt-get install pulseaudio pulseaudio-utils)")
    plugin = "alsa-lib/libasound_module_pcm_pulse.so"
    if not glob.glob(f"/usr/lib*/*/{plugin}") + glob.glob(f"/usr/lib*/{plugin}"):
        pytest.skip("ALSA's PulseAudio plugin not installed (apt-get install libasound2-plugins)")
    try:
        import sounddevice  # noqa: F401
    except OSError as exc:
        pytest.skip(f"PortAudio not installed ({exc}; apt-get install libportaudio2)")


@pytest.fixture(scope="module")
def pulse(tmp_path_factory) -> dict[str, str]:
    """A private PulseAudio server with a null sink ``virt`` (its monitor is the microphone)."""
    _skip_unless_audio_stack()
    run = tmp_path_factory.mktemp("pulse")
    env = {**os.environ, "PULSE_RUNTIME_PATH": str(run), "XDG_RUNTIME_DIR": str(run), "HOME": str(run)}
    env.pop("PULSE_SERVER", None)
    start = subprocess.run(
        ["pulseaudio", "--daemonize=yes", "--exit-idle-time=-1", "-n", "--load=module-null-sink sink_name=virt",
         "--load=module-native-protocol-unix"], env=env, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert start.returncode == 0, f"pulseaudio did not start: {start.stderr}"
    try:
        deadline = time.monotonic() + 10
        while subprocess.run(["pactl", "info"], env=env, capture_output=True).returncode != 0:
            assert time.monotonic() < deadline, "pulseaudio started but does not answer"
            time.sleep(0.1)
        yield env
    finally:
        subprocess.run(["pulseaudio", "--kill"], env=env, capture_output=True, timeout=30)


@pytest.fixture(scope="module")
def model() -> Path:
    from kws.commands.common import default_bundle

    try:
        return default_bundle()
    except ModelError as exc:
        pytest.skip(f"needs the shipped cascade that really detects keywords: {exc}")


@pytest.fixture(scope="module")
def noise(samples_dir: Path) -> np.ndarray:
    """Real background noise (the release's recordings, not synthetic) at about -43 dBFS."""
    folder = samples_dir / "speech_commands" / "_background_noise_"
    parts = [load_audio(folder / f"{name}.wav", RATE) for name in ("doing_the_dishes", "running_tap", "exercise_bike")]
    bed = np.concatenate(parts)
    return (bed * (0.007 / np.sqrt(np.mean(bed**2)))).astype(np.float32)


def _compose(clips: list[np.ndarray | None], noise: np.ndarray) -> np.ndarray:
    """The noise bed with clip i at slot i (None: noise only in that slot)."""
    length = int((LEAD_S + SLOT_S * len(clips)) * RATE)
    audio = np.resize(noise, length).copy()
    for i, clip in enumerate(clips):
        if clip is None:
            continue
        start = int((LEAD_S + SLOT_S * i) * RATE)
        audio[start : start + len(clip)] += clip * (0.5 / max(float(np.abs(clip).max()), 1e-3))
    return np.clip(audio, -1, 1)


def _pick_clips(bundle: Bundle, root: Path, noise: np.ndarray) -> tuple[list[np.ndarray], list[str]]:
    """The first held-out clip of each keyword that the cascade detects alone in its own slot of
    the recording (over the noise it will have there), wherever the recording starts relative
    to its hops and inference steps (live, the start is wherever PortAudio's first block happens
    to fall)."""
    by_label: dict[str, list[Path]] = {}
    dataset = load_dataset(root)
    for e in [*dataset.examples("testing"), *dataset.examples("validation")]:  # never trained on
        if e.path is not None and e.label in bundle.labels and not e.label.startswith("_"):
            by_label.setdefault(e.label, []).append(e.path)
    clips, labels = [], []
    for label in sorted(by_label):
        for path in by_label[label]:
            clip = load_audio(path, RATE)
            slots: list[np.ndarray | None] = [None] * WORDS
            slots[len(clips)] = clip
            alone = _compose(slots, noise)
            if all([d.label for d in run_stream(bundle, alone[shift:]).detections] == [label] for shift in SHIFTS):
                clips.append(clip)
                labels.append(label)
                break
        if len(clips) == WORDS:
            break
    assert len(labels) == WORDS, f"the shipped cascade reliably detects only {labels} among the held-out samples"
    return clips, labels


def _listen(model: Path, pulse: dict[str, str], wav: Path, seconds: float, summary: Path, *extra: str) -> list[dict]:
    """Start ``kws live`` on the sink's monitor, play ``wav`` into the sink, return the events."""
    env = {**pulse, "PULSE_SOURCE": "virt.monitor"}
    proc = subprocess.Popen(
        [*KWS, "live", "--model", str(model), "--json-events", "--seconds", str(seconds),
         "--summary-json", str(summary), *extra], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        point = proc.stderr.readline()  # the operating point it runs, named before the device opens
        assert point.startswith("operating point "), point + proc.stderr.read()
        first = proc.stderr.readline()  # "listening: ..." once the first audio block arrived
        assert first.startswith("listening:"), first + proc.stderr.read()
        play = subprocess.run(["paplay", str(wav)], env={**pulse, "PULSE_SINK": "virt"}, capture_output=True,
                              text=True, timeout=seconds + 30)
        assert play.returncode == 0, play.stderr
        out, err = proc.communicate(timeout=seconds + 60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_inputs_are_listed(pulse: dict[str, str]) -> None:
    proc = subprocess.run([*KWS, "live", "--list-devices"], env=pulse, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "pulse" in proc.stdout and "default" in proc.stdout


def test_unknown_device_and_rate_are_one_line_errors(pulse: dict[str, str], request) -> None:
    from kws.commands.common import SAMPLES, is_bundle

    model = SAMPLES / "cascade" if is_bundle(SAMPLES / "cascade") else request.getfixturevalue("bundle_dir")
    for extra, expected in ((["--device", "no-such-mic"], "--device 'no-such-mic': no input device match"),
                            (["--device-rate", "1"], "does not record at 1 Hz")):
        proc = subprocess.run([*KWS, "live", "--model", str(model), "--seconds", "1", *extra], env=pulse,
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 1 and "Traceback" not in proc.stderr
        assert expected in proc.stderr, proc.stderr


def test_keywords_are_detected_in_order(pulse, model: Path, noise: np.ndarray, samples_dir: Path, tmp_path: Path) -> None:
    bundle = Bundle.open(model)
    clips, labels = _pick_clips(bundle, samples_dir / "speech_commands", noise)
    audio = _compose(clips, noise)
    offline = run_stream(bundle, audio).detections
    assert [d.label for d in offline] == labels  # the file itself is right before it goes through the stack
    wav = tmp_path / "words.wav"
    sf.write(str(wav), audio, RATE, subtype="PCM_16")
    summary = tmp_path / "summary.json"
    # 44.1 kHz like most USB microphones: PortAudio records at that rate and kws resamples in the stream
    events = _listen(model, pulse, wav, len(audio) / RATE + 2.5, summary, "--device-rate", "44100")
    assert [e["label"] for e in events] == labels, events
    # the same spacing as offline: the live clock is the audio's clock
    np.testing.assert_allclose(np.diff([e["t"] for e in events]), np.diff([d.t for d in offline]), atol=0.25)
    report = json.loads(summary.read_text())
    assert report["source_rate"] == 44100 and report["model_rate"] == RATE
    assert report["peak_level_db"] > -20
    for e in events:
        assert e["latency_ms"] is not None and 0 <= e["latency_ms"] < 1000
        assert e["stage1"] >= bundle.tau  # stage 2 only runs (and so only detects) through the gate


def test_noise_alone_detects_nothing(pulse, model: Path, noise: np.ndarray, tmp_path: Path) -> None:
    audio = np.resize(noise * 2.0, 4 * RATE)  # about -37 dBFS of real noise, 4 s
    assert run_stream(Bundle.open(model), audio).detections == ()
    wav = tmp_path / "noise.wav"
    sf.write(str(wav), audio, RATE, subtype="PCM_16")
    summary = tmp_path / "summary.json"
    events = _listen(model, pulse, wav, 5.0, summary)
    assert events == []
    report = json.loads(summary.read_text())
    assert report["peak_level_db"] > -45  # the noise did arrive: nothing was detected in it
    assert report["audio_s"] == pytest.approx(5.0, abs=0.05) and report["steps"] > 0


def test_a_microphone_that_goes_away_keeps_what_was_heard(pulse, model: Path, tmp_path: Path) -> None:
    """The device vanishes mid-run (a USB microphone unplugged: the sink behind the monitor is
    unloaded): one line naming it and exit 1, after the summary of what was heard is printed
    and written."""
    summary = tmp_path / "summary.json"
    proc = subprocess.Popen(
        [*KWS, "live", "--model", str(model), "--json-events", "--seconds", "60", "--summary-json", str(summary)],
        env={**pulse, "PULSE_SOURCE": "virt.monitor"}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stderr.readline().startswith("operating point ")
        assert proc.stderr.readline().startswith("listening:")
        time.sleep(1.5)
        unload = subprocess.run(["pactl", "unload-module", "module-null-sink"], env=pulse, capture_output=True, text=True)
        assert unload.returncode == 0, unload.stderr
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        subprocess.run(["pactl", "load-module", "module-null-sink", "sink_name=virt"], env=pulse, capture_output=True)
    assert proc.returncode == 1 and "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: ") and "no audio for" in last, err
    report = json.loads(summary.read_text())
    assert report["stopped_by"] == "device error" and report["error"] in last
    assert report["audio_s"] > 0.5 and report["steps"] > 0  # what was heard before it went away
    # an idle sink's monitor delivers exact zeros: digital silence, neither stage ran
    assert report["peak_level_db"] <= -119 and report["stage2_runs"] == 0
    assert re.search(r"stopped[\s│]*by[\s│]*device[\s│]*error", err)  # the summary table (wrapped), before the error line
