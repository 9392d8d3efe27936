"""BlazeFace short-range face detector (MediaPipe, Apache-2.0) running as ONNX.

The model predicts 896 anchor-relative boxes with six keypoints each; decoding and non-maximum
suppression are done here in NumPy so the detector needs nothing but onnxruntime.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from vision.providers import create_session

INPUT_SIZE = 128
RAW_SCORE_LIMIT = 80.0


@dataclass(frozen=True)
class Detection:
    """A face box in image pixels with its six keypoints (eyes, nose, mouth, ears) and score."""

    box: tuple[float, float, float, float]  # x0, y0, x1, y1
    keypoints: np.ndarray  # (6, 2) pixels: right eye, left eye, nose, mouth, right ear, left ear
    score: float

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]


def _anchors() -> np.ndarray:
    """Anchor centres of the short-range model: strides 8,16,16,16 with 2 anchors per layer."""
    centres: list[tuple[float, float]] = []
    layer_strides = [8, 16, 16, 16]
    index = 0
    while index < len(layer_strides):
        stride = layer_strides[index]
        repeats = 0
        while index < len(layer_strides) and layer_strides[index] == stride:
            repeats += 2
            index += 1
        size = INPUT_SIZE // stride
        for y in range(size):
            for x in range(size):
                centres.extend([((x + 0.5) / size, (y + 0.5) / size)] * repeats)
    return np.asarray(centres, dtype=np.float32)


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    x0 = np.maximum(box[0], boxes[:, 0])
    y0 = np.maximum(box[1], boxes[:, 1])
    x1 = np.minimum(box[2], boxes[:, 2])
    y1 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-9)


class FaceDetector:
    """Detects faces in a BGR image; returns them sorted by score."""

    def __init__(self, model_path: Path, min_score: float = 0.55, iou_threshold: float = 0.3) -> None:
        self.session = create_session(model_path)
        self.input_name = self.session.get_inputs()[0].name
        self.anchors = _anchors()
        self.min_score = min_score
        self.iou_threshold = iou_threshold

    def _letterbox(self, image_bgr: np.ndarray) -> tuple[np.ndarray, float, float, float]:
        height, width = image_bgr.shape[:2]
        scale = INPUT_SIZE / max(height, width)
        new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
        resized = cv2.resize(image_bgr, (new_w, new_h), interpolation=cv2.INTER_AREA)
        canvas = np.zeros((INPUT_SIZE, INPUT_SIZE, 3), dtype=np.uint8)
        pad_x, pad_y = (INPUT_SIZE - new_w) // 2, (INPUT_SIZE - new_h) // 2
        canvas[pad_y : pad_y + new_h, pad_x : pad_x + new_w] = resized
        return canvas, scale, pad_x, pad_y

    def detect(self, image_bgr: np.ndarray) -> list[Detection]:
        canvas, scale, pad_x, pad_y = self._letterbox(image_bgr)
        rgb = cv2.cvtColor(canvas, cv2.COLOR_BGR2RGB).astype(np.float32) / 127.5 - 1.0
        tensor = np.ascontiguousarray(rgb.transpose(2, 0, 1)[None])
        raw_boxes, raw_scores = self.session.run(None, {self.input_name: tensor})
        logits = np.clip(raw_scores.reshape(-1), -RAW_SCORE_LIMIT, RAW_SCORE_LIMIT)
        scores = 1.0 / (1.0 + np.exp(-logits))
        keep = np.flatnonzero(scores >= self.min_score)
        if keep.size == 0:
            return []
        raw = raw_boxes.reshape(-1, 8, 2)[keep] / INPUT_SIZE
        centre = raw[:, 0] + self.anchors[keep]
        size = raw[:, 1]
        points = raw[:, 2:] + self.anchors[keep][:, None, :]
        boxes = np.concatenate([centre - size / 2, centre + size / 2], axis=1)
        order = np.argsort(-scores[keep])
        detections: list[Detection] = []
        taken = np.zeros(len(keep), dtype=bool)
        for i in order:
            if taken[i]:
                continue
            overlap = _iou(boxes[i], boxes) >= self.iou_threshold
            group = np.flatnonzero(overlap & ~taken)
            taken |= overlap
            weights = scores[keep][group][:, None]
            box = (boxes[group] * weights).sum(0) / weights.sum()
            kps = (points[group] * weights[:, :, None]).sum(0) / weights.sum()
            to_px = np.array([INPUT_SIZE, INPUT_SIZE], dtype=np.float32)
            offset = np.array([pad_x, pad_y], dtype=np.float32)
            box_px = ((box.reshape(2, 2) * to_px - offset) / scale).reshape(-1)
            kps_px = (kps * to_px - offset) / scale
            detections.append(
                Detection(box=tuple(float(v) for v in box_px), keypoints=kps_px, score=float(scores[keep][i]))
            )
        return detections

    def detect_tiles(self, image_bgr: np.ndarray) -> list[Detection]:
        """Faces too small for `detect`, in square tiles of half the short side, overlapping by half.

        `detect` squeezes the whole frame into 128 px, and the short-range model finds faces down to
        about 17 px there: a 1080p frame hides any face under ~260 px wide (measured with the sample
        portrait), a person in the background among them. A tile of 540 px brings that to ~70 px;
        the half-tile overlap puts every face that fits a tile wholly inside one. 21 tiles for 1080p,
        ~60 ms of CPU, so callers sample frames with it. A face cut by a tile's edge may be found in part:
        detections whose centre lies inside a stronger one's box are dropped."""
        height, width = image_bgr.shape[:2]
        side = max(min(height, width) // 2, INPUT_SIZE)
        found: list[Detection] = []
        for y in _tile_starts(height, side):
            for x in _tile_starts(width, side):
                offset = np.array([x, y], np.float32)
                for d in self.detect(image_bgr[y : y + side, x : x + side]):
                    x0, y0, x1, y1 = d.box
                    found.append(Detection((x0 + x, y0 + y, x1 + x, y1 + y), d.keypoints + offset, d.score))
        kept: list[Detection] = []
        for d in sorted(found, key=lambda d: -d.score):
            cx, cy = (d.box[0] + d.box[2]) / 2, (d.box[1] + d.box[3]) / 2
            if not any(k.box[0] <= cx <= k.box[2] and k.box[1] <= cy <= k.box[3] for k in kept):
                kept.append(d)
        return kept


def _tile_starts(length: int, side: int) -> list[int]:
    """Tile origins along one axis: every half tile, the last one flush with the edge."""
    if length <= side:
        return [0]
    return [*range(0, length - side, side // 2), length - side]
