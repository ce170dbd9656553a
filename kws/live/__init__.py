"""``kws live``: the cascade on a microphone (or a file played like one), in real time.

    source (PortAudio callback / file thread) -> BlockQueue -> LiveLoop (mono, streaming
    resample to the bundle's rate, StreamingCascade hop by hop) -> events, display, summary

The audio callback only copies its block into the queue; all model work runs in the loop, on
the same ``StreamingCascade`` that ``kws detect`` and the stream evaluation use.
"""
