"""kws search: (W, R) grid, rejection before training, parallel training within a budget,
resume without retraining, plots; stage 1 through cascade.evaluation.search."""

from __future__ import annotations

import json

import pytest

from data_prep.config import FeatureConfig
from data_prep.errors import ConfigError, KwsError

# ds_cnn at 4 / 8 filters, one block: int8 flash ~4.6 KB / ~5.3 KB at 8x32, so 5,000 B keeps W 0.5 only
BASE = {"arch": "ds_cnn", "arch_params": {"filters": 8, "blocks": 1}, "widths": (0.5, 1.0),
        "resolutions": ((8, 32),), "epochs": 1, "batch_size": 32, "flash_limit": 5_000, "sram_limit": 200_000}


@pytest.fixture()
def app():
    from kws.cli import app as root

    return root


def test_resolution_sets_mfcc_and_frames_through_the_stride():
    from kws.search.arch import parse_resolution, resolution_config

    base = FeatureConfig()
    assert resolution_config(base, 10, 49) == base  # the default 20 ms stride
    fewer = resolution_config(base, 8, 32)
    assert fewer.input_shape == (32, 8) and fewer.stride_samples == 495 and fewer.window_ms == base.window_ms
    assert resolution_config(base, 10, 25).num_frames == 25
    assert parse_resolution("6x25") == (6, 25)
    with pytest.raises(ConfigError, match="N_MFCCxFRAMES"):
        parse_resolution("6by25")
    with pytest.raises(ConfigError, match="frames"):
        resolution_config(base, 10, 1)


def test_grid_scales_the_width_parameter_of_each_family():
    from kws.search.arch import SearchSpec, candidates

    spec = SearchSpec.from_dict({"data": "d", "profile": "nrf52840", "flash_limit": 1, "sram_limit": 1,
                                 "arch": "tc_resnet", "widths": (0.5, 1.0), "resolutions": ((10, 49), (8, 32))})
    grid = candidates(spec)
    assert [c.id for c in grid] == ["w0.5_m10_t49", "w1_m10_t49", "w0.5_m8_t32", "w1_m8_t32"]
    assert [c.arch_params["width"] for c in grid] == [0.375, 0.75, 0.375, 0.75]
    assert grid[2].features.input_shape == (32, 8)
    with pytest.raises(ConfigError, match="--stage2"):
        SearchSpec.from_dict({"data": "d", "profile": "p", "flash_limit": 1, "sram_limit": 1, "stage": 1})


def test_search_rejects_before_training_and_resumes_without_retraining(samples_dir, tmp_path):
    from kws.search.arch import SearchSpec, model_path
    from kws.search.run import run_search

    spec = SearchSpec.from_dict({"data": str(samples_dir / "speech_commands"), "profile": "nrf52840", **BASE})
    out = tmp_path / "search"
    # budget 0: everything is measured, nothing trains
    first = run_search(spec, out, budget_s=0)
    small, big = first["candidates"]["w0.5_m8_t32"], first["candidates"]["w1_m8_t32"]
    assert small["fits"] and small["status"] == "pending" and small["flash_bytes"] <= 5_000
    assert not big["fits"] and big["status"] == "rejected" and "flash" in big["reason"]
    assert big["sram_bytes"] == big["arena_bytes"] + big["frontend_ram_bytes"] > big["arena_bytes"] > 0
    assert first["best"] is None and not first["complete"]
    assert not (out / "models").exists()
    # with a budget: only the candidate that fits trains
    second = run_search(spec, out, budget_s=600)
    assert second["this_run"] == {"trained": 1, "failed": 0, "interrupted": 0}
    best = second["best"]
    assert best["id"] == "w0.5_m8_t32" and second["complete"] and 0 <= best["val_accuracy"] <= 1
    assert best["command"].startswith("kws train ") and "--config" in best["command"]
    assert not model_path(out, "w1_m8_t32").exists()
    metrics = model_path(out, best["id"]) / "metrics.json"
    stamp = metrics.stat().st_mtime_ns
    # a rerun finds everything done: nothing is measured or trained again
    third = run_search(spec, out, budget_s=600)
    assert third["this_run"] == {"trained": 0, "failed": 0, "interrupted": 0}
    assert metrics.stat().st_mtime_ns == stamp and third["best"]["id"] == best["id"]
    for name in ("memory_map.png", "pareto.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    saved = json.loads((out / "search.json").read_text())
    assert saved["spec"] == spec.to_dict() and saved["best"]["id"] == best["id"]
    # other limits reuse every measurement and result: the big model now fits, untrained
    looser = run_search(SearchSpec.from_dict({**spec.to_dict(), "flash_limit": 10_000}), out, budget_s=0)
    assert looser["candidates"]["w1_m8_t32"]["fits"] and looser["candidates"]["w1_m8_t32"]["status"] == "pending"
    assert looser["candidates"]["w0.5_m8_t32"]["status"] == "trained" and metrics.stat().st_mtime_ns == stamp
    assert looser["candidates"]["w1_m8_t32"]["flash_bytes"] == big["flash_bytes"]
    # different training settings never mix with the saved ones
    with pytest.raises(KwsError, match="different settings"):
        run_search(SearchSpec.from_dict({**spec.to_dict(), "epochs": 2}), out, budget_s=0)


def test_cli_errors_are_one_line(app, tmp_path, samples_dir):
    from typer.testing import CliRunner

    runner = CliRunner()
    data = str(samples_dir / "speech_commands")
    result = runner.invoke(app, ["search", "--data", data, "--out", str(tmp_path / "s"), "--stage", "1"])
    assert result.exit_code == 1 and "--stage2" in result.output and "Traceback" not in result.output
    result = runner.invoke(app, ["search", "--data", data, "--out", str(tmp_path / "s"), "--resolution", "10by49"])
    assert result.exit_code == 1 and "N_MFCCxFRAMES" in result.output
    result = runner.invoke(app, ["search", "--data", data, "--out", str(tmp_path / "s"), "--profile", "nosuchboard"])
    assert result.exit_code == 1 and "unknown profile" in result.output
    for args, says in ((["--width", "nan"], "widths must be positive, got [nan]"),  # a search folder was left behind
                       (["--arch-params", "[1]"], "expected a JSON object"),  # a traceback, and the folder
                       (["--arch-params", '"wide"'], "expected a JSON object")):
        result = runner.invoke(app, ["search", "--data", data, "--out", str(tmp_path / "s"), *args])
        assert result.exit_code == 1 and says in result.output and "Traceback" not in result.output, result.output
        assert not (tmp_path / "s").exists()


@pytest.mark.slow
def test_interrupted_training_resumes_from_its_checkpoint(samples_dir, tmp_path):
    from kws.search.arch import SearchSpec, model_path
    from kws.search.run import run_search

    spec = SearchSpec.from_dict({"data": str(samples_dir / "speech_commands"), "profile": "nrf52840",
                                 **BASE, "widths": (0.5,), "epochs": 3})
    out = tmp_path / "search"
    first = run_search(spec, out, budget_s=4)  # TF alone takes longer than this to start
    assert first["this_run"]["interrupted"] == 1 and first["candidates"]["w0.5_m8_t32"]["status"] == "interrupted"
    assert not (model_path(out, "w0.5_m8_t32") / "metrics.json").exists()
    second = run_search(spec, out, budget_s=600)
    assert second["this_run"]["trained"] == 1 and second["best"]["id"] == "w0.5_m8_t32"


@pytest.mark.slow
def test_stage1_search_picks_gate_and_tau_through_cascade_search(app, trained_models, samples_dir, tmp_path):
    from typer.testing import CliRunner

    out = tmp_path / "s1"
    result = CliRunner().invoke(app, [
        "search", "--stage", "1", "--stage2", str(trained_models["stage2"]), "--data", str(samples_dir / "speech_commands"),
        "--out", str(out), "--width", "0.5", "--width", "1", "--epochs", "1", "--batch-size", "32",
        "--flash-kb", "64", "--sram-kb", "64", "--max-drop", "1.0", "--budget-min", "10"])
    assert result.exit_code == 0, result.output
    saved = json.loads((out / "search.json").read_text())
    stage2 = FeatureConfig.load(trained_models["stage2"] / "features.toml")
    assert saved["spec"]["base_features"] == stage2.to_dict()
    rows = saved["candidates"].values()
    assert all(r["flash_bytes"] > r["model_bytes"] for r in rows)  # the stage-2 model shares the flash
    assert saved["cascade"]["best"] is not None and "cascade: stage 1" in result.output


def test_a_search_saved_with_the_flat_spec_of_older_kws_resumes(tmp_path):
    from kws.search.arch import SEARCH_JSON, SearchSpec, SearchState
    from kws.train.config import TrainConfig

    flat = {"data": "d", "profile": "nrf52840", "flash_limit": 5_000, "sram_limit": 200_000, "stage": 2,
            "arch": "ds_cnn", "arch_params": {"filters": 8}, "widths": [0.5], "resolutions": [[8, 32]],
            "base_features": {}, "labels": "12", "epochs": 3, "batch_size": 32, "learning_rate": 3e-3,
            "unknown_pct": 10.0, "silence_pct": 10.0, "keyword_boost": 2.0, "seed": 0, "stage2": None}
    spec = SearchSpec.from_dict(flat)
    assert spec.train == TrainConfig(arch_params={"filters": 8}, epochs=3, patience=3, batch_size=32)
    assert SearchSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    out = tmp_path / "search"
    out.mkdir()
    (out / SEARCH_JSON).write_text(json.dumps({"spec": flat, "candidates": {}, "training_seconds": 0.0}))
    state = SearchState(out, spec)  # the same search: resumes, saved in today's form
    assert state.data["spec"] == spec.to_dict()
    (out / SEARCH_JSON).write_text(json.dumps({"spec": {**flat, "colour": "red"}, "candidates": {}}))
    with pytest.raises(KwsError, match="not a search state this kws can resume.*--force"):
        SearchState(out, spec)
