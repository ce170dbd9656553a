"""``kws live`` through the CLI: the file path equals ``kws detect``, the display, and one-line
errors for every way a live run can fail before it starts (no PortAudio, no device, bad
bundle, bad options)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cascade.evaluation.stream_build import build_stream_folder
from cascade.evaluation.stream_make import StreamRecipe
from data_prep.config import FeatureConfig
from kws.cli import app
from kws.commands.common import SAMPLES, is_bundle

runner = CliRunner()
KWS = [sys.executable, "-c", "from kws.cli import main; main()"]


@pytest.fixture(scope="module")
def model(request) -> Path:
    """The shipped cascade when there is one (no training needed), else the session's."""
    path = SAMPLES / "cascade"
    return path if is_bundle(path) else request.getfixturevalue("bundle_dir")


@pytest.fixture(scope="module")
def stream(tmp_path_factory, samples_dir: Path) -> Path:
    out = tmp_path_factory.mktemp("live-cli") / "stream"
    build_stream_folder(samples_dir / "speech_commands", [], out, StreamRecipe(minutes=0.5, seed=7))
    return out / "stream.wav"


def _one_line_error(result, expected: str, code: int = 1) -> None:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    assert expected in result.output, result.output


def _trigger_happy(model: Path, out: Path) -> Path:
    """The same cascade with a low detection threshold: many detections, right or wrong, so
    the comparison below compares something whatever the model's quality."""
    import tomllib

    from data_prep.toml_io import dumps

    shutil.copytree(model, out)
    manifest = tomllib.loads((out / "cascade.toml").read_text())
    manifest["smoothing"]["threshold"] = 0.3
    (out / "cascade.toml").write_text(dumps(manifest))
    return out


def test_file_fast_json_events_equals_detect(model: Path, stream: Path, tmp_path: Path) -> None:
    model = _trigger_happy(model, tmp_path / "bundle")
    detect = runner.invoke(app, ["detect", str(stream), "--model", str(model), "--events", str(tmp_path / "ev.jsonl"),
                                 "--json", str(tmp_path / "detect.json")])
    assert detect.exit_code == 0, detect.output
    live = runner.invoke(app, ["live", "--model", str(model), "--input", str(stream), "--fast", "--json-events",
                               "--summary-json", str(tmp_path / "live.json")])
    assert live.exit_code == 0, live.output
    events = [json.loads(line) for line in live.stdout.splitlines() if line.strip()]  # stdout holds only events
    expected = [json.loads(line) for line in (tmp_path / "ev.jsonl").read_text().splitlines()]
    if is_bundle(SAMPLES / "cascade"):  # the session's tiny fallback model may never name a keyword at all
        assert len(expected) >= 3
    assert [(e["t"], e["label"], e["score"]) for e in events] == [(e["t"], e["label"], e["score"]) for e in expected]
    for e in events:
        assert set(e) >= {"t", "label", "score", "stage1", "latency_ms"} and 0 <= e["stage1"] <= 1
    summary, det = json.loads((tmp_path / "live.json").read_text()), json.loads((tmp_path / "detect.json").read_text())
    assert (summary["steps"], summary["stage2_runs"]) == (det["steps"], det["stage2_runs"])
    assert summary["audio_s"] == pytest.approx(det["duration_s"], abs=0.02)
    assert summary["stopped_by"] == "end of input" and summary["energy"]["profile"] == "nrf52840"


def test_display_mode_shows_panel_and_summary(model: Path, stream: Path) -> None:
    result = runner.invoke(app, ["live", "--model", str(model), "--input", str(stream), "--fast", "--seconds", "3",
                                 "--profile", "rp2040"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for part in ("kws live", "stage 1", "gate", "energy (rp2040)", "summary", "3.0 s of audio", "stopped by --seconds"):
        assert part in result.output, part


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--fast"], "--fast applies to --input FILE only"),
        (["--input", "{tmp}/missing.wav"], "missing.wav' does not exist"),  # typer's check: exit code 2
        (["--input", "{stream}", "--device", "0"], "--device/--device-rate apply to a microphone only"),
        (["--input", "{stream}", "--profile", "no-such-board"], "unknown profile 'no-such-board'"),
        (["--input", "{stream}", "--seconds", "0"], "--seconds 0.0: must be a finite number > 0"),
        (["--input", "{stream}", "--block-ms", "0"], "--block-ms 0.0: must be a finite number > 0"),
        # D10 (issue 18): NaN passes every comparison, Inf overflowed into a traceback
        (["--input", "{stream}", "--fast", "--seconds", "nan"], "--seconds nan: must be a finite number > 0"),
        (["--input", "{stream}", "--fast", "--seconds", "inf"], "--seconds inf: must be a finite number > 0"),
        (["--input", "{stream}", "--fast", "--block-ms", "nan"], "--block-ms nan: must be a finite number > 0"),
        (["--input", "{stream}", "--fast", "--block-ms", "inf"], "--block-ms inf: must be a finite number > 0"),
    ],
)
def test_bad_options_are_one_line_errors(model: Path, stream: Path, tmp_path: Path, args, expected) -> None:
    args = [a.format(tmp=tmp_path, stream=stream) for a in args]
    _one_line_error(runner.invoke(app, ["live", "--model", str(model), *args]), expected,
                    2 if "does not exist" in expected else 1)


def test_bundles_that_do_not_match_are_refused(model: Path, stream: Path, tmp_path: Path) -> None:
    mismatch = tmp_path / "mismatch"
    shutil.copytree(model, mismatch)
    FeatureConfig(stride_ms=10).save(mismatch / "stage1" / "features.toml")  # a ConfigMismatch
    _one_line_error(runner.invoke(app, ["live", "--model", str(mismatch), "--input", str(stream)]), "stride_ms: 10.0 != 20.0")
    _one_line_error(runner.invoke(app, ["live", "--model", str(tmp_path), "--input", str(stream)]), "not a cascade bundle")


def _run(args: list[str], env: dict[str, str] | None = None, code: str | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-c", code] if code else KWS
    return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})})


NO_PORTAUDIO = """
import sys, importlib.abc
class NoPortAudio(importlib.abc.MetaPathFinder):  # what `import sounddevice` does without libportaudio2
    def find_spec(self, name, path, target=None):
        if name == "sounddevice":
            raise OSError("PortAudio library not found")
sys.meta_path.insert(0, NoPortAudio())
from kws.cli import main
main()
"""


@pytest.mark.parametrize("args", [["--list-devices"], ["--seconds", "1"]])
def test_missing_portaudio_is_one_line(model: Path, args: list[str]) -> None:
    proc = _run(["live", "--model", str(model), *args], code=NO_PORTAUDIO)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "PortAudio library not found" in proc.stderr and "apt-get install libportaudio2" in proc.stderr


def test_no_input_device_is_one_line(model: Path, tmp_path: Path) -> None:
    try:
        import sounddevice  # noqa: F401
    except OSError as exc:
        pytest.skip(f"PortAudio not installed: {exc}")
    # An unreachable PulseAudio server and no sound card: PortAudio sees no input at all.
    env = {"PULSE_RUNTIME_PATH": str(tmp_path), "XDG_RUNTIME_DIR": str(tmp_path),
           "PULSE_SERVER": f"unix:{tmp_path}/no-server"}
    listing = _run(["live", "--list-devices"], env)
    if "no audio input devices found" not in listing.stdout:
        pytest.skip(f"this machine has audio inputs without PulseAudio:\n{listing.stdout}")
    proc = _run(["live", "--model", str(model), "--seconds", "1"], env)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "no audio input device found" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr  # not after the operating point's line
