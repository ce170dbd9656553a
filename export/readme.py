"""The export's README.md and the per-stage flash/RAM figures it (and the CLI) shows."""

from __future__ import annotations

import dataclasses

from export.header import ARENA_MARGIN, StageFacts


@dataclasses.dataclass(frozen=True)
class Memory:
    """Flash and RAM of the exported firmware pieces, in bytes (code size not included)."""

    stages: tuple[StageFacts, StageFacts]
    frontend_tables: int  # const tables of kws_frontend.c (flash)
    frontend_state: int  # sizeof(kws_frontend_t)
    feature_ring: int  # sizeof(kws_feature_ring_t), one per stage
    smoother: int  # sizeof(kws_smoother_t)

    def rows(self) -> list[dict[str, object]]:
        """One row per part: flash, measured arena, arena with margin, other RAM, RAM total."""
        out = []
        for s in self.stages:
            out.append({"part": f"stage {s.stage} model", "flash": s.model_bytes, "arena_measured": s.arena_measured,
                        "arena": s.arena_size, "other_ram": self.feature_ring,
                        "ram": s.arena_size + self.feature_ring})
        out.append({"part": "MFCC frontend", "flash": self.frontend_tables, "arena_measured": None, "arena": None,
                    "other_ram": self.frontend_state, "ram": self.frontend_state})
        out.append({"part": "decision (smoothing)", "flash": 0, "arena_measured": None, "arena": None,
                    "other_ram": self.smoother, "ram": self.smoother})
        out.append({"part": "total", "flash": sum(r["flash"] for r in out), "arena_measured": None,
                    "arena": sum(s.arena_size for s in self.stages), "other_ram": sum(r["other_ram"] for r in out),
                    "ram": sum(r["ram"] for r in out)})
        return out

    def to_dict(self) -> dict[str, object]:
        return {"rows": self.rows(), "arena_margin": ARENA_MARGIN}


def _fmt(v: object) -> str:
    return "" if v is None else f"{v:,}"


def memory_table(memory: Memory) -> str:
    head = "| part | flash (B) | arena measured (B) | arena + margin (B) | other RAM (B) | RAM total (B) |\n"
    head += "| --- | ---: | ---: | ---: | ---: | ---: |\n"
    return head + "".join(
        f"| {r['part']} | {_fmt(r['flash'])} | {_fmt(r['arena_measured'])} | {_fmt(r['arena'])} | "
        f"{_fmt(r['other_ram'])} | {_fmt(r['ram'])} |\n" for r in memory.rows())


def readme(*, name: str, target: str, src: str, models: str, golden: str, host_test: str, cxx: str,
           memory: Memory, fingerprint: str, version: str, labels: tuple[str, ...], tau: float, tau_q: int,
           ops: tuple[str, ...], verification: dict) -> str:
    tflm = target in ("tflm", "arduino")
    driver_rows = (
        f"| `{src}/kws_cascade.{cxx}`, `kws_cascade.h` | the cascade on TensorFlow Lite Micro: PCM in, decisions out (needs TFLM) |\n"
        f"| `{src}/kws_ops.h` | `MicroMutableOpResolver` registering exactly the ops the models use: {', '.join(ops)} |\n"
    ) if tflm else ""
    arduino_rows = (
        "| `library.properties` | Arduino library description |\n"
        "| `examples/kws_cascade/kws_cascade.ino` | example sketch: microphone -> cascade -> Serial |\n"
    ) if target == "arduino" else ""
    device_test = (
        "\nOn the device, after `kws_cascade_init()`, `kws_cascade_invoke(n, &kws_golden_stageN_input[i][0][0], out)`\n"
        "must give `kws_golden_stageN_output[i]` byte for byte (`kws_golden.h`): the models under your TFLM build.\n"
    ) if tflm else ""
    build = _build_tflm(src, cxx) if target == "tflm" else _build_arduino() if target == "arduino" else ""
    return f"""# {name}: kws cascade for firmware

Exported by kws {version} (target `{target}`) from a cascade bundle with feature config
fingerprint `{fingerprint}`. Labels: {', '.join(f'`{l}`' for l in labels)}.
Stage 1 (always on) gates stage 2: stage 2 runs when stage 1's keyword probability
>= tau = {tau} (int8 keyword output >= {tau_q}).

## Files

| file | what it is |
| --- | --- |
| `{models}/kws_stage1.tflite`, `kws_stage2.tflite` | the int8 models, as in the bundle |
| `{src}/kws_stage1_model.{cxx}`/`.h`, `kws_stage2_model.{cxx}`/`.h` | each model as `alignas(16) const unsigned char kws_stageN_tflite[]` + `kws_stageN_tflite_len` (the names `xxd -i` gives), byte for byte the `.tflite` |
| `{src}/kws_cascade_config.h` | every constant: feature config, labels, scales and zero points, normalisation and folded quantization, gate tau (probability and int8), stride, smoothing (with per-keyword thresholds), arena sizes, fingerprint, version |
| `{src}/kws_frontend.c`/`.h` | portable C99 streaming MFCC: ring buffer framing, window, radix-2 real FFT, sparse mel filterbank, log, DCT, int8 quantization per stage, feature rings; no malloc, libm `logf` only |
| `{src}/kws_frontend_tables.h` | the frontend's `const` tables generated from the feature config |
| `{src}/kws_decision.c`/`.h` | schedule, digital silence (a window of exact zeros runs no stage), gate, posterior and smoothing: the rules of `cascade/decision.py`, plain C99 |
{driver_rows}{arduino_rows}| `{golden}/` | golden vectors: clips (`.wav`, int16), MFCC, int8 inputs and outputs of both stages, a recorded stream; `kws_golden.h`, `.npy`, `golden.json` |
| `{host_test}/kws_selftest.c`, `Makefile` | host test: arrays == files, frontend == golden, gate, decisions on the golden stream |
| `kws_export.json` | this export's figures and checks, machine-readable |

## Flash and RAM

{memory_table(memory)}
Arena: the smallest tensor arena TFLite Micro's host build (64-bit) ran each model in, and the
size `kws_cascade_config.h` allocates: + {ARENA_MARGIN:.0%}, rounded up to 16 bytes, to cover
other TFLM versions and optimized kernels (CMSIS-NN may need scratch buffers; a 32-bit target
usually needs a little less). "Other RAM" per stage is its int8 feature ring (T x n_mfcc); the
frontend's is `kws_frontend_t` (sample ring, FFT buffer, mel and MFCC rows). Code size is not
included: it depends on the compiler, the TFLM build and its kernels.

## Checks done at export

- TFLite Micro (Python interpreter) == TFLite reference kernels == golden outputs, bit for bit,
  on the {verification['stage1']['clips']} golden clips for both stages (the export stops otherwise).
- The gate: `q >= KWS_GATE_TAU_Q` equals Python's `(q - zp) * scale >= tau` for all 256 int8 values.

## Numerics

The frontend computes in float32 like the Python extractor; its MFCC match the golden MFCC
to 1e-3 relative (|c - py| / max(|py|, 1) per coefficient) and its int8 inputs to +-1 LSB.
Input quantization is folded: `q = clamp(round(mfcc * A[c] + B[c]))`, `A = 1/(std*scale)`,
`B = zp - mean/(std*scale)`, rounding half away from zero (TFLite's own rounding); the Python
runtime that made the golden inputs rounds half to even, and the two can differ by one LSB on
a value within float error of a .5 boundary. Smoothing uses float32 posteriors and double
time stamps in the same order of operations as Python, so decisions match bit for bit.

## Host test

```sh
make -C {host_test} check        # builds with -Wall -Wextra -Werror -pedantic and runs the self-test
```

or by hand (from this folder):

```sh
c++ -std=c++17 -c {src}/kws_stage1_model.{cxx} -o s1.o && c++ -std=c++17 -c {src}/kws_stage2_model.{cxx} -o s2.o
cc -std=c99 -I{src} -I{golden} {host_test}/kws_selftest.c {src}/kws_frontend.c {src}/kws_decision.c s1.o s2.o -lm -o kws_selftest
./kws_selftest {models}
```
{device_test}{build}"""


def _build_tflm(src: str, cxx: str) -> str:
    return f"""
## Build with TensorFlow Lite Micro

Add every file of `{src}/` to the firmware, plus the TFLM library. The driver API is in
`kws_cascade.h` (`kws_cascade_init`, `kws_cascade_push`). With TFLM's make build, e.g.:

```sh
# inside a tflite-micro checkout: build the library for your target, then link the export
make -f tensorflow/lite/micro/tools/make/Makefile TARGET=cortex_m_generic TARGET_ARCH=cortex-m4+fp \\
     OPTIMIZED_KERNEL_DIR=cmsis_nn microlite
arm-none-eabi-g++ -std=c++17 -O2 -I. -Itensorflow/lite/micro/tools/make/downloads/flatbuffers/include \\
     -I{src} -c {src}/kws_cascade.{cxx} {src}/kws_stage1_model.{cxx} {src}/kws_stage2_model.{cxx}
arm-none-eabi-gcc -std=c99 -O2 -I{src} -c {src}/kws_frontend.c {src}/kws_decision.c
```

or with CMake:

```cmake
add_library(kws_cascade {src}/kws_frontend.c {src}/kws_decision.c {src}/kws_cascade.{cxx}
            {src}/kws_stage1_model.{cxx} {src}/kws_stage2_model.{cxx})
target_include_directories(kws_cascade PUBLIC {src})
target_link_libraries(kws_cascade PUBLIC tflite_micro m)   # your TFLM target
set_target_properties(kws_cascade PROPERTIES C_STANDARD 99 CXX_STANDARD 17)
```
"""


def _build_arduino() -> str:
    return """
## Build with the Arduino IDE

This folder is an Arduino library (C++ sources are `.cpp` here, as Arduino compiles them).
1. Install the TensorFlow Lite Micro Arduino library (tflite-micro-arduino-examples, which
   provides `TensorFlowLite.h`), e.g. *Sketch > Include Library > Add .ZIP Library*.
2. Copy this folder to your `Arduino/libraries/` (or add it as a .ZIP library).
3. Open *File > Examples > kws_cascade > kws_cascade*, choose the board (the example reads the
   PDM microphone of an Arduino Nano 33 BLE Sense; replace `read_audio()` for other boards),
   upload, and open the serial monitor at 115200 baud.

`extras/` (models, golden vectors, host test) is ignored by the Arduino build.
"""
