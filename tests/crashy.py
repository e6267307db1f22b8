"""A stand-in worker for batch tests: crashes or hangs on files named so, answers the rest."""

from __future__ import annotations

import os
import time

from fcnsync.pipeline import Result


def worker(settings, inbox, results):  # same signature as fcnsync.batch._worker
    results.put(("ready", -1, os.getpid()))
    while True:
        task = inbox.get()
        if task is None:
            return
        index, path = task
        if "crash" in path:
            os.abort()  # a native crash: the process dies with SIGABRT
        if "hang" in path:
            time.sleep(3600)
        time.sleep(0.05)
        results.put(("done", index, Result(path=path, status="ok", offset_frames=0.0)))


def decode_file(path, max_lag):  # same signature as fcnsync.ray._decode_file
    """The decode stage of the Ray engine, but a native crash on files named so."""
    from fcnsync.ray import _decode_file

    if "crash" in os.path.basename(path):
        os.abort()
    return _decode_file(path, max_lag)
