"""Grasp episodes of the Shadow Hand (:mod:`~.shadow_hand`): the task side, physics apart.

An episode places one object on the palm (class :data:`OBJECT_CLASSES`: four shapes in two
sizes, the size jittered), closes the hand with a power-grasp synergy (:data:`CLOSED`,
per-episode amplitude and per-finger variation), holds, and opens again, over
:data:`FRAMES` frames at :data:`RATE_HZ` (2 s). Every frame records, from one physics
state, the 92 touch readings and the hand-object contacts (body, point in the body's frame,
normal force): the robot hand's skin reads the first, other skins (a glove on a human hand
retargeted from the same grasp) are read from the second. The same seed gives the same
episode.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from embodied_transfer.sim.errors import SimError
from embodied_transfer.sim.shadow_hand import ShadowHand

RATE_HZ = 40.0
FRAMES = 80
#: Object class → (shape, size scale): what the hand holds, and what a policy must tell by touch.
OBJECT_CLASSES: dict[str, tuple[str, float]] = {
    "small_sphere": ("sphere", 0.8), "large_sphere": ("sphere", 1.2),
    "small_box": ("box", 0.8), "large_box": ("box", 1.15),
    "thin_cylinder": ("cylinder", 0.7), "thick_cylinder": ("cylinder", 1.15),
    "small_capsule": ("capsule", 0.8), "large_capsule": ("capsule", 1.2),
}
CLASS_NAMES = tuple(OBJECT_CLASSES)
#: Position targets of the closed power grasp (actuator → rad; the others stay at 0).
CLOSED: dict[str, float] = {
    "A_FFJ2": 1.3, "A_FFJ1": 1.3, "A_MFJ2": 1.3, "A_MFJ1": 1.3, "A_RFJ2": 1.3,
    "A_RFJ1": 1.3, "A_LFJ2": 1.3, "A_LFJ1": 1.3, "A_LFJ4": 0.3,
    "A_THJ4": 1.0, "A_THJ3": 1.0, "A_THJ1": 0.3, "A_THJ0": -0.6,
}
SETTLE_S = 0.1          # object settles on the open palm
RELEASE_S = 0.4         # the hand opens over the last RELEASE_S


@dataclass
class HandEpisode:
    """One grasp: per-frame touch readings and the contacts of every frame."""

    label: int                      # index into CLASS_NAMES
    scale: float                    # object size relative to its shape's nominal size
    touch: np.ndarray               # (T, 92) float32, N
    contact_frame: np.ndarray       # (C,) frame of each contact
    contact_body: np.ndarray        # (C,) hand body name, e.g. "ffdistal", "palm"
    contact_point: np.ndarray       # (C, 3) m, in that body's frame
    contact_force: np.ndarray       # (C,) N, normal force
    held: bool                      # the object stayed in the hand with >= 3 contacts
    seed: int = 0
    grid: np.ndarray | None = None  # (T, 600) float32, N: the touch grids, when simulated

    @property
    def frames(self) -> int:
        return len(self.touch)


def grasp_controls(hand: ShadowHand, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """The episode's closed targets (amplitude 0.85-1.1, each finger ±10 %) and the time
    the closing takes (0.3-0.6 s)."""
    closed = np.zeros(len(hand.actuators))
    amplitude = rng.uniform(0.85, 1.1)
    for name, value in CLOSED.items():
        closed[hand.actuators.index(name)] = value * amplitude * rng.uniform(0.9, 1.1)
    return closed, float(rng.uniform(0.3, 0.6))


def simulate_grasp(label: int, seed: int, hands: dict[str, ShadowHand] | None = None,
                   frames: int = FRAMES, touch_grids: bool = False) -> HandEpisode:
    """One episode of object class ``label`` from ``seed``; ``hands`` caches a scene per
    shape across episodes; ``touch_grids`` records the dense grids too (the same
    trajectory: the sensors do not act on the physics)."""
    if not 0 <= label < len(CLASS_NAMES):
        raise SimError(f"object class {label} outside 0..{len(CLASS_NAMES) - 1}")
    if frames < 1:
        raise SimError(f"an episode needs at least one frame, got {frames}")
    shape, nominal = OBJECT_CLASSES[CLASS_NAMES[label]]
    hands = {} if hands is None else hands
    hand = hands.get(shape)
    if hand is None or bool(hand.grids) != touch_grids:
        hand = hands[shape] = ShadowHand(shape, touch_grids)
    rng = np.random.default_rng([seed, label])
    scale = nominal * rng.uniform(0.92, 1.08)
    hand.reset()
    hand.place_object(scale, offset=rng.normal(0.0, 0.003, 2))
    closed, close_s = grasp_controls(hand, rng)
    frame_steps = 1.0 / (RATE_HZ * hand.dt)
    duration = frames / RATE_HZ
    touch = np.zeros((frames, len(hand.sensors)), np.float32)
    grid = np.zeros((frames, len(hand.touch_grid())), np.float32)
    rows: list[tuple] = []
    contacts_in_hold = []
    for k in range(frames):
        t = (k + 1) / RATE_HZ
        level = np.clip((t - SETTLE_S) / close_s, 0.0, 1.0) \
            * np.clip((duration - t) / RELEASE_S, 0.0, 1.0)
        hand.step(level * closed, int(round((k + 1) * frame_steps)) - int(round(k * frame_steps)))
        touch[k] = hand.touch()
        grid[k] = hand.touch_grid()
        bodies, points, forces = hand.contacts()
        rows += [(k, hand.body_names[b], p, f) for b, p, f in zip(bodies, points, forces)]
        if level >= 1.0:
            contacts_in_hold.append(len(bodies))
    held = bool(contacts_in_hold) and min(contacts_in_hold) >= 3
    return HandEpisode(
        label, float(scale), touch,
        np.array([r[0] for r in rows], dtype=np.int64),
        np.array([r[1] for r in rows], dtype=object),
        np.array([r[2] for r in rows], dtype=np.float64).reshape(-1, 3),
        np.array([r[3] for r in rows], dtype=np.float64), held, seed,
        grid if touch_grids else None)


def generate(episodes: int, seed: int = 0, frames: int = FRAMES,
             touch_grids: bool = False) -> list[HandEpisode]:
    """``episodes`` grasps, object classes in turn, episode ``i`` seeded ``seed * 100003 + i``."""
    hands: dict[str, ShadowHand] = {}
    return [simulate_grasp(i % len(CLASS_NAMES), seed * 100003 + i, hands, frames, touch_grids)
            for i in range(episodes)]
