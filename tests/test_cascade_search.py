"""`kws cascade search`: every tau scored, the cheapest feasible one chosen, a Pareto plot."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from kws.cli import app


def test_search_picks_the_cheapest_feasible_gate(trained_models: dict[str, Path], samples_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "search"
    result = CliRunner().invoke(app, [
        "cascade", "search", "--stage1", str(trained_models["stage1"]), "--stage2", str(trained_models["stage2"]),
        "--data", str(samples_dir / "speech_commands"), "--out", str(out), "--max-drop", "0.05", "--bundle",
    ])
    assert result.exit_code == 0, result.output
    data = json.loads((out / "cascade_search.json").read_text())
    feasible = [c for c in data["candidates"] if c["accuracy"] >= data["required_accuracy"] - 1e-9]
    assert data["best"] == min(feasible, key=lambda c: c["energy_j_per_hour"])
    assert data["best"]["energy_j_per_hour"] < data["stage2_always_on_energy_j_per_hour"]
    energies = {round(c["tau"], 6): c["stage2_per_s"] for c in data["candidates"]}
    taus = sorted(energies)
    assert all(energies[a] >= energies[b] for a, b in zip(taus, taus[1:]))  # higher tau, fewer stage-2 calls
    assert (out / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "bundle" / "cascade.toml").is_file()


def test_search_refuses_a_bad_stride_or_drop_before_scoring(samples_dir: Path, tmp_path: Path) -> None:
    """A stride of 0 or nan was a traceback (modulo by zero, NaN to integer); a NaN drop a search
    that could not succeed, written as one."""
    models = samples_dir / "models"
    base = ["cascade", "search", "--stage1", str(models / "stage1"), "--stage2", str(models / "stage2"),
            "--data", str(samples_dir / "speech_commands"), "--out", str(tmp_path / "search")]
    for extra, says in ((["--inference-stride-ms", "0"], "inference stride 0.0 ms is shorter than the feature stride"),
                        (["--inference-stride-ms", "nan"], "inference stride nan ms is not a finite number"),
                        (["--max-drop", "nan"], "--max-drop nan: must be an accuracy loss in [0, 1]")):
        result = CliRunner().invoke(app, base + extra)
        assert result.exit_code == 1 and "Traceback" not in result.output, result.output
        assert result.output.startswith("error: ") and len(result.output.strip().splitlines()) == 1
        assert says in result.output
        assert not (tmp_path / "search").exists()


def test_search_refuses_a_bundle_folder_of_the_users_before_searching(samples_dir: Path, tmp_path: Path) -> None:
    """--bundle --force over a previous search: a folder of the user's own at OUT/bundle was refused
    only after the search had run and replaced OUT's cascade_search.json and pareto.png."""
    out = tmp_path / "search"
    out.mkdir()
    (out / "cascade_search.json").write_text("{}\n")
    (out / "bundle").mkdir()
    (out / "bundle" / "notes.txt").write_text("mine")
    models = samples_dir / "models"
    result = CliRunner().invoke(app, ["cascade", "search", "--stage1", str(models / "stage1"), "--stage2", str(models / "stage2"),
                                      "--data", str(samples_dir / "speech_commands"), "--out", str(out), "--bundle", "--force"])
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert result.output.strip() == (f"error: {out / 'bundle'}: not written by kws (no cascade.toml); "
                                     "refusing to replace it even with --force")
    assert (out / "cascade_search.json").read_text() == "{}\n" and sorted(p.name for p in out.iterdir()) == ["bundle", "cascade_search.json"]
    assert [p.name for p in (out / "bundle").iterdir()] == ["notes.txt"]
