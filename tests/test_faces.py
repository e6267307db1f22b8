"""The face tracker's picture handling: crops cut from the stored planes of a decoded frame."""

from __future__ import annotations

import av
import cv2
import numpy as np
import pytest
from synth import make_clip

from fcnsync.faces import (
    APPEARANCE_DIMS,
    EYE_OUTER,
    LANDMARKS,
    LIP_INNER,
    LIP_OUTER,
    MESH_CROP_PX,
    PATCH_H,
    PATCH_W,
    Track,
    _crop,
    mouth_appearance,
    mouth_patch,
)
from fcnsync.media import MediaReader, VideoFrame


@pytest.mark.parametrize("rotation", [None, 90, 180, 270])
def test_crop_from_the_stored_planes_matches_the_crop_from_the_upright_picture(tmp_path, rotation):
    clip = make_clip(tmp_path / "r.mp4", seconds=0.5, size=(320, 192), rotation=rotation)
    with MediaReader(clip) as reader:
        frame = next(item for item in reader if isinstance(item, VideoFrame))
    assert frame.yuv420() is not None  # the planes are used, not the whole-picture RGB
    w, h = frame.width, frame.height
    for x0, y0, side in [(0, 0, max(w, h)), (-w // 4, -h // 4, w), (w // 4, h // 4, h // 2)]:
        from_planes = _crop(cv2, frame, x0, y0, side).astype(int)
        from_rgb = _crop(cv2, frame.rgb, x0, y0, side).astype(int)
        assert from_planes.shape == (256, 256, 3)
        assert np.abs(from_planes - from_rgb).mean() < 2.0  # same place, colours to rounding
        assert from_rgb.std() > 10  # the crop holds the picture, not a blank


def test_large_crop_averaged_in_blocks_first_shows_what_one_area_resampling_shows():
    rng = np.random.default_rng(0)  # a smooth colour texture: any misplacement shows
    noise = cv2.GaussianBlur(rng.normal(0, 1, (720, 1280, 3)).astype(np.float32), (0, 0), 16)
    rgb = np.clip(128 + noise / noise.std() * 50, 0, 255).astype(np.uint8)
    stored = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
    frame = VideoFrame(0.0, stored, max_side=1280)
    w, h = frame.width, frame.height
    # sides of 2.0-3.7 times the mesh's (not whole multiples: blocks are trimmed, then
    # resampled), one reaching out of the picture
    boxes = [(0, 0, 601), (-41, 13, 700), (27, -30, 947), (5, 3, 512), (-500, -200, 700)]
    for dx, dy, side in boxes:
        x0, y0 = w // 2 - side // 2 + dx, h // 2 - side // 2 + dy
        two_stage = _crop(cv2, frame, x0, y0, side).astype(int)
        one_area = _crop(cv2, frame.rgb, x0, y0, side).astype(int)  # one resampling of RGB
        two_px = 2 * side // MESH_CROP_PX  # two pixels of the crop, in the picture's pixels
        moved = _crop(cv2, frame.rgb, x0 + two_px, y0, side).astype(int)
        diff = np.abs(two_stage - one_area).mean()
        assert diff < 5.0 and diff < np.abs(two_stage - moved).mean() / 2


def test_whole_picture_scaled_for_the_detector_keeps_the_upright_shape(tmp_path):
    clip = make_clip(tmp_path / "r.mp4", seconds=0.5, size=(320, 192), rotation=90)
    with MediaReader(clip) as reader:
        frame = next(item for item in reader if isinstance(item, VideoFrame))
    assert frame.rgb.shape == (192, 320, 3)  # upright, as the clip was made to be seen
    small = frame.rgb_within(160)
    assert small.shape == (96, 160, 3)  # scaled to fit 160, still upright
    assert frame.rgb_within(1000) is frame.rgb  # never scaled up: the full picture itself
    full = cv2.resize(frame.rgb, (160, 96), interpolation=cv2.INTER_AREA).astype(int)
    assert np.abs(small.astype(int) - full).mean() < 3.0  # the same picture, not a turned one


def _mouth(inside: int, open_px: float) -> tuple[np.ndarray, np.ndarray]:
    """A skin-coloured picture with red lips around a mouth of luma ``inside``, and its lip
    points (outer, then inner) for a mouth ``open_px`` tall."""
    image = np.full((120, 160, 3), (200, 160, 140), np.uint8)
    ang = np.linspace(0, 2 * np.pi, len(LIP_OUTER), endpoint=False)
    outer = np.stack([80 + 40 * np.cos(ang), 60 + (open_px / 2 + 12) * np.sin(ang)], axis=1)
    inner = np.stack([80 + 30 * np.cos(ang), 60 + open_px / 2 * np.sin(ang)], axis=1)
    cv2.fillPoly(image, [np.round(outer).astype(np.int32)], (170, 60, 70))
    if open_px > 0:
        cv2.fillPoly(image, [np.round(inner).astype(np.int32)], (inside,) * 3)
    assert len(inner) == len(LIP_INNER)
    return image, np.concatenate([outer, inner]).astype(np.float32)


def test_mouth_appearance_tells_a_dark_mouth_from_teeth_and_a_closed_mouth():
    dark = mouth_appearance(*_mouth(inside=15, open_px=20))
    teeth = mouth_appearance(*_mouth(inside=245, open_px=20))
    closed = mouth_appearance(*_mouth(inside=0, open_px=0))
    assert dark[0] < -2 and dark[2] > 0.8 and dark[1] < 0.1  # darker than the lips, all of it
    assert teeth[0] > 2 and teeth[1] > 0.8 and teeth[2] < 0.1  # brighter, all of it
    assert np.allclose(closed, 0, atol=1e-3)  # the inside is the lips themselves


def _face_points(mouth_xy: np.ndarray, eyes: tuple[tuple[float, float], ...]) -> np.ndarray:
    """``LANDMARKS`` (P, 2) with the lips of ``_mouth`` and the outer eye corners at ``eyes``."""
    pts = np.zeros((len(LANDMARKS), 2), np.float32)
    pts[: len(mouth_xy)] = mouth_xy
    pts[list(EYE_OUTER)] = eyes
    return pts


def test_mouth_patch_is_the_mouth_upright_and_turns_with_the_head():
    image, lips = _mouth(inside=15, open_px=20)
    pts = _face_points(lips, ((30.0, 10.0), (130.0, 10.0)))
    patch = mouth_patch(image, pts).astype(float)
    assert patch.shape == (PATCH_H, PATCH_W)
    # the dark mouth sits in the middle, lips and skin around it
    middle = patch[PATCH_H // 2 - 2 : PATCH_H // 2 + 1, PATCH_W // 2 - 4 : PATCH_W // 2 + 4]
    assert middle.mean() < 40 and patch[:, :2].mean() > 120 and patch[:, -2:].mean() > 120
    # the same face turned by 30 degrees about the mouth gives the same patch
    turn = cv2.getRotationMatrix2D((80.0, 60.0), 30, 1.0)
    turned = cv2.warpAffine(image, turn, (160, 120), borderMode=cv2.BORDER_REPLICATE)
    turned_pts = pts @ turn[:, :2].T + turn[:, 2]
    again = mouth_patch(turned, turned_pts.astype(np.float32)).astype(float)
    assert np.abs(again - patch).mean() < 8
    # a closed mouth shows its lips where the open one was dark
    closed = mouth_patch(_mouth(inside=0, open_px=0)[0], pts).astype(float)
    assert (
        closed[PATCH_H // 2 - 2 : PATCH_H // 2 + 1, PATCH_W // 2 - 4 : PATCH_W // 2 + 4].mean() > 60
    )


def test_a_track_cut_joined_and_trimmed_keeps_its_frames_aligned():
    track = Track(track_id=3)
    for i in range(6):
        track.times_s.append(float(i))
        track.points.append(np.full((len(LANDMARKS), 3), i, np.float32))
        track.boxes.append(np.full(4, i, np.float32))
        track.appearance.append(np.full(APPEARANCE_DIMS, i, np.float32))
    head, tail = track.part(0, 2), track.part(2)
    head.extend(tail)
    head.drop_first(1)
    times, points, boxes, appearance = head.arrays()
    assert head.track_id == 3 and times.tolist() == [1, 2, 3, 4, 5]
    for per_frame in (points, boxes, appearance):  # every list moved with the times
        assert per_frame.reshape(5, -1)[:, 0].tolist() == [1, 2, 3, 4, 5]
