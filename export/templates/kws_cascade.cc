// kws_cascade.cc - the cascade driver on TensorFlow Lite Micro (C++17, no heap).
//
// The only file of the export that needs the TFLite Micro library. Per frame it quantizes
// the frontend's MFCC row into one int8 feature ring per stage; on every scheduled step it
// copies ring 1 into stage 1's input tensor and runs it (unless the window is digital
// silence: exact zeros, KWS_SILENT_C0), opens the gate on stage 1's int8
// keyword output, runs stage 2 on ring 2 only when the gate is open, and hands both raw int8
// outputs to the decision logic (kws_decision.c, the same rules as cascade/decision.py).
#include "kws_cascade.h"

#include <new>
#include <string.h>

#include "kws_frontend.h"
#include "kws_ops.h"
#include "kws_stage1_model.h"
#include "kws_stage2_model.h"
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"
#include "tensorflow/lite/schema/schema_generated.h"

namespace {

// One stage: its model array, arena, interpreter (constructed in place, no heap) and the
// feature ring that is its input.
struct Stage {
  const unsigned char* model_data;
  uint8_t* arena;
  size_t arena_size;
  float input_scale;
  int32_t input_zero_point;
  float output_scale;
  int32_t output_zero_point;
  int num_outputs;
  tflite::MicroInterpreter* interpreter;
  alignas(tflite::MicroInterpreter) uint8_t storage[sizeof(tflite::MicroInterpreter)];
  kws_feature_ring_t ring;
};

alignas(16) uint8_t g_arena1[KWS_STAGE1_ARENA_SIZE];
alignas(16) uint8_t g_arena2[KWS_STAGE2_ARENA_SIZE];

KwsOpResolver g_resolver;
Stage g_stages[2] = {
    {kws_stage1_tflite, g_arena1, sizeof(g_arena1), KWS_STAGE1_INPUT_SCALE, KWS_STAGE1_INPUT_ZERO_POINT,
     KWS_STAGE1_OUTPUT_SCALE, KWS_STAGE1_OUTPUT_ZERO_POINT, KWS_STAGE1_NUM_LABELS, nullptr, {}, {}},
    {kws_stage2_tflite, g_arena2, sizeof(g_arena2), KWS_STAGE2_INPUT_SCALE, KWS_STAGE2_INPUT_ZERO_POINT,
     KWS_STAGE2_OUTPUT_SCALE, KWS_STAGE2_OUTPUT_ZERO_POINT, KWS_NUM_LABELS, nullptr, {}, {}},
};
kws_frontend_t g_frontend;
kws_smoother_t g_smoother;
bool g_ready = false;
bool g_ops_registered = false;
uint32_t g_steps = 0;
uint32_t g_stage2_runs = 0;
kws_silence_t g_silence;  // digital silence: a window of a muted microphone's zeros runs no stage
const char* g_error = "not initialised";

kws_status_t Fail(const char* message) {
  g_error = message;
  return KWS_ERROR;
}

// The tensors must be exactly what the header promises: int8, T x n_mfcc in, one score per
// label out, the same scales and zero points (a model array from another export fails here).
bool TensorsMatch(const Stage& s) {
  const TfLiteTensor* in = s.interpreter->input(0);
  const TfLiteTensor* out = s.interpreter->output(0);
  return in != nullptr && out != nullptr && in->type == kTfLiteInt8 && out->type == kTfLiteInt8 &&
         in->bytes == static_cast<size_t>(KWS_NUM_FRAMES * KWS_N_MFCC) &&
         out->bytes == static_cast<size_t>(s.num_outputs) && in->params.scale == s.input_scale &&
         in->params.zero_point == s.input_zero_point && out->params.scale == s.output_scale &&
         out->params.zero_point == s.output_zero_point;
}

kws_status_t InitStage(Stage& s) {
  const tflite::Model* model = tflite::GetModel(s.model_data);
  if (model->version() != TFLITE_SCHEMA_VERSION) {
    return Fail("model schema version does not match TFLite Micro's");
  }
  s.interpreter = new (s.storage) tflite::MicroInterpreter(model, g_resolver, s.arena, s.arena_size);
  if (s.interpreter->AllocateTensors() != kTfLiteOk) {
    return Fail("AllocateTensors failed: tensor arena too small for this TFLite Micro build?");
  }
  if (!TensorsMatch(s)) {
    return Fail("model tensors do not match kws_cascade_config.h");
  }
  return KWS_OK;
}

// Copies the T x n_mfcc int8 input (the stage's feature ring when input is null), invokes,
// and copies the int8 outputs.
kws_status_t RunStage(Stage& s, const int8_t* input, int8_t* output) {
  int8_t* tensor = s.interpreter->input(0)->data.int8;
  if (input == nullptr) {
    kws_feature_ring_copy(&s.ring, tensor);
  } else {
    memcpy(tensor, input, static_cast<size_t>(KWS_NUM_FRAMES * KWS_N_MFCC));
  }
  if (s.interpreter->Invoke() != kTfLiteOk) {
    return Fail("Invoke failed");
  }
  memcpy(output, s.interpreter->output(0)->data.int8, static_cast<size_t>(s.num_outputs));
  return KWS_OK;
}

}  // namespace

extern "C" kws_status_t kws_cascade_init(void) {
  g_ready = false;
  if (!g_ops_registered) {  // the resolver is filled once; re-init keeps it
    if (kws_register_ops(g_resolver) != kTfLiteOk) {
      return Fail("op resolver registration failed");
    }
    g_ops_registered = true;
  }
  for (Stage& s : g_stages) {
    if (s.interpreter != nullptr) {
      s.interpreter->~MicroInterpreter();
      s.interpreter = nullptr;
    }
    if (InitStage(s) != KWS_OK) {
      return KWS_ERROR;
    }
  }
  g_steps = g_stage2_runs = 0;
  kws_cascade_reset();
  g_ready = true;
  g_error = "";
  return KWS_OK;
}

extern "C" void kws_cascade_reset(void) {
  kws_frontend_reset(&g_frontend);
  kws_smoother_reset(&g_smoother);
  kws_silence_reset(&g_silence);
  for (Stage& s : g_stages) {
    kws_feature_ring_reset(&s.ring);
  }
}

extern "C" kws_status_t kws_cascade_push(const int16_t* samples, size_t n, size_t* used,
                                         kws_decision_t* decision) {
  *used = 0;
  if (!g_ready) {
    return Fail("kws_cascade_init() has not succeeded");
  }
  while (*used < n) {
    int frame_ready = 0;
    *used += kws_frontend_push(&g_frontend, samples + *used, n - *used, &frame_ready);
    if (!frame_ready) {
      continue;
    }
    for (int stage = 1; stage <= 2; ++stage) {  // each stage has its own input quantization
      int8_t row[KWS_N_MFCC];
      kws_quantize_features(stage, g_frontend.mfcc, row);
      kws_feature_ring_push(&g_stages[stage - 1].ring, row);
    }
    const bool silent = kws_silence_push(&g_silence, g_frontend.mfcc) != 0;
    if (!kws_step_due(g_frontend.frames_emitted)) {
      continue;
    }
    int8_t out1[KWS_STAGE1_NUM_LABELS];
    int8_t out2[KWS_NUM_LABELS];
    if (silent) {
      memcpy(out1, kws_stage1_silent_output, sizeof(out1));
    } else if (RunStage(g_stages[0], nullptr, out1) != KWS_OK) {
      return KWS_ERROR;
    }
    const bool open = kws_gate_open(out1[KWS_STAGE1_KEYWORD_INDEX]) != 0;
    if (open) {
      if (RunStage(g_stages[1], nullptr, out2) != KWS_OK) {
        return KWS_ERROR;
      }
      g_stage2_runs++;
    }
    g_steps++;
    kws_decide(&g_smoother, kws_step_time(g_frontend.frames_emitted), out1, open ? out2 : nullptr, decision);
    return KWS_STEP;
  }
  return KWS_OK;
}

extern "C" kws_status_t kws_cascade_invoke(int stage, const int8_t* input, int8_t* output) {
  if (!g_ready) {
    return Fail("kws_cascade_init() has not succeeded");
  }
  return RunStage(g_stages[stage == 2 ? 1 : 0], input, output);
}

extern "C" uint32_t kws_cascade_steps(void) { return g_steps; }

extern "C" uint32_t kws_cascade_stage2_runs(void) { return g_stage2_runs; }

extern "C" size_t kws_cascade_arena_used(int stage) {
  const Stage& s = g_stages[stage == 2 ? 1 : 0];
  return s.interpreter != nullptr ? s.interpreter->arena_used_bytes() : 0;
}

extern "C" const char* kws_cascade_error(void) { return g_error; }
