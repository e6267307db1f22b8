"""The shipped FCN-SyncNet checkpoint and its calibration (package data)."""
