"""Rebuild samples/speech_commands/ from a Speech Commands release folder (deterministic).

The embedded default dataset: a small, speaker-disjoint slice of real Speech Commands v0.02
in the release layout, small enough to ship (< 15 MB) so `make demo` and the tests run with
no network. Usage: python samples/make_samples.py SOURCE_DIR [DEST_DIR]
"""

from __future__ import annotations

import random
import shutil
import sys
from pathlib import Path

import soundfile as sf

KEYWORDS = "yes no up down left right on off stop go".split()
PER_KEYWORD = {"training": 20, "validation": 4, "testing": 5}
UNKNOWN = {"training": 60, "validation": 8, "testing": 8}
NOISE_SECONDS = 8


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


if __name__ == "__main__":
    source = Path(sys.argv[1])
    main(source, Path(sys.argv[2]) if len(sys.argv) > 2 else Path(__file__).parent / "speech_commands")
