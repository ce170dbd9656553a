/* kws_decision.h - the cascade's decision logic in portable C99, no TFLite Micro needed.
 *
 * The same rules as cascade/decision.py, cascade/gate.py and the step schedule of
 * cascade/pipeline.py, so the firmware decides exactly what `kws detect` decides:
 *
 *   - schedule: stage 1 runs once KWS_NUM_FRAMES frames exist, then every
 *     KWS_INFERENCE_STRIDE_FRAMES frames;
 *   - digital silence: a window whose frames all have c0 <= KWS_SILENT_C0 (exact zeros: a
 *     muted microphone) runs neither stage; stage 1's output is taken as
 *     KWS_STAGE1_SILENT_OUTPUT_INIT (cascade/runtime/digital_silence.py);
 *   - gate: stage 2 runs when stage 1's int8 keyword output q >= KWS_GATE_TAU_Q, which is
 *     exactly Python's float test (q - zp) * scale >= tau;
 *   - posterior: stage 2's dequantized output when it ran, else stage 1's _silence_/_unknown_
 *     mass renormalised over the stage-2 labels (all on _unknown_ if that mass is zero);
 *   - smoothing (RecognizeCommands): average the posteriors of the last
 *     KWS_SMOOTHING_WINDOW_MS, report the top label when at least KWS_SMOOTHING_MIN_COUNT are
 *     averaged, it is a keyword, its score >= its own threshold (KWS_LABEL_THRESHOLD_INIT:
 *     the per-keyword override, else KWS_SMOOTHING_THRESHOLD), no detection of any label
 *     happened within KWS_SUPPRESSION_MS, and the label is not latched: after a detection a
 *     label stays latched until its smoothed score falls below KWS_LABEL_RELEASE_INIT (the word
 *     ended), so one spoken word cannot trigger twice.
 *
 * Posteriors are float32 and times are double seconds computed from frame counts, with the
 * same operations in the same order as the Python code, so results match bit for bit (a
 * step ends exactly KWS_SMOOTHING_WINDOW_MS after an older one, and only identical
 * floating-point arithmetic agrees on which side of the window edge it falls).
 */
#ifndef KWS_DECISION_H
#define KWS_DECISION_H

#include <stdint.h>

#include "kws_cascade_config.h"

#ifdef __cplusplus
extern "C" {
#endif

extern const char *const kws_labels[KWS_NUM_LABELS];
extern const char *const kws_stage1_labels[KWS_STAGE1_NUM_LABELS];

typedef struct {
    float posteriors[KWS_SMOOTHING_CAPACITY][KWS_NUM_LABELS];
    double times[KWS_SMOOTHING_CAPACITY];
    uint32_t head;  /* oldest entry */
    uint32_t count; /* entries in the window */
    int has_last;   /* a detection happened since the reset */
    double last_time;
    uint8_t latched[KWS_NUM_LABELS]; /* 1: detected, its score has not fallen below release yet */
} kws_smoother_t;

typedef struct {
    double t;         /* end of the analysed window, seconds since the reset */
    int gate_open;    /* stage 2 ran */
    int label;        /* current smoothed top label (index into kws_labels) */
    float score;      /* its averaged posterior */
    int detected;     /* 1: report kws_labels[label] now */
} kws_decision_t;

/* 1 when the cascade runs a step after frame number frames_emitted (1-based) completed. */
int kws_step_due(uint32_t frames_emitted);
/* End time (s) of the window whose last frame is frame number frames_emitted. */
double kws_step_time(uint32_t frames_emitted);

/* Frames in a row of digital silence (every mel band at the log floor). */
typedef struct {
    uint32_t frames;
} kws_silence_t;

void kws_silence_reset(kws_silence_t *s);
/* Count the frame whose MFCC was just computed; 1 when the window ending with it holds only
 * silent frames, i.e. a step there runs neither stage. */
int kws_silence_push(kws_silence_t *s, const float *mfcc);
/* Stage 1's int8 output taken for such a window (all mass on _silence_). */
extern const int8_t kws_stage1_silent_output[KWS_STAGE1_NUM_LABELS];

/* The gate on stage 1's raw int8 keyword output. */
int kws_gate_open(int8_t stage1_keyword_q);

/* One posterior over the KWS_NUM_LABELS stage-2 labels from the raw int8 outputs;
 * stage2_out is NULL when the gate stayed closed. */
void kws_step_posterior(const int8_t *stage1_out, const int8_t *stage2_out, float *posterior);

void kws_smoother_reset(kws_smoother_t *s);
/* Add the posterior of the window ending at t; fills out (label, score, detected). */
void kws_smoother_update(kws_smoother_t *s, double t, const float *posterior, kws_decision_t *out);

/* One whole step: gate (from stage1_out), posterior, smoothing. */
void kws_decide(kws_smoother_t *s, double t, const int8_t *stage1_out, const int8_t *stage2_out,
                kws_decision_t *out);

#ifdef __cplusplus
}
#endif

#endif /* KWS_DECISION_H */
