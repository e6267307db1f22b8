"""Face detection and mouth tracking. The landmark library (mediapipe's legacy solutions API)
lives behind this file only, so another tracker can be swapped in here.

A full-range face detector runs every few frames on a reduced frame; each face becomes a track
with its own face-mesh graph, fed a square crop around the face so that small faces get the
mesh's full resolution. Tracks are cut at scene changes and when the face is lost.
"""

from __future__ import annotations

import bisect
import contextlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

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

DETECT_EVERY = 5  # run the face detector every this many frames (tracks carry in between)
DETECT_SIDE_PX = 640  # the detector sees the frame scaled to this longest side
MESH_CROP_PX = 256  # side of the square crop fed to the face mesh
CROP_SCALE = 1.7  # crop side relative to the face box
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
    x0, y0, x1, y1 in pixels of the decoded frame.
    """

    track_id: int
    times_s: list[float] = field(default_factory=list)
    points: list[np.ndarray] = field(default_factory=list)
    boxes: list[np.ndarray] = field(default_factory=list)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The track as arrays: times (N,), points (N, P, 3), boxes (N, 4)."""
        return (
            np.asarray(self.times_s, dtype=np.float64),
            np.stack(self.points).astype(np.float32),
            np.stack(self.boxes).astype(np.float32),
        )

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
        out.append(Track(tr.track_id, tr.times_s[:k], tr.points[:k], tr.boxes[:k]))
        del tr.times_s[:k], tr.points[:k], tr.boxes[:k]
    done[:] = [t for t in done if t.times_s]
    return sorted(out, key=lambda t: t.track_id)


class _LiveTrack:
    def __init__(self, track: Track, box: np.ndarray, mesh: object):
        self.track = track
        self.box = box  # x0, y0, x1, y1 of the face in frame pixels
        self.mesh = mesh
        self.misses = 0
        self.matched = True
        self.fail_streak = 0  # consecutive frames where the mesh found no face
        self.started = False


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


class FaceTracker:
    """Feed frames in time order with ``update``; ``finish`` returns every track.

    Holds no frames: only the current boxes and the landmarks kept so far.
    """

    def __init__(self, max_faces: int = MAX_FACES, detect_every: int = DETECT_EVERY):
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
        self._live: list[_LiveTrack] = []
        self._done: list[Track] = []
        self._frame_index = 0
        self._next_id = 0
        self._thumb: np.ndarray | None = None
        self.scene_cuts: list[float] = []

    def _new_mesh(self) -> object:
        with _quiet_stderr():
            return self._sol.face_mesh.FaceMesh(
                static_image_mode=False,
                max_num_faces=1,
                refine_landmarks=False,
                min_detection_confidence=0.5,
                min_tracking_confidence=0.5,
            )

    def _detect(self, rgb: np.ndarray) -> list[np.ndarray]:
        h, w = rgb.shape[:2]
        scale = min(1.0, DETECT_SIDE_PX / max(h, w))
        small = rgb
        if scale < 1.0:
            small = self._cv2.resize(
                rgb, (round(w * scale), round(h * scale)), interpolation=self._cv2.INTER_AREA
            )
        boxes: list[np.ndarray] = []
        for det in self._detectors:  # full range first; short range catches tight crops
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
                break
        boxes.sort(key=lambda b: -(b[2] - b[0]) * (b[3] - b[1]))
        return boxes[: self.max_faces]

    def _is_cut(self, rgb: np.ndarray) -> bool:
        gray = self._cv2.resize(rgb, (32, 32), interpolation=self._cv2.INTER_AREA).astype(
            np.float32
        )
        prev, self._thumb = self._thumb, gray
        return prev is not None and float(np.abs(gray - prev).mean()) > SCENE_CUT_DIFF

    def _end(self, live: _LiveTrack) -> None:
        live.mesh.close()  # type: ignore[attr-defined]
        if live.track.times_s and live.track.found_fraction > 0:
            self._done.append(live.track)

    def update(self, time_s: float, rgb: np.ndarray) -> None:
        """Track faces in one upright RGB frame (H, W, 3) uint8 shown at ``time_s``."""
        if self._is_cut(rgb):
            self.scene_cuts.append(time_s)
            for live in self._live:
                self._end(live)
            self._live = []
        if self._frame_index % self.detect_every == 0 or not self._live:
            self._associate(self._detect(rgb))
        self._frame_index += 1
        for live in self._live:
            self._mesh_step(live, time_s, rgb)
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
                track = Track(track_id=self._next_id)
                self._next_id += 1
                self._live.append(_LiveTrack(track, box, self._new_mesh()))
        keep = []
        for live in self._live:
            if not live.matched:
                live.misses += 1
            if live.misses >= LOST_AFTER_MISSES:
                self._end(live)
            else:
                keep.append(live)
        self._live = keep

    def _mesh_step(self, live: _LiveTrack, time_s: float, rgb: np.ndarray) -> None:
        h, w = rgb.shape[:2]
        x0, y0, x1, y1 = live.box
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        side = max(x1 - x0, y1 - y0) * CROP_SCALE
        sx0, sy0 = round(cx - side / 2), round(cy - side / 2)
        sx1, sy1 = sx0 + max(2, round(side)), sy0 + max(2, round(side))
        # pad where the crop leaves the frame so the face keeps its place in the crop
        crop = np.zeros((sy1 - sy0, sx1 - sx0, 3), dtype=np.uint8)
        ix0, iy0, ix1, iy1 = max(sx0, 0), max(sy0, 0), min(sx1, w), min(sy1, h)
        if ix1 > ix0 and iy1 > iy0:
            crop[iy0 - sy0 : iy1 - sy0, ix0 - sx0 : ix1 - sx0] = rgb[iy0:iy1, ix0:ix1]
        crop = self._cv2.resize(
            crop, (MESH_CROP_PX, MESH_CROP_PX), interpolation=self._cv2.INTER_AREA
        )
        if live.started:
            res = live.mesh.process(crop)  # type: ignore[attr-defined]
        else:
            with _quiet_stderr():  # the first call prints the delegate's banner
                res = live.mesh.process(crop)  # type: ignore[attr-defined]
            live.started = True
        k = (sx1 - sx0) / MESH_CROP_PX
        if res.multi_face_landmarks:
            lm = res.multi_face_landmarks[0].landmark
            pts = np.array([[lm[i].x, lm[i].y, lm[i].z] for i in LANDMARKS], dtype=np.float32)
            pts *= MESH_CROP_PX * k
            pts[:, 0] += sx0
            pts[:, 1] += sy0
            # follow the face with the mesh's own extent (smoothed) between detector rounds
            all_pts = pts[:, :2]
            mx0, my0 = all_pts.min(axis=0)
            mx1, my1 = all_pts.max(axis=0)
            mcx, mcy = (mx0 + mx1) / 2, (my0 + my1) / 2
            half = max(mx1 - mx0, my1 - my0) * 0.6
            new_box = np.array([mcx - half, mcy - half, mcx + half, mcy + half])
            live.box = 0.5 * live.box + 0.5 * new_box
            live.fail_streak = 0
        else:
            pts = np.full((len(LANDMARKS), 3), np.nan, dtype=np.float32)
            live.fail_streak += 1
        live.track.times_s.append(time_s)
        live.track.points.append(pts)
        live.track.boxes.append(np.asarray(live.box, dtype=np.float32))

    def drain(self, before_s: float) -> list[Track]:
        """Hand over (and forget) every track's frames shown before ``before_s``; tracks go on.
        Pieces keep their track's id, so a caller can join them."""
        return drain_tracks(self._done + [lt.track for lt in self._live], before_s, self._done)

    def finish(self) -> list[Track]:
        """End every live track and return all tracks in order of appearance."""
        for live in self._live:
            self._end(live)
        self._live = []
        for det in self._detectors:
            det.close()
        return sorted(self._done, key=lambda t: t.track_id)
