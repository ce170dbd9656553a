"""``kws export``: a cascade bundle -> a firmware folder (C sources, model arrays, golden vectors).

Targets: ``c`` (frontend, model arrays, config header, golden vectors, decision logic: no
TFLite Micro needed), ``tflm`` (+ the TFLite Micro cascade driver; the default, as it fits
any TFLM build: make, CMake, Zephyr, ESP-IDF) and ``arduino`` (the same as an Arduino library:
``library.properties``, ``src/``, ``examples/``, with models, golden vectors and the host test
under ``extras/``).

The bundle is opened and checked (files present, configs consistent, models int8 with the
config's input shape and one output per label), each model's arena is measured in TFLite
Micro, the golden vectors are made and TFLite Micro's outputs on them must equal the
reference kernels' bit for bit. Everything is written to a temporary sibling folder that is
renamed into place when complete; an existing non-empty folder is replaced only with
``force`` and only when it is a previous export.
"""

from __future__ import annotations

import dataclasses
import json
from importlib import resources
from pathlib import Path

import numpy as np

from cascade.energy.arena import measure_arena
from cascade.runtime.bundle import Bundle, kws_version
from cascade.runtime.int8_model import TFLiteModel
from data_prep.atomic import atomic_dir, write_bytes_atomic, write_text_atomic
from data_prep.errors import ConfigError, KwsError, ModelError
from data_prep.outputs import check_writable, is_kws_output
from export import frontend_c, header, tflm_ops
from export import golden as golden_mod
from export.c_array import model_array_sources
from export.readme import Memory, readme
from export.tflm import tflm_outputs

TARGETS = ("arduino", "tflm", "c")
DEFAULT_TARGET = "tflm"
MANIFEST = "kws_export.json"
LIBRARY_NAME = "kws_cascade"


@dataclasses.dataclass(frozen=True)
class Layout:
    """Where each kind of file goes for a target (relative to the export folder)."""

    target: str
    src: str
    models: str
    golden: str
    host_test: str
    cxx: str  # C++ source suffix: Arduino compiles .cpp, TFLM builds use .cc

    @classmethod
    def of(cls, target: str) -> "Layout":
        if target not in TARGETS:
            raise ConfigError(f"unknown export target {target!r} (use one of {', '.join(TARGETS)})")
        extras = "extras/" if target == "arduino" else ""
        return cls(target, "src", f"{extras}models", f"{extras}golden", f"{extras}host_test",
                   "cpp" if target == "arduino" else "cc")


@dataclasses.dataclass(frozen=True)
class ExportResult:
    out: Path
    target: str
    stages: tuple[header.StageFacts, header.StageFacts]
    memory: Memory
    verification: dict
    files: tuple[str, ...]


def template(name: str) -> str:
    return (resources.files("export") / "templates" / name).read_text(encoding="utf-8")


def check_destination(out: Path, force: bool) -> None:
    """Refuse a non-empty folder without force, and anything but a previous export with it."""
    out = Path(out)
    check_writable(out)
    if not out.exists():
        return
    if not out.is_dir():
        raise KwsError(f"{out}: exists and is not a folder")
    if not any(out.iterdir()):
        return
    if not force:
        raise KwsError(f"{out}: folder is not empty (use --force to replace a previous export)")
    if not is_kws_output(out, (MANIFEST,)):
        raise KwsError(f"{out}: not a kws export (no {MANIFEST}); refusing to replace it even with --force")


def stage_facts(bundle: Bundle, stage: int) -> header.StageFacts:
    """Check one stage's model against the bundle's config and measure its arena."""

    model_dir = bundle.stage1 if stage == 1 else bundle.stage2
    model = model_dir.check_int8()  # int8, input shape, one output per label (as Bundle.open)
    data = model.model_bytes
    return header.StageFacts(stage, model_dir.labels, model_dir.stats, model.input, model.output, len(data),
                             measure_arena(data), tflm_ops.model_ops(data))


def verify_outputs(bundle: Bundle, golden: golden_mod.Golden) -> dict:
    """TFLite Micro == reference kernels == golden outputs on the golden inputs, bit for bit."""

    report = {}
    for n, model_dir in ((1, bundle.stage1), (2, bundle.stage2)):
        data = model_dir.int8_path.read_bytes()
        inputs, expected = golden.arrays[f"stage{n}_input"], golden.arrays[f"stage{n}_output"]
        micro = tflm_outputs(data, inputs)
        reference = TFLiteModel(data).invoke_int8(inputs)
        exact = bool(np.array_equal(micro, reference) and np.array_equal(reference, expected))
        if not exact:
            raise ModelError(f"{model_dir.int8_path}: TFLite Micro outputs differ from the reference kernels on the "
                             f"golden inputs (max {int(np.abs(micro.astype(int) - reference).max())} LSB)")
        report[f"stage{n}"] = {"clips": len(inputs), "bit_exact": exact}
    return report


def _memory(bundle: Bundle, stages: tuple[header.StageFacts, header.StageFacts]) -> Memory:
    capacity = int(np.floor(bundle.smoothing.window_ms / bundle.inference_stride_ms)) + 2
    ram = frontend_c.ram_bytes(bundle.config, len(bundle.labels), capacity)
    return Memory(stages, frontend_c.table_flash_bytes(bundle.config), ram["frontend"], ram["feature_ring"],
                  ram["smoother"])


def _host_makefile(layout: Layout) -> str:
    up = "../" * layout.host_test.count("/") + "../"
    return f"""# Host build of the exported C sources and the self-test (gcc or clang); `make check` runs it.
SRC := {up}{layout.src}
GOLDEN := {up}{layout.golden}
MODELS := {up}{layout.models}
CFLAGS ?= -std=c99 -O2 -Wall -Wextra -Werror -pedantic
CXXFLAGS ?= -std=c++17 -O2 -Wall -Wextra -Werror -pedantic

kws_selftest: kws_selftest.c $(SRC)/kws_frontend.c $(SRC)/kws_decision.c kws_stage1_model.o kws_stage2_model.o
\t$(CC) $(CFLAGS) -I$(SRC) -I$(GOLDEN) -o $@ $^ -lm

kws_stage%_model.o: $(SRC)/kws_stage%_model.{layout.cxx} $(SRC)/kws_stage%_model.h
\t$(CXX) $(CXXFLAGS) -c -o $@ $<

check: kws_selftest
\t./kws_selftest $(MODELS)

clean:
\trm -f kws_selftest *.o

.PHONY: check clean
"""


def _library_properties() -> str:
    return f"""name={LIBRARY_NAME}
version={kws_version().split('+')[0]}
author=kws export
maintainer=kws export
sentence=Cascaded keyword spotting: streaming MFCC frontend and two int8 TensorFlow Lite Micro models.
paragraph=Generated by `kws export --target arduino`. Needs the TensorFlow Lite Micro Arduino library.
category=Data Processing
url=
architectures=*
includes=kws_cascade.h
"""


def _write_files(tmp: Path, name: str, layout: Layout, bundle: Bundle, stages, golden: golden_mod.Golden, memory: Memory,
                 verification: dict) -> list[str]:
    files: dict[str, str | bytes] = {}
    src, cxx = layout.src, layout.cxx
    s1, s2 = stages
    for facts, model_dir in zip(stages, (bundle.stage1, bundle.stage2)):
        n = facts.stage
        data = model_dir.int8_path.read_bytes()
        files[f"{layout.models}/kws_stage{n}.tflite"] = data
        h, cc = model_array_sources(data, f"kws_stage{n}.tflite", f"kws_stage{n}_model",
                                    f"stage {n}: {len(facts.labels)} labels, ops {', '.join(facts.ops)}")
        files[f"{src}/kws_stage{n}_model.h"], files[f"{src}/kws_stage{n}_model.{cxx}"] = h, cc
    files[f"{src}/{header.HEADER}"] = header.cascade_config_header(bundle, s1, s2)
    files[f"{src}/{frontend_c.TABLES_HEADER}"] = frontend_c.frontend_tables_header(bundle.config, s1, s2)
    for static in ("kws_frontend.c", "kws_frontend.h", "kws_decision.c", "kws_decision.h"):
        files[f"{src}/{static}"] = template(static)
    ops = tflm_ops.union_ops(s1.ops, s2.ops)
    if layout.target in ("tflm", "arduino"):
        files[f"{src}/kws_cascade.{cxx}"] = template("kws_cascade.cc")
        files[f"{src}/kws_cascade.h"] = template("kws_cascade.h")
        files[f"{src}/{tflm_ops.OPS_HEADER}"] = tflm_ops.ops_header(ops)
    if layout.target == "arduino":
        files["library.properties"] = _library_properties()
        files[f"examples/{LIBRARY_NAME}/{LIBRARY_NAME}.ino"] = template("kws_cascade.ino")
    files[f"{layout.host_test}/kws_selftest.c"] = template("kws_selftest.c")
    files[f"{layout.host_test}/Makefile"] = _host_makefile(layout)
    files["README.md"] = readme(
        name=name, target=layout.target, src=src, models=layout.models,
        golden=layout.golden, host_test=layout.host_test, cxx=cxx, memory=memory,
        fingerprint=bundle.config.fingerprint(), version=kws_version(), labels=bundle.labels, tau=bundle.tau,
        tau_q=header.gate_threshold_q(bundle.tau, s1.output), ops=ops, verification=verification)
    for rel, content in files.items():
        (write_bytes_atomic if isinstance(content, bytes) else write_text_atomic)(tmp / rel, content)
    written = list(files)
    written += [str(p.relative_to(tmp)) for p in golden_mod.write_golden(golden, tmp / layout.golden, bundle)]
    return sorted(written)


def _manifest(bundle: Bundle, layout: Layout, stages, memory: Memory, verification: dict, golden, files) -> str:
    s1 = stages[0]
    data = {
        "kws_version": kws_version(),
        "target": layout.target,
        "bundle": str(bundle.path),
        "config_fingerprint": bundle.config.fingerprint(),
        "labels": list(bundle.labels),
        "gate": {"tau": bundle.tau, "tau_q": header.gate_threshold_q(bundle.tau, s1.output)},
        "smoothing": bundle.smoothing.to_dict(),  # per-keyword thresholds included
        "stages": [{"stage": s.stage, "labels": list(s.labels), "model_bytes": s.model_bytes,
                    "arena_measured": s.arena_measured, "arena_size": s.arena_size, "ops": list(s.ops),
                    "input": {"scale": s.input.scale, "zero_point": s.input.zero_point},
                    "output": {"scale": s.output.scale, "zero_point": s.output.zero_point}} for s in stages],
        "memory": memory.to_dict(),
        "verification": verification,
        "golden_clips": [c.name for c in golden.clips],
        "files": files,
    }
    return json.dumps(data, indent=2) + "\n"


def export_firmware(bundle_path: Path, out: Path, *, data: Path, target: str = DEFAULT_TARGET,
                    force: bool = False, sensitivity: str | None = None) -> ExportResult:
    """``sensitivity``: the operating point compiled into the header (default: balanced)."""
    layout = Layout.of(target)
    out = Path(out)
    check_destination(out, force)
    bundle = Bundle.open(bundle_path).at(sensitivity)
    stages = (stage_facts(bundle, 1), stage_facts(bundle, 2))
    golden = golden_mod.make_golden(bundle, golden_mod.pick_clips(data, bundle))
    verification = verify_outputs(bundle, golden)
    memory = _memory(bundle, stages)
    with atomic_dir(out, force=True, marks=(MANIFEST,)) as tmp:  # check_destination has refused the rest
        files = _write_files(tmp, out.name, layout, bundle, stages, golden, memory, verification)
        files.append(MANIFEST)
        write_text_atomic(tmp / MANIFEST, _manifest(bundle, layout, stages, memory, verification, golden, sorted(files)))
    return ExportResult(out, target, stages, memory, verification, tuple(sorted(files)))
