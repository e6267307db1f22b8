"""How the offset behaves over a file: constant, drifting or stepping. Pure array code, no I/O.

The input is the per-stretch lag evidence that ``detect`` already computes (one stretch per
second of each face track: the weighted sums of the lag scores), each stretch searched around
its own centre so that a drift larger than the search range is followed. Every stretch becomes
a log-likelihood over absolute offsets; a constant, a line (drift) and a piecewise constant
(steps) are fitted to all of them together and chosen by a penalised likelihood (BIC), so that
a varying profile is called only when the evidence pays for its extra parameters.

Offsets are in video frames, positive: the audio leads (``sync.py``'s convention). A stretch
searched around centre ``c`` has lag ``l`` (index ``max_lag + l``) at absolute offset ``c - l``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .sync import curve_from_sums

TOLERANCE_FRAMES = 1.0  # a change of at most this many frames over the file is "constant"
MIN_SEGMENT_S = 8.0  # a step needs at least this much time with evidence on each side
# ... and a drift this much evidence in all: its start is told from its end as a step's two
# sides are (a few seconds' slope is more often a rival lag than a speed difference)
MIN_DRIFT_SPAN_S = 2 * MIN_SEGMENT_S
MAX_STEPS = 8  # change points searched for at most
POOL_S = 10.0  # seconds pooled when a drift's rate is first guessed (and its scenes cut to)
SCENE_MIN_PROMINENCE = 2.0  # log-likelihood a piece's best offset must stand out by
STAIR_MAX_STEP = 1.5  # frames: change points no larger than this, all one way, are a drift
SMALL_STEP = 2.5  # ... and up to this, all one way, where the scenes read a line (drift)
SCENE_PIECE_S = 20.0  # ... and the longest piece a scene is read in
NEIGHBOURS_S = 2.0  # the evidence this close in time says what a stretch should have shown
FOLLOW_AT_FRAMES = 5  # the search is re-centred once the offset is this far from its centre
FOLLOW_WINDOW_S = 20.0  # the recent evidence that says where the offset is heading
FOLLOW_AGREE_FRAMES = 2  # ... and how close its stretches must peak to that line
FOLLOW_AGREE_SHARE = 0.3  # ... this share of them (chance: 5 lags in 31, 16 %)
FOLLOW_MIN_SPAN_S = 10.0  # the search moves only on evidence spanning this long
FOLLOW_MAX_RATE = 1.5  # frames per second: the fastest drift it follows (4 % is 1 at 25 fps)
# where the recent evidence no longer shows the offset (a stretch of faces that say little),
# the search coasts along a steady drift it has followed: the rate of its last moves made on
# evidence, at least this many of them within this long, their rates agreeing this closely
COAST_MOVES = 3
COAST_S = 60.0
COAST_AGREE = 0.25
# where the recent evidence shows no offset within the search range although faces spoke (a
# drift that walked out of it before it was followed, or while no face spoke), the search is
# lost: each piece is also searched in a neighbouring range, in turn, and the search moves
# there when that range shows the offset clearly. (On benchmarks/drift.py's programmes a 5-s
# piece's pooled lag curve stands out by 0.42 at the median where the offset is in the range,
# 0.15 at the 5th percentile; where it is not, by 0.11 at the median, 0.21 at the 95th.)
SCOUT_MIN_STRETCHES = 8  # seconds with evidence in the recent window before it can be lost
SCOUT_LOST_PROMINENCE = 0.2  # ... their pooled lag curve stands out less than this: lost
SCOUT_PROMINENCE = 0.3  # a scouted piece's pooled curve must stand out by this much
SCOUT_AGREE_SHARE = 0.8  # ... this share of its seconds peak within FOLLOW_AGREE_FRAMES
SCOUT_BETTER = 0.1  # ... and stand out this much more than the piece searched where it was
GRID_STEP = 0.25  # frames: resolution of the fitted offsets
DRIFT_PARAMS = 1.0  # what a drift's rate costs in the BIC, in parameters
STEP_PARAMS = 10.0  # ... and each change point (3 called most drifts steps: benchmarks/drift.py)
VARYING = ("drift", "steps")  # the profiles whose offset does not hold through the file
PLACE_S = 2.0  # seconds around a change point searched for its place within a second
CUT_PRIOR = 3.0  # log-likelihood a change point at a scene cut is preferred by (edits are cuts)
PLACE_WITHIN_S = 1.0  # a change point goes where it most likely lies within this of the truth
PLACE_SLACK = 0.1  # ... or, at most this share less likely so, at a scene cut or the best place


@dataclass
class Stretches:
    """Per-stretch lag evidence of one file, all face tracks together.

    ``t_s`` (S,) stretch middles in seconds, ``centre`` (S,) int: the offset (frames) each
    stretch's search was centred on, ``num``/``den`` (S, 2L+1): the sums over its frames of
    weight * score and of weight per lag (relative to the centre), ``frames`` (S,) the frames
    with a face and speech that back it, ``start_s`` (S,) where each stretch begins.
    ``parts``: the same evidence in finer time, each stretch cut into the same number of
    consecutive parts (rows ``i * K ... i * K + K - 1`` are stretch ``i``'s), by which a change
    point is placed within a stretch; None where it was not kept."""

    t_s: np.ndarray
    centre: np.ndarray
    num: np.ndarray
    den: np.ndarray
    frames: np.ndarray
    start_s: np.ndarray
    parts: Stretches | None = None

    @property
    def max_lag(self) -> int:
        return (self.num.shape[1] - 1) // 2

    @property
    def parts_per_stretch(self) -> int:
        if self.parts is None or not len(self.t_s):
            return 0
        return len(self.parts.t_s) // len(self.t_s)

    @classmethod
    def empty(cls, max_lag: int) -> Stretches:
        n = 2 * max_lag + 1
        z = np.zeros(0)
        return cls(z, np.zeros(0, int), np.zeros((0, n)), np.zeros((0, n)), z, z)

    @classmethod
    def concat(cls, parts: list[Stretches], max_lag: int) -> Stretches:
        parts = [p for p in parts if len(p.t_s)] or [cls.empty(max_lag)]
        fine = None
        fines = [p.parts for p in parts if p.parts is not None]
        if len(fines) == len(parts) and len({p.parts_per_stretch for p in parts}) == 1:
            fine = cls.concat(fines, max_lag)
        return cls(
            np.concatenate([p.t_s for p in parts]),
            np.concatenate([p.centre for p in parts]).astype(int),
            np.concatenate([p.num for p in parts]),
            np.concatenate([p.den for p in parts]),
            np.concatenate([p.frames for p in parts]),
            np.concatenate([p.start_s for p in parts]),
            fine,
        )

    def select(self, keep: np.ndarray) -> Stretches:
        fine = None
        if self.parts is not None:
            rows = np.arange(len(self.t_s))[keep]
            k = self.parts_per_stretch
            fine = self.parts.select((rows[:, None] * k + np.arange(k)[None, :]).ravel())
        return Stretches(
            self.t_s[keep],
            self.centre[keep],
            self.num[keep],
            self.den[keep],
            self.frames[keep],
            self.start_s[keep],
            fine,
        )


@dataclass
class Segment:
    """A stretch of a file with one offset (or, for drift, one rate). Times in seconds, offsets
    positive where the audio leads; for a drift segment ``offset_*`` is at ``start_s`` and
    ``end_offset_*`` at ``end_s`` (None for a constant segment). ``confidence``: calibrated
    probability that the segment's offset (after removing the drift) is right within 1 frame."""

    start_s: float
    end_s: float
    offset_ms: float
    offset_frames: float
    confidence: float | None
    end_offset_ms: float | None = None
    end_offset_frames: float | None = None


@dataclass
class Profile:
    """The fitted profile: ``kind`` "constant" | "drift" | "steps"; ``offsets`` (S,) the
    fitted offset at each stretch; ``drift_frames_per_s`` for drift; ``change_s`` the step
    times; ``ll`` the log-likelihood of each candidate and the penalised scores."""

    kind: str
    segments: list[tuple[float, float, float, float]]  # start_s, end_s, offset at start, at end
    drift_frames_per_s: float | None = None
    change_s: list[float] = field(default_factory=list)
    scores: dict[str, float] = field(default_factory=dict)
    temperature: float = 0.0


def stretch_curves(st: Stretches) -> np.ndarray:
    """(S, 2L+1) float64: each stretch's weighted mean score per lag."""
    if len(st.t_s) == 0:
        return np.zeros((0, st.num.shape[1]))
    return np.stack([curve_from_sums(n, d) for n, d in zip(st.num, st.den, strict=True)]).astype(
        np.float64
    )


def _softmax_log(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


class Evidence:
    """Log-likelihoods of the stretches over a common grid of absolute offsets (frames)."""

    def __init__(self, st: Stretches, temperature: float, curves: np.ndarray | None = None):
        self.st = st
        lag = st.max_lag
        curves = stretch_curves(st) if curves is None else curves
        # each stretch's curve over its own window, as a log-probability over offsets; outside
        # its window a stretch says nothing (uniform)
        self.logp = _softmax_log(temperature * st.frames[:, None] * curves)
        lo, hi = int(st.centre.min()) - lag, int(st.centre.max()) + lag
        self.grid = np.arange(lo, hi + 1)  # integer offsets
        self.ll = np.full((len(st.t_s), len(self.grid)), -math.log(2 * lag + 1))
        rows = np.arange(len(st.t_s))[:, None]
        # lag l (index lag + l) is offset centre - l: index lag + l -> offset column
        cols = (st.centre[:, None] - np.arange(-lag, lag + 1)[None, :]) - lo
        self.ll[rows, cols] = self.logp

    def at(self, offsets: np.ndarray) -> np.ndarray:
        """Each stretch's log-likelihood at its own (fractional) offset: ``offsets`` (..., S)
        -> (..., S), linear between the integer offsets, flat beyond the grid."""
        pos = np.clip(offsets - self.grid[0], 0, len(self.grid) - 1)
        i0 = np.clip(np.floor(pos).astype(int), 0, len(self.grid) - 2)
        w = pos - i0
        s = np.arange(self.ll.shape[0])
        if len(self.grid) < 2:
            return self.ll[s, 0] + 0 * offsets
        return self.ll[s, i0] * (1 - w) + self.ll[s, i0 + 1] * w

    def constant(self, rows: slice | np.ndarray = slice(None)) -> tuple[float, float]:
        """Best constant offset of the selected stretches and its log-likelihood."""
        off, top = self.peaks(self.ll[rows].sum(axis=0)[None, :])
        return float(off[0]), float(top[0])

    def peaks(self, totals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each row of summed log-likelihoods (K, grid): its best offset, refined between the
        grid's integers by a parabola through the peak, and the peak's value."""
        i = np.argmax(totals, axis=1)
        k = np.arange(len(totals))
        top = totals[k, i]
        off = self.grid[i].astype(float)
        inner = (i > 0) & (i < totals.shape[1] - 1)
        y0 = totals[k, np.maximum(i - 1, 0)]
        y2 = totals[k, np.minimum(i + 1, totals.shape[1] - 1)]
        denom = y0 - 2 * top + y2
        curved = inner & (denom < 0)
        shift = 0.5 * (y0 - y2) / np.where(curved, denom, -1.0)
        off += np.where(curved, np.clip(shift, -0.5, 0.5), 0.0)
        return off, top


def fit_temperature(st: Stretches, logit_scale: float) -> float:
    """The scale that turns a stretch's mean lag scores (times its frames) into a
    log-likelihood: chosen so that each stretch best predicts the offset that its neighbours
    (within ``NEIGHBOURS_S``, itself left out) agree on. Neighbouring frames are not
    independent evidence, so this comes out below the network's own ``logit_scale``."""
    betas = logit_scale * np.geomspace(1e-3, 1.0, 31)
    curves = stretch_curves(st)
    base = Evidence(st, 1.0, curves)  # only for the grid of the neighbours' consensus
    near = np.abs(st.t_s[:, None] - st.t_s[None, :]) <= NEIGHBOURS_S
    np.fill_diagonal(near, False)
    pooled = near.astype(float) @ _raw_scores(st, base, curves)
    target = base.grid[np.argmax(pooled, axis=1)]
    has = near.any(axis=1)
    if not has.any():
        return float(betas[len(betas) // 2])
    sub, sub_curves = st.select(has), curves[has]
    best, best_ll = betas[0], -np.inf
    for b in betas:
        ev = Evidence(sub, float(b), sub_curves)
        ll = float(ev.at(target[has].astype(float)).sum())
        if ll > best_ll:
            best, best_ll = b, ll
    return float(best)


def _raw_scores(st: Stretches, ev: Evidence, curves: np.ndarray) -> np.ndarray:
    """Weighted scores (frames * mean score, minus the stretch's mean) on the evidence grid:
    the consensus of neighbours without any temperature."""
    out = np.zeros_like(ev.ll)
    lag = st.max_lag
    vals = st.frames[:, None] * (curves - curves.mean(axis=1, keepdims=True))
    rows = np.arange(len(st.t_s))[:, None]
    cols = (st.centre[:, None] - np.arange(-lag, lag + 1)[None, :]) - ev.grid[0]
    out[rows, cols] = vals
    return out


def _theil_sen(t: np.ndarray, y: np.ndarray, t0: float) -> tuple[float, float]:
    """A robust line y = a + b * (t - t0) (the median of the pairwise slopes): (a, b)."""
    i, j = np.triu_indices(len(t), 1)
    if len(i) > 200_000:  # a long file: a fixed sample of the pairs is plenty
        pick = np.random.default_rng(0).choice(len(i), 200_000, replace=False)
        i, j = i[pick], j[pick]
    apart = np.abs(t[j] - t[i]) >= 1.0
    if not apart.any():
        return float(np.median(y)), 0.0
    b = float(np.median((y[j] - y[i])[apart] / (t[j] - t[i])[apart]))
    return float(np.median(y - b * (t - t0))), b


def _fit_line(ev: Evidence, t: np.ndarray) -> tuple[float, float, float]:
    """Best line offset = a + b * (t - mean t) (frames, frames per second) and its
    log-likelihood: a local search that zooms in, from two first guesses (a line through
    pooled windows, and a robust line through each stretch's own peak, which a fast drift
    followed across the search range needs), keeping the better."""
    t0 = float(t.mean())
    peaks = ev.grid[np.argmax(ev.ll, axis=1)].astype(float)
    guesses = [_pooled_line(ev, t, t0), _theil_sen(t, peaks, t0)]
    return max((_zoom_line(ev, t, t0, a, b) for a, b in guesses), key=lambda r: r[2])


def _piece_offsets(
    ev: Evidence, t: np.ndarray, edges: Sequence[float], min_rows: int = 1
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each piece of time between consecutive ``edges`` (with at least ``min_rows`` stretches)
    read as one constant offset: its middle (s), offset (frames) and prominence (how far its
    best log-likelihood stands above the median of its lag curve)."""
    xs, ys, proms = [], [], []
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        rows = np.flatnonzero((t >= a) & (t < b))
        if len(rows) < max(min_rows, 1):
            continue
        off, top = ev.constant(rows)
        xs.append(float(t[rows].mean()))
        ys.append(off)
        proms.append(top - float(np.median(ev.ll[rows].sum(axis=0))))
    return np.array(xs), np.array(ys), np.array(proms)


def _pooled_line(ev: Evidence, t: np.ndarray, t0: float) -> tuple[float, float]:
    """A first guess at the line: the constant offset of each window of ``POOL_S`` seconds,
    a line through them weighted by how clearly each stands out."""
    xs, ys, proms = _piece_offsets(ev, t, list(np.arange(t.min(), t.max() + POOL_S, POOL_S)))
    if len(xs) >= 2:
        slope, icpt = np.polyfit(xs - t0, ys, 1, w=np.sqrt(np.maximum(proms, 1e-6)))
        return float(icpt), float(slope)
    return ev.constant()[0], 0.0


def _zoom_line(
    ev: Evidence, t: np.ndarray, t0: float, icpt: float, slope: float
) -> tuple[float, float, float]:
    """The best line near (``icpt``, ``slope``), by a grid search that zooms in, and its
    log-likelihood."""
    span = max(float(t.max() - t.min()), 1.0)
    a_step, b_step = 2.0, 4.0 / span
    best = (float(icpt), float(slope), -np.inf)
    for _ in range(8):
        a_grid = best[0] + a_step * np.linspace(-1, 1, 9)
        b_grid = best[1] + b_step * np.linspace(-1, 1, 9)
        offs = a_grid[:, None, None] + b_grid[None, :, None] * (t - t0)[None, None, :]
        ll = ev.at(offs).sum(axis=-1)
        i, j = np.unravel_index(int(np.argmax(ll)), ll.shape)
        if ll[i, j] >= best[2]:
            best = (float(a_grid[i]), float(b_grid[j]), float(ll[i, j]))
        a_step, b_step = a_step / 3, b_step / 3
    return best


def _scene_pieces(
    ev: Evidence, t: np.ndarray, cuts_s: Sequence[float]
) -> tuple[np.ndarray, np.ndarray]:
    """Each stretch of time between two cuts (cut further into pieces of at most
    ``SCENE_PIECE_S``) read as one constant offset: the middles and offsets (frames) of the
    pieces that stand out from their own lag curve (``SCENE_MIN_PROMINENCE``)."""
    bounds = sorted(c for c in cuts_s if t[0] < c < t[-1])
    edges = []
    for a, b in zip([float(t[0]) - 1e-6, *bounds], [*bounds, float(t[-1]) + 1e-6], strict=True):
        n = max(1, math.ceil((b - a) / SCENE_PIECE_S))
        edges += list(np.linspace(a, b, n + 1)[:-1])
    edges.append(float(t[-1]) + 1e-6)
    xs, ys, proms = _piece_offsets(ev, t, edges, min_rows=2)
    clear = proms >= SCENE_MIN_PROMINENCE  # a piece without a clear peak says nothing of it
    return xs[clear], ys[clear]


def _scene_line(ev: Evidence, t: np.ndarray, cuts_s: Sequence[float]) -> tuple[float, float] | None:
    """A drift's line (offset = a + b * (t - mean t)) from the scenes (``_scene_pieces``): a
    robust line (Theil-Sen) through their offsets, so that every scene counts once and a few
    scenes with their own small offset (each shot's own sync) do not tilt it as they tilt a
    line fitted to all seconds at once, where the clearest scenes weigh most. None with fewer
    than three pieces."""
    xs, ys = _scene_pieces(ev, t, cuts_s)
    if len(xs) < 3:
        return None
    return _theil_sen(xs, ys, float(t.mean()))


def _scenes_read_a_line(
    ev: Evidence, t: np.ndarray, cuts_s: Sequence[float], changes: Sequence[float]
) -> bool:
    """Whether the scenes' own offsets (``_scene_pieces``, also cut at ``changes``) lie along a
    line at least as closely (sum of absolute differences) as along the levels between the
    changes: how a slow drift reads where each shot has its own small offset, and the seconds,
    counted as independent, make one shot's offset look like a step."""
    xs, ys = _scene_pieces(ev, t, sorted([*cuts_s, *changes]))
    if len(xs) < 2 * (len(changes) + 1) + 1:
        return False
    a, b = _theil_sen(xs, ys, 0.0)
    side = np.searchsorted(np.sort(np.asarray(changes, dtype=float)), xs)
    level = np.zeros_like(ys)
    for i in np.unique(side):
        level[side == i] = np.median(ys[side == i])
    return float(np.abs(ys - a - b * xs).sum()) <= float(np.abs(ys - level).sum())


def _fit_at_slope(ev: Evidence, t: np.ndarray, b: float, a0: float) -> float:
    """The log-likelihood of the best line with slope ``b`` (frames per second), its
    intercept searched around ``a0``."""
    t0 = float(t.mean())
    best, a_step = (a0, -np.inf), 2.0
    for _ in range(8):
        a_grid = best[0] + a_step * np.linspace(-1, 1, 9)
        ll = ev.at(a_grid[:, None] + b * (t - t0)[None, :]).sum(axis=-1)
        i = int(np.argmax(ll))
        if ll[i] >= best[1]:
            best = (float(a_grid[i]), float(ll[i]))
        a_step /= 3
    return best[1]


def _best_split(
    ev: Evidence, rows: np.ndarray, t: np.ndarray, cuts_s: np.ndarray
) -> tuple[int, float] | None:
    """Where splitting ``rows`` (time-ordered) in two gains the most log-likelihood, each side
    keeping ``MIN_SEGMENT_S`` of time and the two sides' offsets differing by more than
    ``TOLERANCE_FRAMES``; (position in ``rows``, gain). A position with a scene cut between its
    two seconds is chosen over a better one elsewhere that gains less than ``CUT_PRIOR`` more;
    the gain returned is the position's own."""
    ll = ev.ll[rows]
    left = np.cumsum(ll, axis=0)[:-1]
    right = ll.sum(axis=0)[None, :] - left
    (left_off, left_top), (right_off, right_top) = ev.peaks(left), ev.peaks(right)
    gain = left_top + right_top - ll.sum(axis=0).max()
    tt = t[rows]
    ok = (tt[1:] - tt[0] >= MIN_SEGMENT_S) & (tt[-1] - tt[:-1] >= MIN_SEGMENT_S)
    ok &= tt[1:] > tt[:-1]  # never between two stretches at the same time
    # a split whose sides hold the same offset within the tolerance changes nothing: it must
    # not hide a smaller gain elsewhere that does change the offset
    ok &= np.abs(left_off - right_off) > TOLERANCE_FRAMES
    if not ok.any():
        return None
    gain = np.where(ok, gain, -np.inf)
    at_cut = np.zeros(len(gain), dtype=bool)
    if len(cuts_s):
        # a cut lies between tt[i] and tt[i + 1] when the count of cuts before them differs
        before = np.searchsorted(cuts_s, tt, side="right")
        at_cut = before[1:] > before[:-1]
    k = int(np.argmax(gain + CUT_PRIOR * at_cut))
    return k + 1, float(gain[k])


def _fit_steps(
    ev: Evidence, t: np.ndarray, penalty: float, cuts_s: Sequence[float] = ()
) -> tuple[list[int], float]:
    """Change points by binary segmentation: split where the gain pays ``penalty`` (the
    offsets on both sides differ by more than ``TOLERANCE_FRAMES``: ``_best_split``). Returns
    the split positions (indices into the time-ordered stretches) and the log-likelihood."""
    splits: list[int] = []
    cuts = np.sort(np.asarray(cuts_s, dtype=float))
    todo = [(0, len(t))]
    while todo and len(splits) < MAX_STEPS:
        a, b = todo.pop()
        found = _best_split(ev, np.arange(a, b), t, cuts)
        if found is None:
            continue
        k, gain = found
        if gain <= penalty:
            continue
        splits.append(a + k)
        todo += [(a, a + k), (a + k, b)]
    splits.sort()
    bounds = [0, *splits, len(t)]
    ll = sum(ev.constant(np.arange(x, y))[1] for x, y in zip(bounds[:-1], bounds[1:], strict=True))
    return splits, float(ll)


def _place_change(
    fine: Evidence, at: float, before: float, after: float, cuts_s: Sequence[float]
) -> float:
    """Where, within ``PLACE_S`` of ``at``, the offset changes from ``before`` to ``after``
    (frames), read from the stretches' parts (``fine``). Each boundary between parts is scored
    by how well the parts on either side of it support it (each part's log-likelihood of one
    offset against the other, summed); a boundary is placed midway across a gap without
    evidence, or at a scene cut inside it, and a cut anywhere near gains ``CUT_PRIOR``. The
    scores, as odds, say how likely each place is, and so how likely the change lies within
    ``PLACE_WITHIN_S`` of each: a faint stretch between a cut and the true change spreads its
    odds over many places, which the single best place can miss by more. Of the places whose
    chance of that is at most ``PLACE_SLACK`` below the best, a scene cut is taken where there
    is one, and otherwise the best scored."""
    st = fine.st
    rows = np.flatnonzero((np.abs(st.t_s - at) <= PLACE_S) & (st.frames > 0))
    if len(rows) == 0:
        return at
    rows = rows[np.argsort(st.t_s[rows], kind="stable")]
    gain = fine.at(np.full(len(st.t_s), before))[rows] - fine.at(np.full(len(st.t_s), after))[rows]
    # boundary j (0..R) has parts rows[:j] before the change; its score: their gain summed
    score = np.concatenate([[0.0], np.cumsum(gain)])
    starts, mids = st.start_s[rows], st.t_s[rows]
    ends = 2 * mids - starts
    lo, hi = max(at - PLACE_S, float(starts[0]) - 0.5), min(at + PLACE_S, float(ends[-1]) + 0.5)
    # where each boundary lies: midway between the last part before and the first after
    left = np.concatenate([[lo], np.maximum.accumulate(ends)])
    right = np.concatenate([starts, [hi]])
    where = np.where(left <= right, 0.5 * (left + right), 0.5 * (np.r_[lo, mids] + np.r_[mids, hi]))
    near = [c for c in cuts_s if abs(c - at) <= PLACE_S]
    cut_score = [score[int(np.searchsorted(mids, c))] + CUT_PRIOR for c in near]
    scores, places = np.r_[score, cut_score], np.r_[where, near]
    odds = np.exp(scores - scores.max())
    within = (np.abs(places[:, None] - places[None, :]) <= PLACE_WITHIN_S) @ odds
    good = within >= (1 - PLACE_SLACK) * within.max()
    at_cut = good & (np.arange(len(places)) >= len(score))
    if at_cut.any():
        return float(places[at_cut][np.argmax(within[at_cut])])
    return float(places[good][np.argmax(scores[good])])


def fit_profile(
    st: Stretches,
    logit_scale: float,
    drift_params: float = DRIFT_PARAMS,
    step_params: float = STEP_PARAMS,
    cuts_s: Sequence[float] = (),
) -> Profile | None:
    """Fit a constant, a drift and steps to the stretches and keep the one the evidence
    prefers (BIC: each extra parameter must buy half a log of the number of stretches; a
    drift's rate counts as ``drift_params`` parameters, a change point, searched over every
    position and able to stand in for a drift as a staircase, as ``step_params``). A drift
    or step smaller than ``TOLERANCE_FRAMES`` over the file is called constant, and so is a
    drift over less than ``MIN_DRIFT_SPAN_S`` of evidence. Small steps all one way are a
    drift where they form a staircase (``STAIR_MAX_STEP``) or where the scenes, each counted
    once, lie along a line (``SMALL_STEP``). A change point is sought at a scene cut
    (``cuts_s``, seconds) first (``CUT_PRIOR``), placed at the cut where one lies between the
    seconds of evidence either side of it, and, where the stretches' parts were kept, within
    a part of a second (``_place_change``). None when there is no evidence at all."""
    keep = st.frames > 0
    if keep.sum() < 2:
        return None
    order = np.argsort(st.t_s[keep], kind="stable")
    st = st.select(np.flatnonzero(keep)[order])
    t = st.t_s
    beta = fit_temperature(st, logit_scale)
    ev = Evidence(st, beta)
    n = len(t)
    per_param = 0.5 * math.log(n)
    c_off, c_ll = ev.constant()
    a, b, d_ll = _fit_line(ev, t)
    splits, s_ll = _fit_steps(ev, t, step_params * per_param, cuts_s)
    start, end = float(t[0]), float(t[-1])
    t0 = float(t.mean())
    # "constant" is any profile whose offset moves at most TOLERANCE_FRAMES over the file: a
    # drift must beat the steepest such line, not only the flat one
    span = max(end - start, 1e-9)
    within = c_ll
    if abs(b) * span > TOLERANCE_FRAMES:
        within = max(c_ll, _fit_at_slope(ev, t, math.copysign(TOLERANCE_FRAMES / span, b), a))
    scores = {
        "constant": within,
        "drift": d_ll - drift_params * per_param,
        "steps": s_ll - step_params * per_param * len(splits),
    }
    if abs(b) * (end - start) <= TOLERANCE_FRAMES or end - start < MIN_DRIFT_SPAN_S:
        scores["drift"] = -np.inf
    if not splits:
        scores["steps"] = -np.inf
    kind = max(scores, key=lambda k: scores[k])
    bounds = [0, *splits, n]
    levels = [ev.constant(np.arange(x, y))[0] for x, y in zip(bounds[:-1], bounds[1:], strict=True)]
    rises = np.diff(levels)
    if kind == "steps" and np.isfinite(scores["drift"]) and abs(np.sign(rises).sum()) == len(rises):
        # small steps all one way are how a slow drift reads where each scene has its own small
        # offset: a drift, not edits, where they form a staircase or the scenes read a line
        stairs = len(splits) >= 2 and np.all(np.abs(rises) <= STAIR_MAX_STEP)
        mids = [0.5 * (t[k - 1] + t[k]) for k in splits]
        if stairs or (
            np.all(np.abs(rises) <= SMALL_STEP) and _scenes_read_a_line(ev, t, cuts_s, mids)
        ):
            kind = "drift"
    if kind == "drift":
        # the evidence decides that the offset drifts; its scenes say at what rate, where the
        # drift is slow enough for a piece of a scene to hold one offset (a fast one, a speed
        # change of a few per cent, keeps the line fitted to every second)
        if abs(b) * SCENE_PIECE_S <= TOLERANCE_FRAMES:
            a, b = _scene_line(ev, t, cuts_s) or (a, b)
        if abs(b) * (end - start) > TOLERANCE_FRAMES:
            segs = [(start, end, a + b * (start - t0), a + b * (end - t0))]
            return Profile("drift", segs, b, [], scores, beta)
        kind = "constant"  # the rate the scenes read moves the offset within the tolerance
    if kind == "steps":
        # a change between two seconds of evidence is placed midway, or at the scene cut
        # between them (nearest the middle) where there is one: edits happen at cuts; then,
        # where the stretches' parts were kept, within a part of a second near there
        fine = Evidence(st.parts, beta) if st.parts is not None and len(st.parts.t_s) else None
        changes = []
        for i, k in enumerate(splits):
            mid = 0.5 * (t[k - 1] + t[k])
            inside = [c for c in cuts_s if t[k - 1] < c < t[k]]
            at = float(min(inside, key=lambda c: abs(c - mid)) if inside else mid)
            if fine is not None:
                at = _place_change(fine, at, levels[i], levels[i + 1], cuts_s)
            changes.append(at)
        edges = [start, *changes, end]
        segs = [(float(edges[i]), float(edges[i + 1]), off, off) for i, off in enumerate(levels)]
        return Profile("steps", segs, None, changes, scores, beta)
    return Profile("constant", [(start, end, c_off, c_off)], None, [], scores, beta)


def residual_sums(st: Stretches, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The lag-curve sums of the stretches with the fitted offset at each (S,) removed (each
    stretch moved by the nearest whole frame), so that a fitted profile's evidence adds up
    like a constant file's: ((2L+1,), (2L+1,)) around offset 0."""
    lag = st.max_lag
    num = np.zeros(2 * lag + 1)
    den = np.zeros(2 * lag + 1)
    for s in range(len(st.t_s)):
        # relative lag l of stretch s is offset centre - l; we want offsets near the fit, i.e.
        # residual offset r = centre - l - fit -> residual lag -r = l + fit - centre
        move = int(round(float(offsets[s]) - st.centre[s]))
        src = np.arange(2 * lag + 1)
        dst = src + move
        ok = (dst >= 0) & (dst < 2 * lag + 1)
        num[dst[ok]] += st.num[s, src[ok]]
        den[dst[ok]] += st.den[s, src[ok]]
    return num, den


class Follower:
    """Where to centre the search of the next stretch: where the line through the last
    ``FOLLOW_WINDOW_S`` seconds of evidence is heading. The centre stays put while that line is
    within ``FOLLOW_AT_FRAMES`` of it, so that a file within the search range is searched
    exactly as without following."""

    def __init__(self, max_lag: int, logit_scale: float):
        self.max_lag = max_lag
        self.logit_scale = logit_scale
        self.centre = 0
        self.parts: list[Stretches] = []
        self.moves: list[tuple[float, float, float]] = []  # (time, offset, rate) of each move
        self.scouted = 0  # neighbouring ranges searched so far while lost

    def _coast(self, t_s: float, shown: bool) -> int:
        """The centre where the recent evidence shows no line (``shown`` False) and the last
        moves followed a steady drift (``COAST_MOVES`` within ``COAST_S``, rates agreeing
        within ``COAST_AGREE``): that drift carried on to ``t_s``. Evidence that shows a line,
        even another one (a drift that stopped), is followed instead."""
        if shown:
            return self.centre
        recent = [m for m in self.moves if m[0] > t_s - COAST_S][-COAST_MOVES:]
        if len(recent) < COAST_MOVES:
            return self.centre
        rates = np.array([m[2] for m in recent])
        steady = float(rates.mean())
        if np.any(np.sign(rates) != np.sign(steady)) or rates.std() > COAST_AGREE * abs(steady):
            return self.centre
        t_last, off_last, _ = recent[-1]
        pred = off_last + steady * (t_s - t_last)
        if abs(pred - self.centre) >= FOLLOW_AT_FRAMES:
            step = float(np.clip(pred - self.centre, -self.max_lag, self.max_lag))
            self.centre = int(round(self.centre + step))
        return self.centre

    def add(self, st: Stretches) -> None:
        self.parts.append(st)

    def predict(self, t_s: float) -> int:
        """The centre (frames) for a piece whose middle is at ``t_s`` seconds. It moves only
        when the recent evidence prefers the line over the current centre by more than a BIC
        penalty and most of its stretches peak near the line (so that a few strong stretches
        of noise, a new face or music, do not pull the search away), and never on less than
        ``FOLLOW_MIN_SPAN_S`` of evidence or along a line steeper than ``FOLLOW_MAX_RATE``."""
        self.parts = [p for p in self.parts if len(p.t_s) and p.t_s.max() > t_s - FOLLOW_WINDOW_S]
        if not self.parts:
            return self.centre
        st = Stretches.concat(self.parts, self.max_lag)
        recent = (st.t_s > t_s - FOLLOW_WINDOW_S) & (st.t_s <= t_s) & (st.frames > 0)
        if recent.sum() < 4:
            return self._coast(t_s, False)
        st = st.select(np.flatnonzero(recent))
        ev = Evidence(st, fit_temperature(st, self.logit_scale))
        t = st.t_s
        if t.max() - t.min() < FOLLOW_MIN_SPAN_S:
            return self._coast(t_s, False)  # a few seconds of a new face are no trend yet
        t0 = float(t.mean())
        # a robust line through each second's own peak (Theil-Sen): seconds that lost the
        # offset, or never had it, peak anywhere and must not tilt it
        peaks = ev.grid[np.argmax(ev.ll, axis=1)].astype(float)
        a, b = _theil_sen(t, peaks, t0)
        if abs(b) > FOLLOW_MAX_RATE:
            return self._coast(t_s, False)  # faster than any drift it is meant to follow: noise
        line = a + b * (t - t0)
        on_line = np.abs(peaks - line) <= FOLLOW_AGREE_FRAMES
        shown = bool(on_line.mean() >= FOLLOW_AGREE_SHARE)
        now, pred = a + b * (float(t.max()) - t0), a + b * (t_s - t0)
        if abs(now - self.centre) < FOLLOW_AT_FRAMES and abs(pred - self.centre) < FOLLOW_AT_FRAMES:
            # neither where it is nor where it heads is near the range's edge
            return self._coast(t_s, shown)
        # what the seconds that follow the line say for it, against staying where we are
        gain = ev.at(line) - ev.at(np.full(len(t), float(self.centre)))
        gain = float(gain[on_line].sum())
        if gain > 2 * math.log(len(t)) and on_line.mean() >= FOLLOW_AGREE_SHARE:
            step = float(np.clip(pred - self.centre, -self.max_lag, self.max_lag))
            self.centre = int(round(self.centre + step))
            self.moves.append((t_s, pred, b))
            return self.centre
        return self._coast(t_s, shown)

    def scout(self, t_s: float) -> int | None:
        """Another centre to search the piece at ``t_s`` around, while the search is lost: the
        last ``FOLLOW_WINDOW_S`` hold at least ``SCOUT_MIN_STRETCHES`` seconds of evidence, no
        line through their peaks (``FOLLOW_AGREE_SHARE``) and a pooled lag curve that stands
        out less than ``SCOUT_LOST_PROMINENCE``. The neighbouring ranges are taken in turn
        (one range up, one down, two up, two down), none further than the fastest followed
        drift (``FOLLOW_MAX_RATE``) could have gone by ``t_s``. None when not lost."""
        recent = [p for p in self.parts if len(p.t_s) and p.t_s.max() > t_s - FOLLOW_WINDOW_S]
        if not recent:
            return None
        st = Stretches.concat(recent, self.max_lag)
        st = st.select(np.flatnonzero(st.frames > 0))
        if len(st.t_s) < SCOUT_MIN_STRETCHES or np.ptp(st.t_s) < FOLLOW_MIN_SPAN_S:
            return None
        if _prominence(st.select(np.flatnonzero(st.centre == self.centre))) >= (
            SCOUT_LOST_PROMINENCE
        ):
            return None
        peaks = stretch_peaks(st)
        a, b = _theil_sen(st.t_s, peaks.astype(float), float(st.t_s.mean()))
        line = a + b * (st.t_s - st.t_s.mean())
        if np.mean(np.abs(peaks - line) <= FOLLOW_AGREE_FRAMES) >= FOLLOW_AGREE_SHARE:
            return None
        width = 2 * self.max_lag + 1
        reach = FOLLOW_MAX_RATE * t_s + self.max_lag
        ways = [k * width * sign for k in (1, 2) for sign in (1, -1)]
        ways = [w for w in ways if abs(self.centre + w) <= reach] or ways[:2]
        self.scouted += 1
        return self.centre + ways[(self.scouted - 1) % len(ways)]

    def adopt(self, here: Stretches, there: Stretches) -> bool:
        """Whether a piece searched around a scouted centre (``there``) shows the offset that
        the same piece searched where the search was (``here``) does not: its pooled lag curve
        stands out by ``SCOUT_PROMINENCE``, by ``SCOUT_BETTER`` more than ``here``'s, and
        ``SCOUT_AGREE_SHARE`` of its seconds peak within ``FOLLOW_AGREE_FRAMES`` of it. If so,
        the search moves to that offset and forgets the evidence it was lost in."""
        there_ = there.select(np.flatnonzero(there.frames > 0))
        here_ = here.select(np.flatnonzero(here.frames > 0))
        if len(there_.t_s) < 2:
            return False
        prom = _prominence(there_)
        if prom < SCOUT_PROMINENCE or prom < _prominence(here_) + SCOUT_BETTER:
            return False
        best = int(there_.centre[0]) - (int(np.argmax(_pooled_curve(there_))) - self.max_lag)
        peaks = stretch_peaks(there_)
        if np.mean(np.abs(peaks - best) <= FOLLOW_AGREE_FRAMES) < SCOUT_AGREE_SHARE:
            return False
        self.centre, self.parts, self.moves, self.scouted = best, [], [], 0
        return True


def _pooled_curve(st: Stretches) -> np.ndarray:
    """The stretches' lag sums added up (relative to their centre): one (2L+1,) lag curve."""
    return curve_from_sums(st.num.sum(axis=0), st.den.sum(axis=0))


def stretch_peaks(st: Stretches) -> np.ndarray:
    """(S,) int: the absolute offset at which each stretch's own lag curve peaks."""
    return st.centre - (np.argmax(stretch_curves(st), axis=1) - st.max_lag)


def _prominence(st: Stretches) -> float:
    """How far the pooled lag curve of the stretches peaks above its median (0 for none)."""
    if len(st.t_s) == 0:
        return 0.0
    curve = _pooled_curve(st)
    return float(curve.max() - np.median(curve))
