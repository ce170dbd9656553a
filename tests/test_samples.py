"""What samples/ ships for `make demo` besides the real clips: the distillation teacher and the
Kokoro clips. Both must load on a fresh clone with nothing from ../shared."""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path

import numpy as np
import soundfile as sf

from cascade.runtime.stages import stage_targets
from data_prep.config import FeatureConfig
from data_prep.labels import KEYWORDS, SILENCE, UNKNOWN
from data_prep.recordings import recording_clips
from data_prep.speech_commands import RELEASE_LISTS, example_audio, load_dataset
from data_prep.splits import speaker_id
from kws.demo.pipeline import DemoConfig
from kws.train import teacher_mlperf
from kws.train.teacher import load_teacher, recognise_teacher, teacher_accuracy


def _make_samples(samples_dir: Path):
    spec = importlib.util.spec_from_file_location("make_samples", samples_dir / "make_samples.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_shipped_teacher_is_recognised_loads_and_knows_the_sample_test_clips(samples_dir: Path) -> None:
    """The demo's teacher: the MLPerf float32 model, recognised from its folder and right on
    real clips it never trained on (a wrong file or label order would be near chance)."""
    folder = samples_dir / "teachers" / teacher_mlperf.NAME
    assert DemoConfig(data="x").teacher == str(folder)
    assert recognise_teacher(folder) == teacher_mlperf.NAME
    teacher = load_teacher(folder)
    assert Path(teacher.source).name == "kws_ref_model_float32.tflite"
    assert teacher.labels == teacher_mlperf.LABELS
    readme = (folder / "README.md").read_text()
    assert hashlib.sha256(Path(teacher.source).read_bytes()).hexdigest() in readme
    assert " ".join(teacher.labels) in readme and "Apache License" in (folder / "LICENSE").read_text()
    dataset = load_dataset(samples_dir / "speech_commands", "12")
    examples = dataset.examples("testing")
    audio = recording_clips(examples, FeatureConfig()).clips
    y = np.asarray(stage_targets(2, dataset.labels, [e.label for e in examples]))
    accuracy = teacher_accuracy(teacher, audio, y, dataset.labels, 2)
    assert len(y) == 60 and accuracy >= 0.8, accuracy


def test_shipped_kokoro_clips_load_as_a_dataset(samples_dir: Path) -> None:
    """samples/kokoro: FLAC clips in the Speech Commands layout, split by voice as its manifest
    says, read by the same loader as any dataset (as the demo's --extra-data)."""
    folder = samples_dir / "kokoro"
    assert str(folder) in DemoConfig(data="x").extra_data
    manifest = json.loads((folder / "synth.json").read_text())
    subset = manifest["subset"]
    dataset = load_dataset(folder, "12", silence_pct=0.0, unknown_pct=100.0)
    assert dataset.layout == RELEASE_LISTS
    paths = [e.path for e in dataset.all_examples if e.path is not None]
    files = sorted(folder.rglob("*.flac"))
    assert len(files) == subset["clips"] and all(p.suffix == ".flac" for p in paths)
    counts = dataset.counts()
    for word in KEYWORDS:
        assert sum(counts[split].get(word, 0) for split in counts) == subset["per_keyword"]
    split_of = {s["id"]: s["split"] for s in manifest["speakers"]}
    for example in dataset.all_examples:
        if example.path is not None:
            assert example.split == split_of[speaker_id(example.path.name)]
    assert sum(e.split == "validation" for e in dataset.all_examples if e.path) == subset["clips_per_split"]["validation"]
    assert not any(e.label == SILENCE for e in dataset.all_examples)
    assert any(e.label == UNKNOWN for e in dataset.examples("training"))
    audio = example_audio(dataset.examples("training")[0], FeatureConfig())
    assert audio.shape == (16000,) and np.abs(audio).max() > 0.05
    info = sf.info(files[0])
    assert (info.format, info.subtype, info.samplerate, info.frames) == ("FLAC", "PCM_16", 16000, 16000)


def test_shipped_kokoro_subset_is_what_make_samples_picks(samples_dir: Path) -> None:
    """make_samples.py --kokoro rebuilds exactly this subset from the corpus its manifest
    describes: the corpus's clip names follow from the manifest (one per speaker and word)."""
    folder = samples_dir / "kokoro"
    manifest = json.loads((folder / "synth.json").read_text())
    too_long = set(manifest["too_long_clips"])
    corpus = {word: [f"{s['id']}_nohash_0.wav" for s in manifest["speakers"] if f"{word}/{s['id']}" not in too_long]
              for word in manifest["folders"].values()}
    chosen = _make_samples(samples_dir).kokoro_subset(corpus)
    on_disk = sorted(str(p.relative_to(folder).with_suffix(".wav")) for p in folder.rglob("*.flac"))
    assert sorted(chosen) == on_disk
