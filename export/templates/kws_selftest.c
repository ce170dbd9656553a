/* kws_selftest.c - host test of the exported firmware pieces (C99, no TFLite Micro).
 *
 * Build and run (see the export's README.md):
 *     cc -std=c99 -O2 -I src -I golden host_test/kws_selftest.c src/kws_frontend.c \
 *        src/kws_decision.c kws_stage1_model.o kws_stage2_model.o -lm -o kws_selftest
 *     ./kws_selftest models/
 *
 * Checks, exiting non-zero on any mismatch:
 *   1. the model arrays equal the .tflite files byte for byte (when a models folder is given);
 *   2. the frontend, fed each golden clip in uneven chunks like a device's audio driver,
 *      gives the golden MFCC within KWS_SELFTEST_MFCC_TOL (relative error per coefficient,
 *      |c - py| / max(|py|, 1)) and int8 model inputs within KWS_SELFTEST_MAX_LSB;
 *   3. the integer gate equals Python's float gate for all 256 stage-1 outputs;
 *   4. on the golden stream (the clips back to back) the step schedule, gate, smoothed label,
 *      score and detections equal what the Python cascade decided, given the same stage
 *      outputs (recorded from the reference kernels, which TFLite Micro matches bit for bit).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kws_decision.h"
#include "kws_frontend.h"
#include "kws_golden.h"
#include "kws_stage1_model.h"
#include "kws_stage2_model.h"

#ifndef KWS_SELFTEST_MFCC_TOL
#define KWS_SELFTEST_MFCC_TOL 1e-3
#endif
#ifndef KWS_SELFTEST_MAX_LSB
#define KWS_SELFTEST_MAX_LSB 1
#endif

static int failures = 0;

static void fail(const char *what)
{
    fprintf(stderr, "FAIL: %s\n", what);
    failures++;
}

/* Uneven chunk sizes, so frames complete at every position inside a chunk. */
static const size_t chunk_sizes[] = {1, 7, 160, 320, 509, 4001};
#define NUM_CHUNK_SIZES (sizeof(chunk_sizes) / sizeof(chunk_sizes[0]))

static int check_model_file(const char *dir, const char *name, const unsigned char *data, unsigned int len)
{
    char path[1024];
    FILE *f;
    unsigned int i = 0;
    int c, ok = 1;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "FAIL: cannot open %s\n", path);
        return 0;
    }
    while ((c = fgetc(f)) != EOF) {
        if (i >= len || (unsigned char)c != data[i]) {
            ok = 0;
            break;
        }
        i++;
    }
    fclose(f);
    if (!ok || i != len) {
        fprintf(stderr, "FAIL: %s differs from its C array (at byte %u)\n", path, i);
        return 0;
    }
    printf("model_bytes_equal %s %u\n", name, len);
    return 1;
}

static void check_frontend(void)
{
    static kws_frontend_t fe;
    static kws_feature_ring_t rings[2];
    static int8_t inputs[KWS_NUM_FRAMES * KWS_N_MFCC];
    double max_rel = 0.0;
    int max_lsb = 0, lsb_diffs = 0, clip, stage;
    size_t chunk = 0;
    for (clip = 0; clip < KWS_GOLDEN_NUM_CLIPS; ++clip) {
        const int16_t *pcm = kws_golden_samples[clip];
        size_t pos = 0;
        uint32_t frames = 0;
        kws_frontend_reset(&fe);
        kws_feature_ring_reset(&rings[0]);
        kws_feature_ring_reset(&rings[1]);
        while (pos < KWS_CLIP_SAMPLES) {
            size_t n = chunk_sizes[chunk++ % NUM_CHUNK_SIZES];
            if (n > KWS_CLIP_SAMPLES - pos) {
                n = KWS_CLIP_SAMPLES - pos;
            }
            while (n > 0) {
                int ready = 0, c;
                size_t used = kws_frontend_push(&fe, pcm + pos, n, &ready);
                pos += used;
                n -= used;
                if (!ready) {
                    continue;
                }
                if (frames >= KWS_NUM_FRAMES) {
                    fail("more frames than the golden clip has");
                    return;
                }
                for (c = 0; c < KWS_N_MFCC; ++c) {
                    const double py = kws_golden_mfcc[clip][frames][c];
                    const double rel = fabs(fe.mfcc[c] - py) / (fabs(py) > 1.0 ? fabs(py) : 1.0);
                    max_rel = rel > max_rel ? rel : max_rel;
                }
                for (stage = 1; stage <= 2; ++stage) {
                    int8_t row[KWS_N_MFCC];
                    kws_quantize_features(stage, fe.mfcc, row);
                    kws_feature_ring_push(&rings[stage - 1], row);
                }
                frames++;
            }
        }
        if (frames != KWS_NUM_FRAMES) {
            fail("frame count of a golden clip differs from KWS_NUM_FRAMES");
        }
        for (stage = 1; stage <= 2; ++stage) {
            const int8_t *expected = stage == 1 ? &kws_golden_stage1_input[clip][0][0] : &kws_golden_stage2_input[clip][0][0];
            int i;
            kws_feature_ring_copy(&rings[stage - 1], inputs);
            for (i = 0; i < KWS_NUM_FRAMES * KWS_N_MFCC; ++i) {
                const int d = abs((int)inputs[i] - (int)expected[i]);
                max_lsb = d > max_lsb ? d : max_lsb;
                lsb_diffs += d != 0;
            }
        }
    }
    printf("mfcc_max_rel_error %.3e\n", max_rel);
    printf("input_max_lsb %d\n", max_lsb);
    printf("input_lsb_diffs %d of %d\n", lsb_diffs, 2 * KWS_GOLDEN_NUM_CLIPS * KWS_NUM_FRAMES * KWS_N_MFCC);
    if (!(max_rel <= KWS_SELFTEST_MFCC_TOL)) {
        fail("MFCC differ from the golden MFCC");
    }
    if (max_lsb > KWS_SELFTEST_MAX_LSB) {
        fail("int8 model inputs differ from the golden inputs");
    }
}

static void check_gate(void)
{
    int q, bad = 0;
    for (q = -128; q <= 127; ++q) {
        bad += kws_gate_open((int8_t)q) != kws_golden_gate[q + 128];
    }
    printf("gate_mismatches %d\n", bad);
    if (bad) {
        fail("integer gate differs from Python's float gate");
    }
}

static void check_stream(void)
{
    static kws_frontend_t fe;
    static kws_smoother_t smoother;
    static kws_silence_t silence;
    const size_t total = (size_t)KWS_GOLDEN_NUM_CLIPS * KWS_CLIP_SAMPLES;
    size_t pos = 0, chunk = 0;
    int step = 0, bad = 0, detections = 0, silent_steps = 0, silent = 0;
    kws_frontend_reset(&fe);
    kws_smoother_reset(&smoother);
    kws_silence_reset(&silence);
    while (pos < total) {
        size_t n = chunk_sizes[chunk++ % NUM_CHUNK_SIZES], used;
        int ready = 0;
        kws_decision_t d;
        const int16_t *pcm = &kws_golden_samples[pos / KWS_CLIP_SAMPLES][pos % KWS_CLIP_SAMPLES];
        if (n > KWS_CLIP_SAMPLES - pos % KWS_CLIP_SAMPLES) { /* stay inside one clip's array */
            n = KWS_CLIP_SAMPLES - pos % KWS_CLIP_SAMPLES;
        }
        used = kws_frontend_push(&fe, pcm, n, &ready);
        pos += used;
        if (ready) {
            silent = kws_silence_push(&silence, fe.mfcc);
        }
        if (!ready || !kws_step_due(fe.frames_emitted)) {
            continue;
        }
        if (step >= KWS_GOLDEN_STREAM_STEPS || kws_golden_step_frame[step] != fe.frames_emitted) {
            fail("step schedule differs from the Python cascade");
            return;
        }
        if (silent != kws_golden_step_silent[step] ||
            (silent && memcmp(kws_golden_step_stage1[step], kws_stage1_silent_output, KWS_STAGE1_NUM_LABELS) != 0)) {
            fprintf(stderr, "step %d: C digital silence %d, Python %d\n", step, silent, kws_golden_step_silent[step]);
            bad++;
        }
        silent_steps += silent;
        {
            const int8_t *out1 = kws_golden_step_stage1[step];
            const int open = kws_gate_open(out1[KWS_STAGE1_KEYWORD_INDEX]);
            kws_decide(&smoother, kws_step_time(fe.frames_emitted), out1, open ? kws_golden_step_stage2[step] : NULL, &d);
            if (open != kws_golden_step_open[step] || d.label != kws_golden_step_label[step] ||
                d.score != kws_golden_step_score[step] || d.detected != kws_golden_step_detected[step]) {
                fprintf(stderr, "step %d (t=%.3f s): C open=%d label=%d score=%.9g detected=%d\n", step, d.t,
                        open, d.label, d.score, d.detected);
                bad++;
            }
            detections += d.detected;
        }
        step++;
    }
    printf("stream_steps %d detections %d silent %d mismatches %d\n", step, detections, silent_steps, bad);
    if (bad || step != KWS_GOLDEN_STREAM_STEPS) {
        fail("decisions on the golden stream differ from the Python cascade");
    }
}

int main(int argc, char **argv)
{
    if (argc > 1) {
        failures += !check_model_file(argv[1], KWS_STAGE1_TFLITE_FILE, kws_stage1_tflite, kws_stage1_tflite_len);
        failures += !check_model_file(argv[1], KWS_STAGE2_TFLITE_FILE, kws_stage2_tflite, kws_stage2_tflite_len);
    }
    check_frontend();
    check_gate();
    check_stream();
    printf("sizeof kws_frontend_t %u kws_feature_ring_t %u kws_smoother_t %u\n", (unsigned)sizeof(kws_frontend_t),
           (unsigned)sizeof(kws_feature_ring_t), (unsigned)sizeof(kws_smoother_t));
    printf(failures ? "selftest FAILED (%d)\n" : "selftest passed\n", failures);
    return failures ? 1 : 0;
}
