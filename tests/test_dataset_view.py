"""data_prep/dataset_view.py: a dataset plus another folder's words, as links with lists.

Real clips from samples/ in both layouts (lists, hash split); the view must read as the same
dataset (every clip in its own split), must not look changed to the folder fingerprint when
rebuilt unchanged, and must follow clips that appear or vanish.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from data_prep.dataset_view import build_view
from data_prep.errors import DatasetError
from data_prep.speech_commands import TESTING_LIST, VALIDATION_LIST, load_dataset, scan_folder, split_of_clips
from kws.recipe.config import folder_fingerprint


def _dataset(root: Path, samples_dir: Path, words: tuple[str, ...], lists: bool) -> Path:
    source = samples_dir / "speech_commands"
    for word in words:
        shutil.copytree(source / word, root / word)
    shutil.copytree(source / "_background_noise_", root / "_background_noise_")
    if lists:
        kept = {c for c in scan_folder(root).clips}
        for name in (VALIDATION_LIST, TESTING_LIST):
            entries = [e for e in (source / name).read_text().split() if e in kept]
            (root / name).write_text("".join(f"{e}\n" for e in entries))
    return root


def _voices(root: Path, samples_dir: Path) -> Path:
    """A synth-like folder of its own with lists: "hey_kws" clips (real audio under another name)."""
    clips = sorted((samples_dir / "speech_commands" / "left").glob("*.wav"))[:6]
    (root / "hey_kws").mkdir(parents=True)
    for clip in clips:
        shutil.copy(clip, root / "hey_kws" / clip.name)
    (root / VALIDATION_LIST).write_text(f"hey_kws/{clips[0].name}\nhey_kws/{clips[1].name}\n")
    (root / TESTING_LIST).write_text("")
    return root


@pytest.mark.parametrize("lists", [True, False], ids=["lists", "hash-split"])
def test_view_keeps_every_split_and_adds_the_words(tmp_path: Path, samples_dir: Path, lists: bool) -> None:
    data = _dataset(tmp_path / "data", samples_dir, ("yes", "no", "up"), lists)
    voices = _voices(tmp_path / "voices", samples_dir)
    counts = build_view(data, voices, ["hey_kws"], tmp_path / "view")
    assert counts == {"hey_kws": {"training": 4, "validation": 2, "testing": 0}}
    view = scan_folder(tmp_path / "view")
    before = split_of_clips(scan_folder(data))
    after = split_of_clips(view)
    assert {c: s for c, s in after.items() if not c.startswith("hey_kws/")} == before
    assert view.noise_files and all(p.is_symlink() for p in view.noise_files)
    dataset = load_dataset(tmp_path / "view", "yes,hey_kws")
    assert sum(e.label == "hey_kws" for e in dataset.examples("validation")) == 2
    assert sum(e.label == "hey_kws" for e in dataset.examples("training")) == 4
    assert all((tmp_path / "view" / c).is_symlink() for c in view.clips)


def test_rebuilding_unchanged_keeps_the_fingerprint_and_follows_changes(tmp_path: Path, samples_dir: Path) -> None:
    data = _dataset(tmp_path / "data", samples_dir, ("yes", "no"), True)
    voices = _voices(tmp_path / "voices", samples_dir)
    view = tmp_path / "view"
    build_view(data, voices, ["hey_kws"], view)
    first = folder_fingerprint((str(view),))
    build_view(data, voices, ["hey_kws"], view)
    assert folder_fingerprint((str(view),)) == first  # the steps reading it are not redone
    listed = set((data / VALIDATION_LIST).read_text().split()) | set((data / TESTING_LIST).read_text().split())
    gone = next(p for p in sorted((data / "no").iterdir()) if f"no/{p.name}" not in listed)  # a training clip
    gone.unlink()
    build_view(data, voices, ["hey_kws"], view)
    assert not (view / "no" / gone.name).exists() and not (view / "no" / gone.name).is_symlink()
    assert folder_fingerprint((str(view),)) != first
    shutil.rmtree(data / "no")
    for name in (VALIDATION_LIST, TESTING_LIST):
        (data / name).write_text("".join(f"{e}\n" for e in (data / name).read_text().split() if not e.startswith("no/")))
    build_view(data, voices, ["hey_kws"], view)
    assert not (view / "no").exists()  # a word folder that went away is gone from the view too


def test_a_word_the_data_has_or_the_voices_lack_is_refused(tmp_path: Path, samples_dir: Path) -> None:
    data = _dataset(tmp_path / "data", samples_dir, ("yes", "no"), True)
    voices = _voices(tmp_path / "voices", samples_dir)
    with pytest.raises(DatasetError, match="already has yes"):
        build_view(data, voices, ["yes"], tmp_path / "view")
    with pytest.raises(DatasetError, match="no clips of ok_kws"):
        build_view(data, voices, ["ok_kws"], tmp_path / "view")
