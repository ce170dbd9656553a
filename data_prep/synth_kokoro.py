"""Synthetic keyword clips with Kokoro-82M (int8 ONNX, 54 voices), in the Speech Commands layout.

A *source* is one of the model's voices or a blend (a convex mix of two voices' style vectors);
a *speaker* is a source at one speed, named by a hash of both, so it lands in one split. The
split is by source: a share of the sources is validation-only (and testing-only), written as
``validation_list.txt`` / ``testing_list.txt``. Clips already on disk are skipped, so an
interrupted run continues where it stopped. ``kokoro_onnx`` and ``onnxruntime`` are an optional
extra (``pip install 'kws[tts]'``), imported only in the processes that synthesize.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import multiprocessing
import os
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from data_prep.audio import resample, write_wav
from data_prep.config import FeatureConfig
from data_prep.errors import KwsError
from data_prep.synth_clips import clip_path, place, trim_silence, word_folder
from data_prep.synth_output import check_output_folder, read_manifest, write_manifest, write_split_lists

MODEL_FILE = "kokoro-v1.0.int8.onnx"
VOICES_FILE = "voices-v1.0-all54.npz"
MODEL_DIR_ENV = "KWS_KOKORO_DIR"
NATIVE_RATE = 24000
ENGLISH_PREFIXES = ("af_", "am_", "bf_", "bm_")  # US/UK female/male; the rest speak accented English
INSTALL = "pip install 'kws[tts]'"
SPEED_LIMITS = (0.5, 2.0)  # what Kokoro accepts ("Speed should be between 0.5 and 2.0")
SPEED_RANGE = "0.85-1.15"  # one speed per speaker drawn from it: the spread of people's speaking rates we train with


def default_model_dir() -> Path:
    """``$KWS_KOKORO_DIR``, else ``../shared/tts/kokoro`` beside the repository."""
    env = os.environ.get(MODEL_DIR_ENV)
    return Path(env) if env else Path(__file__).resolve().parents[1].parent / "shared" / "tts" / "kokoro"


def model_files(model_dir: Path | None = None) -> tuple[Path, Path]:
    """The model and voices files, or one line saying what is missing and where to put it."""
    model_dir = Path(model_dir) if model_dir is not None else default_model_dir()
    files = (model_dir / MODEL_FILE, model_dir / VOICES_FILE)
    missing = [p.name for p in files if not p.is_file()]
    if missing:
        raise KwsError(f"Kokoro model not found: {model_dir} lacks {' and '.join(missing)} (download {MODEL_FILE} and "
                       f"{VOICES_FILE} from the kokoro-onnx release model-files-v1.0 into it, or point --model-dir "
                       f"or ${MODEL_DIR_ENV} at them)")
    return files


def available(model_dir: Path | None = None) -> bool:
    """Whether Kokoro can run here: its model files are found and its packages installed."""
    try:
        model_files(model_dir)
        check_packages()
    except KwsError:
        return False
    return True


def check_packages() -> None:
    missing = [name for name in ("kokoro_onnx", "onnxruntime") if importlib.util.find_spec(name) is None]
    if missing:
        raise KwsError(f"Kokoro synthesis needs the packages kokoro-onnx and onnxruntime ({', '.join(missing)} "
                       f"missing): {INSTALL}")


# --- pure: voices, blends, speeds, speakers, splits -------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Source:
    """One voice, or a blend ``weight * first + (1 - weight) * second``."""

    first: str
    second: str | None = None
    weight: float = 1.0

    @property
    def key(self) -> str:
        return self.first if self.second is None else f"{self.first}*{self.weight:.3f}+{self.second}"

    def style(self, voices: Any) -> np.ndarray:
        if self.second is None:
            return voices[self.first]
        return (self.weight * voices[self.first] + (1.0 - self.weight) * voices[self.second]).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class Speaker:
    source: Source
    speed: float

    @property
    def speaker_id(self) -> str:
        return "kokoro" + hashlib.sha1(f"{self.source.key}/{self.speed:.3f}".encode()).hexdigest()[:8]


def choose_voices(spec: str, available: Sequence[str]) -> list[str]:
    """``all``, ``english`` (US/UK voices) or a comma-separated list of voice names."""
    spec = spec.strip()
    if spec == "all":
        return sorted(available)
    if spec == "english":
        return sorted(v for v in available if v.startswith(ENGLISH_PREFIXES))
    chosen = [v.strip() for v in spec.split(",") if v.strip()]
    unknown = [v for v in chosen if v not in available]
    if unknown or not chosen:
        raise KwsError(f"unknown Kokoro voice(s) {', '.join(unknown) or repr(spec)}: use all, english or names "
                       f"such as {', '.join(sorted(available)[:4])} ({len(available)} in all)")
    return list(dict.fromkeys(chosen))


def make_blends(voices: Sequence[str], count: int, seed: int) -> list[Source]:
    """``count`` pseudo-speakers, each a random convex mix of two different chosen voices."""
    if count < 0:
        raise KwsError(f"--blend {count}: must be >= 0 (extra speakers, each a mix of two voices)")
    if count and len(voices) < 2:
        raise KwsError("--blend needs at least two voices to mix")
    rng = np.random.default_rng([seed, 2])
    blends: list[Source] = []
    while len(blends) < count:
        a, b = rng.choice(len(voices), 2, replace=False)
        blend = Source(voices[a], voices[b], round(float(rng.uniform(0.25, 0.75)), 3))
        if blend not in blends:
            blends.append(blend)
    return blends


def parse_speeds(spec: str) -> tuple[str, tuple[float, ...]]:
    """``0.8,1.0,1.2`` (every source at each speed) or ``0.85-1.15`` (one speed per source,
    drawn from the range)."""
    try:
        if "-" in spec.strip().lstrip("-"):
            low, high = (float(x) for x in spec.split("-"))
            kind, values = "range", (low, high)
            ok = SPEED_LIMITS[0] <= low <= high <= SPEED_LIMITS[1]
        else:
            kind, values = "list", tuple(float(x) for x in spec.split(",") if x.strip())
            ok = bool(values) and all(SPEED_LIMITS[0] <= v <= SPEED_LIMITS[1] for v in values)
    except ValueError:
        ok = False
    if not ok:  # before any clip: Kokoro itself refuses a speed outside its limits mid-run
        raise KwsError(f"--speeds {spec!r}: expected speeds like 0.8,1.0,1.2 or a range like 0.85-1.15 "
                       f"(each within Kokoro's {SPEED_LIMITS[0]:g}-{SPEED_LIMITS[1]:g})")
    return kind, values


def make_speakers(sources: Sequence[Source], speeds: str, seed: int) -> list[Speaker]:
    kind, values = parse_speeds(speeds)
    if kind == "list":
        return [Speaker(s, v) for s in sources for v in values]
    rng = np.random.default_rng([seed, 3])
    return [Speaker(s, round(float(rng.uniform(*values)), 2)) for s in sources]


def split_sources(sources: Sequence[Source], validation_share: float, testing_share: float, seed: int) -> dict[str, str]:
    """Split of each source (by key): a seeded shuffle, the first shares held out."""
    if validation_share < 0 or testing_share < 0 or validation_share + testing_share > 1:
        raise KwsError(f"--validation-share {validation_share} and --testing-share {testing_share}: "
                       "each must be >= 0 and their sum <= 1")
    order = np.random.default_rng([seed, 4]).permutation(len(sources))
    n_val, n_test = round(validation_share * len(sources)), round(testing_share * len(sources))
    split = {}
    for rank, index in enumerate(order):
        split[sources[index].key] = "validation" if rank < n_val else "testing" if rank < n_val + n_test else "training"
    return split


@dataclasses.dataclass(frozen=True)
class Plan:
    words: tuple[str, ...]
    voices: tuple[str, ...]
    blends: tuple[Source, ...]
    speakers: tuple[Speaker, ...]
    split_of_source: dict[str, str]
    settings: dict[str, Any]

    @property
    def folders(self) -> dict[str, str]:
        return {w: word_folder(w) for w in self.words}

    @property
    def split_of_speaker(self) -> dict[str, str]:
        return {s.speaker_id: self.split_of_source[s.source.key] for s in self.speakers}

    def tasks(self) -> list[tuple[str, str, Speaker]]:
        folders = self.folders
        return [(word, folders[word], speaker) for speaker in self.speakers for word in self.words]


def plan(words: Sequence[str], available: Sequence[str], *, voices: str = "all", blend: int = 0, speeds: str = "1.0",
         validation_share: float = 0.1, testing_share: float = 0.0, seed: int = 0,
         config: FeatureConfig | None = None) -> Plan:
    """Every (word, speaker) clip of a run, and how its speakers split; no audio yet."""
    config = config or FeatureConfig()
    words = tuple(dict.fromkeys(w.strip() for w in words if w.strip()))
    if not words:
        raise KwsError("no words to synthesize")
    folders = [word_folder(w) for w in words]
    if len(set(folders)) < len(folders):
        raise KwsError(f"words {', '.join(words)}: two of them share a folder name")
    chosen = choose_voices(voices, available)
    blends = make_blends(chosen, blend, seed)
    sources = [Source(v) for v in chosen] + blends
    speakers = make_speakers(sources, speeds, seed)
    split = split_sources(sources, validation_share, testing_share, seed)
    settings = {"engine": "kokoro", "words": list(words), "voices": chosen, "blend": blend, "speeds": speeds,
                "validation_share": validation_share, "testing_share": testing_share, "seed": seed,
                "sample_rate": config.sample_rate, "clip_ms": config.clip_ms}
    return Plan(words, tuple(chosen), tuple(blends), tuple(speakers), split, settings)


def voices_for_clips(clips: int, available_voices: Sequence[str], seed: int = 0) -> tuple[str, int]:
    """The ``voices`` and ``blend`` of a plan with ``clips`` speakers per word (one speed each):
    that many voices drawn with the seed, and past the voice count blends of two voices."""
    if clips < 1:
        raise KwsError(f"{clips} clips per word: must be >= 1")
    names = sorted(available_voices)
    chosen = names if clips >= len(names) else sorted(np.random.default_rng([seed, 5]).choice(names, clips, replace=False))
    return ",".join(str(v) for v in chosen), max(0, clips - len(names))


def speakers_for(count: int, available_voices: Sequence[str], speeds: str, seed: int = 0) -> list[Speaker]:
    """``count`` speakers: voices drawn with the seed, past the voice count blends of two, one
    speed each from ``speeds``."""
    spec, blend = voices_for_clips(count, available_voices, seed)
    chosen = choose_voices(spec, available_voices)
    return make_speakers([Source(v) for v in chosen] + make_blends(chosen, blend, seed), speeds, seed)


# --- the engine: one model per process ----------------------------------------------------------------
_ENGINE: dict[tuple, Any] = {}


def load_engine(model_dir: Path | None = None, threads: int = 1):
    """A ``kokoro_onnx.Kokoro`` on ``threads`` onnxruntime threads (cached per process)."""
    model, voices = model_files(model_dir)
    key = (str(model), str(voices), threads)
    if key not in _ENGINE:
        check_packages()
        import onnxruntime as rt
        from kokoro_onnx import Kokoro

        options = rt.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        session = rt.InferenceSession(str(model), sess_options=options, providers=["CPUExecutionProvider"])
        _ENGINE.clear()
        _ENGINE[key] = Kokoro.from_session(session, str(voices))
    return _ENGINE[key]


def voice_names(model_dir: Path | None = None) -> list[str]:
    with np.load(model_files(model_dir)[1]) as npz:
        return sorted(npz.files)


def speak(engine: Any, text: str, speaker: Speaker, sample_rate: int) -> np.ndarray:
    """One utterance of ``text`` (a word or a sentence) by ``speaker``, trimmed, at ``sample_rate``."""
    try:
        audio, rate = engine.create(text, voice=speaker.source.style(engine.voices), speed=speaker.speed, lang="en-us")
    except Exception as exc:  # noqa: BLE001  (the runtime's own errors, reported as one line)
        raise KwsError(f"Kokoro failed on {text[:40]!r} as {speaker.source.key} at speed {speaker.speed}: {exc}") from None
    return resample(trim_silence(np.asarray(audio, np.float32)), int(rate), sample_rate)


def render(task: tuple[str, str, Speaker], out: Path, config: FeatureConfig, seed: int, engine: Any) -> str:
    """Speak one word as one speaker into its clip: 'written', or 'too_long' when it does not fit."""
    word, folder, speaker = task
    utterance = speak(engine, word, speaker, config.sample_rate)
    if len(utterance) > config.clip_samples:
        return "too_long"
    digest = hashlib.sha1(f"{speaker.speaker_id}/{folder}".encode()).digest()
    rng = np.random.default_rng([seed, int.from_bytes(digest[:8], "little")])
    write_wav(clip_path(out, folder, speaker.speaker_id), place(utterance, config, rng), config.sample_rate)
    return "written"


_WORKER: dict[str, Any] = {}


def _init_worker(model_dir: str, threads: int, out: str, config: FeatureConfig, seed: int) -> None:
    _WORKER.update(engine=load_engine(Path(model_dir), threads), out=Path(out), config=config, seed=seed)


def _render_in_worker(item: tuple[int, tuple[str, str, Speaker]]) -> tuple[int, str]:
    index, task = item
    return index, render(task, _WORKER["out"], _WORKER["config"], _WORKER["seed"], _WORKER["engine"])


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


# --- a run ------------------------------------------------------------------------------------------
def synthesize_kokoro(run: Plan, out: Path, *, model_dir: Path | None = None, jobs: int | None = None,
                      force: bool = False, config: FeatureConfig | None = None,
                      progress: Callable[[], None] | None = None) -> dict[str, Any]:
    """Write every clip of ``run`` not yet on disk, the split lists and ``synth.json``; returns the manifest."""
    config = config or FeatureConfig()
    if (config.sample_rate, config.clip_ms) != (run.settings["sample_rate"], run.settings["clip_ms"]):
        raise KwsError("the plan was made for another clip length or sample rate")
    model_dir = Path(model_dir) if model_dir is not None else default_model_dir()
    model_files(model_dir)
    check_packages()
    out = Path(out)
    resumed = check_output_folder(out, run.settings, force=force)
    previous = read_manifest(out) if resumed else None
    known_long = set(previous.get("too_long_clips", [])) if previous and previous.get("settings") == run.settings else set()
    jobs = max(1, jobs or cores())
    manifest: dict[str, Any] = {"engine": "kokoro", "complete": False, "settings": run.settings,
                                "too_long_clips": sorted(known_long)}
    out.mkdir(parents=True, exist_ok=True)
    write_manifest(out, manifest)

    tasks = run.tasks()
    counts: Counter[str] = Counter()
    long_clips: list[str] = []

    def account(task: tuple[str, str, Speaker], status: str) -> None:
        counts[status] += 1
        if status == "too_long":
            long_clips.append(f"{task[1]}/{task[2].speaker_id}")
        if progress is not None:
            progress()

    todo = []
    for task in tasks:
        if clip_path(out, task[1], task[2].speaker_id).is_file():
            account(task, "existing")
        elif f"{task[1]}/{task[2].speaker_id}" in known_long:
            account(task, "too_long")  # measured by the run this one resumes
        else:
            todo.append(task)

    jobs = min(jobs, max(1, len(todo)))
    threads = max(1, cores() // jobs)
    if jobs == 1:
        engine = load_engine(model_dir, threads) if todo else None
        for task in todo:
            account(task, render(task, out, config, run.settings["seed"], engine))
    else:
        context = multiprocessing.get_context("spawn")  # a fresh runtime per worker, whatever the parent loaded
        initargs = (str(model_dir), threads, str(out), config, run.settings["seed"])
        with context.Pool(jobs, initializer=_init_worker, initargs=initargs) as pool:
            for index, status in pool.imap_unordered(_render_in_worker, enumerate(todo), chunksize=1):
                account(todo[index], status)

    per_split = write_split_lists(out, run.folders.values(), run.split_of_speaker)
    manifest.update(
        complete=True,
        resumed=resumed,
        model={"model": MODEL_FILE, "voices": VOICES_FILE, "native_rate": NATIVE_RATE},
        blends=[{"key": b.key, "first": b.first, "second": b.second, "weight": b.weight} for b in run.blends],
        speakers=[{"id": s.speaker_id, "source": s.source.key, "speed": s.speed, "split": run.split_of_source[s.source.key]}
                  for s in run.speakers],
        folders=run.folders,
        counts={"planned": len(tasks), "written": counts["written"], "existing": counts["existing"],
                "too_long": counts["too_long"], "clips_per_split": per_split},
        too_long=dict(Counter(c.split("/")[0] for c in long_clips)),
        too_long_clips=sorted(long_clips),
        jobs=jobs, threads_per_job=threads,
    )
    write_manifest(out, manifest)
    return manifest
