"""kws: cascaded keyword spotting (MFCC -> int8 stage-1 gate -> int8 stage 2 -> smoothing).

The Python API for apps that embed the detector::

    from kws import Detector
    detector = Detector.open()                  # or Detector.open("path/to/bundle")
    for event in detector.push(samples):        # float32 or int16 mono, any chunk size
        print(event.label, event.time, event.score)

``features(audio_or_path)`` gives the (T, n_mfcc) MFCC the models see. Importing ``kws``
loads no TensorFlow: the int8 models run on ai_edge_litert, loaded when a detector opens.
"""

from cascade.runtime.detector import Detector, Event
from data_prep.config import FeatureConfig
from data_prep.errors import KwsError
from data_prep.features import features

__all__ = ["Detector", "Event", "FeatureConfig", "KwsError", "features"]
