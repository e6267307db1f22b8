"""How soon and how well the monitor's drift watch (``monitor.DriftWatch``) sees a drift, and
whether it stays quiet on a constant offset and on a jump, on simulated window readings: a
window every 2 s, each whole-window offset the true one plus Gaussian noise (15 or 30 ms), and
one window in nine wrong by 250 ms; four minutes of stream, eight draws per case.

    python benchmarks/drift_watch.py

Prints, per case, the draws in which a drift was reported, when it first was (stream seconds),
the rate it gave at the end, and for unchanged and jumping streams the windows wrongly reported.
"""

from __future__ import annotations

import numpy as np

from fcnsync.monitor import DriftWatch

HOP_S = 2.0
WINDOWS = 120
DRAWS = 8


def readings(rate: float, jump: float, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = HOP_S * np.arange(1, WINDOWS + 1)
    y = 30.0 + rate * t / 60.0 + jump * (t > t[-1] / 2) + rng.normal(0, noise, len(t))
    y[rng.integers(0, 9) :: 9] += 250.0
    return t, y


def main() -> None:
    print("case                       noise  reported  first (s)        rate at the end (ms/min)")
    for rate, jump in [(0, 0), (40, 0), (-40, 0), (80, 0), (-80, 0), (200, 0), (0, 200), (0, -120)]:
        for noise in (15.0, 30.0):
            firsts, rates, wrong = [], [], 0
            for seed in range(DRAWS):
                t, y = readings(rate, jump, noise, seed)
                watch = DriftWatch()
                seen = [watch.update(float(a), float(b)) for a, b in zip(t, y, strict=True)]
                hit = [i for i, d in enumerate(seen) if d is not None]
                wrong += len(hit) if rate == 0 else 0
                if hit:
                    firsts.append(t[hit[0]])
                    last = next((d for d in reversed(seen) if d is not None), None)
                    if last is not None:
                        rates.append(last["ms_per_min"])
            name = (
                f"drift {rate:+d} ms/min"
                if rate
                else (f"jump {jump:+d} ms" if jump else "constant")
            )
            first = f"{min(firsts):.0f}-{max(firsts):.0f}" if firsts else "-"
            spread = f"{min(rates):+.1f} .. {max(rates):+.1f}" if rates else "-"
            extra = f"   windows reported: {wrong} of {DRAWS * WINDOWS}" if rate == 0 else ""
            print(
                f"{name:24s} {noise:6.0f}  {len(firsts)} of {DRAWS}    {first:15s}  {spread}{extra}"
            )


if __name__ == "__main__":
    main()
