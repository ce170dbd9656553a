"""Writing results safely: one --force rule, nothing lost, no tracebacks on unwritable
destinations, no leftovers after a kill, no umask games."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cascade.runtime.bundle import MANIFEST, Bundle, write_bundle
from data_prep import atomic
from data_prep.archive import extract_tar_gz
from data_prep.atomic import atomic_dir, write_text_atomic
from data_prep.errors import KwsError
from data_prep.outputs import refuse_existing
from kws.cli import app

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "samples"
BUNDLE = SAMPLES / "cascade"
DATA = SAMPLES / "speech_commands"
CLIP = next((DATA / "yes").glob("*.wav"))
runner = CliRunner()


def one_line_error(result) -> str:
    """The CLI refused with exit 1 and one ``error:`` line, no traceback."""
    assert result.exit_code == 1, (result.exit_code, result.output, result.exception)
    assert "Traceback" not in result.output and not isinstance(result.exception, (OSError, AssertionError, TypeError))
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.output
    return lines[0]


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def foreign_folder(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "thesis.txt").write_text("years of work")
    return path


# --- item 1: one helper for "already exists (use --force)" -----------------------------------

def test_the_refusal_is_worded_in_one_place():
    sources = [p for p in (REPO / d for d in ("data_prep", "cascade", "export", "kws")) for p in p.rglob("*.py")]
    copies = [p.relative_to(REPO) for p in sources if "already exists (use --force" in p.read_text()]
    assert copies == [Path("data_prep/outputs.py")]


def test_refuse_existing_rules(tmp_path):
    file = tmp_path / "r.json"
    refuse_existing(file, False)  # nothing there: fine
    file.write_text("{}")
    with pytest.raises(KwsError, match=r"already exists \(use --force to overwrite\)"):
        refuse_existing(file, False)
    refuse_existing(file, True)  # a result file may be replaced with --force
    with pytest.raises(KwsError, match="is a folder"):
        refuse_existing(tmp_path, True)  # never a folder where a file should go
    empty = tmp_path / "empty"
    empty.mkdir()
    refuse_existing(empty, False, marks=("truth.json",))  # nothing to lose
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "truth.json").write_text("{}")
    refuse_existing(mine, True, marks=("truth.json",))
    with pytest.raises(KwsError, match="not written by kws .*even with --force"):
        refuse_existing(foreign_folder(tmp_path / "theirs"), True, marks=("truth.json",))


# --- item 2: D4, D5, D6 ------------------------------------------------------------------------

def test_train_force_keeps_a_folder_kws_did_not_write(tmp_path):
    """D4: the folder is kept, whatever the data."""
    out = foreign_folder(tmp_path / "p")
    result = runner.invoke(app, ["train", str(DATA), "--stage", "1", "--arch", "tiny", "--out", str(out), "--force"])
    assert "not a kws training run" in one_line_error(result)
    assert (out / "thesis.txt").read_text() == "years of work"


def test_train_force_checks_the_data_before_touching_a_previous_run(tmp_path):
    """D4: bad data with --force leaves the previous run as it was; a failed run on a new
    --out leaves no folder behind."""
    empty_data = tmp_path / "e"
    empty_data.mkdir()
    run = tmp_path / "run"
    run.mkdir()
    for name in ("train_config.json", "metrics.json", "model.keras"):
        (run / name).write_text("previous")
    result = runner.invoke(app, ["train", str(empty_data), "--stage", "1", "--arch", "tiny", "--out", str(run), "--force"])
    one_line_error(result)
    assert sorted(p.name for p in run.iterdir()) == ["metrics.json", "model.keras", "train_config.json"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    fresh = tmp_path / "fresh"
    one_line_error(runner.invoke(app, ["train", str(empty_data), "--stage", "1", "--arch", "tiny", "--out", str(fresh)]))
    assert not fresh.exists()


def test_stream_make_force_keeps_a_folder_kws_did_not_write(tmp_path):
    """D5."""
    out = foreign_folder(tmp_path / "sm")
    result = runner.invoke(app, ["stream", "make", "--keywords", str(DATA), "--minutes", "0.2", "--out", str(out), "--force"])
    assert "not written by kws" in one_line_error(result)
    assert sorted(p.name for p in out.iterdir()) == ["thesis.txt"]


def test_cascade_build_force_keeps_a_folder_kws_did_not_write(tmp_path):
    """D5."""
    out = foreign_folder(tmp_path / "b")
    result = runner.invoke(app, ["cascade", "build", "--stage1", str(BUNDLE / "stage1"), "--stage2", str(BUNDLE / "stage2"),
                                 "--data", str(DATA), "--out", str(out), "--force"])
    assert "not written by kws" in one_line_error(result)
    assert sorted(p.name for p in out.iterdir()) == ["thesis.txt"]


def test_demo_keeps_a_step_folder_kws_did_not_write(tmp_path):
    """kws demo deleted OUT/<step>/ of a user's own before redoing the step, even without
    --force (OUT/features/notes.txt went at once). Every step folder is checked before the
    first step runs: a late one (export, after the training) is refused as early."""
    out = tmp_path / "run"
    for step, force in (("features", []), ("export", ["--force"])):
        foreign_folder(out / step)
        result = runner.invoke(app, ["demo", "--out", str(out), *force])
        assert one_line_error(result) == (f"error: {out / step}: not written by kws (no step.json or step.started); "
                                          "refusing to replace it even with --force")
        assert (out / step / "thesis.txt").read_text() == "years of work"
        assert [p.name for p in out.iterdir()] == [step]  # nothing ran
        shutil.rmtree(out / step)


def _copy_bundle(out: Path, **kw) -> Bundle:
    bundle = Bundle.open(BUNDLE)
    return write_bundle(out, BUNDLE / "stage1", BUNDLE / "stage2", tau=bundle.tau,
                        inference_stride_ms=bundle.inference_stride_ms, smoothing=bundle.smoothing,
                        calibration=bundle.calibration, **kw)


def test_bundle_figures_are_written_before_publishing(tmp_path):
    """D6: the calibration figures go into the temporary folder; a failure while making them
    leaves the previous complete bundle in place and no temporary folder."""
    out = tmp_path / "bundle"
    _copy_bundle(out, extras=lambda draft: write_text_atomic(draft.path / "threshold_curve.json", "[1]\n"))
    assert (out / "threshold_curve.json").read_text() == "[1]\n"

    def fails(draft: Bundle) -> None:
        write_text_atomic(draft.path / "threshold_curve.json", "[2]\n")
        raise KwsError("killed while computing the keyword-free rate")

    with pytest.raises(KwsError, match="killed"):
        _copy_bundle(out, force=True, extras=fails)
    assert (out / "threshold_curve.json").read_text() == "[1]\n" and Bundle.open(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]


@pytest.mark.slow
def test_cascade_build_publishes_bundle_with_its_figures(tmp_path):
    """D6 end to end: the published bundle already holds both figure files, and a rebuild
    with --force replaces the bundle in one rename."""
    out = tmp_path / "b"
    args = ["cascade", "build", "--stage1", str(BUNDLE / "stage1"), "--stage2", str(BUNDLE / "stage2"),
            "--data", str(DATA), "--out", str(out)]
    for extra in ([], ["--force"]):
        result = runner.invoke(app, args + extra)
        assert result.exit_code == 0, result.output
        assert {"threshold_curve.json", "keyword_free.json", MANIFEST} <= {p.name for p in out.iterdir()}
        assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]


# --- item 3: D12, unwritable destinations --------------------------------------------------------

@pytest.fixture()
def a_file(tmp_path) -> Path:
    """A regular file: a path under it cannot be created, even by root."""
    path = tmp_path / "file"
    path.write_text("x")
    return path


def test_features_out_unwritable_or_a_folder(a_file, tmp_path):
    line = one_line_error(runner.invoke(app, ["features", str(CLIP), "--out", str(a_file / "f.npy")]))
    assert str(a_file) in line
    folder = tmp_path / "d"
    folder.mkdir()
    assert "is a folder" in one_line_error(runner.invoke(app, ["features", str(CLIP), "--out", str(folder), "--force"]))


def test_detect_events_and_eval_json_unwritable(a_file):
    one_line_error(runner.invoke(app, ["detect", str(CLIP), "--model", str(BUNDLE), "--events", str(a_file / "e.jsonl")]))
    one_line_error(runner.invoke(app, ["eval", str(DATA), "--model", str(BUNDLE), "--json", str(a_file / "r.json")]))


def test_export_out_unwritable(a_file):
    result = runner.invoke(app, ["export", "--model", str(BUNDLE), "--data", str(DATA), "--out", str(a_file / "fw")])
    assert "is not a folder" in one_line_error(result)


def test_train_out_is_a_file(a_file):
    result = runner.invoke(app, ["train", str(DATA), "--stage", "1", "--arch", "tiny", "--out", str(a_file)])
    assert "not a folder" in one_line_error(result)


def test_download_dest_is_a_file_or_under_one(a_file):
    for dest in (a_file, a_file / "sub"):
        result = runner.invoke(app, ["data", "download", "--dest", str(dest), "--url", "http://127.0.0.1:9/"])
        assert str(a_file) in one_line_error(result)


@pytest.mark.parametrize("command, first, second", [
    (["detect", str(CLIP), "--model", str(BUNDLE)], "--events", "--json"),
    (["eval", str(DATA), "--model", str(BUNDLE)], "--json", "--png"),
    (["stream", "eval", str(DATA), "--model", str(BUNDLE)], "--json", "--det"),
])
def test_one_path_for_two_outputs_is_refused_before_the_run(tmp_path, command, first, second):
    """detect --events X --json X wrote the events, then the summary over them, and exited 0
    (eval's --png over its --json, stream eval's --det over its --json alike)."""
    same = tmp_path / "out.json"
    result = runner.invoke(app, [*command, first, str(same), second, str(same)])
    assert one_line_error(result) == f"error: {same}: given to both {first} and {second}; give each its own file"
    assert result.output.strip().startswith("error:") and not same.exists()


def test_write_atomic_turns_os_errors_into_one_line(a_file, tmp_path):
    with pytest.raises(KwsError, match="not a folder"):
        write_text_atomic(a_file / "x.json", "{}")
    with pytest.raises(KwsError, match="is a folder"):
        write_text_atomic(tmp_path, "{}")
    with pytest.raises(KwsError, match=r"/proc/version: cannot write"):
        write_text_atomic(Path("/proc/version"), "x")  # refused even to root


# --- item 4: D14, leftovers after a kill ----------------------------------------------------------

KILLED_DIR = """
import sys, time
from pathlib import Path
from data_prep.atomic import atomic_dir
with atomic_dir(Path(sys.argv[1]), marks=("done.json",)) as tmp:
    (tmp / "half.bin").write_bytes(b"x" * 1000)
    print("building", flush=True)
    time.sleep(60)
"""


def _run_until(code: str, marker: str, *args: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, text=True, cwd=REPO)
    assert proc.stdout is not None
    for line in proc.stdout:
        if marker in line:
            break
    return proc


def _kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait()  # reaped: its pid no longer exists


def test_atomic_dir_removes_the_temp_folder_of_a_killed_run(tmp_path):
    out = tmp_path / "out"
    proc = _run_until(KILLED_DIR, "building", str(out))
    _kill(proc)
    assert [p.name for p in tmp_path.iterdir()] == [f".out.tmp-{proc.pid}"]
    with atomic_dir(out, marks=("done.json",)) as tmp:
        (tmp / "done.json").write_text("{}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_kill_between_the_two_renames_loses_nothing(tmp_path):
    """The previous result moved aside by a run killed before its new one was in place is put back."""
    old = tmp_path / f".out.old-{dead_pid()}"
    old.mkdir()
    (old / "done.json").write_text("previous")
    atomic.remove_stale(tmp_path / "out")
    assert (tmp_path / "out" / "done.json").read_text() == "previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_live_runs_temp_folders_are_left_alone(tmp_path):
    busy = tmp_path / f".out.tmp-{os.getpid()}"
    busy.mkdir()
    atomic.remove_stale(tmp_path / "out")
    assert busy.is_dir()


KILLED_EXTRACT = """
import sys, time
from pathlib import Path
from data_prep.archive import extract_tar_gz
def slow(done, total):
    if done > 1 << 20:
        print("extracting", flush=True)
        time.sleep(60)
extract_tar_gz(Path(sys.argv[1]), Path(sys.argv[2]), progress=slow)
"""


def test_a_killed_extraction_is_cleaned_up_by_the_next_run(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for i in range(4):
        (src / f"{i}.bin").write_bytes(os.urandom(1 << 20))
    archive = tmp_path / "a.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(src, arcname=".")
    dest = tmp_path / "dest"
    dest.mkdir()
    target = dest / "speech_commands_v0.02"
    proc = _run_until(KILLED_EXTRACT, "extracting", str(archive), str(target))
    _kill(proc)
    assert [p.name for p in dest.iterdir()] == [f".speech_commands_v0.02.extracting-{proc.pid}"]
    extract_tar_gz(archive, target)
    assert sorted(p.name for p in dest.iterdir()) == ["speech_commands_v0.02"]


def test_export_temp_of_a_killed_run_is_removed(tmp_path):
    """A killed `kws export` left ``.OUT.tmp-<pid>``: the next export's atomic_dir removes it."""
    stale = tmp_path / f".fw.tmp-{dead_pid()}"
    stale.mkdir()
    (stale / "model.h").write_text("half")
    with atomic_dir(tmp_path / "fw", marks=("kws_export.json",)) as tmp:
        (tmp / "kws_export.json").write_text("{}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fw"]


# --- item 6: permissions without touching the umask -----------------------------------------------

def test_atomic_writes_get_the_umask_modes_without_changing_it(tmp_path):
    calls: list[str] = []

    def profile(frame, event, arg):
        if event == "c_call" and getattr(arg, "__name__", "") == "umask":
            calls.append(event)

    previous = os.umask(0o027)
    try:
        sys.setprofile(profile)
        try:
            write_text_atomic(tmp_path / "a.json", "{}")
            with atomic_dir(tmp_path / "d", marks=("x",)) as tmp:
                (tmp / "x").write_text("")
        finally:
            sys.setprofile(None)
    finally:
        os.umask(previous)
    assert calls == []  # the process umask is shared by every thread: never set it, even briefly
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o640
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o750


def test_temp_names_are_recognisable():
    assert re.fullmatch(r"\.x\.json\.tmp-\d+-[0-9a-f]{8}", atomic.temp_sibling(Path("x.json"), token=True).name)
