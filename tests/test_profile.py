"""How the offset behaves over a file: constant, drift and steps fitted to per-second evidence."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fcnsync.pipeline import Result, TrackResult, add_profile, profile_verdict
from fcnsync.profile import Follower, Segment, Stretches, fit_profile

MAX_LAG = 15
FPS = 25.0
SCALE = 10.0


def stretches(
    profile, seconds: int, seed: int = 0, centre=lambda t: 0, noise: float = 0.15, height=0.3
):
    """One stretch per second, 20 frames with speech, whose lag curve peaks (by ``height``)
    at the offset ``profile(t)`` (frames; the curve searched around ``centre(t)``), plus
    noise."""
    rng = np.random.default_rng(seed)
    lags = np.arange(-MAX_LAG, MAX_LAG + 1)
    rows = []
    for s in range(seconds):
        t = s + 0.5
        c = int(centre(t))
        peak_lag = c - profile(t)  # lag l is offset c - l
        curve = height * np.exp(-0.5 * ((lags - peak_lag) / 1.2) ** 2)
        curve = curve + noise * rng.standard_normal(len(lags))
        rows.append((t, c, curve))
    n = len(rows)
    frames = np.full(n, 20.0)
    return Stretches(
        t_s=np.array([r[0] for r in rows]),
        centre=np.array([r[1] for r in rows]),
        num=np.stack([r[2] * 20 for r in rows]),
        den=np.full((n, len(lags)), 20.0),
        frames=frames,
        start_s=np.array([r[0] - 0.5 for r in rows]),
    )


@pytest.mark.parametrize("offset", [-6.0, 0.0, 3.0])
def test_constant_offset_is_called_constant(offset):
    for seed in range(5):
        prof = fit_profile(stretches(lambda t: offset, 180, seed), SCALE)
        assert prof is not None and prof.kind == "constant"
        assert prof.segments[0][2] == pytest.approx(offset, abs=0.5)


@pytest.mark.parametrize("rate", [-0.05, 0.04])  # frames per second: -75 and +60 ms per minute
def test_drift_is_found_with_its_sign_and_rate(rate):
    prof = fit_profile(stretches(lambda t: 2.0 + rate * t, 180), SCALE)
    assert prof is not None and prof.kind == "drift"
    assert prof.drift_frames_per_s == pytest.approx(rate, rel=0.2)
    start, end, off0, off1 = prof.segments[0]
    assert off0 == pytest.approx(2.0 + rate * start, abs=1.0)
    assert np.sign(off1 - off0) == np.sign(rate)


def _scenes(seconds: int, length: float, seed: int) -> tuple[list[float], np.ndarray]:
    """Cuts every ``length`` seconds and each scene's own small offset (frames)."""
    cuts = list(np.arange(length, seconds, length))
    return cuts, np.random.default_rng(seed).normal(0, 0.3, len(cuts) + 1)


def test_a_slow_drift_read_through_scenes_of_their_own_small_offsets_is_a_drift_at_its_rate():
    # 40 ms per minute over 3 minutes (3 frames), each 9-s shot with its own sync (sd 0.3
    # frames) and its own clarity: a line through all seconds at once leans on the clearest
    # shots, one through the shots counts each once
    rate = 40 / 1000 * FPS / 60
    found = []
    for seed in range(10):
        cuts, own = _scenes(180, 9.0, seed)
        which = np.searchsorted(cuts, np.arange(180) + 0.5, side="right")  # each second's shot
        st = stretches(lambda t, o=own, k=which: rate * t + o[k[int(t)]], 180, seed, noise=0.05)
        clarity = np.random.default_rng(seed + 10).uniform(0.05, 1.0, len(own))
        w = clarity[which]
        st.num, st.den, st.frames = st.num * w[:, None], st.den * w[:, None], st.frames * w
        prof = fit_profile(st, SCALE, cuts_s=cuts)
        assert prof is not None
        found.append(prof.drift_frames_per_s if prof.kind == "drift" else np.nan)
    err_ms_per_min = np.abs(np.array(found) - rate) / FPS * 60 * 1000
    assert np.all(err_ms_per_min <= 10)


def _shots_of_their_own(profile, seed: int) -> tuple[Stretches, list[float]]:
    """Three minutes of shots of 4-16 s, each with its own small offset (sd 0.4 frames) on top
    of ``profile`` and its own clarity."""
    rng = np.random.default_rng(seed + 100)
    ends = np.cumsum(rng.uniform(4, 16, 40))
    cuts = list(ends[ends < 180])
    own = rng.normal(0, 0.4, len(cuts) + 1)
    clarity = rng.uniform(0.05, 1.0, len(cuts) + 1)
    which = np.searchsorted(cuts, np.arange(180) + 0.5, side="right")
    st = stretches(lambda t: profile(t) + own[which[int(t)]], 180, seed, noise=0.1)
    w = clarity[which]
    st.num, st.den, st.frames = st.num * w[:, None], st.den * w[:, None], st.frames * w
    return st, cuts


def test_a_slow_drift_whose_seconds_read_as_one_small_step_is_a_drift_where_its_shots_read_a_line():
    # 40 ms per minute over 3 minutes: counted second by second, a few clear shots with their
    # own offsets can make one step of 1-2 frames pay more than the line; the shots, each
    # counted once, read the line. A real 2-frame edit stays a step.
    rate = 40 / 1000 * FPS / 60
    drift = [_shots_of_their_own(lambda t: rate * t, s) for s in range(30)]
    edit = [_shots_of_their_own(lambda t: 2.0 * (t >= 94.3), s) for s in range(30)]
    # (the seconds alone call 4 of the drifts steps)
    kinds = [getattr(fit_profile(st, SCALE, cuts_s=cuts), "kind", None) for st, cuts in drift]
    assert kinds.count("drift") >= 28
    kinds = [getattr(fit_profile(st, SCALE, cuts_s=cuts), "kind", None) for st, cuts in edit]
    assert kinds.count("steps") >= 28


def test_a_drift_whose_shots_move_the_offset_within_the_tolerance_is_constant():
    # 0.8 frames over 3 minutes, within the +-1-frame tolerance. Fitted to every second, the
    # clearest shots' own offsets can tilt the line past it; the shots' own line (the rate a
    # drift is reported at) stays within it, and then the programme is constant
    # (with the first line alone 26 of 40 are called constant)
    kinds = [
        getattr(fit_profile(st, SCALE, cuts_s=cuts), "kind", None)
        for st, cuts in (_shots_of_their_own(lambda t: 0.8 / 180 * t, s) for s in range(40))
    ]
    assert kinds.count("constant") >= 30


def test_a_staircase_of_small_steps_one_way_is_a_drift_and_a_real_edit_stays_a_step():
    stairs = lambda t: 1.2 * ((t >= 60) + (t >= 120))  # noqa: E731
    prof = fit_profile(stretches(stairs, 180, noise=0.05), SCALE, cuts_s=[60.0, 120.0])
    assert prof is not None and prof.kind == "drift" and prof.drift_frames_per_s > 0
    edit = lambda t: 1.2 * (t >= 60) + 3.0 * (t >= 120)  # noqa: E731
    prof = fit_profile(stretches(edit, 180, noise=0.05), SCALE, cuts_s=[60.0, 120.0])
    assert prof is not None and prof.kind == "steps" and len(prof.change_s) == 2


def test_a_few_seconds_sloping_are_not_called_a_drift():
    # 8 frames over 5 s (as some short real clips read, a rival lag taking over): too little
    # time to tell a speed difference from a wrong peak; the same slope over a minute is a drift
    slope = lambda t: -4.0 + 1.6 * t  # noqa: E731
    short = fit_profile(stretches(slope, 5), SCALE)
    assert short is not None and short.kind == "constant"
    assert fit_profile(stretches(lambda t: -4.0 + 0.1 * t, 60), SCALE).kind == "drift"


@pytest.mark.parametrize("size", [-6, 3])
def test_a_step_is_found_at_its_time_with_its_size(size):
    prof = fit_profile(stretches(lambda t: -2.0 + size * (t >= 70.2), 150), SCALE)
    assert prof is not None and prof.kind == "steps"
    assert prof.change_s == [pytest.approx(70.2, abs=1.0)]
    (_, _, before, _), (_, _, after, _) = prof.segments
    assert after - before == pytest.approx(size, abs=1.0)


def test_a_step_is_found_past_a_larger_gain_that_changes_the_offset_within_the_tolerance():
    # 4 frames up after 14 s of a 10-minute programme, and 300 s in the middle read 0.75 frames
    # higher still (no edit: within the tolerance). Splitting at the middle's edge gains the
    # most; that split changes nothing, and must not stop the search for the step
    for seed in range(5):
        offset = lambda t: 3.0 + 4.0 * (t >= 14.0) + 0.75 * (100 <= t < 400)  # noqa: E731
        prof = fit_profile(stretches(offset, 600, seed, noise=0.05), SCALE)
        assert prof is not None and prof.kind == "steps"
        assert prof.change_s == [pytest.approx(14.0, abs=1.0)]
        (_, _, before, _), (_, _, after, _) = prof.segments
        assert after - before == pytest.approx(4.0, abs=1.0)


def stretches_in_parts(profile, seconds: int, parts: int = 5, seed: int = 0) -> Stretches:
    """As ``stretches``, but each second the sum of ``parts`` parts of 4 frames each, whose
    lag curves peak at the offset at the part's own time, and the parts kept
    (``Stretches.parts``)."""
    n = seconds * parts
    starts = np.arange(n) / parts
    mids = starts + 0.5 / parts
    lags = np.arange(-MAX_LAG, MAX_LAG + 1)  # lag l is offset -l (centre 0)
    curves = np.stack([0.3 * np.exp(-0.5 * ((lags + profile(t)) / 1.2) ** 2) for t in mids])
    curves += 0.15 * np.random.default_rng(seed).standard_normal(curves.shape)
    num, den, frames = curves * 4, np.full(curves.shape, 4.0), np.full(n, 4.0)
    fine = Stretches(mids, np.zeros(n, int), num, den, frames, starts)
    k = np.arange(seconds)
    return Stretches(
        t_s=k + 0.5,
        centre=np.zeros(seconds, int),
        num=num.reshape(seconds, parts, -1).sum(axis=1),
        den=den.reshape(seconds, parts, -1).sum(axis=1),
        frames=frames.reshape(seconds, parts).sum(axis=1),
        start_s=k.astype(float),
        parts=fine,
    )


@pytest.mark.parametrize("at", [70.4, 70.6])  # 0.4 s from the nearest whole second
def test_a_step_within_a_second_is_placed_within_a_part_of_it(at):
    errors = {"seconds": [], "parts": []}
    for seed in range(6):
        st = stretches_in_parts(lambda t: -2.0 + 5 * (t >= at), 150, seed=seed)
        for key, ev in (("parts", st), ("seconds", st.select(np.arange(150)))):
            if key == "seconds":
                ev.parts = None
            prof = fit_profile(ev, SCALE)
            assert prof is not None and prof.kind == "steps" and len(prof.change_s) == 1
            errors[key].append(abs(prof.change_s[0] - at))
    # whole seconds place it at a second's edge, 0.4 s off; the parts, mostly within a part
    # (0.2 s) of it, and never further off than the seconds
    assert sum(e <= 0.21 for e in errors["parts"]) >= 5
    assert max(errors["parts"]) <= max(errors["seconds"]) + 1e-6
    assert np.mean(errors["parts"]) < np.mean(errors["seconds"])


def test_a_step_in_a_gap_of_evidence_is_placed_at_the_scene_cut_there():
    st = stretches(lambda t: -2.0 + 5 * (t >= 70.0), 150)
    st.frames[(st.t_s > 66) & (st.t_s < 72)] = 0  # a new shot: no face tracked for a while
    plain = fit_profile(st, SCALE)
    assert plain is not None and plain.change_s == [pytest.approx(69.0)]  # midway in the gap
    prof = fit_profile(st, SCALE, cuts_s=[30.0, 69.96, 120.0])
    assert prof is not None and prof.change_s == [69.96]
    assert prof.segments[0][1] == prof.segments[1][0] == 69.96


def test_a_step_near_a_scene_cut_is_placed_at_the_cut_when_the_evidence_barely_differs():
    st = stretches(lambda t: -2.0 + 5 * (t >= 69.96), 150)
    before = stretches(lambda t: -2.0, 150, seed=1)
    weak = (st.t_s > 70) & (st.t_s < 73)  # three faint seconds after the cut read the old offset
    st.num[weak] = before.num[weak] * 0.1
    st.den[weak] *= 0.1
    st.frames[weak] = 2
    plain = fit_profile(st, SCALE)
    assert plain is not None and plain.change_s == [pytest.approx(73.0)]
    prof = fit_profile(st, SCALE, cuts_s=[30.0, 69.96, 120.0])
    assert prof is not None and prof.change_s == [69.96]
    (_, _, off0, _), (_, _, off1, _) = prof.segments
    assert off1 - off0 == pytest.approx(5, abs=0.5)


@pytest.mark.parametrize(("at", "within_s"), [(70.0, 1.0), (68.7, 0.2)])
def test_a_step_in_a_short_faint_shot_is_placed_within_a_second(at, within_s):
    # a 2.6-s shot between cuts at 68.7 and 71.3 s whose lips say little (a tenth of the
    # evidence), the offset changing in its middle or at its first cut: the single best place
    # is a cut, 1.3 s from a change in the middle; the change must be placed within a second
    # of it there, and stay on the cut (within a part or so) when it is at the cut
    cuts = [30.0, 68.7, 71.3, 120.0]
    for seed in range(6):
        st = stretches_in_parts(lambda t: -2.0 + 5 * (t >= at), 150, seed=seed)
        fine = st.parts
        faint = np.where((fine.t_s > 68.7) & (fine.t_s < 71.3), 0.1, 1.0)
        fine.num, fine.den = fine.num * faint[:, None], fine.den * faint[:, None]
        fine.frames = fine.frames * faint
        st.num, st.den = fine.num.reshape(150, 5, -1).sum(1), fine.den.reshape(150, 5, -1).sum(1)
        st.frames = fine.frames.reshape(150, 5).sum(1)
        prof = fit_profile(st, SCALE, cuts_s=cuts)
        assert prof is not None and prof.kind == "steps" and len(prof.change_s) == 1
        assert abs(prof.change_s[0] - at) <= within_s


def test_a_change_within_one_frame_is_constant():
    prof = fit_profile(stretches(lambda t: 1.0 + 0.5 * (t >= 60), 120), SCALE)
    assert prof is not None and prof.kind == "constant"


def test_a_drift_beyond_the_search_range_is_followed():
    # 1 frame per second (4 % at 25 fps): 60 frames in a minute, four times the range
    rate = 1.0
    follower = Follower(MAX_LAG, SCALE)
    parts = []
    for p in range(12):  # 5-s pieces, each searched where the follower says
        t0 = 5.0 * p
        c = follower.predict(t0 + 2.5)
        piece = stretches(lambda t: rate * t, 60, seed=p, centre=lambda t, c=c: c)
        piece = piece.select(np.flatnonzero((piece.t_s >= t0) & (piece.t_s < t0 + 5)))
        follower.add(piece)
        parts.append(piece)
    st = Stretches.concat(parts, MAX_LAG)
    assert st.centre.max() > 40  # the search moved with the offset
    prof = fit_profile(st, SCALE)
    assert prof is not None and prof.kind == "drift"
    assert prof.drift_frames_per_s == pytest.approx(rate, rel=0.1)
    # cut into shots, each of which walks 7 frames: its rate is still the line's
    prof = fit_profile(st, SCALE, cuts_s=list(np.arange(7.0, 60.0, 7.0)))
    assert prof is not None and prof.drift_frames_per_s == pytest.approx(rate, rel=0.1)


def _followed(profile, seconds: int, quiet=lambda t: False, height=0.3) -> Stretches:
    """Stretches scored as detect scores them: 5-s pieces, each searched where the follower
    says (and, while it is lost, also where it scouts); seconds where ``quiet(t)`` hold no
    evidence (no face or no speech)."""
    follower = Follower(MAX_LAG, SCALE)
    parts = []

    def piece_at(p: int, c: int) -> Stretches:
        t0 = 5.0 * p
        piece = stretches(profile, seconds, seed=p, centre=lambda t: c, height=height)
        piece = piece.select(np.flatnonzero((piece.t_s >= t0) & (piece.t_s < t0 + 5)))
        silent = np.array([quiet(t) for t in piece.t_s], dtype=bool)
        piece.frames[silent], piece.num[silent], piece.den[silent] = 0, 0, 0
        return piece

    for p in range(seconds // 5):
        piece = piece_at(p, follower.predict(5.0 * p + 2.5))
        other = follower.scout(5.0 * p + 2.5)
        if other is not None:
            scouted = piece_at(p, other)
            if follower.adopt(piece, scouted):
                piece = scouted
        follower.add(piece)
        parts.append(piece)
    return Stretches.concat(parts, MAX_LAG)


def test_a_followed_drift_is_carried_through_a_stretch_without_evidence():
    # 20 s without a talking face while the offset walks 20 frames, beyond the search range
    st = _followed(lambda t: 1.0 * t, 90, quiet=lambda t: 30 <= t < 50)
    after = st.t_s > 55
    assert np.all(np.abs(st.centre[after] - st.t_s[after]) < MAX_LAG - 3)  # found again
    prof = fit_profile(st, SCALE)
    assert prof is not None and prof.kind == "drift"
    assert prof.drift_frames_per_s == pytest.approx(1.0, rel=0.1)


def test_a_drift_lost_before_it_was_followed_is_found_again():
    # 4 % (1 frame per second) after 25 s without a talking face: when faces speak again the
    # offset is past the search range; the lost search looks in the neighbouring ranges
    st = _followed(lambda t: 1.0 * t, 120, quiet=lambda t: t < 25, height=0.5)
    late = st.t_s > 70
    assert np.all(np.abs(st.centre[late] - st.t_s[late]) < MAX_LAG - 3)
    prof = fit_profile(st, SCALE)
    assert prof is not None and prof.kind == "drift"
    assert prof.drift_frames_per_s == pytest.approx(1.0, rel=0.1)


def test_faces_that_never_show_the_offset_do_not_move_the_search():
    # the offset is nowhere near any range searched: the search is lost but finds nothing
    st = _followed(lambda t: 500.0, 120, height=0.5)
    assert np.all(st.centre == 0)


def test_a_drift_that_stops_is_not_carried_on():
    st = _followed(lambda t: min(t, 30.0), 90)
    assert np.all(np.abs(st.centre[st.t_s > 45] - 30) < 8)  # the search stays with the offset


def test_a_few_seconds_or_an_implausibly_steep_line_do_not_move_the_search():
    # seven seconds of a new face on a line falling 1 frame per second: too short a trend
    few = stretches(lambda t: 4.0 - t, 60, noise=0.05).select(np.arange(7))
    follower = Follower(MAX_LAG, SCALE)
    follower.add(few)
    assert follower.predict(9.5) == 0
    # sixteen seconds falling 1.8 frames per second (7 % at 25 fps): faster than any drift
    steep = stretches(lambda t: 10.0 - 1.8 * t, 60, noise=0.05).select(np.arange(16))
    follower = Follower(MAX_LAG, SCALE)
    follower.add(steep)
    assert follower.predict(18.5) == 0


def test_no_evidence_is_no_profile():
    st = stretches(lambda t: 0.0, 10)
    st.frames[:] = 0
    assert fit_profile(st, SCALE) is None


def _result(kind: str) -> Result:
    res = Result(path="x.mp4", status="ok", offset_ms=-80.0, offset_frames=-2.0, fps=FPS)
    res.tracks = [
        TrackResult(0, 0.0, 10.0, 250, 1.0, 200, [0, 0, 1, 1], -2.0, -80.0, 0.9, "ok", None)
    ]
    res.sync_profile = kind
    if kind == "drift":
        res.segments = [Segment(0.0, 60.0, 10.0, 0.25, 0.9, -310.0, -7.75)]
        res.drift_ms_per_min = -320.0
    else:
        res.segments = [Segment(0.0, 8.0, -80.0, -2.0, 0.9), Segment(8.0, 20.0, -320.0, -8.0, 0.8)]
    res.verdict = profile_verdict(res) or ""
    return res


def test_verdict_says_in_words_how_the_offset_changes():
    assert profile_verdict(_result("drift")) == (
        "audio drifts from +10 ms to -310 ms, -320 ms per minute"
    )
    assert profile_verdict(_result("steps")) == "offset changes at 0:08 from -80 ms to -320 ms"


def test_a_track_searched_past_the_range_counts_where_its_own_evidence_shows_the_offset():
    # a 4 % drift over two shots: the first face is searched around 0, where its track is
    # judged "ok"; the second only where the drift was followed, past the range: undetermined
    # around 0, yet its seconds belong to the file's drift. A face whose seconds show no
    # offset where it was searched does not count.
    from fcnsync.calibration import load_calibration
    from fcnsync.pipeline import TrackEvidence

    st = _followed(lambda t: 1.0 * t, 60, height=0.5)
    first, second = st.select(np.flatnonzero(st.t_s < 15)), st.select(np.flatnonzero(st.t_s >= 15))
    assert second.centre.min() >= MAX_LAG  # searched past the range
    noise = _followed(lambda t: 500.0, 60, height=0.5)
    noise = noise.select(np.flatnonzero(noise.t_s >= 15))
    noise.centre = noise.centre + 40

    def profile_with(later: Stretches) -> Result:
        res = Result(path="x.mp4", status="ok", offset_ms=280.0, offset_frames=7.0, fps=FPS)
        res.tracks = [
            TrackResult(0, 0.0, 15.0, 375, 1.0, 300, [0, 0, 1, 1], 7.0, 280.0, 0.9, "ok", None),
            TrackResult(
                1, 15.0, 60.0, 1125, 1.0, 900, [0, 0, 1, 1], None, None, None, "undetermined", None
            ),
        ]
        z = np.zeros(2 * MAX_LAG + 1)
        evidence = [
            TrackEvidence(0, 0.0, 15.0, 375, 375, 300, np.zeros(4), z, z, stretches=first),
            TrackEvidence(1, 15.0, 60.0, 1125, 1125, 900, np.zeros(4), z, z, stretches=later),
        ]
        add_profile(res, evidence, load_calibration(), SCALE)
        return res

    res = profile_with(second)
    assert res.sync_profile == "drift" and res.segments[-1].end_s > 55
    assert res.drift_ms_per_min == pytest.approx(1.0 / FPS * 60_000, rel=0.1)
    res = profile_with(noise)
    assert res.segments is not None and res.segments[-1].end_s < 15


def _judged(st: Stretches):
    from fcnsync.calibration import load_calibration
    from fcnsync.pipeline import TrackEvidence, track_results

    frames = int(st.frames.sum())
    z = np.zeros(2 * MAX_LAG + 1)  # nothing searched around offset 0 (all centres >= 2L + 1)
    ev = TrackEvidence(0, 0.0, 60.0, frames, frames, frames, np.zeros(4), z, z, stretches=st)
    cal = load_calibration()
    (track,), _ = track_results([ev], FPS, cal, SCALE)
    return track, cal.bias_frames


def test_a_track_searched_past_the_range_is_judged_where_it_was_searched():
    # a face that speaks only once a drift has been followed past the searched range shows
    # nothing around offset 0; where it was searched it shows the offset, and is judged there
    held = stretches(lambda t: 42.0, 20, centre=lambda t: 40, height=0.5)
    track, bias = _judged(held)
    assert track.status == "ok" and track.lag_curve_centre_frames == 40
    assert track.offset_frames == pytest.approx(42.0 - bias, abs=0.5)
    # a shot of a 4 % drift, searched where the drift was followed: the one offset that
    # best fits it lies within the offsets it walked through
    st = _followed(lambda t: 1.0 * t, 60, height=0.5)
    shot = st.select(np.flatnonzero((st.t_s >= 40) & (st.t_s < 46)))
    assert shot.centre.min() > 2 * MAX_LAG
    track, bias = _judged(shot)
    assert track.status == "ok" and track.offset_frames is not None
    assert 40 - 1 <= track.offset_frames + bias <= 46 + 1
    # the same face's seconds showing nothing where they were searched: undetermined
    noise = _followed(lambda t: 500.0, 60, height=0.5)
    noise.centre = noise.centre + 40
    track, _ = _judged(noise)
    assert track.status == "undetermined"


@pytest.mark.parametrize(("peak", "suffix"), [(0, True), (30, True), (3, False)])
def test_an_answer_on_the_edge_of_the_searched_range_says_or_more(peak, suffix):
    # a lag curve peaking on its first or last lag: the offset is there or beyond
    from types import SimpleNamespace

    from fcnsync.pipeline import summarise_tracks

    curve = [0.0] * (2 * MAX_LAG + 1)
    curve[peak] = 0.5
    off = float(MAX_LAG - peak)  # offset = -lag
    track = TrackResult(
        0, 0.0, 20.0, 500, 1.0, 400, [0, 0, 1, 1], off, off * 40, 0.99, "ok", None, curve
    )
    ex = SimpleNamespace(
        info=SimpleNamespace(fps=FPS, duration_s=20.0),
        video_start_s=0.0,
        video_end_s=20.0,
        video_frames=500,
    )
    res = summarise_tracks("x.mp4", ex, [track], MAX_LAG, 0.1)  # type: ignore[arg-type]
    assert res.status == "ok" and res.offset_frames == off
    assert res.verdict.endswith("or more (the edge of the searched range)") == suffix


def test_profile_needs_a_determined_answer():
    res = Result(path="x.mp4", status="undetermined", fps=FPS)
    add_profile(res, [], None, SCALE)  # type: ignore[arg-type]
    assert res.sync_profile is None and res.segments is None


@pytest.mark.parametrize("kind", ["drift", "steps"])
def test_every_writer_carries_the_profile(kind, tmp_path):
    import io

    from fcnsync.writers import get_writer

    res = _result(kind)
    for fmt in ("json", "jsonl", "csv", "table"):
        buf = io.StringIO()
        w = get_writer(fmt, buf)
        w.write(res)
        w.finish()
        text = buf.getvalue()
        if fmt == "json":
            rec = json.loads(text)[0]
            assert rec["sync_profile"] == kind and rec["segments"][0]["start_s"] == 0.0
        elif fmt == "jsonl":
            rec = json.loads(text)
            assert rec["drift_ms_per_min"] == res.drift_ms_per_min
        elif fmt == "csv":
            header, row = text.splitlines()[:2]
            assert "sync_profile" in header and "segments" in header and kind in row
        else:
            assert ("drifts" if kind == "drift" else "changes") in text
    pa = pytest.importorskip("pyarrow")
    from fcnsync.writers import ParquetWriter

    pw = ParquetWriter(tmp_path / "out")
    pw.write(res)
    pw.finish()
    import pyarrow.parquet as pq

    table = pq.read_table(str(tmp_path / "out"))
    assert table.column("sync_profile").to_pylist() == [kind]
    assert isinstance(table.schema.field("segments").type, pa.ListType)


@pytest.mark.parametrize("kind", ["drift", "steps"])
def test_the_evidence_plot_draws_the_fitted_profile(kind, tmp_path):
    pytest.importorskip("matplotlib")
    from fcnsync.plots import plot_result

    res = _result(kind)
    res.tracks[0].series = [
        {"t_s": float(t), "offset_frames": -2.0, "confidence": 0.9} for t in range(8)
    ]
    plot_result(res, tmp_path / "p.png")
    assert (tmp_path / "p.png").stat().st_size > 1000
