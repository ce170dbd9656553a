"""Rebuild the embedded default data of samples/ from bigger folders (deterministic).

- ``samples/speech_commands/``: a small, speaker-disjoint slice of real Speech Commands v0.02
  in the release layout, small enough to ship (< 15 MB) so `make demo` and the tests run with
  no network. Usage: python samples/make_samples.py SOURCE_DIR [DEST_DIR]
- ``samples/kokoro/``: a fixed subset of a Kokoro corpus written by
  ``kws data synth CORPUS --engine kokoro --voices all --blend 40 --speeds 0.85-1.15
  --validation-share 0.1 --jobs 2`` (3,290 clips: 35 words x 94 speakers), the clips as FLAC
  (lossless: the same samples in ~40 % of the bytes). Usage:
  python samples/make_samples.py --kokoro CORPUS_DIR [DEST_DIR]
"""

from __future__ import annotations

import json
import random
import shutil
import sys
from pathlib import Path

import soundfile as sf

KEYWORDS = "yes no up down left right on off stop go".split()
PER_KEYWORD = {"training": 20, "validation": 4, "testing": 5}
UNKNOWN = {"training": 60, "validation": 8, "testing": 8}
NOISE_SECONDS = 8
# samples/kokoro: clips per keyword and per other word, drawn from the corpus's speakers
KOKORO_PER_KEYWORD = 40
KOKORO_PER_UNKNOWN = 4
KOKORO_SEED = 20261207
KOKORO_COMMAND = ("kws data synth CORPUS --engine kokoro --voices all --blend 40 --speeds 0.85-1.15 "
                  "--validation-share 0.1 --jobs 2")


def split_of(rel: str, val: set[str], test: set[str]) -> str:
    return "validation" if rel in val else "testing" if rel in test else "training"


def main(src: Path, dest: Path) -> None:
    val = set((src / "validation_list.txt").read_text().split())
    test = set((src / "testing_list.txt").read_text().split())
    rng = random.Random(20261123)
    chosen: dict[str, list[str]] = {"training": [], "validation": [], "testing": []}
    words = sorted(p.name for p in src.iterdir() if p.is_dir() and not p.name.startswith("_"))
    by_split: dict[tuple[str, str], list[str]] = {}
    for word in words:
        for wav in sorted((src / word).glob("*.wav")):
            rel = f"{word}/{wav.name}"
            by_split.setdefault((word in KEYWORDS and word or "_unknown_", split_of(rel, val, test)), []).append(rel)
    for (group, split), rels in sorted(by_split.items()):
        want = (PER_KEYWORD if group != "_unknown_" else UNKNOWN)[split]
        chosen[split] += rng.sample(rels, min(want, len(rels)))
    if dest.exists():
        shutil.rmtree(dest)
    for split, rels in chosen.items():
        for rel in rels:
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src / rel, dest / rel)
    (dest / "validation_list.txt").write_text("".join(f"{r}\n" for r in sorted(chosen["validation"])))
    (dest / "testing_list.txt").write_text("".join(f"{r}\n" for r in sorted(chosen["testing"])))
    noise_dir = dest / "_background_noise_"
    noise_dir.mkdir(parents=True)
    for wav in sorted((src / "_background_noise_").glob("*.wav")):
        data, rate = sf.read(wav, dtype="int16")
        sf.write(noise_dir / wav.name, data[: NOISE_SECONDS * rate], rate, subtype="PCM_16")
    shutil.copy2(src / "LICENSE", dest / "LICENSE")
    counts = {k: len(v) for k, v in chosen.items()}
    print(f"wrote {dest}: {counts}")


def kokoro_subset(clips_by_word: dict[str, list[str]]) -> list[str]:
    """The shipped clips (``word/name.wav``): for each word (sorted), a seeded sample of its
    clips (sorted by name). Pure, so a test re-derives the subset from the corpus manifest."""
    rng = random.Random(KOKORO_SEED)
    chosen: list[str] = []
    for word in sorted(clips_by_word):
        clips = sorted(clips_by_word[word])
        want = KOKORO_PER_KEYWORD if word in KEYWORDS else KOKORO_PER_UNKNOWN
        chosen += [f"{word}/{name}" for name in sorted(rng.sample(clips, min(want, len(clips))))]
    return chosen


def kokoro(src: Path, dest: Path) -> None:
    """``kokoro_subset`` of the corpus as FLAC, its validation list restricted to the subset,
    and its manifest unchanged (it describes the corpus run) plus a ``subset`` section."""
    manifest = json.loads((src / "synth.json").read_text())
    if manifest.get("engine") != "kokoro" or not manifest.get("complete"):
        sys.exit(f"{src}: not a complete `kws data synth --engine kokoro` folder")
    val = set((src / "validation_list.txt").read_text().split())
    chosen = kokoro_subset({word: [p.name for p in (src / word).glob("*.wav")] for word in manifest["folders"].values()})
    if dest.exists():
        shutil.rmtree(dest)
    flac = {rel: str(Path(rel).with_suffix(".flac")) for rel in chosen}
    for rel in chosen:
        data, rate = sf.read(src / rel, dtype="int16")
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        sf.write(dest / flac[rel], data, rate, subtype="PCM_16", format="FLAC")
    (dest / "validation_list.txt").write_text("".join(f"{flac[r]}\n" for r in chosen if r in val))
    (dest / "testing_list.txt").write_text("")
    splits = {"training": sum(r not in val for r in chosen), "validation": sum(r in val for r in chosen), "testing": 0}
    manifest["subset"] = {
        "of": KOKORO_COMMAND, "rebuilt_by": "python samples/make_samples.py --kokoro CORPUS",
        "per_keyword": KOKORO_PER_KEYWORD, "per_other_word": KOKORO_PER_UNKNOWN, "seed": KOKORO_SEED,
        "format": "FLAC, a lossless copy of the corpus's 16-bit WAV", "clips": len(chosen), "clips_per_split": splits}
    (dest / "synth.json").write_text(json.dumps(manifest, indent=2) + "\n")
    speakers = {Path(rel).name.split("_nohash_")[0] for rel in chosen}
    print(f"wrote {dest}: {len(chosen)} clips of {len(speakers)} speakers, {splits}")


if __name__ == "__main__":
    args = sys.argv[1:]
    here = Path(__file__).parent
    if args and args[0] == "--kokoro":
        kokoro(Path(args[1]), Path(args[2]) if len(args) > 2 else here / "kokoro")
    else:
        main(Path(args[0]), Path(args[1]) if len(args) > 1 else here / "speech_commands")
