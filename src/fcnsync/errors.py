"""One family of errors whose messages a user can act on.

Only ``cli.py`` maps them to exit codes."""

from __future__ import annotations


class FcnsyncError(Exception):
    """Base class: the message is one line that tells the user what went wrong."""


class MediaError(FcnsyncError):
    """The file cannot be read as media, or lacks a stream the measurement needs."""


class StreamError(MediaError):
    """The source could not be opened or read (a network failure, a file that went away):
    worth trying again, unlike a file that is not media."""


class ModelError(FcnsyncError):
    """The checkpoint is missing, corrupt or does not match its checksum."""


class CalibrationError(FcnsyncError):
    """A calibration file is missing, malformed, or cannot be fitted from the data given."""
