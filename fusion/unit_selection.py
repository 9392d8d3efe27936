"""Unit selection: which bank mouth each output frame shows, chosen once for the whole video.

Why a lattice and not the nearest unit per frame: the nearest unit jumps between recording frames
every frame, and a mouth that changes its teeth and tongue 25 times a second flickers even when
every single frame has the right shape. As in concatenative speech synthesis (Hunt & Black 1996) and
Video Rewrite, each frame has a target cost (weighted distance between the target's mouth channels
and the unit's) and each step a join cost: zero when the next unit is the recording's next frame
(a natural run), `repeat_cost` for holding the same unit, otherwise `join_cost` plus the shape
jump between the two units. A closure in the target (P, B, M: the lips must meet, and the quality
gate checks that they do) only accepts closed units unless none exist. Viterbi finds the cheapest
path through the top `candidates` units per frame, plus the `candidates` best run successors of the
previous frame's candidates (so long runs stay reachable while the lattice stays at most twice
`candidates` wide).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

WEIGHTS = np.array([1.0, 1.5, 1.5, 0.6, 0.3], np.float32)  # jaw_open, lip_width, lip_round, lip_closure, teeth
GAP_WEIGHT = 2.0  # the visible opening (jaw_open × (1 − closure)) counts most
BLOCK = 256  # target frames per distance block (bounded memory for long videos)
CLOSED = 0.8  # lip_closure from which a frame is a closure (P, B, M): only closed units may show it
CLOSURE_PENALTY = 1.0  # added to the target cost of an open unit at a closure (a hard preference)


@dataclass(frozen=True)
class SelectionOptions:
    candidates: int = 12
    join_cost: float = 0.08
    repeat_cost: float = 0.03
    pose_weight: float = 0.0  # target cost per degree between a unit's recorded (yaw, pitch) and the frame's


def embed(features: np.ndarray) -> np.ndarray:
    """Features → the space where Euclidean distance is the shape cost (weighted channels + gap)."""
    features = np.asarray(features, np.float32)
    gap = features[:, 0] * (1.0 - features[:, 3])
    return np.concatenate([features * WEIGHTS, (GAP_WEIGHT * gap)[:, None]], axis=1)


def _successors(frames: np.ndarray) -> np.ndarray:
    """Index of the unit recorded right after each unit, or -1 (end of a run, or a gap)."""
    following = np.full(len(frames), -1, np.int64)
    position = {int(f): i for i, f in enumerate(frames)}
    for i, f in enumerate(frames):
        following[i] = position.get(int(f) + 1, -1)
    return following


POSE_SLACK = 5.0  # degrees: units this much further from the frame's pose than the nearest unit cost nothing


def pose_cost(unit_pose: np.ndarray, frame_pose: np.ndarray, weight: float) -> np.ndarray:
    """(frames, units) extra target cost: `weight` per degree that a unit's recorded (yaw, pitch) is
    further from the frame's than the nearest unit's, beyond `POSE_SLACK`. Why in the target cost:
    a unit recorded at another pose lacks what the rendered view shows (the far cheek's side, the
    chin's underside) however well the warp turns it. Why relative and with slack: in a bank filmed
    frontal every unit is ~20° from a 20° frame, and the few degrees of pose noise between them must
    not outvote the mouth's shape (an absolute cost did: lip-sync fell from 0.33 to 0.30 on a ±20°
    recorded driver)."""
    delta = np.asarray(frame_pose, np.float32)[:, None, :] - np.asarray(unit_pose, np.float32)[None, :, :]
    distance = np.sqrt((delta**2).sum(-1))
    extra = distance - distance.min(axis=1, keepdims=True) - POSE_SLACK
    return weight * np.maximum(extra, 0.0)


def select_units(bank_features: np.ndarray, bank_frames: np.ndarray, targets: np.ndarray,
                 options: SelectionOptions = SelectionOptions(),
                 poses: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:  # fmt: skip
    """The unit index for every target frame (Viterbi over the candidate lattice). `poses`: the
    units' recorded (yaw, pitch) and every target frame's, in degrees (adds `pose_cost`)."""
    units, goal = embed(bank_features), embed(targets)
    count, k = len(goal), min(options.candidates, len(units))
    following = _successors(bank_frames)
    lattice: list[np.ndarray] = []
    costs: list[np.ndarray] = []
    for start in range(0, count, BLOCK):
        block = goal[start : start + BLOCK]
        distance = np.sqrt(np.maximum(((block[:, None, :] - units[None, :, :]) ** 2).sum(-1), 0.0))
        closing = targets[start : start + BLOCK, 3] >= CLOSED
        distance += CLOSURE_PENALTY * (closing[:, None] & (bank_features[None, :, 3] < CLOSED))
        if poses is not None and options.pose_weight > 0:
            distance += pose_cost(poses[0], poses[1][start : start + BLOCK], options.pose_weight)
        top = (
            np.argpartition(distance, k - 1, axis=1)[:, :k]
            if k < len(units)
            else np.tile(np.arange(len(units)), (len(block), 1))
        )
        for row in range(len(block)):
            candidates = top[row]
            if lattice:  # keep the runs alive: the best `k` successors of the previous frame's candidates
                runs = np.setdiff1d(following[lattice[-1]], candidates)
                runs = runs[runs >= 0]
                if len(runs) > k:
                    runs = runs[np.argpartition(distance[row, runs], k - 1)[:k]]
                candidates = np.concatenate([candidates, runs])
            lattice.append(candidates)
            costs.append(distance[row, candidates])
    total = costs[0].copy()
    back: list[np.ndarray] = []
    for t in range(1, count):
        prev, here = lattice[t - 1], lattice[t]
        jump = np.sqrt(((units[prev][:, None, :] - units[here][None, :, :]) ** 2).sum(-1))
        join = options.join_cost + jump
        join[following[prev][:, None] == here[None, :]] = 0.0
        join[prev[:, None] == here[None, :]] = options.repeat_cost
        step = total[:, None] + join
        best = np.argmin(step, axis=0)
        back.append(best)
        total = step[best, np.arange(len(here))] + costs[t]
    path = np.empty(count, np.int64)
    choice = int(np.argmin(total))
    for t in range(count - 1, -1, -1):
        path[t] = lattice[t][choice]
        if t > 0:
            choice = int(back[t - 1][choice])
    return path


def selection_error(bank_features: np.ndarray, path: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Per frame: the shape distance between the chosen unit and the target (the target cost)."""
    return np.linalg.norm(embed(bank_features[path]) - embed(targets), axis=1)


def run_lengths(bank_frames: np.ndarray, path: np.ndarray) -> np.ndarray:
    """Lengths of the runs of consecutive recorded frames (or held units) along a path."""
    frames = np.asarray(bank_frames)[path]
    breaks = np.flatnonzero(~np.isin(np.diff(frames), (0, 1))) + 1
    edges = np.concatenate([[0], breaks, [len(frames)]])
    return np.diff(edges)
