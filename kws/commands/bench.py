"""``kws bench ...``: speed measurements on real clips, each checked against a stated target.

Every bench command runs its methods on the same inputs in one process, prints a rich table of
rates and ratios, states its targets with PASS/FAIL, and can write the numbers as JSON. The
pieces shared by bench commands (clip discovery, timing with a progress bar, the tables, the
JSON file) live here; each command adds only its own methods and targets.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from data_prep.atomic import write_text_atomic
from data_prep.audio import load_clip, pad_or_crop, resample, to_mono
from data_prep.cache import FeatureCache
from data_prep.errors import DatasetError
from data_prep.features import mfcc
from data_prep.outputs import refuse_existing
from data_prep.streaming import StreamingFrontend
from kws.commands.common import load_feature_config

app = typer.Typer(
    help="Measure speed on real clips against the project's targets.", no_args_is_help=True
)

Advance = Callable[[int], None]
_WARMUP_CLIPS = 64


# --- shared by bench commands -----------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Measurement:
    key: str
    label: str
    clips: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.clips / self.seconds if self.seconds > 0 else float("inf")


@dataclasses.dataclass(frozen=True)
class Target:
    key: str
    description: str
    value: float
    threshold: float

    @property
    def passed(self) -> bool:
        return self.value >= self.threshold


def default_data_dir() -> Path:
    """The shared Speech Commands subset when present, else the dataset shipped in the repo."""
    shared = Path(os.environ.get("KWS_SHARED_DATA", "/work/shared/data")) / "speech_commands_dev"
    samples = Path(__file__).resolve().parents[2] / "samples"
    return next((d for d in (shared, samples / "speech_commands") if d.is_dir()), samples)


def find_clips(data_dir: Path, count: int) -> list[Path]:
    """``count`` WAV clips spread evenly over the sorted files (all words, not just the first),
    skipping ``_background_noise_`` and other ``_``-folders, which hold long recordings."""
    import numpy as np

    if not data_dir.is_dir():
        raise DatasetError(f"{data_dir}: not a directory")
    wavs = sorted(
        p for p in data_dir.rglob("*.wav") if not any(part.startswith("_") for part in p.relative_to(data_dir).parts)
    )
    if not wavs:
        raise DatasetError(f"{data_dir}: no .wav clips found")
    if count >= len(wavs):
        return wavs
    return [wavs[i] for i in np.linspace(0, len(wavs) - 1, count).round().astype(int)]


def blas_threads(threads: int) -> contextlib.AbstractContextManager:
    """Limit BLAS/OpenMP threads while timing. On a shared machine multi-threaded OpenBLAS
    thrashes (measured here: librosa per clip 860 -> 110 clips/s next to one busy process)."""
    if threads == 0:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=threads)


def warm_page_cache(paths: list[Path]) -> None:
    """Read every file once so no method pays for the first disk read."""
    for p in paths:
        p.read_bytes()

Steps = list[tuple[str, str, Callable[[Advance], Any]]]


def measure(make_steps: Callable[[int], Steps], clips: int, repeat: int) -> tuple[list[Measurement], dict[str, Any]]:
    """Run the steps ``make_steps(round)`` gives, ``repeat`` rounds interleaved, under a rich
    progress bar; keep each step's best time (the least disturbed by other load, as timeit does)
    and the last round's results."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    best: dict[str, float] = {}
    labels: dict[str, str] = {}
    results: dict[str, Any] = {}
    columns = (TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, transient=False) as progress:
        tasks: dict[str, Any] = {}
        for round_no in range(repeat):
            for key, label, fn in make_steps(round_no):
                if key not in tasks:
                    tasks[key] = progress.add_task(label, total=clips * repeat)
                    labels[key] = label
                task = tasks[key]
                advance = lambda n, task=task: progress.advance(task, n)  # noqa: E731
                start = time.perf_counter()
                results[key] = fn(advance)
                seconds = time.perf_counter() - start
                progress.update(task, completed=clips * (round_no + 1))
                best[key] = min(seconds, best.get(key, float("inf")))
    return [Measurement(key, labels[key], clips, best[key]) for key in best], results


def print_report(title: str, measurements: list[Measurement], targets: list[Target], notes: list[str]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if measurements:  # a memory bench has targets only
        base = measurements[0]
        table = Table(title=title)
        for col in ("method", "clips/s", "seconds", f"x {base.key}"):
            table.add_column(col, justify="left" if col == "method" else "right")
        for m in measurements:
            table.add_row(m.label, f"{m.rate:,.0f}", f"{m.seconds:.3f}", f"{m.rate / base.rate:.2f}")
        console.print(table)
    verdicts = Table(title="targets")
    for col in ("target", "measured", "needed", "result"):
        verdicts.add_column(col)
    for t in targets:
        verdict = "[green]PASS[/]" if t.passed else "[red]FAIL[/]"
        verdicts.add_row(t.description, f"{t.value:.2f}x", f">= {t.threshold:g}x", verdict)
    console.print(verdicts)
    for note in notes:
        console.print(note)


def report_dict(benchmark: str, measurements: list[Measurement], targets: list[Target], **extra: Any) -> dict[str, Any]:
    base = measurements[0] if measurements else None
    return {
        "benchmark": benchmark,
        "methods": {
            m.key: {
                "label": m.label,
                "clips": m.clips,
                "seconds": m.seconds,
                "clips_per_second": m.rate,
                f"vs_{base.key}": m.rate / base.rate,
            }
            for m in measurements
        },
        "targets": {
            t.key: {"description": t.description, "value": t.value, "threshold": t.threshold, "passed": t.passed}
            for t in targets
        },
        "passed": all(t.passed for t in targets),
        "machine": {"python": sys.version.split()[0], "platform": platform.platform(), "cpus": os.cpu_count()},
        **extra,
    }


def write_json(path: Path, data: dict[str, Any], force: bool) -> None:
    refuse_existing(path, force)
    write_text_atomic(path, json.dumps(data, indent=2) + "\n")

# --- kws bench features -----------------------------------------------------------------------
def _feature_steps(paths: list[Path], cfg, cache_dir: Path) -> Steps:
    """The five ways to get MFCCs for ``paths``; each returns what a check needs."""
    import librosa
    import numpy as np
    import soundfile as sf

    def librosa_per_clip(advance: Advance) -> None:
        for p in paths:
            data, rate = sf.read(str(p), dtype="float32", always_2d=False)
            y = pad_or_crop(resample(to_mono(data), rate, cfg.sample_rate), cfg.clip_samples)
            librosa.feature.mfcc(
                y=y, sr=cfg.sample_rate, n_mfcc=cfg.n_mfcc, n_fft=cfg.n_fft,
                hop_length=cfg.stride_samples, win_length=cfg.window_samples, window=cfg.window,
                center=False, n_mels=cfg.n_mels, fmin=cfg.fmin, fmax=cfg.fmax,
            )  # fmt: skip
            advance(1)

    def batch(advance: Advance) -> np.ndarray:
        clips = []
        for p in paths:
            clips.append(load_clip(p, cfg))
            advance(1)
        return mfcc(np.stack(clips), cfg)

    def streaming(advance: Advance) -> np.ndarray:
        frontend, step, out = StreamingFrontend(cfg), cfg.stride_samples, []
        for p in paths:
            clip = load_clip(p, cfg)
            frontend.reset()
            out.append(np.concatenate([frontend.push(clip[i : i + step]) for i in range(0, clip.size, step)]))
            advance(1)
        return np.stack(out)

    def cache_pass(advance: Advance) -> tuple[np.ndarray, int]:
        with FeatureCache(cache_dir, cfg) as cache:  # a new object: nothing kept in memory
            feats = cache.features_for(paths)
            return feats, cache.stats.hits

    return [
        ("librosa", "(a) librosa per clip", librosa_per_clip),
        ("batch", "(b) kws batch", batch),
        ("streaming", "(c) kws streaming", streaming),
        ("cache_cold", "(d) cache, cold", cache_pass),
        ("cache_warm", "(e) cache, warm", cache_pass),
    ]


@app.command("features")
def features(
    data_dir: Annotated[
        Optional[Path], typer.Argument(exists=True, file_okay=False, help="Folder of WAV clips (default: the shared dev set, else samples/).")
    ] = None,
    clips: Annotated[int, typer.Option("--clips", min=1, help="Number of clips to time.")] = 500,
    repeat: Annotated[int, typer.Option(min=1, help="Rounds per method; the best round counts.")] = 3,
    threads: Annotated[
        int, typer.Option(min=0, help="BLAS threads while timing: 1 gives per-core rates; 0 leaves the default.")
    ] = 1,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Write the figures to this JSON file.")] = None,
    config: Annotated[Optional[Path], typer.Option(exists=True, dir_okay=False, help="FeatureConfig as .toml or .json.")] = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing --json file.")] = False,
) -> None:
    """Clips/s of librosa vs our batch, streaming and cached feature extraction, with targets."""
    import numpy as np

    cfg = load_feature_config(config)
    data_dir = data_dir if data_dir is not None else default_data_dir()
    paths = find_clips(data_dir, clips)
    refuse_existing(json_out, force)
    warm_page_cache(paths)

    with tempfile.TemporaryDirectory(prefix="kws-bench-") as tmp:
        # Untimed rehearsal on enough clips to reach the chunked batch path: imports, lazily
        # built tables and first-call allocations would otherwise bill whichever method runs first.
        for _key, _, fn in _feature_steps(paths[:_WARMUP_CLIPS], cfg, Path(tmp) / "warmup"):
            fn(lambda n: None)
        # a fresh cache directory per round, so every cold pass is really cold
        with blas_threads(threads):
            measurements, results = measure(
                lambda r: _feature_steps(paths, cfg, Path(tmp) / f"cache-{r}"), len(paths), repeat
            )

    rate = {m.key: m.rate for m in measurements}
    batch, stream = results["batch"], results["streaming"]
    (cold, _), (warm, warm_hits) = results["cache_cold"], results["cache_warm"]
    stream_diff = float(np.max(np.abs(stream - batch)))
    cache_identical = bool(np.array_equal(cold, warm) and np.array_equal(cold, batch))
    targets = [
        Target("batch_vs_librosa", "kws batch vs librosa per clip", rate["batch"] / rate["librosa"], 1.0),
        Target("warm_vs_cold", "cache warm vs cold pass", rate["cache_warm"] / rate["cache_cold"], 20.0),
    ]
    notes = [
        f"{len(paths)} clips from {data_dir}, best of {repeat} rounds, {threads or 'default'} BLAS thread(s), config {cfg.fingerprint()} (T x n_mfcc = {cfg.num_frames} x {cfg.n_mfcc})",
        f"warm/cold cache ratio: {rate['cache_warm'] / rate['cache_cold']:.1f}x; "
        f"warm pass hits {warm_hits}/{len(paths)}, identical to cold and batch: {'yes' if cache_identical else 'NO'}",
        f"streaming vs batch max |diff|: {stream_diff:.2e}",
    ]
    print_report("kws bench features", measurements, targets, notes)
    if json_out is not None:
        data = report_dict(
            "features",
            measurements,
            targets,
            data_dir=str(data_dir),
            clips=len(paths),
            repeat=repeat,
            blas_threads=threads or "default",
            config=cfg.to_dict(),
            fingerprint=cfg.fingerprint(),
            warm_over_cold=rate["cache_warm"] / rate["cache_cold"],
            warm_hits=warm_hits,
            cache_identical=cache_identical,
            streaming_max_abs_diff=stream_diff,
        )
        write_json(json_out, data, force)
        typer.echo(f"wrote {json_out}")
