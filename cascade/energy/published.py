"""Published MLPerf Tiny KWS measurements, and how well the profiles predict them.

Every row is the MLPerf Tiny keyword-spotting benchmark (the DS-CNN below, ~2.66 M MACs,
49x10 MFCC input) on a real board. Rows with role "calibrate" set a profile figure (the
profile's [sources] says which); rows with role "holdback" were NOT used to set anything and
test the model: ``prediction_errors()`` predicts them from the profiles and the calibrated
figures only. Latency is 1 / the runner's median throughput; energy is the EEMBC EnergyRunner
median µJ per inference. Paths are in the mlcommons/tiny_results_v* repositories.
"""

from __future__ import annotations

import dataclasses

from cascade.energy.cost import LayerCost, ModelCost
from cascade.energy.estimate import model_stage
from cascade.energy.profiles import Profile, load_profile


def mlperf_ds_cnn() -> ModelCost:
    """The MLPerf Tiny KWS DS-CNN: 49x10x1 -> conv 64 10x4 /2 (25x5x64) -> 4 x (DW 3x3 +
    PW 64x64) on 25x5 -> average pool 25x5 -> FC 64x12 -> softmax. Flash and arena are the
    measured int8 figures of REFERENCES.md (53,936 B .tflite, 24,273 B TFLM arena)."""
    hw, c = 25 * 5, 64
    layers = [LayerCost("conv_1", "conv", hw * c * 10 * 4 * 1)]
    for block in range(1, 5):
        layers.append(LayerCost(f"dw_{block}", "depthwise", hw * c * 3 * 3))
        layers.append(LayerCost(f"pw_{block}", "conv", hw * c * c))
    layers += [
        LayerCost("avg_pool", "pool", hw * c),
        LayerCost("reshape", "other", 0),
        LayerCost("fc", "dense", c * 12),
        LayerCost("softmax", "other", 12),
    ]
    return ModelCost("mlperf-ds-cnn", tuple(layers), flash_bytes=53_936, arena_bytes=24_273)


@dataclasses.dataclass(frozen=True)
class Published:
    key: str
    board: str
    profile: str
    engine: str  # "default" = the profile's runtime, else a key of its engine_factors
    latency_ms: float
    energy_uj: float | None
    role: str  # "calibrate" or "holdback"
    sets: str  # for calibration rows: the figure it sets; for holdback rows: what it tests
    source: str
    clock_hz: int | None = None  # for a board without its own profile: the profile's core at this clock
    checks: tuple[str, ...] = ("latency",)  # what a holdback row tests: "latency" and/or "energy"


PUBLISHED: tuple[Published, ...] = (
    Published(
        "l4r5-tflm-v0.5", "NUCLEO-L4R5ZI", "nucleo-l4r5zi", "default", 1000 / 5.497, 7_373.704, "calibrate",
        "M4 cycles_per_mac scale (latency) and nucleo-l4r5zi active_mw = 40.84 mW measured at 1.8 V (energy)",
        "tiny_results_v0.5 closed/reference/results/Nucleo-L4R5ZI/kws/{performance,energy}/results.txt "
        "(TFLM v2.3.1, mbed, 120 MHz; 5.497 inf/s; 7,373.704 uJ/inf; 40,835 uW at 1,800 mV)",
    ),
    Published(
        "l4r5-xcubeai-v1.0", "NUCLEO-L4R5ZI", "nucleo-l4r5zi", "x-cube-ai", 1000 / 13.323, None, "calibrate",
        "engine_factors.x-cube-ai of nucleo-l4r5zi",
        "tiny_results_v1.0 closed/STMicroelectronics/results/NUCLEO_L4R5ZI/kws/performance/results.txt (X-CUBE-AI 7.3, 13.323 inf/s)",
    ),
    Published(
        "l4r5-microtvm-v1.0", "NUCLEO-L4R5ZI", "nucleo-l4r5zi", "microtvm-cmsis-nn", 1000 / 10.019, None, "calibrate",
        "engine_factors.microtvm-cmsis-nn of nucleo-l4r5zi",
        "tiny_results_v1.0 closed/OctoML/results/microtvm_cmsis_nn/NUCLEO_L4R5ZI/kws/performance/results.txt (10.019 inf/s)",
    ),
    Published(
        "l4r5-plumerai-v0.7", "NUCLEO-L4R5ZI", "nucleo-l4r5zi", "plumerai", 73.5, None, "calibrate",
        "engine_factors.plumerai (with f746-plumerai-v0.7: the M7/M4 cycle ratio of stm32f746-disco)",
        "tiny_results_v0.7 closed/plumerai/README.md and results/NUCLEO_L4R5ZI/kws/performance (73.5 ms; 13.597 inf/s)",
    ),
    Published(
        "f746-plumerai-v0.7", "DISCO-F746NG", "stm32f746-disco", "plumerai", 19.5, None, "calibrate",
        "stm32f746-disco cycles_per_mac = nucleo-l4r5zi x (19.5 x 216) / (73.5 x 120)",
        "tiny_results_v0.7 closed/plumerai/README.md and results/DISCO_F746NG/kws/performance (19.5 ms; 51.139 inf/s)",
    ),
    Published(
        "l4r5-bosch-v1.1", "NUCLEO-L4R5ZI", "nucleo-l4r5zi", "bosch-hale", 1000 / 15.954, None, "calibrate",
        "engine_factors.bosch-hale",
        "tiny_results_v1.1 closed/bosch/results/NUCLEO_L4R5ZI/kws/performance/results.txt (HALE 1.0, 15.954 inf/s)",
    ),
    Published(
        "l4r5-plumerai-v1.1", "NUCLEO-L4R5ZI", "nucleo-l4r5zi", "plumerai-v1.1", 1000 / 20.929, None, "calibrate",
        "engine_factors.plumerai-v1.1",
        "tiny_results_v1.1 closed/plumerai/results/NUCLEO-L4R5ZI/kws/performance/results.txt (20.929 inf/s)",
    ),
    # --- held back: predicted from the figures above, never used to set them -------------
    Published(
        "l4r5-xcubeai-v1.0-energy", "NUCLEO-L4R5ZI", "nucleo-l4r5zi", "x-cube-ai", 1000 / 13.323, 3_371.738, "holdback",
        "energy = predicted latency x active power calibrated on the TFLM run",
        "tiny_results_v1.0 closed/STMicroelectronics/results/NUCLEO_L4R5ZI/kws/energy/results.txt (3,371.738 uJ/inf, 1.8 V)",
        checks=("energy",),
    ),
    Published(
        "l4r5-xcubeai-v1.1", "NUCLEO-L4R5ZI", "nucleo-l4r5zi", "x-cube-ai", 1000 / 15.884, 2_833.138, "holdback",
        "a newer X-CUBE-AI from the v1.0 factor; energy from latency x power",
        "tiny_results_v1.1 closed/STMicroelectronics/results/NUCLEO_L4R5ZI/kws/energy/results.txt (15.884 inf/s, 2,833.138 uJ/inf)",
        checks=("latency", "energy"),
    ),
    Published(
        "l4r5-microtvm-v1.0-energy", "NUCLEO-L4R5ZI", "nucleo-l4r5zi", "microtvm-cmsis-nn", 1000 / 10.019, 5_230.273, "holdback",
        "energy = predicted latency x active power calibrated on the TFLM run",
        "tiny_results_v1.0 closed/OctoML/results/microtvm_cmsis_nn/NUCLEO_L4R5ZI/kws/energy/results.txt (5,230.273 uJ/inf)",
        checks=("energy",),
    ),
    Published(
        "nrf5340-microtvm-v1.0", "nRF5340-DK (Cortex-M33, 128 MHz)", "nucleo-l4r5zi", "microtvm-cmsis-nn", 1000 / 13.143, None,
        "holdback",
        "another board: M4 cycles/MAC and the microTVM factor carried to a Cortex-M33 at 128 MHz",
        "tiny_results_v1.0 closed/OctoML/results/microtvm_cmsis_nn/NRF5340-DK/kws/performance/results.txt (13.143 inf/s)",
        clock_hz=128_000_000,
    ),
    Published(
        "f746-bosch-v1.1", "DISCO-F746NG", "stm32f746-disco", "bosch-hale", 1000 / 54.293, None, "holdback",
        "another engine on the M7: the M7/M4 ratio (from Plumerai) x the Bosch factor (from the L4R5)",
        "tiny_results_v1.1 closed/bosch/results/DISCO_F746NG/kws/performance/results.txt (54.293 inf/s)",
    ),
    Published(
        "f746-plumerai-v1.1", "DISCO-F746NG", "stm32f746-disco", "plumerai-v1.1", 1000 / 56.341, None, "holdback",
        "the M7/M4 ratio (from Plumerai v0.7) x the Plumerai v1.1 factor (from the L4R5)",
        "tiny_results_v1.1 closed/plumerai/results/DISCO_F746NG/kws/performance/results.txt (56.341 inf/s)",
    ),
)


@dataclasses.dataclass(frozen=True)
class Prediction:
    row: Published
    predicted_latency_ms: float
    predicted_energy_uj: float | None

    @property
    def latency_error(self) -> float:
        return self.predicted_latency_ms / self.row.latency_ms - 1.0

    @property
    def energy_error(self) -> float | None:
        if self.row.energy_uj is None or self.predicted_energy_uj is None:
            return None
        return self.predicted_energy_uj / self.row.energy_uj - 1.0


def predict(row: Published, profile: Profile | None = None) -> Prediction:
    profile = profile or load_profile(row.profile)
    if row.clock_hz is not None:
        profile = profile.with_clock(row.clock_hz)
    stage = model_stage(mlperf_ds_cnn(), profile, row.engine)
    return Prediction(row, stage.latency_ms, stage.energy_uj if row.energy_uj is not None else None)


def prediction_errors(role: str | None = None) -> list[Prediction]:
    return [predict(row) for row in PUBLISHED if role is None or row.role == role]


def format_table(predictions: list[Prediction]) -> str:
    lines = [f"{'row':28} {'role':9} {'pub ms':>8} {'pred ms':>8} {'err':>7} {'pub uJ':>8} {'pred uJ':>8} {'err':>7}"]
    for p in predictions:
        e = p.energy_error
        lines.append(
            f"{p.row.key:28} {p.row.role:9} {p.row.latency_ms:8.1f} {p.predicted_latency_ms:8.1f} {p.latency_error:+7.1%} "
            + (f"{p.row.energy_uj:8.0f} {p.predicted_energy_uj:8.0f} {e:+7.1%}" if e is not None else "")
        )
    return "\n".join(lines)
