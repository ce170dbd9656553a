"""Speech Commands listing on the real data: both layouts, label sets, silence/unknown shares."""

from __future__ import annotations

import dataclasses
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from data_prep.audio import load_audio, load_clip
from data_prep.config import FeatureConfig
from data_prep.errors import ConfigError, DatasetError
from data_prep.labels import KEYWORDS, SILENCE, UNKNOWN, twelve_class
from data_prep.speech_commands import (
    RELEASE_HASH,
    RELEASE_LISTS,
    TEST_SET,
    build_examples,
    example_audio,
    load_dataset,
    scan_folder,
)
from data_prep.splits import SPLITS, which_set

TEST_SET_CLASSES = KEYWORDS + (SILENCE, UNKNOWN)


@pytest.fixture(scope="module")
def dev12(dev_data: Path):
    return load_dataset(dev_data, twelve_class())


@pytest.fixture(scope="module")
def v01(shared_data: Path) -> Path:
    return shared_data / "speech_commands_v0.01_sample"


@pytest.fixture()
def test_set_dir(dev_data: Path, tmp_path: Path) -> Path:
    """The canonical test-set archive's layout, from real clips: 12 class folders, no lists."""
    root = tmp_path / "speech_commands_test_set_v0.02"
    for word in KEYWORDS:
        (root / word).mkdir(parents=True)
        for src in sorted((dev_data / word).glob("*.wav"))[:2]:
            shutil.copy(src, root / word / src.name)
    (root / UNKNOWN).mkdir()
    for word in ("bed", "marvin", "visual"):
        src = sorted((dev_data / word).glob("*.wav"))[0]
        shutil.copy(src, root / UNKNOWN / src.name)
    (root / SILENCE).mkdir()
    noise, rate = sf.read(dev_data / "_background_noise_" / "running_tap.wav", dtype="int16")
    for i in range(2):
        sf.write(root / SILENCE / f"running_tap_nohash_{i}.wav", noise[i * rate : (i + 1) * rate], rate)
    return root


def _release_copy(dev_data: Path, root: Path, words=("yes", "no", "bed"), per_word: int = 6) -> Path:
    """A small release-layout folder of real clips, with list files naming some of them."""
    listed = []
    for word in words:
        (root / word).mkdir(parents=True)
        for src in sorted((dev_data / word).glob("*.wav"))[:per_word]:
            shutil.copy(src, root / word / src.name)
            listed.append(f"{word}/{src.name}")
    (root / "validation_list.txt").write_text("\n".join(listed[0::5]) + "\n")
    (root / "testing_list.txt").write_text("\n".join(listed[1::5]) + "\n")
    return root


# --- the v0.02 dev subset (release layout with lists) ----------------------------------------------
def test_dev_counts_from_its_readme(dev_data: Path):
    ds = load_dataset(dev_data, "35")
    assert ds.layout == RELEASE_LISTS
    totals = {s: len(ds.examples(s)) for s in SPLITS}
    assert totals == {"training": 1541, "validation": 284, "testing": 367}
    assert sum(totals.values()) == 2192
    assert {s: len(ds.speakers(s)) for s in SPLITS} == {"training": 83, "validation": 18, "testing": 18}
    assert len({e.speaker for e in ds.all_examples}) == 119
    assert all(not e.generated for e in ds.all_examples)  # 35 classes: no _silence_ / _unknown_
    assert [p.name for p in ds.background_noise_files] == [
        "doing_the_dishes.wav", "dude_miaowing.wav", "exercise_bike.wav",
        "pink_noise.wav", "running_tap.wav", "white_noise.wav",
    ]  # fmt: skip


def test_dev_listed_speakers_are_disjoint_from_training(dev12):
    train, val, test = (dev12.speakers(s) for s in SPLITS)
    assert train and val and test
    assert not train & val and not train & test and not val & test


def test_dev_lists_are_honoured(dev_data: Path, dev12):
    listed = {
        "validation": set((dev_data / "validation_list.txt").read_text().split()),
        "testing": set((dev_data / "testing_list.txt").read_text().split()),
    }
    for e in dev12.all_examples:
        if e.generated:
            continue
        rel = f"{e.word}/{e.path.name}"
        expected = "validation" if rel in listed["validation"] else "testing" if rel in listed["testing"] else "training"
        assert e.split == expected


def test_twelve_class_shares_follow_the_reference_rule(dev12):
    assert dev12.labels == twelve_class().names
    counts = dev12.counts()
    for split in SPLITS:
        keyword_clips = sum(counts[split][w] for w in KEYWORDS)
        wanted = math.ceil(keyword_clips * 10 / 100)
        assert counts[split][SILENCE] == wanted
        pool = [e for e in dev12.examples(split) if e.label == UNKNOWN]
        assert len(pool) <= wanted and all(e.word not in KEYWORDS for e in pool)
    assert counts["training"][UNKNOWN] == math.ceil(sum(counts["training"][w] for w in KEYWORDS) / 10)
    keyword = [e for e in dev12.all_examples if e.label in KEYWORDS]
    assert all(e.word == e.label for e in keyword)


def test_silence_examples_reference_noise_deterministically(dev_data: Path, dev12):
    silence = [e for e in dev12.all_examples if e.label == SILENCE]
    assert silence and all(e.generated and e.speaker == "" for e in silence)
    assert {e.noise for e in silence} <= set(dev12.background_noise_files)
    assert len({e.noise for e in silence}) == 6
    assert all(0 <= e.noise_position < 1 and 0 <= e.noise_gain < 1 for e in silence)
    again = load_dataset(dev_data, twelve_class())
    assert again.all_examples == dev12.all_examples
    other_seed = load_dataset(dev_data, twelve_class(), seed=1)
    assert other_seed.counts() == dev12.counts()
    assert other_seed.all_examples != dev12.all_examples


def test_each_split_draws_from_its_own_stream(dev_data: Path, dev12):
    # Dropping training clips changes the training draws but leaves the other splits' listing as is.
    scan = scan_folder(dev_data)
    listed = scan.validation | scan.testing
    fewer = dataclasses.replace(scan, clips=tuple(c for c in scan.clips if c in listed or not c.startswith("yes/")))
    changed = build_examples(fewer, twelve_class())
    for split in ("validation", "testing"):
        assert tuple(e for e in changed if e.split == split) == dev12.examples(split)
    assert tuple(e for e in changed if e.split == "training") != dev12.examples("training")


def test_shares_are_configurable(dev_data: Path):
    none = load_dataset(dev_data, "12", silence_pct=0, unknown_pct=0)
    assert all(none.counts()[s][SILENCE] == 0 and none.counts()[s][UNKNOWN] == 0 for s in SPLITS)
    more = load_dataset(dev_data, "12", silence_pct=25, unknown_pct=5)
    n = sum(more.counts()["training"][w] for w in KEYWORDS)
    assert more.counts()["training"][SILENCE] == math.ceil(n * 25 / 100)
    assert more.counts()["training"][UNKNOWN] == math.ceil(n * 5 / 100)
    with pytest.raises(ConfigError, match="must be >= 0"):
        load_dataset(dev_data, "12", silence_pct=-1)


def test_custom_keywords_and_unknown_labels(dev_data: Path):
    ds = load_dataset(dev_data, "marvin,sheila", unknown_pct=0)
    assert ds.labels == (SILENCE, UNKNOWN, "marvin", "sheila")
    assert {e.label for e in ds.all_examples if not e.generated} == {"marvin", "sheila"}
    with pytest.raises(DatasetError, match="labels not in the dataset: bogus, nope"):
        load_dataset(dev_data, "yes,bogus,nope")
    with pytest.raises(ConfigError, match="unknown split"):
        ds.examples("train")


def test_example_audio(dev_data: Path, dev12):
    config = FeatureConfig()
    keyword = dev12.examples("testing")[-1]
    assert np.array_equal(example_audio(keyword, config), load_clip(keyword.path, config))
    silence = next(e for e in dev12.examples("validation") if e.label == SILENCE)
    audio = example_audio(silence, config)
    noise = load_audio(silence.noise, config.sample_rate)
    start = round(silence.noise_position * (len(noise) - config.clip_samples))
    expected = noise[start : start + config.clip_samples] * np.float32(silence.noise_gain)
    assert audio.dtype == np.float32 and audio.shape == (config.clip_samples,)
    assert np.array_equal(audio, expected) and np.abs(audio).max() > 0
    # Another rate, same example: the same stretch of noise, resampled.
    half = example_audio(silence, FeatureConfig(sample_rate=8000, fmax=4000.0))
    assert half.shape == (8000,)


def test_noise_shorter_than_a_clip(dev_data: Path, tmp_path: Path):
    root = _release_copy(dev_data, tmp_path / "d")
    (root / "_background_noise_").mkdir()
    shutil.copy(dev_data / "yes" / "022cd682_nohash_0.wav", root / "_background_noise_" / "short.wav")
    ds = load_dataset(root, "yes,no", silence_pct=100)
    silence = next(e for e in ds.all_examples if e.label == SILENCE)
    with pytest.raises(DatasetError, match="short.wav: background noise has 16000 samples, shorter than one clip"):
        example_audio(silence, FeatureConfig(clip_ms=1500.0))


# --- the v0.01 sample (release layout, no lists: hash split) ----------------------------------------
def test_v01_hash_split_thirty_classes(v01: Path):
    ds = load_dataset(v01, "30")
    assert ds.layout == RELEASE_HASH and len(ds.labels) == 30
    assert len(ds.all_examples) == 249 and not ds.background_noise_files
    assert all(e.split == which_set(e.path.name) for e in ds.all_examples)
    train, val, test = (ds.speakers(s) for s in SPLITS)
    assert not train & val and not train & test and not val & test
    assert len(train | val | test) == len({e.speaker for e in ds.all_examples})


def test_v01_without_noise_gives_digital_silence(v01: Path):
    ds = load_dataset(v01, "12")
    silence = [e for e in ds.all_examples if e.label == SILENCE]
    assert silence and all(e.noise is None for e in silence)
    assert not example_audio(silence[0], FeatureConfig()).any()


def test_v01_has_no_v02_words(v01: Path):
    with pytest.raises(DatasetError, match="labels not in the dataset: backward, follow, forward, learn, visual"):
        load_dataset(v01, "35")


# --- the canonical test-set layout -------------------------------------------------------------------
def test_canonical_test_set_layout(test_set_dir: Path):
    ds = load_dataset(test_set_dir, "12", silence_pct=50, unknown_pct=50)
    assert ds.layout == TEST_SET
    assert {e.split for e in ds.all_examples} == {"testing"}
    assert all(not e.generated and e.label == e.word for e in ds.all_examples)
    counts = ds.counts()["testing"]
    assert counts == {label: (2 if label in KEYWORDS else 3 if label == UNKNOWN else 2) for label in ds.labels}
    silence = next(e for e in ds.all_examples if e.label == SILENCE)
    assert silence.path.parent.name == SILENCE
    assert example_audio(silence, FeatureConfig()).shape == (16000,)


def test_canonical_test_set_with_fewer_keywords(test_set_dir: Path):
    ds = load_dataset(test_set_dir, "yes,no")
    counts = ds.counts()["testing"]
    assert counts == {SILENCE: 2, UNKNOWN: 3 + 8 * 2, "yes": 2, "no": 2}


# --- bad input ---------------------------------------------------------------------------------------
def test_missing_and_empty_folders(tmp_path: Path):
    with pytest.raises(DatasetError, match=f"{tmp_path / 'nope'}: no such directory"):
        load_dataset(tmp_path / "nope")
    (tmp_path / "file").write_text("x")
    with pytest.raises(DatasetError, match="not a directory"):
        load_dataset(tmp_path / "file")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="empty: no word folders"):
        load_dataset(tmp_path / "empty")
    (tmp_path / "nowav" / "yes").mkdir(parents=True)
    (tmp_path / "nowav" / "yes" / "notes.txt").write_text("x")
    with pytest.raises(DatasetError, match="nowav: no audio files .* in any of its 1 word folders"):
        load_dataset(tmp_path / "nowav")


def test_list_naming_a_missing_file(dev_data: Path, tmp_path: Path):
    root = _release_copy(dev_data, tmp_path / "d")
    assert load_dataset(root, "yes,no").layout == RELEASE_LISTS
    first = (root / "testing_list.txt").read_text().split()[0]
    (root / first).unlink()
    with pytest.raises(DatasetError, match=f"testing_list.txt: 1 listed files are missing, e.g. {first}"):
        load_dataset(root, "yes,no")


def test_inconsistent_layouts(dev_data: Path, tmp_path: Path):
    root = _release_copy(dev_data, tmp_path / "d")
    (root / "testing_list.txt").unlink()
    with pytest.raises(DatasetError, match="has validation_list.txt but not testing_list.txt"):
        scan_folder(root)
    (root / "testing_list.txt").write_text("")
    (root / UNKNOWN).mkdir()
    shutil.copy(dev_data / "bed" / "893705bb_nohash_2.wav", root / UNKNOWN)
    with pytest.raises(DatasetError, match="both class folders"):
        scan_folder(root)
    shutil.rmtree(root / UNKNOWN)
    (root / "_background_noise_").mkdir()
    with pytest.raises(DatasetError, match="_background_noise_: no audio files"):
        scan_folder(root)
