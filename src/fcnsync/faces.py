"""Face detection and mouth tracking. The landmark library (mediapipe's legacy solutions API)
lives behind this file only, so another tracker can be swapped in here.

A face detector runs sparsely on a reduced frame (every few frames while no face is followed,
about once a second while one is); each face becomes a track fed to the face mesh as a square
crop around the face, so that small faces get the mesh's full resolution. The mesh runs on every
frame and is most of the work, so each track's mesh graph runs on a thread of its own (the
library releases the GIL) while decoding and cropping go on: a frame's crop is placed from the
mesh results of the frames ``MESH_LAG`` back. (Two graphs taking alternate frames would be
faster still, but each tracks the face its own way and the landmarks then jitter from frame to
frame.) Tracks are cut at scene changes and when the face is lost.
"""

from __future__ import annotations

import bisect
import contextlib
import os
import sys
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np

from .media import VideoFrame

os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# 20 outer + 20 inner lip contour points of the 468-point face mesh, in contour order.
LIP_OUTER = [
    61,
    146,
    91,
    181,
    84,
    17,
    314,
    405,
    321,
    375,
    291,
    409,
    270,
    269,
    267,
    0,
    37,
    39,
    40,
    185,
]
LIP_INNER = [
    78,
    95,
    88,
    178,
    87,
    14,
    317,
    402,
    318,
    324,
    308,
    415,
    310,
    311,
    312,
    13,
    82,
    81,
    80,
    191,
]
# Points that move with the head but not with speech: eye corners, nose bridge and tip, forehead,
# cheekbones, temples. Used to undo head pose.
RIGID = [33, 133, 362, 263, 168, 6, 197, 1, 10, 151, 234, 454, 127, 356, 50, 280]
LANDMARKS = LIP_OUTER + LIP_INNER + RIGID  # the points a Track keeps, in this order
N_LIP = len(LIP_OUTER) + len(LIP_INNER)
EYE_OUTER = (LANDMARKS.index(33), LANDMARKS.index(263))  # indices into a Track's points
UPPER_INNER, LOWER_INNER = LANDMARKS.index(13), LANDMARKS.index(14)
FACE_TOP, NOSE_TIP = LANDMARKS.index(10), LANDMARKS.index(1)  # their distance: a face size

DETECT_EVERY = 5  # frames between detector rounds while no face is followed
REDETECT_EVERY = 25  # frames between detector rounds while faces are followed (new faces)
# frames a face's crop may be placed behind the mesh results (frames in flight): with 2 the next
# crop is cut while the mesh works on the last one, instead of after it
MESH_LAG = 2
DETECT_SIDE_PX = 640  # the detector sees the frame scaled to this longest side
MESH_CROP_PX = 256  # side of the square crop fed to the face mesh
CROP_SCALE = 1.7  # crop side relative to the face box
SUMMARY_DIMS = 3  # values per frame of ``mouth_appearance``
# an upright grey patch of the mouth per frame (``mouth_patch``): rows x columns, its width in
# outer-eye-corner distances, and its centre below the mouth corners' midpoint in the same unit
PATCH_H, PATCH_W = 16, 24
PATCH_DIMS = PATCH_H * PATCH_W
PATCH_WIDTH_EYES = 0.9
PATCH_DROP_EYES = 0.05
PATCH_OVERSAMPLE = 4  # warped at this many times the patch's size, then averaged down
APPEARANCE_DIMS = SUMMARY_DIMS + PATCH_DIMS  # values per frame of ``appearance_of``
APPEARANCE_MIN_SPREAD = 4.0  # luma levels added to the lips' spread: flat lips are not blown up
MIN_FACE_PX = 24  # smaller faces are ignored: no lip detail left
MAX_FACES = 4
SCENE_CUT_DIFF = 40.0  # mean absolute difference (0..255) of 32x32 thumbnails that marks a cut
MESH_FAILS_TO_DROP = 8  # consecutive mesh failures that end a track
LOST_AFTER_MISSES = 2  # a track ends after this many detector rounds without its face


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence native log lines (TFLite, glog) that the landmark library prints on fd 2."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    try:
        yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)
        os.close(devnull)


_NATIVE_STDERR_SILENCED = False


def silence_native_stderr() -> None:
    """Send what native code writes on fd 2 (the landmark library's log threads print at any
    time) to /dev/null for the rest of the process, while Python's ``sys.stderr`` keeps
    writing to the real stderr. Idempotent."""
    global _NATIVE_STDERR_SILENCED
    if _NATIVE_STDERR_SILENCED:
        return
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        return  # stderr is not a file (captured): nothing native can reach it anyway
    sys.stderr.flush()
    real = os.dup(fd)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)
    sys.stderr = os.fdopen(
        real, "w", buffering=1, encoding=sys.stderr.encoding, errors="backslashreplace"
    )
    _NATIVE_STDERR_SILENCED = True


def _mp():  # type: ignore[no-untyped-def]
    with _quiet_stderr():
        import mediapipe as mp  # noqa: PLC0415 - heavy import, kept out of module import time
    return mp.solutions


@dataclass
class Track:
    """One face followed through consecutive frames.

    ``times_s`` (N,) frame times; ``points`` (N, P, 3) float32 pixel coordinates of
    ``LANDMARKS`` (x, y, z with z in x's scale), NaN where the mesh failed; ``boxes`` (N, 4)
    x0, y0, x1, y1 in pixels of the decoded frame; ``appearance`` (N, APPEARANCE_DIMS) float32,
    ``appearance_of`` per frame, NaN where the mesh failed.
    """

    track_id: int
    times_s: list[float] = field(default_factory=list)
    points: list[np.ndarray] = field(default_factory=list)
    boxes: list[np.ndarray] = field(default_factory=list)
    appearance: list[np.ndarray] = field(default_factory=list)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The track as arrays: times (N,), points (N, P, 3), boxes (N, 4), appearance
        (N, APPEARANCE_DIMS)."""
        return (
            np.asarray(self.times_s, dtype=np.float64),
            np.stack(self.points).astype(np.float32),
            np.stack(self.boxes).astype(np.float32),
            np.stack(self.appearance).astype(np.float32).reshape(-1, APPEARANCE_DIMS),
        )

    def part(self, start: int, stop: int | None = None) -> Track:
        """Frames ``start:stop`` as a track of the same id."""
        sl = slice(start, stop)
        return Track(
            self.track_id,
            self.times_s[sl],
            self.points[sl],
            self.boxes[sl],
            self.appearance[sl],
        )

    def extend(self, later: Track) -> None:
        """Append the frames of ``later`` (the same face, after these)."""
        self.times_s += later.times_s
        self.points += later.points
        self.boxes += later.boxes
        self.appearance += later.appearance

    def drop_first(self, k: int) -> None:
        """Forget the first ``k`` frames."""
        del self.times_s[:k], self.points[:k], self.boxes[:k], self.appearance[:k]

    @property
    def found_fraction(self) -> float:
        if not self.points:
            return 0.0
        return float(np.mean([np.isfinite(p[0, 0]) for p in self.points]))


def drain_tracks(tracks: list[Track], before_s: float, done: list[Track]) -> list[Track]:
    """Split off the frames before ``before_s`` of ``tracks``; empty tracks leave ``done``."""
    out = []
    for tr in tracks:
        k = bisect.bisect_left(tr.times_s, before_s)
        if k == 0:
            continue
        out.append(tr.part(0, k))
        tr.drop_first(k)
    done[:] = [t for t in done if t.times_s]
    return sorted(out, key=lambda t: t.track_id)


def mouth_appearance(image: np.ndarray, lips_xy: np.ndarray) -> np.ndarray:
    """What the lip contour does not show (a dark mouth, teeth, the tongue), from the pixels.

    ``image`` (H, W, 3) uint8 RGB; ``lips_xy`` (N_LIP, 2) the ``LIP_OUTER`` then ``LIP_INNER``
    points in its pixels. The mean luma inside the inner
    lips against the lips' own (in units of the lips' spread), and the fractions of the inside
    brighter and darker than the lips by that spread; zeros for a closed mouth.
    Returns (SUMMARY_DIMS,) float32.
    """
    import cv2  # noqa: PLC0415 - ships with the landmark library; loaded once the tracker runs

    h, w = image.shape[:2]
    n_outer = len(LIP_OUTER)
    lo = np.clip(lips_xy[:n_outer].min(axis=0), 0, (w - 1, h - 1))
    hi = np.clip(lips_xy[:n_outer].max(axis=0), 0, (w - 1, h - 1))
    x0, y0, x1, y1 = int(lo[0]), int(lo[1]), int(np.ceil(hi[0])) + 1, int(np.ceil(hi[1])) + 1
    closed = np.zeros(SUMMARY_DIMS, dtype=np.float32)
    if x1 - x0 < 4 or y1 - y0 < 4:
        return closed
    luma = cv2.cvtColor(image[y0:y1, x0:x1].astype(np.float32), cv2.COLOR_RGB2GRAY)
    region = np.zeros(luma.shape, np.uint8)  # 1: the lips, 2: the mouth inside them
    pts = np.round(lips_xy - (x0, y0)).astype(np.int32)
    cv2.fillPoly(region, [pts[:n_outer]], 1)
    cv2.fillPoly(region, [pts[n_outer:N_LIP]], 2)
    lips = luma[region == 1]
    inside = luma[region == 2]
    if len(lips) < 4 or len(inside) < 3:
        return closed
    mu, spread = float(lips.mean()), float(lips.std()) + APPEARANCE_MIN_SPREAD
    return np.array(
        [
            (inside.mean() - mu) / spread,
            (inside > mu + spread).mean(),
            (inside < mu - spread).mean(),
        ],
        dtype=np.float32,
    )


def mouth_patch(image: np.ndarray, pts_xy: np.ndarray) -> np.ndarray:
    """The mouth as the model sees its pixels: an upright grey patch (PATCH_H, PATCH_W) uint8,
    turned and scaled by the outer eye corners (so the lips' own motion stays in it), centred
    just below the mouth corners. ``image`` (H, W, 3) uint8 RGB; ``pts_xy`` (P, 2) the
    ``LANDMARKS`` in its pixels."""
    import cv2  # noqa: PLC0415 - ships with the landmark library; loaded once the tracker runs

    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    eye_l, eye_r = pts_xy[EYE_OUTER[0]], pts_xy[EYE_OUTER[1]]
    d = float(np.linalg.norm(eye_r - eye_l))
    ux = (eye_r - eye_l) / max(d, 1e-6)
    uy = np.array([-ux[1], ux[0]])
    width = PATCH_WIDTH_EYES * d
    height = width * PATCH_H / PATCH_W
    corners = (pts_xy[0] + pts_xy[len(LIP_OUTER) // 2]) / 2
    centre = corners + PATCH_DROP_EYES * d * uy
    big_w, big_h = PATCH_W * PATCH_OVERSAMPLE, PATCH_H * PATCH_OVERSAMPLE
    a, b = width / big_w, height / big_h
    origin = centre - width / 2 * ux - height / 2 * uy + 0.5 * (a * ux + b * uy)
    m = np.array([[a * ux[0], b * uy[0], origin[0]], [a * ux[1], b * uy[1], origin[1]]])
    big = cv2.warpAffine(
        grey,
        m,
        (big_w, big_h),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REPLICATE,
    )
    return cast(np.ndarray, cv2.resize(big, (PATCH_W, PATCH_H), interpolation=cv2.INTER_AREA))


def appearance_of(image: np.ndarray, pts_xy: np.ndarray) -> np.ndarray:
    """A frame's ``appearance`` (APPEARANCE_DIMS,) float32: ``mouth_appearance`` then the
    ``mouth_patch``'s pixels, row by row. ``pts_xy`` (P, 2): the ``LANDMARKS`` in ``image``'s
    pixels."""
    return np.concatenate(
        [mouth_appearance(image, pts_xy[:N_LIP]), mouth_patch(image, pts_xy).reshape(-1)]
    ).astype(np.float32)


_Found = tuple[np.ndarray, np.ndarray] | None  # a frame's mesh points and mouth appearance


@dataclass
class _MeshJob:
    """One frame's crop handed to a mesh graph: the result comes back as crop-relative points
    and the mouth's appearance (None where the mesh found no face)."""

    result: Future[_Found]
    time_s: float
    origin: tuple[int, int]  # crop's top-left corner in frame pixels
    px_per_unit: float  # frame pixels per unit of the mesh's normalised coordinates


class _LiveTrack:
    def __init__(self, track: Track, box: np.ndarray, mesh: object, worker: Executor | None):
        self.track = track
        self.box = box  # x0, y0, x1, y1 of the face in frame pixels
        self.mesh = mesh
        self.worker = worker  # the one thread that runs this track's mesh, in frame order
        self.jobs: deque[_MeshJob] = deque()  # frames sent to the mesh, oldest first
        self.misses = 0
        self.matched = True
        self.fail_streak = 0  # consecutive frames where the mesh found no face


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


Picture = VideoFrame | np.ndarray  # what the tracker is fed: a decoded frame or RGB


def _size(image: Picture) -> tuple[int, int]:
    """(width, height) of the upright picture."""
    if isinstance(image, np.ndarray):
        return image.shape[1], image.shape[0]
    return image.width, image.height


def _rgb(image: Picture) -> np.ndarray:
    return image if isinstance(image, np.ndarray) else image.rgb


def _padded(pixels: np.ndarray, x0: int, y0: int, x1: int, y1: int, fill: int) -> np.ndarray:
    """``pixels[y0:y1, x0:x1]`` with ``fill`` where the box leaves the array."""
    h, w = pixels.shape[:2]
    out = np.full((y1 - y0, x1 - x0, *pixels.shape[2:]), fill, dtype=np.uint8)
    ix0, iy0, ix1, iy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if ix1 > ix0 and iy1 > iy0:
        out[iy0 - y0 : iy1 - y0, ix0 - x0 : ix1 - x0] = pixels[iy0:iy1, ix0:ix1]
    return out


def _whole_blocks(a: int, b: int, block: int) -> tuple[int, int]:
    """[a, b) trimmed about its centre to a whole number of ``block``s (a stays even)."""
    length = b - a
    trim = length % block
    a += trim // 4 * 2
    return a, a + length - trim


def _block_mean(cv2: Any, plane: np.ndarray, k: int) -> np.ndarray:
    """``plane`` averaged over k x k blocks (its sides are multiples of k); as is for k = 1."""
    if k < 2:
        return plane
    h, w = plane.shape
    return cast(np.ndarray, cv2.resize(plane, (w // k, h // k), interpolation=cv2.INTER_AREA))


def _crop(cv2: Any, image: Picture, x0: int, y0: int, side: int) -> np.ndarray:
    """The square of ``side`` upright pixels at (``x0``, ``y0``) as (MESH_CROP_PX, MESH_CROP_PX,
    3) RGB, black outside the picture, resampled by pixel area (as the shipped model's training
    crops were: its landmarks are sensitive to the resampling). From a 4:2:0 frame only the
    crop is converted, cut from the stored planes."""
    out, area = MESH_CROP_PX, cv2.INTER_AREA
    planes = None if isinstance(image, np.ndarray) else image.yuv420()
    if planes is None:
        crop = _padded(_rgb(image), x0, y0, x0 + side, y0 + side, 0)
        return cast(np.ndarray, cv2.resize(crop, (out, out), interpolation=area))
    assert not isinstance(image, np.ndarray)
    bx0, by0, bx1, by1 = image.stored_box(x0, y0, x0 + side, y0 + side)
    # even edges, so that the chroma planes cover the same pixels
    rx0, ry0 = 2 * int(np.floor(bx0 / 2)), 2 * int(np.floor(by0 / 2))
    rx1, ry1 = max(rx0 + 2, 2 * round(bx1 / 2)), max(ry0 + 2, 2 * round(by1 / 2))
    # A crop of at least twice the mesh's side is first averaged over k x k blocks (cv2's fast
    # integer path), then resampled by area: near the same pixels as one area resampling, at a
    # third of its cost on a large face. The box is trimmed to whole blocks of both planes,
    # about its centre (at most 2k - 1 pixels: under one pixel of the crop).
    k = min(rx1 - rx0, ry1 - ry0) // out
    if k >= 2:
        rx0, rx1 = _whole_blocks(rx0, rx1, 2 * k)
        ry0, ry1 = _whole_blocks(ry0, ry1, 2 * k)
    y = _padded(planes[0], rx0, ry0, rx1, ry1, 16)  # limited-range black
    u, v = (_padded(p, rx0 // 2, ry0 // 2, rx1 // 2, ry1 // 2, 128) for p in planes[1:])
    turn = image.rotation // 90
    y, u, v = (
        cv2.resize(np.rot90(_block_mean(cv2, p, k), turn), (n, n), interpolation=area)
        for p, n in ((y, out), (u, out // 2), (v, out // 2))
    )
    i420 = np.concatenate([y.reshape(-1), u.reshape(-1), v.reshape(-1)]).reshape(out * 3 // 2, out)
    return cast(np.ndarray, cv2.cvtColor(i420, cv2.COLOR_YUV2RGB_I420))


def _mesh_points(mesh: object, crop: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """``LANDMARKS`` of the one face in ``crop`` as (P, 3) in the mesh's normalised units, and
    the mouth's appearance in it (run on the mesh's thread, beside the caller's work)."""
    res = mesh.process(crop)  # type: ignore[attr-defined]
    if not res.multi_face_landmarks:
        return None
    lm = res.multi_face_landmarks[0].landmark
    pts = np.array([[lm[i].x, lm[i].y, lm[i].z] for i in LANDMARKS], dtype=np.float32)
    return pts, appearance_of(crop, pts[:, :2] * crop.shape[1])


class FaceTracker:
    """Feed frames in time order with ``update``; ``finish`` returns every track.

    Holds no frames: only the current boxes, at most ``MESH_LAG`` crops per face in flight, and
    the landmarks kept so far. ``threads`` > 1 runs each face's mesh on a thread beside the
    caller's; the landmarks are the same either way, because a crop is always placed from the
    results of the frames ``MESH_LAG`` back.
    """

    def __init__(
        self,
        max_faces: int = MAX_FACES,
        detect_every: int = DETECT_EVERY,
        redetect_every: int = REDETECT_EVERY,
        threads: int = 2,
    ):
        import cv2  # noqa: PLC0415 - ships with the landmark library

        self._cv2 = cv2
        sol = _mp()
        self._sol = sol
        with _quiet_stderr():
            self._detectors = [
                sol.face_detection.FaceDetection(model_selection=1, min_detection_confidence=0.5),
                sol.face_detection.FaceDetection(model_selection=0, min_detection_confidence=0.5),
            ]
        self.max_faces = max_faces
        self.detect_every = detect_every
        self.redetect_every = redetect_every
        self._threaded = threads > 1
        self._live: list[_LiveTrack] = []
        self._done: list[Track] = []
        self._since_detect: int | None = None  # frames since the last detector round
        self._next_id = 0
        self._thumb: np.ndarray | None = None
        self.scene_cuts: list[float] = []

    def _new_track(self, box: np.ndarray) -> _LiveTrack:
        with _quiet_stderr():
            mesh = self._sol.face_mesh.FaceMesh(
                static_image_mode=False,
                max_num_faces=1,
                refine_landmarks=False,
                min_detection_confidence=0.5,
                min_tracking_confidence=0.5,
            )
            # the first call prints the delegate's banner: make it here, silenced
            mesh.process(np.zeros((MESH_CROP_PX, MESH_CROP_PX, 3), dtype=np.uint8))
        worker = ThreadPoolExecutor(1, "fcnsync-mesh") if self._threaded else None
        track = Track(track_id=self._next_id)
        self._next_id += 1
        return _LiveTrack(track, box, mesh, worker)

    @staticmethod
    def _run(live: _LiveTrack, fn: Callable[[], _Found]) -> Future[_Found]:
        if live.worker is not None:
            return live.worker.submit(fn)
        done: Future[_Found] = Future()
        try:
            done.set_result(fn())
        except Exception as exc:  # noqa: BLE001 - re-raised by .result(), as a thread's would be
            done.set_exception(exc)
        return done

    def _detect(self, image: Picture) -> list[np.ndarray]:
        w, h = _size(image)
        if isinstance(image, np.ndarray):
            scale = min(1.0, DETECT_SIDE_PX / max(h, w))
            small = image
            if scale < 1.0:
                small = self._cv2.resize(
                    image, (round(w * scale), round(h * scale)), interpolation=self._cv2.INTER_AREA
                )
        else:
            small = image.rgb_within(DETECT_SIDE_PX)
        boxes: list[np.ndarray] = []
        for i, det in enumerate(self._detectors):
            with _quiet_stderr():
                res = det.process(small)
            for d in res.detections or []:
                bb = d.location_data.relative_bounding_box
                box = np.array(
                    [bb.xmin * w, bb.ymin * h, (bb.xmin + bb.width) * w, (bb.ymin + bb.height) * h]
                )
                if min(box[2] - box[0], box[3] - box[1]) >= MIN_FACE_PX:
                    if all(_iou(box, b) < 0.3 for b in boxes):
                        boxes.append(box)
            if boxes:
                if i:  # the other range found the faces: ask it first next time
                    self._detectors.insert(0, self._detectors.pop(i))
                break
        boxes.sort(key=lambda b: -(b[2] - b[0]) * (b[3] - b[1]))
        return boxes[: self.max_faces]

    def _is_cut(self, image: Picture) -> bool:
        planes = None if isinstance(image, np.ndarray) else image.yuv420()
        pixels = planes[0] if planes is not None else _rgb(image)  # luma where it is at hand
        step = max(1, min(pixels.shape[:2]) // 128)  # average ~4x4 samples per cell, not all
        thumb = self._cv2.resize(
            pixels[::step, ::step], (32, 32), interpolation=self._cv2.INTER_AREA
        ).astype(np.float32)
        prev, self._thumb = self._thumb, thumb
        return prev is not None and float(np.abs(thumb - prev).mean()) > SCENE_CUT_DIFF

    def _end(self, live: _LiveTrack) -> None:
        self._collect(live, keep=0)
        live.mesh.close()  # type: ignore[attr-defined]
        if live.worker is not None:
            live.worker.shutdown()
        if live.track.times_s and live.track.found_fraction > 0:
            self._done.append(live.track)

    def update(self, time_s: float, image: Picture) -> None:
        """Track faces in one picture shown at ``time_s``: a decoded ``media.VideoFrame`` (only
        the face crops are converted to RGB on most frames) or an upright RGB array (H, W, 3)
        uint8."""
        cut = self._is_cut(image)
        if cut:
            self.scene_cuts.append(time_s)
            for live in self._live:
                self._end(live)
            self._live = []
        every = self.redetect_every if self._live else self.detect_every
        if cut or self._since_detect is None or self._since_detect + 1 >= every:
            boxes = self._detect(image)  # while the meshes finish the frames in flight
            for live in self._live:
                self._collect(live, keep=0)
            self._associate(boxes)
            self._since_detect = 0
        else:
            self._since_detect += 1
        for live in self._live:
            self._collect(live, keep=MESH_LAG - 1)
            self._send(live, time_s, image)
        # a detection the mesh cannot confirm is no face (posters, patterns): drop it early
        lost = [lt for lt in self._live if lt.fail_streak >= MESH_FAILS_TO_DROP]
        for live in lost:
            self._end(live)
        self._live = [lt for lt in self._live if lt not in lost]

    def _associate(self, boxes: list[np.ndarray]) -> None:
        for live in self._live:
            live.matched = False
        for box in boxes:
            best = max(self._live, key=lambda lt: _iou(lt.box, box), default=None)
            if best is not None and _iou(best.box, box) > 0.2 and not best.matched:
                best.matched = True
                best.misses = 0
                continue
            if len(self._live) < self.max_faces and all(
                _iou(lt.box, box) < 0.2 for lt in self._live
            ):
                self._live.append(self._new_track(box))
        keep = []
        for live in self._live:
            if not live.matched:
                live.misses += 1
            if live.misses >= LOST_AFTER_MISSES:
                self._end(live)
            else:
                keep.append(live)
        self._live = keep

    def _send(self, live: _LiveTrack, time_s: float, image: Picture) -> None:
        """Crop the face at its current box and hand the crop to its mesh."""
        x0, y0, x1, y1 = live.box
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        side = max(2, round(max(x1 - x0, y1 - y0) * CROP_SCALE))
        sx0, sy0 = round(cx - side / 2), round(cy - side / 2)
        crop = _crop(self._cv2, image, sx0, sy0, side)
        mesh = live.mesh
        job = self._run(live, lambda: _mesh_points(mesh, crop))
        live.jobs.append(_MeshJob(job, time_s, (sx0, sy0), float(side)))

    def _collect(self, live: _LiveTrack, keep: int) -> None:
        """Take the mesh results of a track's oldest frames until ``keep`` remain in flight."""
        while len(live.jobs) > keep:
            job = live.jobs.popleft()
            found = job.result.result()
            if found is not None:
                pts, appearance = found
                pts = pts * job.px_per_unit
                pts[:, 0] += job.origin[0]
                pts[:, 1] += job.origin[1]
                # follow the face with the mesh's own extent (smoothed) between detector rounds
                (mx0, my0), (mx1, my1) = pts[:, :2].min(axis=0), pts[:, :2].max(axis=0)
                mcx, mcy = (mx0 + mx1) / 2, (my0 + my1) / 2
                half = max(mx1 - mx0, my1 - my0) * 0.6
                new_box = np.array([mcx - half, mcy - half, mcx + half, mcy + half])
                live.box = 0.5 * live.box + 0.5 * new_box
                live.fail_streak = 0
            else:
                pts = np.full((len(LANDMARKS), 3), np.nan, dtype=np.float32)
                appearance = np.full(APPEARANCE_DIMS, np.nan, dtype=np.float32)
                live.fail_streak += 1
            live.track.times_s.append(job.time_s)
            live.track.points.append(pts)
            live.track.appearance.append(appearance)
            live.track.boxes.append(np.asarray(live.box, dtype=np.float32))

    def drain(self, before_s: float) -> list[Track]:
        """Hand over (and forget) every track's frames shown before ``before_s``; tracks go on.
        Pieces keep their track's id, so a caller can join them."""
        for live in self._live:
            self._collect(live, keep=0)
        return drain_tracks(self._done + [lt.track for lt in self._live], before_s, self._done)

    def finish(self) -> list[Track]:
        """End every live track and return all tracks in order of appearance."""
        for live in self._live:
            self._end(live)
        self._live = []
        for det in self._detectors:
            det.close()
        return sorted(self._done, key=lambda t: t.track_id)
