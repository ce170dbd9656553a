// kws_cascade.ino - the exported keyword-spotting cascade on an Arduino board.
//
// Reads 16-bit PCM at KWS_SAMPLE_RATE, feeds it to the cascade and prints each detection.
// The microphone code is for the Arduino Nano 33 BLE Sense (PDM library); on another board
// replace read_audio() with your driver. Needs the TensorFlow Lite Micro Arduino library.
#include <TensorFlowLite.h>

#include <kws_cascade.h>

#if defined(ARDUINO_ARDUINO_NANO33BLE)
#include <PDM.h>

// PDM delivers audio in an interrupt; a small ring of samples hands it to loop().
static volatile int16_t g_pcm[4 * KWS_STRIDE_SAMPLES];
static volatile size_t g_pcm_write = 0;
static size_t g_pcm_read = 0;

static void on_pdm_data() {
  int16_t buffer[256];
  int bytes = PDM.available();
  if (bytes > (int)sizeof(buffer)) bytes = sizeof(buffer);
  PDM.read(buffer, bytes);
  for (int i = 0; i < bytes / 2; ++i) {
    g_pcm[g_pcm_write % (4 * KWS_STRIDE_SAMPLES)] = buffer[i];
    g_pcm_write = g_pcm_write + 1;
  }
}

static bool start_audio() {
  PDM.onReceive(on_pdm_data);
  return PDM.begin(1, KWS_SAMPLE_RATE) != 0;
}

// Copies up to max_samples new samples into out; returns how many.
static size_t read_audio(int16_t* out, size_t max_samples) {
  size_t n = 0;
  while (n < max_samples && g_pcm_read < g_pcm_write) {
    out[n++] = g_pcm[g_pcm_read % (4 * KWS_STRIDE_SAMPLES)];
    g_pcm_read++;
  }
  return n;
}
#else
static bool start_audio() { return true; }

// No microphone driver for this board: silence (replace with your audio source).
static size_t read_audio(int16_t* out, size_t max_samples) {
  for (size_t i = 0; i < max_samples; ++i) out[i] = 0;
  delay((unsigned long)(1000.0 * max_samples / KWS_SAMPLE_RATE));
  return max_samples;
}
#endif

void setup() {
  Serial.begin(115200);
  while (!Serial) {
  }
  if (kws_cascade_init() != KWS_OK) {
    Serial.print("kws_cascade_init failed: ");
    Serial.println(kws_cascade_error());
    while (true) {
    }
  }
  if (!start_audio()) {
    Serial.println("cannot start the microphone");
  }
  Serial.print("kws cascade ready, arenas used: ");
  Serial.print((unsigned long)kws_cascade_arena_used(1));
  Serial.print(" + ");
  Serial.println((unsigned long)kws_cascade_arena_used(2));
}

void loop() {
  static int16_t pcm[KWS_STRIDE_SAMPLES];
  size_t n = read_audio(pcm, KWS_STRIDE_SAMPLES);
  const int16_t* p = pcm;
  while (n > 0) {
    size_t used = 0;
    kws_decision_t d;
    kws_status_t status = kws_cascade_push(p, n, &used, &d);
    if (status == KWS_ERROR) {
      Serial.println(kws_cascade_error());
      return;
    }
    if (status == KWS_STEP && d.detected) {
      Serial.print(d.t, 2);
      Serial.print(" s  ");
      Serial.print(kws_labels[d.label]);
      Serial.print("  ");
      Serial.println(d.score, 3);
    }
    p += used;
    n -= used;
  }
}
