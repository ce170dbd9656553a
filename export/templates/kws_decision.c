/* kws_decision.c - schedule, gate, posterior and smoothing; see kws_decision.h. */
#include "kws_decision.h"

#include <stddef.h>
#include <string.h>

const char *const kws_labels[KWS_NUM_LABELS] = KWS_LABELS_INIT;
const char *const kws_stage1_labels[KWS_STAGE1_NUM_LABELS] = KWS_STAGE1_LABELS_INIT;

/* 1 for _silence_ and _unknown_: never reported as a detection. */
static const uint8_t kws_label_is_background[KWS_NUM_LABELS] = KWS_LABEL_IS_BACKGROUND_INIT;
/* The bar each label's smoothed score must reach: KWS_SMOOTHING_THRESHOLD unless the bundle
 * overrides it for that keyword (SmoothingConfig.threshold_for). */
static const double kws_label_threshold[KWS_NUM_LABELS] = KWS_LABEL_THRESHOLD_INIT;
/* The level a detected label's smoothed score must fall below before it may fire again
 * (SmoothingConfig.release_for): one spoken word cannot trigger twice. */
static const double kws_label_release[KWS_NUM_LABELS] = KWS_LABEL_RELEASE_INIT;

int kws_step_due(uint32_t frames_emitted)
{
    return frames_emitted >= KWS_NUM_FRAMES &&
           (frames_emitted - KWS_NUM_FRAMES) % KWS_INFERENCE_STRIDE_FRAMES == 0;
}

double kws_step_time(uint32_t frames_emitted)
{
    /* ((frame - 1) * stride + window) / rate, as cascade/pipeline.py computes it. */
    const double samples = (double)(frames_emitted - 1) * KWS_STRIDE_SAMPLES + KWS_WINDOW_SAMPLES;
    return samples / (double)KWS_SAMPLE_RATE;
}

const int8_t kws_stage1_silent_output[KWS_STAGE1_NUM_LABELS] = KWS_STAGE1_SILENT_OUTPUT_INIT;

void kws_silence_reset(kws_silence_t *s)
{
    s->frames = 0;
}

int kws_silence_push(kws_silence_t *s, const float *mfcc)
{
    s->frames = mfcc[0] <= KWS_SILENT_C0 ? s->frames + 1 : 0;
    return s->frames >= KWS_NUM_FRAMES;
}

int kws_gate_open(int8_t stage1_keyword_q)
{
    return (int)stage1_keyword_q >= KWS_GATE_TAU_Q;
}

static float dequantize(int8_t q, int32_t zero_point, float scale)
{
    return (float)((int32_t)q - zero_point) * scale;
}

void kws_step_posterior(const int8_t *stage1_out, const int8_t *stage2_out, float *posterior)
{
    uint32_t i;
    float total;
    if (stage2_out != NULL) {
        for (i = 0; i < KWS_NUM_LABELS; ++i) {
            posterior[i] = dequantize(stage2_out[i], KWS_STAGE2_OUTPUT_ZERO_POINT, KWS_STAGE2_OUTPUT_SCALE);
        }
        return;
    }
    /* The gate said "no keyword": stage 1's silence/unknown mass, renormalised. */
    memset(posterior, 0, sizeof(float) * KWS_NUM_LABELS);
#if KWS_STAGE1_SILENCE_INDEX >= 0 && KWS_SILENCE_INDEX >= 0
    posterior[KWS_SILENCE_INDEX] =
        dequantize(stage1_out[KWS_STAGE1_SILENCE_INDEX], KWS_STAGE1_OUTPUT_ZERO_POINT, KWS_STAGE1_OUTPUT_SCALE);
#endif
#if KWS_STAGE1_UNKNOWN_INDEX >= 0 && KWS_UNKNOWN_INDEX >= 0
    posterior[KWS_UNKNOWN_INDEX] =
        dequantize(stage1_out[KWS_STAGE1_UNKNOWN_INDEX], KWS_STAGE1_OUTPUT_ZERO_POINT, KWS_STAGE1_OUTPUT_SCALE);
#endif
    (void)stage1_out;
    total = 0.0f;
    for (i = 0; i < KWS_NUM_LABELS; ++i) {
        total += posterior[i];
    }
    if (total > 0.0f) {
        for (i = 0; i < KWS_NUM_LABELS; ++i) {
            posterior[i] /= total;
        }
    } else {
#if KWS_UNKNOWN_INDEX >= 0
        posterior[KWS_UNKNOWN_INDEX] = 1.0f;
#endif
    }
}

void kws_smoother_reset(kws_smoother_t *s)
{
    memset(s, 0, sizeof(*s));
}

void kws_smoother_update(kws_smoother_t *s, double t, const float *posterior, kws_decision_t *out)
{
    const double window_s = KWS_SMOOTHING_WINDOW_MS / 1000.0;
    float mean[KWS_NUM_LABELS];
    uint32_t i, n, top = 0;
    if (s->count == KWS_SMOOTHING_CAPACITY) { /* only if steps come faster than configured */
        s->head = (s->head + 1) % KWS_SMOOTHING_CAPACITY;
        s->count--;
    }
    i = (s->head + s->count) % KWS_SMOOTHING_CAPACITY;
    memcpy(s->posteriors[i], posterior, sizeof(float) * KWS_NUM_LABELS);
    s->times[i] = t;
    s->count++;
    while (s->count > 0 && s->times[s->head] <= t - window_s) { /* drop what left the window */
        s->head = (s->head + 1) % KWS_SMOOTHING_CAPACITY;
        s->count--;
    }
    /* Average oldest to newest: float32 sums in numpy's order for a reduction over rows. */
    memset(mean, 0, sizeof(mean));
    for (n = 0; n < s->count; ++n) {
        const float *p = s->posteriors[(s->head + n) % KWS_SMOOTHING_CAPACITY];
        for (i = 0; i < KWS_NUM_LABELS; ++i) {
            mean[i] = (n == 0) ? p[i] : mean[i] + p[i];
        }
    }
    for (i = 0; i < KWS_NUM_LABELS; ++i) {
        mean[i] /= (float)s->count;
        if (mean[i] > mean[top]) {
            top = i;
        }
    }
    for (i = 0; i < KWS_NUM_LABELS; ++i) { /* a label whose word ended re-arms */
        if (s->latched[i] && (double)mean[i] < kws_label_release[i]) {
            s->latched[i] = 0;
        }
    }
    out->t = t;
    out->label = (int)top;
    out->score = mean[top];
    out->detected = 0;
    if (s->latched[top]) {
        return;
    }
    if (s->count < KWS_SMOOTHING_MIN_COUNT || kws_label_is_background[top] ||
        (double)mean[top] < kws_label_threshold[top]) {
        return;
    }
    /* Stricter than RecognizeCommands: no second detection of any label while suppressed. */
    if (s->has_last && t - s->last_time < KWS_SUPPRESSION_MS / 1000.0) {
        return;
    }
    s->has_last = 1;
    s->last_time = t;
    s->latched[top] = 1;
    out->detected = 1;
}

void kws_decide(kws_smoother_t *s, double t, const int8_t *stage1_out, const int8_t *stage2_out,
                kws_decision_t *out)
{
    float posterior[KWS_NUM_LABELS];
    kws_step_posterior(stage1_out, stage2_out, posterior);
    kws_smoother_update(s, t, posterior, out);
    out->gate_open = stage2_out != NULL;
}
