"""Running the command line the way a user does: a fresh process, its output captured."""

from __future__ import annotations

import subprocess
import sys


def run_cli(args, stdin=None, timeout=600):
    """``fcnsync ARGS`` in a new process; text in and out."""
    return subprocess.run(
        [sys.executable, "-m", "fcnsync.cli", *map(str, args)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
