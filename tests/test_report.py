"""kws report: a run directory -> report.html / report.md, rendered in headless Chromium.

The full run is laid out as `kws demo` lays it out, from the session's briefly trained
models and bundle plus the demo's own step functions (features, TFLM check, evaluation,
a 30 s stream, energy), so the report reads the real artefacts the demo writes.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from cascade.evaluation.miss_reasons import REASONS
from cascade.evaluation.miss_reasons import describe as describe_misses
from cascade.evaluation.search import Candidate
from cascade.evaluation.stream_build import build_stream_folder
from cascade.evaluation.stream_make import StreamRecipe
from cascade.runtime.bundle import Bundle
from data_prep.config import FeatureConfig
from data_prep.errors import KwsError
from kws.report.build import build_report
from kws.report.doc import days, num, pct, ratio

FEATURES_TOML = Path(__file__).resolve().parents[1] / "samples" / "models" / "stage2" / "features.toml"

FIGURES = {"training", "confusion", "threshold_curve", "timeline", "keyword_det", "energy", "pareto"}

PROBE = """<script>
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var text = document.body.innerText;
  document.body.dataset.images = imgs.length;
  document.body.dataset.loaded = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  var pre = document.createElement('pre');
  pre.id = 'rendered-text';
  pre.textContent = text;
  document.body.appendChild(pre);
});
</script>"""


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, trained_models: dict[str, Path], bundle_dir: Path, samples_dir: Path) -> Path:
    from kws.demo.pipeline import DemoConfig, energy_step, evaluate_step, features_step, recipe_of, stream_step
    from kws.recipe.steps import tflm_step

    root = tmp_path_factory.mktemp("run")
    for stage in ("stage1", "stage2"):
        shutil.copytree(trained_models[stage], root / f"train_{stage}" / "model")
    shutil.copytree(bundle_dir, root / "cascade" / "bundle")
    cfg = DemoConfig(data=str(samples_dir / "speech_commands"), stream_minutes=0.5)
    steps = {"features": features_step(cfg, FeatureConfig()), "tflm": tflm_step(root, recipe_of(cfg)),
             "evaluate": evaluate_step(root, cfg), "stream": stream_step(root, cfg), "energy": energy_step(root)}
    for name, run in steps.items():
        (root / name).mkdir()
        run(root / name)
    return root


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    pytest.skip("chromium is not installed (scripts/system_deps.sh installs the Debian package `chromium`)")


def _chrome(page: Path, profile: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
           f"--user-data-dir={profile}", *args, page.resolve().as_uri()]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=90, check=True)


def _expected_numbers(root: Path) -> list[str]:
    ev = json.loads((root / "evaluate" / "eval.json").read_text())
    score = json.loads((root / "stream" / "detections.json").read_text())["score"]
    nrf = json.loads((root / "energy" / "energy.json").read_text())["nrf52840"]
    return [pct(ev["accuracy"]), pct(ev["stage2_accuracy"]), pct(ev["stage1_recall"]),
            pct(ev["stage2_invocation_rate"]), pct(score["hit_rate"]), num(score["false_accepts_per_hour"], 1),
            ratio(nrf["cascade_vs_stage2_energy"]), days(nrf["battery_days"])]


def test_report_renders_in_chromium(run_dir: Path, tmp_path: Path) -> None:
    html_path, md_path = build_report(run_dir)
    page = html_path.read_text()
    # self-contained: nothing fetched, nothing run
    assert not re.search(r"""(src|href)=["']?(https?:|//)""", page) and "<script" not in page and "<link" not in page
    embedded = re.findall(r'data:image/png;base64,([A-Za-z0-9+/=]+)" alt="[^"]*" data-name="([a-z_]+)"', page)
    assert {name for _, name in embedded} == FIGURES
    for data, name in embedded:  # the page's plots are byte for byte the files report.md links to
        assert base64.b64decode(data) == (run_dir / "report_files" / f"{name}.png").read_bytes()
    md = md_path.read_text()
    assert set(re.findall(r"\]\(report_files/([a-z_]+)\.png\)", md)) == FIGURES
    assert "no truth.json" not in md and "the true keywords (green)" in md  # the stream's truth file is read and drawn
    detections = json.loads((run_dir / "stream" / "detections.json").read_text())
    assert detections["speakers"]["text"] in md  # the demo's hit rate with its spread over speakers
    assert sum(s["n"] for s in detections["speakers"]["per_speaker"].values()) == detections["score"]["keywords"]
    misses, score = detections["misses"], detections["score"]  # why each missed keyword was missed
    assert sum(misses[r] for r in REASONS) == score["keywords"] - score["hits"]
    assert (f"Why the missed ones were missed (cascade/evaluation/miss_reasons.py): {describe_misses(misses)}."
            in md.replace("\\_", "_"))  # Markdown escapes underscores
    gate = json.loads((run_dir / "evaluate" / "eval.json").read_text())["stage1_recall_speakers"]["ci95"]
    assert f"Stage-1 recall over the same speakers, 95 % interval: {pct(gate[0])}-{pct(gate[1])}." in md
    # the energy at the recording's own stage-2 rate, beside the keyword-free one of the headline
    busy = next(r for r in detections["energy"] if r["profile"] == "nrf52840")
    quiet = json.loads((run_dir / "energy" / "energy.json").read_text())["nrf52840"]
    assert f"At that rate the cascade on the nrf52840 uses {ratio(busy['ratio'])} the energy" in md
    busier = detections["stage2_runs"] / detections["steps"] > quiet["stage2_rate_per_s"] * quiet["inference_stride_ms"] / 1000
    assert (busy["ratio"] > quiet["cascade_vs_stage2_energy"]) == busier

    probe = html_path.with_name("probe.html")
    probe.write_text(page.replace("</body>", PROBE + "</body>"))
    dom = _chrome(probe, tmp_path / "p1", "--virtual-time-budget=10000", "--dump-dom").stdout
    images = re.search(r'data-images="(\d+)"', dom)
    loaded = re.search(r'data-loaded="(\d+)"', dom)
    assert images and loaded, "the probe script did not run"
    assert int(images.group(1)) == len(FIGURES) and int(loaded.group(1)) == len(FIGURES), "broken images"
    text = html.unescape(re.search(r'<pre id="rendered-text">(.*?)</pre>', dom, re.S).group(1))
    for title in ("Feature configuration", "Models", "Evaluation", "Stage-1 gate", "Long recording", "Keywords on streams",
                  "Energy per MCU profile", "Accuracy vs energy", "Cascade accuracy", "Battery life (nrf52840)"):
        assert title in text
    for value in _expected_numbers(run_dir):
        assert value in text, f"{value!r} not on the rendered page"
    assert "Not in this run" in text  # no export in this run: a note, not a crash

    shot = tmp_path / "report.png"
    _chrome(html_path, tmp_path / "p2", f"--screenshot={shot}", "--window-size=1280,4000")
    import numpy as np
    from PIL import Image

    image = np.asarray(Image.open(shot).convert("L"))
    assert image.shape == (4000, 1280)
    assert (image < 128).mean() > 0.01, "the screenshot is (nearly) blank"


def test_partial_run_dir_gets_notes_not_a_crash(run_dir: Path, tmp_path: Path) -> None:
    """Artefacts under names and folders of the user's choosing are found by content."""
    mine = tmp_path / "mine"
    (mine / "nested").mkdir(parents=True)
    shutil.copy(run_dir / "evaluate" / "eval.json", mine / "my_eval.json")
    shutil.copy(run_dir / "energy" / "energy.json", mine / "nested" / "power.json")
    (mine / "events.jsonl").write_text('{"t": 3.2, "label": "yes", "score": 0.91}\n{"t": 7.5, "label": "no", "score": 0.8}\n')
    firmware = mine / "fw"
    (firmware / "src").mkdir(parents=True)
    (firmware / "kws_export.json").write_text("{}\n")
    (firmware / "src" / "kws_model_stage2.cc").write_text("// model\n" * 50)
    candidates = [dataclasses.asdict(Candidate(str(mine / "s1"), tau, acc, 0.9, rate, energy, 8000, 40000))
                  for tau, acc, rate, energy in ((0.2, 0.80, 0.9, 30.0), (0.4, 0.78, 0.3, 20.0), (0.6, 0.70, 0.1, 18.0))]
    (mine / "nested" / "cascade_search.json").write_text(json.dumps({
        "profile": "nrf52840", "split": "validation", "required_accuracy": 0.77, "stage2_accuracy": 0.8,
        "stage2_always_on_energy_j_per_hour": 55.0, "inference_stride_ms": 100.0, "best": candidates[1],
        "candidates": candidates}))
    html_path, md_path = build_report(mine)
    page, md = html_path.read_text(), md_path.read_text()
    assert "3 (stage 1, tau) candidates" in page and "Chosen: s1 at tau 0.400, accuracy 78.0%" in page
    assert pct(json.loads((mine / "my_eval.json").read_text())["accuracy"]) in page
    assert page.count('class="missing"') == 4  # features, models, gate, keywords on streams: each a one-line note
    assert "Not in this run: no cascade bundle" in page
    assert "No detections" not in page and "7.50" in page  # the user's JSON-lines events
    size = (firmware / "src" / "kws_model_stage2.cc").stat().st_size
    assert re.search(rf"<caption>src/</caption>.*kws_model_stage2\.cc</td><td class=\"num\">{size:,}<", page)
    assert md.count("> Not in this run:") == 4 and "![" in md
    assert {p.name for p in (mine / "report_files").iterdir()} == {"confusion.png", "energy.png", "pareto.png",
                                                                  "timeline.png"}


def test_detections_are_judged_on_their_own_stream(samples_dir: Path, tmp_path: Path) -> None:
    """A run holding two streams, as the demo's does (the operating point's validation stream,
    found first, and the test stream it reports): each detection's verdict and the keywords
    drawn come from the stream the detections were scored on."""
    from kws.demo.pipeline import DemoConfig, stream_step

    root = tmp_path / "run"
    shutil.copytree(samples_dir / "cascade", root / "cascade" / "bundle")
    cfg = DemoConfig(data=str(samples_dir / "speech_commands"), stream_minutes=0.5)
    build_stream_folder(Path(cfg.data), [], root / "cascade" / "validation_stream",
                        StreamRecipe(minutes=0.5, seed=cfg.seed + 1), config=Bundle.open(root / "cascade" / "bundle").config)
    (root / "stream").mkdir()
    stream_step(root, cfg)(root / "stream")
    score = json.loads((root / "stream" / "detections.json").read_text())["score"]
    _, md_path = build_report(root)
    verdicts = re.findall(r"^\| [\d.]+ \| [a-z_]+ \| [\d.]+ \| (hit|false accept) \|$", md_path.read_text(), re.M)
    assert verdicts.count("hit") == score["hits"] > 0
    assert verdicts.count("false accept") == score["false_accepts"]


def test_an_unrelated_report_html_is_not_overwritten(tmp_path: Path) -> None:
    shutil.copy(FEATURES_TOML, tmp_path / "features.toml")
    (tmp_path / "report.html").write_text("<html>my own notes</html>")
    with pytest.raises(KwsError, match="not a previous kws report"):
        build_report(tmp_path)
    assert (tmp_path / "report.html").read_text() == "<html>my own notes</html>"
    html_path, _ = build_report(tmp_path, force=True)
    assert "Not in this run" in html_path.read_text()
    build_report(tmp_path)  # a previous report is simply rebuilt


def _cli() -> typer.Typer:
    from kws.cli import app

    return app


def test_cli(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(_cli(), ["report", str(tmp_path / "nope")])
    assert result.exit_code == 2 and "nope' does not exist" in result.output and "Traceback" not in result.output
    result = runner.invoke(_cli(), ["report", str(tmp_path)])  # the wrong folder: refused, nothing written
    assert result.exit_code == 1 and result.output.strip().count("\n") == 0, result.output
    assert "nothing to report" in result.output and not list(tmp_path.iterdir())
    shutil.copy(FEATURES_TOML, tmp_path / "features.toml")
    out = tmp_path / "out"
    result = runner.invoke(_cli(), ["report", str(tmp_path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "report.html").is_file() and (out / "report.md").is_file()


@pytest.mark.parametrize("force", [[], ["--force"]])
@pytest.mark.parametrize("mine", ["folder", "file"])
def test_force_never_replaces_a_report_files_kws_did_not_write(tmp_path: Path, mine: str, force: list[str]) -> None:
    """--force may replace a report.html a person wrote, but not their own report_files/
    (it was moved aside and deleted with everything in it), nor a file of that name; without
    --force the refusal no longer suggests it."""
    shutil.copy(FEATURES_TOML, tmp_path / "features.toml")
    files = tmp_path / "report_files"
    if mine == "folder":
        files.mkdir()
        (files / "notes.txt").write_text("mine")
    else:
        files.write_text("mine")
    result = CliRunner().invoke(_cli(), ["report", str(tmp_path), *force])
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert result.output.strip() == (f"error: {files}: not written by kws report (not only its .png plots); "
                                     "refusing to replace it even with --force")
    assert (files / "notes.txt" if mine == "folder" else files).read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["features.toml", "report_files"]
