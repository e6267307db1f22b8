"""fcnsync: measure how far the audio of a talking-face video is out of sync with the lips.

import fcnsync
model = fcnsync.load_model()
result = fcnsync.detect("talk.mp4", model=model)
print(result.offset_ms, result.confidence, result.verdict)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import FcnsyncError

if TYPE_CHECKING:
    from .calibration import Calibration, load_calibration
    from .model import load_model
    from .pipeline import Result, TrackResult, detect

__version__ = "0.1.0"

# The public API is imported on first use (PEP 562), so that importing the package, as the
# command line does to print its help, does not load torch.
_LAZY = {
    "Calibration": "calibration",
    "load_calibration": "calibration",
    "load_model": "model",
    "Result": "pipeline",
    "TrackResult": "pipeline",
    "detect": "pipeline",
}

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


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value  # looked up once
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
