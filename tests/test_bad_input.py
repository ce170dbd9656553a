"""Issue 18: hostile and unusual inputs get one clear line (or are handled), never a traceback.

Every test drives the real CLI (typer's CliRunner on ``kws.cli.app``) on real audio and real
int8 models: the shipped cascade and models when present, else the session's trained ones.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import soundfile as sf
from cli_errors import YES, kws, ok, one_line_error

from data_prep.config import MAX_CLIP_MS, FeatureConfig
from kws.commands.common import SAMPLES


def _clip(path: Path, seconds: float) -> Path:
    data, rate = sf.read(YES, dtype="float32")
    sf.write(path, data[: int(rate * seconds)], rate, subtype="PCM_16")
    return path


# --- D1: short recordings are valid input ----------------------------------------------------------
def test_detect_on_a_clip_shorter_than_one_second_detects_it(bundle: Path, tmp_path: Path) -> None:
    out = ok(kws("detect", _clip(tmp_path / "half.wav", 0.5), "--model", bundle, "--json", tmp_path / "s.json"))
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["duration_s"] == pytest.approx(0.5)
    assert summary["steps"] > 1  # followed by silence: the window slides over the word
    assert " yes " in out, out
    ok(kws("detect", _clip(tmp_path / "blip.wav", 0.01), "--model", bundle))


def test_a_one_second_clip_is_detected_by_detect_and_live(bundle: Path, tmp_path: Path) -> None:
    """Every Speech Commands file is exactly one clip long: one window, one step, too few for the
    smoother's min_count unless silence follows it as in a stream (it used to get none)."""
    clip = _clip(tmp_path / "one.wav", 1.0)
    out = ok(kws("detect", clip, "--model", bundle, "--json", tmp_path / "s.json"))
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["duration_s"] == pytest.approx(1.0) and summary["steps"] > 1 and " yes " in out, out
    assert summary["near_misses"] == len(summary["latest_near_misses"]) == 0  # detected: no near miss
    live = ok(kws("live", "--input", clip, "--fast", "--model", bundle, "--json-events",
                  "--summary-json", tmp_path / "live.json"))
    assert '"label": "yes"' in live, live
    assert json.loads((tmp_path / "live.json").read_text())["audio_s"] == pytest.approx(1.0)


# --- D2 + datasets: unreadable clips are skipped, counted and named --------------------------------
def _hostile_dataset(root: Path) -> tuple[Path, list[str]]:
    """A copy of the shipped dataset with bad clips in the testing list, and clips in every
    format the loader reads."""
    shutil.copytree(SAMPLES / "speech_commands", root)
    yes = root / "yes"
    (yes / "corrupt_nohash_0.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt garbage")
    (yes / "loop_nohash_0.wav").symlink_to("loop_nohash_0.wav")
    (yes / "dangling_nohash_0.wav").symlink_to("gone.wav")
    os.mkfifo(yes / "fifo_nohash_0.wav")
    data, rate = sf.read(YES, dtype="float32")
    for fmt in ("flac", "ogg", "mp3"):
        sf.write(yes / f"fmt{fmt}_nohash_0.{fmt}", data, rate)
    bad = ["corrupt_nohash_0.wav", "loop_nohash_0.wav", "dangling_nohash_0.wav", "fifo_nohash_0.wav"]
    listed = [f"yes/{n}" for n in bad] + [f"yes/fmt{f}_nohash_0.{f}" for f in ("flac", "ogg", "mp3")]
    with (root / "testing_list.txt").open("a") as fh:
        fh.write("".join(f"{entry}\n" for entry in listed))
    return root, bad


@pytest.mark.parametrize("which", ["bundle", "stage2"])
def test_eval_skips_unreadable_clips_and_names_them(which: str, request, tmp_path: Path) -> None:
    model = request.getfixturevalue(which)
    data, bad = _hostile_dataset(tmp_path / "data")
    plain = ok(kws("eval", SAMPLES / "speech_commands", "--model", model, "--json", tmp_path / "plain.json"))
    out = ok(kws("eval", data, "--model", model, "--json", tmp_path / "r.json"))
    assert "skipped 4 unreadable clips" in out and "corrupt_nohash_0.wav" in out, out
    report = json.loads((tmp_path / "r.json").read_text())
    reasons = {Path(s["file"]).name: s["reason"] for s in report["skipped"]}
    assert sorted(reasons) == sorted(bad)
    assert "symbolic link loop" in reasons["loop_nohash_0.wav"]
    assert "broken symbolic link" in reasons["dangling_nohash_0.wav"]
    assert "FIFO" in reasons["fifo_nohash_0.wav"]  # refused without opening it (that would block)
    assert "not a readable audio file" in reasons["corrupt_nohash_0.wav"]
    # The FLAC, OGG and MP3 clips were found by the scan and evaluated.
    before = json.loads((tmp_path / "plain.json").read_text())["per_class"]["yes"]["support"]
    assert report["per_class"]["yes"]["support"] == before + 3, plain


def test_dataset_scan_finds_every_audio_format(tmp_path: Path) -> None:
    data, _ = _hostile_dataset(tmp_path / "data")
    out = ok(kws("data", "info", data, "--json", tmp_path / "info.json"))
    info = json.loads((tmp_path / "info.json").read_text())
    base = ok(kws("data", "info", SAMPLES / "speech_commands", "--json", tmp_path / "base.json"))
    before = json.loads((tmp_path / "base.json").read_text())["counts"]["testing"]["yes"]
    assert info["counts"]["testing"]["yes"] == before + 7, out + base  # 3 formats + 4 named, unreadable


def _unreadable_for_root() -> Path:
    """A regular, non-empty file even root cannot read (tests run as root, so chmod 000 does
    not stop them): a write-only sysfs attribute. Skip where the kernel offers none."""
    for path in sorted(Path("/sys/kernel/mm/hugepages").glob("*/demote")):
        try:
            path.open("rb").read(1)
        except PermissionError:
            return path
        except OSError:
            continue
    pytest.skip("no regular file that root cannot read on this machine")


@pytest.mark.parametrize("which", ["bundle", "stage2"])
def test_a_clip_nobody_may_read_is_skipped_not_a_traceback(which: str, request, tmp_path: Path) -> None:
    model = request.getfixturevalue(which)
    data, _ = _hostile_dataset(tmp_path / "data")
    (data / "yes" / "perm_nohash_0.wav").symlink_to(_unreadable_for_root())
    with (data / "testing_list.txt").open("a") as fh:
        fh.write("yes/perm_nohash_0.wav\n")
    out = ok(kws("eval", data, "--model", model, "--json", tmp_path / "r.json"))
    assert "skipped 5 unreadable clips" in out, out
    reasons = {Path(s["file"]).name: s["reason"] for s in json.loads((tmp_path / "r.json").read_text())["skipped"]}
    assert "Permission denied" in reasons["perm_nohash_0.wav"]


@pytest.mark.parametrize("make, expected, code", [
    (lambda p: p.symlink_to(p.name), "symbolic link loop", 2),  # refused as typer checks the path exists
    (lambda p: os.mkfifo(p), "is a FIFO (named pipe), not a regular audio file", 1),  # never opened: it would block
    (lambda p: p.symlink_to("nowhere.wav"), "broken symbolic link (points to nowhere.wav)", 2),
    (lambda p: p.mkdir(), "is a directory", 2),
])
@pytest.mark.parametrize("command", ["features", "detect"])
def test_special_files_get_a_precise_message(command: str, make, expected: str, code: int, tmp_path: Path) -> None:
    path = tmp_path / "clip.wav"
    make(path)
    one_line_error(kws(command, path), str(path), expected, code=code)


# --- D3 + one-class data: train refuses or adapts before the input pipeline starts ------------------
def _small_dataset(root: Path, words: tuple[str, ...], noise: bool) -> Path:
    src = SAMPLES / "speech_commands"
    root.mkdir()
    for word in words:
        shutil.copytree(src / word, root / word)
    for name in ("validation_list.txt", "testing_list.txt"):
        lines = [line for line in (src / name).read_text().splitlines() if line.split("/")[0] in words]
        (root / name).write_text("".join(f"{line}\n" for line in lines))
    if noise:
        shutil.copytree(src / "_background_noise_", root / "_background_noise_")
    return root


def test_train_on_one_class_data_is_refused(tmp_path: Path) -> None:
    data = _small_dataset(tmp_path / "one", ("yes",), noise=True)
    one_line_error(kws("train", data, "--labels", "yes", "--stage", "2", "--arch", "tiny", "--epochs", "1",
                       "--out", tmp_path / "out"), str(data), "no _unknown_ training clips")


def test_train_without_noise_refuses_an_explicit_snr_mix(tmp_path: Path) -> None:
    data = _small_dataset(tmp_path / "quiet", ("yes", "no", "bed"), noise=False)
    one_line_error(kws("train", data, "--labels", "yes,no", "--stage", "2", "--arch", "tiny", "--epochs", "1",
                       "--noise-mode", "snr", "--out", tmp_path / "out"), str(data), "_background_noise_")


@pytest.mark.slow
def test_train_without_noise_and_with_a_corrupt_clip_trains_and_says_so(tmp_path: Path) -> None:
    data = _small_dataset(tmp_path / "quiet", ("yes", "no", "bed", "cat"), noise=False)
    (data / "yes" / "corrupt_nohash_0.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt garbage")
    out = ok(kws("train", data, "--labels", "yes,no", "--stage", "2", "--arch", "tiny", "--epochs", "1",
                 "--out", tmp_path / "out"))
    assert out.count("training without background noise") == 1, out
    assert out.count("skipped 1 unreadable clip") == 1 and "corrupt_nohash_0.wav" in out, out
    assert (tmp_path / "out" / "model_int8.tflite").is_file()


# --- D11: feature configs -------------------------------------------------------------------------
@pytest.mark.parametrize("name, text, expected", [
    ("binary.toml", bytes(range(256)), "not a text file"),
    ("nan.toml", b"[features]\nwindow_ms = nan\n", "window_ms=nan is not a finite number"),
    ("inf.toml", b"[features]\nstride_ms = inf\n", "stride_ms=inf is not a finite number"),
    ("clip.toml", b"[features]\nclip_ms = 1e9\n", "clip_ms=1000000000.0 above the supported maximum"),
    ("mels.toml", b"[features]\nn_mels = 100000\n", "n_mels=100000 above the supported maximum"),
    ("fft.toml", b"[features]\nn_fft = 4294967296\n", "n_fft=4294967296 above the supported maximum"),
    ("tiny_stride.toml", b"[features]\nclip_ms = 3000\nstride_ms = 0.0625\n", "bins per clip is above the supported"),
    ("c.yaml", b"window_ms: 30\n", "unsupported config format '.yaml'"),
    ("c.json", b'{"window_ms": NaN}', "window_ms=nan is not a finite number"),
])
def test_bad_feature_configs_are_one_line(name: str, text: bytes, expected: str, tmp_path: Path) -> None:
    config = tmp_path / name
    config.write_bytes(text)
    one_line_error(kws("features", YES, "--config", config), str(config), expected)


def test_multi_word_clip_lengths_stay_allowed(tmp_path: Path) -> None:
    assert MAX_CLIP_MS >= 3000
    config = tmp_path / "phrase.toml"
    FeatureConfig(clip_ms=3000.0).save(config)
    ok(kws("features", YES, "--config", config))


# --- D13: kws report on a run with a malformed artefact ---------------------------------------------
def test_report_skips_an_artefact_with_a_wrong_type(bundle: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    ok(kws("eval", SAMPLES / "speech_commands", "--model", bundle, "--json", run / "eval.json"))
    report = json.loads((run / "eval.json").read_text())
    (run / "eval.json").write_text(json.dumps(report | {"accuracy": "high"}))
    one_line_error(kws("report", run), str(run), "nothing to report")  # the only artefact was skipped
    shutil.copy(bundle / "features.toml", run / "features.toml")
    out = ok(kws("report", run))
    assert f"{run / 'eval.json'}: accuracy is \"high\", not a number; skipped" in out, out
    assert (run / "report.html").is_file()


def test_stream_eval_on_a_folder_that_is_not_a_stream_names_it(bundle: Path, tmp_path: Path) -> None:
    one_line_error(kws("stream", "eval", tmp_path, "--model", bundle), str(tmp_path), "not a stream folder",
                   "kws stream make")


@pytest.mark.parametrize("option, value", [("--minutes", "0"), ("--minutes", "-1"), ("--snr-db", "30,10"),
                                           ("--snr-db", "-inf,inf"), ("--seed", "-1")])
def test_stream_make_of_no_minutes_is_one_line(option: str, value: str, tmp_path: Path) -> None:
    """--minutes -1 was a traceback (negative dimensions), 0 an empty stream written as if
    measured; a reversed or infinite --snr-db and a negative --seed were tracebacks too."""
    one_line_error(kws("stream", "make", "--keywords", SAMPLES / "speech_commands", "--labels", "yes",
                       f"{option}={value}", "--out", tmp_path / "s"), option)
    assert not (tmp_path / "s").exists()


def test_detect_reads_its_truth_file_before_the_recording(bundle: Path, tmp_path: Path) -> None:
    """A damaged --truth was found only after the whole recording had run."""
    truth = tmp_path / "truth.json"
    truth.write_text("{not json")
    result = kws("detect", YES, "--model", bundle, "--truth", truth)
    one_line_error(result, str(truth), "not a stream truth file")
    assert "operating point" not in result.output  # refused before the bundle was even opened


def test_a_bad_recording_or_stream_is_the_only_line(bundle: Path, tmp_path: Path) -> None:
    """detect, live and stream eval said which operating point runs, then that the input was bad;
    stream eval found a bad second stream only after running the first."""
    noise = tmp_path / "noise.wav"
    noise.write_bytes(b"not audio at all")
    for args in (["detect", noise], ["live", "--input", noise, "--seconds", "1"]):
        result = kws(*args, "--model", bundle)
        assert one_line_error(result, str(noise), "not a readable audio file") == result.output.strip(), result.output
    good, bad = tmp_path / "good", tmp_path / "bad"
    for folder in (good, bad):
        folder.mkdir()
        (folder / "truth.json").write_text(json.dumps({"duration_s": 1.0, "keywords": []}))
    shutil.copy(YES, good / "stream.wav")
    shutil.copy(noise, bad / "stream.wav")
    result = kws("stream", "eval", good, bad, "--model", bundle)
    assert one_line_error(result, str(bad / "stream.wav")) == result.output.strip(), result.output


# --- the CLI's last net: an OSError about a user's file ---------------------------------------------
def test_an_os_error_naming_a_file_is_one_line_unless_debugging(bundle: Path, tmp_path: Path, monkeypatch) -> None:
    broken = tmp_path / "bundle"
    shutil.copytree(bundle, broken)
    (broken / "cascade.toml").unlink()
    (broken / "cascade.toml").symlink_to(_unreadable_for_root())  # read, not parsed: no precise check there
    args = ["detect", YES, "--model", broken]
    one_line_error(kws(*args), str(broken / "cascade.toml"), "Permission denied")
    monkeypatch.setenv("KWS_DEBUG", "1")
    assert isinstance(kws(*args).exception, PermissionError)


def test_unreadable_labels_are_one_precise_line(stage2: Path, tmp_path: Path) -> None:
    model = tmp_path / "model"
    shutil.copytree(stage2, model)
    (model / "labels.txt").write_bytes(b"\xff\xfe\x00binary")
    one_line_error(kws("eval", SAMPLES / "speech_commands", "--model", model), str(model / "labels.txt"), "cannot read")
