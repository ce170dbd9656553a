"""Audio in: read, validate, mix to mono, resample, pad or crop.

Every path (training, evaluation, detection, live) goes through here, so a bad file fails the
same way everywhere: one ``AudioError`` naming the file and the problem.
"""

from __future__ import annotations

import contextlib
import math
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from data_prep.atomic import write_atomic
from data_prep.config import FeatureConfig
from data_prep.errors import AudioError, DatasetError
from data_prep.locate import window, word_start
from data_prep.path_errors import stat_failure
from data_prep.resample import StreamResampler

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")  # what libsndfile (>= 1.1) decodes
BLOCK_FRAMES = 1 << 16  # frames per read of a long file: ~4 s at 16 kHz, ~0.5 MB of stereo float32
CLIP_MARGIN_S = 0.1  # read past a clip's end: the resampler's filter reaches this far at most
MAX_RECORDING_S = 10.0  # a word's recording is searched this far; its clip lies within


def _check_file(path: Path) -> os.stat_result:
    """The file's status, or one precise ``AudioError`` for what is not a readable regular
    file. Never opens it: opening a FIFO for reading would block until a writer comes."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise AudioError(f"{path}: {stat_failure(path, exc)}") from None
    if stat.S_ISDIR(st.st_mode):
        raise AudioError(f"{path}: is a directory, not an audio file")
    if not stat.S_ISREG(st.st_mode):
        kind = "FIFO (named pipe)" if stat.S_ISFIFO(st.st_mode) else "socket" if stat.S_ISSOCK(st.st_mode) else "device"
        raise AudioError(f"{path}: is a {kind}, not a regular audio file")
    if st.st_size == 0:
        raise AudioError(f"{path}: empty file (0 bytes)")
    return st


def read_audio(path: Path, max_seconds: float | None = None) -> tuple[np.ndarray, int]:
    """Return (float32 samples in [-1, 1], shape (n,) or (n, channels); native rate).
    ``max_seconds``: read only that much from the start (a clip of a long recording)."""
    path = checked_audio_path(path)
    with _decode_errors(path), sf.SoundFile(str(path)) as fh:
        frames = -1 if max_seconds is None else math.ceil(max_seconds * fh.samplerate)
        return fh.read(frames, dtype="float32", always_2d=False), int(fh.samplerate)


def stream_audio(path: Path, sample_rate: int, block_frames: int = BLOCK_FRAMES) -> Iterator[np.ndarray]:
    """Any supported file as float32 mono blocks at ``sample_rate``, validated as ``load_audio``
    does, read ``block_frames`` at a time: memory does not grow with the recording's length.
    The resampler keeps its state across blocks, so the blocks join into the whole-file signal."""
    path = checked_audio_path(path)
    seen = produced = 0
    with _decode_errors(path), sf.SoundFile(str(path)) as fh:
        resampler = StreamResampler(fh.samplerate, sample_rate)
        while True:
            block = fh.read(block_frames, dtype="float32", always_2d=False)
            last = len(block) < block_frames
            mono = check_finite(to_mono(block), str(path), offset=seen)
            seen += len(mono)
            out = resampler.push(mono, last=last)
            produced += len(out)
            if len(out):
                yield out
            if last:
                break
    if not produced:
        raise AudioError(f"{path}: zero samples")


def checked_audio_path(path: Path) -> Path:
    """The checks a file gets before decoding: a regular file (not a FIFO, a broken link, ...),
    not empty, readable, not a cut-off WAV."""
    path = Path(path)
    _check_file(path)
    with _decode_errors(path):
        _check_riff_complete(path)
    return path


def probe_audio(path: Path) -> Path:
    """Open the file's header as decoding would, without reading samples: a command checks its
    inputs this way before it loads a model or announces anything, so a bad file is the only line."""
    path = checked_audio_path(path)
    with _decode_errors(path), sf.SoundFile(str(path)):
        pass
    return path


@contextlib.contextmanager
def _decode_errors(path: Path) -> Iterator[None]:
    """libsndfile's failures, at open or mid-file, as one AudioError naming the file."""
    try:
        yield
    except sf.LibsndfileError as exc:
        raise AudioError(f"{path}: not a readable audio file ({_short(exc)})") from None
    except OSError as exc:  # permission denied, I/O error, ... (the file itself, not a bug)
        raise AudioError(f"{path}: cannot read ({exc.strerror or _short(exc)})") from None
    except (RuntimeError, ValueError, EOFError) as exc:
        raise AudioError(f"{path}: truncated or corrupt audio ({_short(exc)})") from None


def _check_riff_complete(path: Path) -> None:
    """libsndfile silently returns the samples present in a cut-off WAV; a cut-off
    download must fail instead, so compare the 'data' chunk's declared size with the file."""
    size = path.stat().st_size
    with path.open("rb") as fh:
        head = fh.read(12)
        if len(head) < 12 or head[:4] not in (b"RIFF", b"RIFX") or head[8:12] != b"WAVE":
            return
        order = "little" if head[:4] == b"RIFF" else "big"
        pos = 12
        while pos + 8 <= size:
            fh.seek(pos)
            chunk = fh.read(8)
            declared = int.from_bytes(chunk[4:8], order)
            if chunk[:4] == b"data":
                have = size - pos - 8
                if declared not in (0, 0xFFFFFFFF) and declared > have:
                    raise AudioError(
                        f"{path}: truncated WAV (header declares {declared} bytes of audio, "
                        f"file holds {have})"
                    )
                return
            pos += 8 + declared + (declared & 1)


def write_audio(path: Path, audio: np.ndarray, rate: int, format: str = "WAV") -> Path:
    """16-bit PCM ``audio`` (float in [-1, 1) or int16) to ``path``, atomically: the one
    writer of every clip, stream and negative kws makes (WAV, or FLAC for the corpus)."""
    return write_atomic(path, lambda fh: sf.write(fh, audio, rate, subtype="PCM_16", format=format))


def write_wav(path: Path, audio: np.ndarray, rate: int) -> Path:
    return write_audio(path, audio, rate, "WAV")


def _short(exc: Exception) -> str:
    return str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__


def to_mono(data: np.ndarray) -> np.ndarray:
    """Average the channels: the release's clips are mono, many user files are not."""
    return data.mean(axis=1, dtype=np.float32) if data.ndim == 2 else data.astype(np.float32)


def resample(samples: np.ndarray, rate: int, target: int) -> np.ndarray:
    """High-quality band-limited resampling (soxr, librosa's own default backend)."""
    if rate == target:
        return samples.astype(np.float32, copy=False)
    return soxr.resample(samples, rate, target, quality="HQ").astype(np.float32)


def check_samples(samples: np.ndarray, source: str) -> np.ndarray:
    """Reject what the features cannot use: no samples, NaN or Inf."""
    if samples.size == 0:
        raise AudioError(f"{source}: zero samples")
    return check_finite(samples, source)


def check_finite(samples: np.ndarray, source: str, offset: int = 0) -> np.ndarray:
    """Reject NaN/Inf, naming the first bad index (``offset``: where this block starts)."""
    finite = np.isfinite(samples)
    if not finite.all():
        first = offset + int(np.flatnonzero(~finite.reshape(-1))[0])
        raise AudioError(f"{source}: contains NaN/Inf samples (first at index {first})")
    return samples


def pad_or_crop(samples: np.ndarray, length: int) -> np.ndarray:
    """Zero-pad at the end or keep the first ``length`` samples, as the release's
    reference input pipeline (``decode_wav(desired_samples=...)``) does."""
    if samples.shape[-1] >= length:
        return samples[..., :length]
    pad = [(0, 0)] * (samples.ndim - 1) + [(0, length - samples.shape[-1])]
    return np.pad(samples, pad)


def load_audio(path: Path, sample_rate: int) -> np.ndarray:
    """Any supported file as float32 mono at ``sample_rate``, validated, any length (whole in
    memory: for long recordings use ``stream_audio``)."""
    data, rate = read_audio(path)
    samples = check_samples(to_mono(data), str(path))
    return check_samples(resample(samples, rate, sample_rate), str(path))


def load_recording(path: Path, config: FeatureConfig) -> np.ndarray:
    """A file meant to hold one word, at the config's rate, whole up to ``MAX_RECORDING_S``
    (plus the resampler's margin): the most a word's recording is searched, so a long file
    passed as a clip costs bounded memory."""
    data, rate = read_audio(path, max_seconds=max(MAX_RECORDING_S, config.clip_ms / 1000.0) + CLIP_MARGIN_S)
    samples = check_samples(to_mono(data), str(path))
    return check_samples(resample(samples, rate, config.sample_rate), str(path))


def clip_of(samples: np.ndarray, config: FeatureConfig) -> np.ndarray:
    """The clip of L samples the features see: a recording of at most one clip (plus the
    resampler's margin) padded or cut as before; a longer one cut where its word is."""
    length = config.clip_samples
    start = word_start(samples, length, config.sample_rate)
    return pad_or_crop(samples, length) if start == 0 else window(samples, length, start)


def load_clip(path: Path, config: FeatureConfig) -> np.ndarray:
    """One clip of exactly L samples, as the features and models expect: the window of the
    recording that holds the word (``data_prep.locate``)."""
    return clip_of(load_recording(path, config), config)


def audio_files(folder: Path) -> list[Path]:
    """Every audio file under ``folder`` (recursively, background-noise folders excluded)."""
    if not Path(folder).is_dir():  # a typo or a file: say which, not "no audio files"
        raise DatasetError(f"{folder}: {'a file, not a folder of audio' if Path(folder).exists() else 'no such folder'}")
    files = sorted(p for p in Path(folder).rglob("*")
                   if p.suffix.lower() in AUDIO_SUFFIXES and "_background_noise_" not in p.parts)
    if not files:
        raise DatasetError(f"{folder}: no audio files ({'/'.join(AUDIO_SUFFIXES)})")
    return files
