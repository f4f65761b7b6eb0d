"""Toy rendered grasp scenes (numpy/OpenCV) in the Cornell layout — a stand-in for tests
and quick experiments until the MuJoCo tabletop generator provides real scenes.

A scene is a textured dark table with 1–3 flat objects seen from above: boxes (rotated
rectangles) and cans/plates (ellipses, circles). Depth is a table at ``TABLE_DEPTH`` metres
with each object raised by its height. Ground-truth rectangles close across an object's
short side: boxes at several points along their long axis, ellipses across the minor axis
at the centre, circles across the diameter at several angles. The opening is the object's
breadth plus a margin; the jaw size a fraction of the breadth.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from embodied_transfer.grasp.cornell import CornellSample, write_sample
from embodied_transfer.grasp.reasoning import ObjectInfo, instruction as make_instruction
from embodied_transfer.grasp.rectangles import Grasp

TABLE_DEPTH = 0.70
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40), "green": (40, 190, 60), "blue": (50, 80, 230),
    "yellow": (235, 215, 40), "white": (235, 235, 235), "orange": (245, 140, 30),
}
SHAPES = ("box", "can", "plate")


@dataclass(frozen=True)
class Shape:
    category: str                 # "box" (rectangle) | "can" (ellipse) | "plate" (circle)
    colour: str
    u: float
    v: float
    length: float                 # long side / major axis, px
    breadth: float                # short side / minor axis, px
    theta: float                  # direction of the long side, rad
    height_m: float               # how far it stands above the table, m

    def mask(self, width: int, height: int) -> np.ndarray:
        m = np.zeros((height, width), np.uint8)
        if self.category == "box":
            pts = Grasp(self.u, self.v, self.theta, self.length, self.breadth).corners()
            cv2.fillPoly(m, [np.round(pts * 16).astype(np.int32)], 1, cv2.LINE_8, shift=4)
        else:
            cv2.ellipse(m, (int(round(self.u * 16)), int(round(self.v * 16))),
                        (int(round(self.length / 2 * 16)), int(round(self.breadth / 2 * 16))),
                        math.degrees(self.theta), 0, 360, 1, -1, cv2.LINE_8, shift=4)
        return m.astype(bool)

    def grasps(self, rng: np.random.Generator) -> list[Grasp]:
        opening = self.breadth + 10.0
        jaw = max(4.0, 0.35 * self.breadth)
        across = self.theta + math.pi / 2
        if self.category == "plate":
            return [Grasp(self.u, self.v, across + k * math.pi / 4, opening, jaw)
                    for k in range(4)]
        if self.category == "can":
            return [Grasp(self.u, self.v, across, opening, jaw)]
        reach = max(0.0, self.length / 2 - jaw)
        offsets = np.linspace(-reach, reach, 3) if reach > 2 else [0.0]
        return [Grasp(self.u + t * math.cos(self.theta), self.v + t * math.sin(self.theta),
                      across, opening, jaw) for t in offsets]


def random_shape(rng: np.random.Generator, width: int, height: int, scale: float,
                 colour: str, category: str | None = None) -> Shape:
    category = category or SHAPES[int(rng.integers(len(SHAPES)))]
    if category == "box":
        breadth = rng.uniform(30, 60) * scale
        length = breadth * rng.uniform(1.5, 2.5)
    elif category == "can":
        breadth = rng.uniform(35, 60) * scale
        length = breadth * rng.uniform(1.25, 1.7)
    else:
        breadth = length = rng.uniform(50, 90) * scale
    margin = length / 2 + 12 * scale
    u = rng.uniform(margin, width - margin)
    v = rng.uniform(margin, height - margin)
    return Shape(category, colour, float(u), float(v), float(length), float(breadth),
                 float(rng.uniform(-math.pi / 2, math.pi / 2)), float(rng.uniform(0.03, 0.1)))


def render_scene(rng: np.random.Generator, width: int = 640, height: int = 480,
                 objects: int | None = None, sample_id: str = "pcd0000",
                 with_instruction: bool = False) -> CornellSample:
    """One scene. With ``with_instruction`` a target is picked and instructed, and only its
    grasps are listed; else every object's grasps are."""
    scale = min(width, height) / 480.0
    count = int(rng.integers(1, 4)) if objects is None else objects
    colours = rng.permutation(list(COLOURS))[:count]
    shapes: list[Shape] = []
    for colour in colours:
        for _ in range(50):                 # keep objects apart (their grasps must not overlap)
            s = random_shape(rng, width, height, scale, str(colour))
            if all(math.hypot(s.u - o.u, s.v - o.v) > (s.length + o.length) / 2 + 16 * scale
                   for o in shapes):
                shapes.append(s)
                break
    base = rng.uniform(25, 70)
    rgb = np.clip(base + rng.normal(0, 6, (height, width, 3)) + rng.uniform(-8, 8, 3), 0, 255)
    depth = np.full((height, width), TABLE_DEPTH, np.float32) \
        + rng.normal(0, 0.002, (height, width)).astype(np.float32)
    for s in shapes:
        m = s.mask(width, height)
        shade = np.asarray(COLOURS[s.colour], float) * rng.uniform(0.8, 1.05)
        rgb[m] = np.clip(shade + rng.normal(0, 8, (int(m.sum()), 3)), 0, 255)
        depth[m] = TABLE_DEPTH - s.height_m
    infos = [ObjectInfo(f"{s.colour}_{s.category}", s.category, s.colour, s.u, s.v)
             for s in shapes]
    if with_instruction:
        k = int(rng.integers(len(shapes)))
        return CornellSample(sample_id, rgb.astype(np.uint8), depth, shapes[k].grasps(rng),
                             make_instruction(infos[k], rng), infos, infos[k].name)
    grasps = [g for s in shapes for g in s.grasps(rng)]
    return CornellSample(sample_id, rgb.astype(np.uint8), depth, grasps, None, infos, None)


def make_dataset(directory: str | Path, n: int, seed: int = 0, *, width: int = 640,
                 height: int = 480, start: int = 0, with_instruction: bool = False) -> Path:
    """Write ``n`` scenes ``pcd{start:04d}`` … into ``directory``; returns it."""
    rng = np.random.default_rng(seed)
    directory = Path(directory)
    for i in range(n):
        write_sample(directory, render_scene(rng, width, height, sample_id=f"pcd{start + i:04d}",
                                             with_instruction=with_instruction))
    return directory
