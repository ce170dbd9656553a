/* kws_frontend.c - streaming MFCC frontend of the kws cascade (portable C99).
 *
 * Mirrors data_prep/features.py step by step; see kws_frontend.h for the API. All tables
 * (window, FFT twiddles, sparse mel filterbank, DCT, folded quantization) are generated from
 * the bundle's FeatureConfig into kws_frontend_tables.h, so nothing here hard-codes a rate,
 * window, stride, FFT size, mel or MFCC number.
 */
#include "kws_frontend.h"

#include <math.h>
#include <string.h>

#include "kws_frontend_tables.h"

#define KWS_FFT_HALF (KWS_N_FFT / 2)          /* complex points of the packed real FFT */
#define KWS_DB_PER_NEPER 4.342944819032518f   /* 10 / ln(10): 10*log10(x) = this * ln(x) */
#define KWS_PCM_SCALE (1.0f / 32768.0f)       /* int16 -> [-1, 1), exact like soundfile */

#if (KWS_N_FFT & (KWS_N_FFT - 1)) != 0 || KWS_N_FFT < 4
#error "KWS_N_FFT must be a power of two >= 4 for the radix-2 FFT"
#endif

/* ---- FFT --------------------------------------------------------------------------------- */

/* In-place radix-2 decimation-in-time FFT of m complex points (re, im interleaved), m a power
 * of two dividing KWS_N_FFT/2. Twiddle W_len^k = exp(-2 pi i k / len) is table entry
 * k * KWS_N_FFT / len of kws_twiddle (cos, sin of 2 pi j / KWS_N_FFT). */
static void fft_complex(float *z, uint32_t m)
{
    uint32_t i, j = 0, len;
    for (i = 0; i + 1 < m; ++i) { /* bit-reversal permutation */
        uint32_t bit = m >> 1;
        if (i < j) {
            float re = z[2 * i], im = z[2 * i + 1];
            z[2 * i] = z[2 * j];
            z[2 * i + 1] = z[2 * j + 1];
            z[2 * j] = re;
            z[2 * j + 1] = im;
        }
        while (j & bit) {
            j ^= bit;
            bit >>= 1;
        }
        j |= bit;
    }
    for (len = 2; len <= m; len <<= 1) {
        const uint32_t half = len >> 1, stride = KWS_N_FFT / len;
        uint32_t start, k;
        for (start = 0; start < m; start += len) {
            for (k = 0; k < half; ++k) {
                const float wr = kws_twiddle[k * stride][0], wi = -kws_twiddle[k * stride][1];
                float *a = z + 2 * (start + k), *b = z + 2 * (start + k + half);
                const float tr = b[0] * wr - b[1] * wi, ti = b[0] * wi + b[1] * wr;
                b[0] = a[0] - tr;
                b[1] = a[1] - ti;
                a[0] += tr;
                a[1] += ti;
            }
        }
    }
}

/* Real FFT of KWS_N_FFT samples in x[0..N-1] -> bins 0..N/2 as (re, im) in x[0..N+1].
 * The samples are packed as N/2 complex points z[n] = x[2n] + i x[2n+1], transformed, then
 * split: X[k] = E[k] + W_N^k O[k] with E, O the spectra of the even and odd samples. */
static void fft_real(float *x)
{
    const uint32_t m = KWS_FFT_HALF;
    uint32_t k;
    float r0, i0;
    fft_complex(x, m);
    r0 = x[0];
    i0 = x[1];
    for (k = 1; k <= m / 2; ++k) {
        float *zk = x + 2 * k, *zm = x + 2 * (m - k);
        const float er = 0.5f * (zk[0] + zm[0]), ei = 0.5f * (zk[1] - zm[1]);
        const float or_ = 0.5f * (zk[1] + zm[1]), oi = 0.5f * (zm[0] - zk[0]);
        const float wr = kws_twiddle[k][0], wi = -kws_twiddle[k][1];
        const float tr = wr * or_ - wi * oi, ti = wr * oi + wi * or_;
        zk[0] = er + tr; /* X[k] */
        zk[1] = ei + ti;
        if (k != m - k) { /* X[m-k] = conj(E[k] - W^k O[k]) */
            zm[0] = er - tr;
            zm[1] = ti - ei;
        }
    }
    x[0] = r0 + i0; /* DC and Nyquist bins are real */
    x[1] = 0.0f;
    x[2 * m] = r0 - i0;
    x[2 * m + 1] = 0.0f;
}

/* ---- one frame ------------------------------------------------------------------------- */

static void compute_mfcc(kws_frontend_t *fe)
{
    float *w = fe->work;
    uint32_t k, m, c;
    fft_real(w);
    for (k = 0; k < KWS_N_BINS; ++k) { /* power (or magnitude) spectrum, in place (index k <= 2k) */
        const float re = w[2 * k], im = w[2 * k + 1];
#if KWS_SPECTRUM_MAGNITUDE
        w[k] = sqrtf(re * re + im * im);
#else
        w[k] = re * re + im * im;
#endif
    }
    for (m = 0; m < KWS_N_MELS; ++m) { /* sparse mel filterbank, then dB with a fixed floor */
        const float *weights = kws_mel_weights + kws_mel_offset[m];
        const float *power = w + kws_mel_first_bin[m];
        float energy = 0.0f;
        for (k = 0; k < kws_mel_num_bins[m]; ++k) {
            energy += weights[k] * power[k];
        }
        if (energy < KWS_LOG_FLOOR) {
            energy = KWS_LOG_FLOOR;
        }
        fe->mel[m] = KWS_DB_PER_NEPER * logf(energy);
    }
    for (c = 0; c < KWS_N_MFCC; ++c) { /* DCT-II, orthonormal */
        float acc = 0.0f;
        for (m = 0; m < KWS_N_MELS; ++m) {
            acc += kws_dct[c][m] * fe->mel[m];
        }
        fe->mfcc[c] = acc;
    }
}

/* Window the KWS_WINDOW_SAMPLES samples of buf starting at start (modulo the window length,
 * so buf may be the ring) into the FFT buffer, zero padded to n_fft. */
static void load_frame(kws_frontend_t *fe, const int16_t *buf, uint32_t start)
{
    uint32_t n, pos = start;
    for (n = 0; n < KWS_WINDOW_SAMPLES; ++n) {
        fe->work[n] = ((float)buf[pos] * KWS_PCM_SCALE) * kws_window[n];
        pos = (pos + 1 == KWS_WINDOW_SAMPLES) ? 0 : pos + 1;
    }
    for (; n < KWS_N_FFT + 2; ++n) {
        fe->work[n] = 0.0f;
    }
}

void kws_frontend_compute(kws_frontend_t *fe, const int16_t *frame)
{
    load_frame(fe, frame, 0);
    compute_mfcc(fe);
}

/* ---- streaming ------------------------------------------------------------------------- */

void kws_frontend_reset(kws_frontend_t *fe)
{
    memset(fe, 0, sizeof(*fe));
    fe->until_frame = KWS_WINDOW_SAMPLES;
}

size_t kws_frontend_push(kws_frontend_t *fe, const int16_t *samples, size_t n, int *frame_ready)
{
    size_t used = 0;
    *frame_ready = 0;
    while (used < n) {
        fe->ring[fe->ring_pos] = samples[used++];
        fe->ring_pos = (fe->ring_pos + 1 == KWS_WINDOW_SAMPLES) ? 0 : fe->ring_pos + 1;
        if (--fe->until_frame == 0) {
            /* The ring holds the frame's samples, oldest at ring_pos. */
            load_frame(fe, fe->ring, fe->ring_pos);
            compute_mfcc(fe);
            fe->until_frame = KWS_STRIDE_SAMPLES;
            fe->frames_emitted++;
            *frame_ready = 1;
            break;
        }
    }
    return used;
}

/* ---- quantization and the feature ring ------------------------------------------------- */

int32_t kws_round_half_away(float v)
{
    const float t = (float)(int32_t)v; /* toward zero; exact for |v| < 2^31 */
    const float frac = v - t;          /* exact: same binade or smaller */
    if (frac >= 0.5f) {
        return (int32_t)t + 1;
    }
    if (frac <= -0.5f) {
        return (int32_t)t - 1;
    }
    return (int32_t)t;
}

void kws_quantize_features(int stage, const float *mfcc, int8_t *out)
{
    const float *a = kws_quant_a[stage == 2 ? 1 : 0], *b = kws_quant_b[stage == 2 ? 1 : 0];
    uint32_t c;
    for (c = 0; c < KWS_N_MFCC; ++c) {
        float v = mfcc[c] * a[c] + b[c];
        int32_t q;
        if (v > 200.0f) { /* keep the int conversion defined; any such value saturates */
            v = 200.0f;
        } else if (v < -200.0f) {
            v = -200.0f;
        }
        q = kws_round_half_away(v);
        out[c] = (int8_t)(q > 127 ? 127 : (q < -128 ? -128 : q));
    }
}

void kws_feature_ring_reset(kws_feature_ring_t *ring)
{
    memset(ring, 0, sizeof(*ring));
}

void kws_feature_ring_push(kws_feature_ring_t *ring, const int8_t *row)
{
    memcpy(ring->rows[ring->head], row, KWS_N_MFCC);
    ring->head = (ring->head + 1 == KWS_NUM_FRAMES) ? 0 : ring->head + 1;
    if (ring->count < KWS_NUM_FRAMES) {
        ring->count++;
    }
}

void kws_feature_ring_copy(const kws_feature_ring_t *ring, int8_t *dst)
{
    /* Oldest row first: the ring's head is the oldest once it is full; before that rows
     * head..T-1 are still zero, which keeps the copy a plain two-part memcpy. */
    const uint32_t tail = KWS_NUM_FRAMES - ring->head;
    memcpy(dst, ring->rows[ring->head], (size_t)tail * KWS_N_MFCC);
    memcpy(dst + (size_t)tail * KWS_N_MFCC, ring->rows[0], (size_t)ring->head * KWS_N_MFCC);
}
