/* kws_cascade.h - the cascade on TensorFlow Lite Micro: PCM in, decisions out.
 *
 * kws_cascade.cc owns everything that needs TFLite Micro (two MicroInterpreters, their
 * arenas, the op resolver); the frontend (kws_frontend.c) and the decision rules
 * (kws_decision.c) are plain C99 and tested on a host by host_test/kws_selftest.c.
 *
 *     if (kws_cascade_init() != KWS_OK) { ...report kws_cascade_error()... }
 *     for (;;) {
 *         int16_t pcm[KWS_STRIDE_SAMPLES];            // any chunk size works
 *         read_microphone(pcm, KWS_STRIDE_SAMPLES);
 *         kws_decision_t d;
 *         const int16_t *p = pcm; size_t n = KWS_STRIDE_SAMPLES;
 *         while (n > 0) {
 *             size_t used = 0;
 *             if (kws_cascade_push(p, n, &used, &d) == KWS_STEP && d.detected) {
 *                 on_keyword(kws_labels[d.label], d.score);
 *             }
 *             p += used; n -= used;
 *         }
 *     }
 */
#ifndef KWS_CASCADE_H
#define KWS_CASCADE_H

#include <stddef.h>
#include <stdint.h>

#include "kws_decision.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    KWS_OK = 0,       /* consumed samples, no step ran */
    KWS_STEP = 1,     /* a cascade step ran: *decision is filled */
    KWS_ERROR = -1    /* see kws_cascade_error() */
} kws_status_t;

/* Load both models, allocate both arenas, reset the frontend and the decision state. */
kws_status_t kws_cascade_init(void);

/* Reset the stream (frontend, feature rings, smoothing) but keep the interpreters. */
void kws_cascade_reset(void);

/* Feed up to n samples of 16-bit PCM at KWS_SAMPLE_RATE. Returns after the first cascade
 * step (KWS_STEP, *decision filled) or when all samples are used (KWS_OK); *used tells how
 * many samples were consumed. */
kws_status_t kws_cascade_push(const int16_t *samples, size_t n, size_t *used, kws_decision_t *decision);

/* Run one stage (1 or 2) on a given int8 input of KWS_NUM_FRAMES * KWS_N_MFCC bytes and copy
 * its int8 outputs: for on-device tests against the golden vectors (kws_golden.h:
 * kws_golden_stageN_input[i] must give kws_golden_stageN_output[i] exactly). */
kws_status_t kws_cascade_invoke(int stage, const int8_t *input, int8_t *output);

/* Counters since init: cascade steps, stage-2 invocations. */
uint32_t kws_cascade_steps(void);
uint32_t kws_cascade_stage2_runs(void);

/* Arena bytes TFLite Micro actually used for stage 1 or 2 (after init). */
size_t kws_cascade_arena_used(int stage);

/* A static message describing the last error. */
const char *kws_cascade_error(void);

#ifdef __cplusplus
}
#endif

#endif /* KWS_CASCADE_H */
