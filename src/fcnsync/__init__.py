"""fcnsync: measure how far the audio of a talking-face video is out of sync with the lips.

import fcnsync
model = fcnsync.load_model()
result = fcnsync.detect("talk.mp4", model=model)
print(result.offset_ms, result.confidence, result.verdict)
"""

from .calibration import Calibration, load_calibration
from .errors import FcnsyncError
from .model import load_model
from .pipeline import Result, TrackResult, detect

__version__ = "0.1.0"

__all__ = [
    "Calibration",
    "FcnsyncError",
    "Result",
    "TrackResult",
    "__version__",
    "detect",
    "load_calibration",
    "load_model",
]
