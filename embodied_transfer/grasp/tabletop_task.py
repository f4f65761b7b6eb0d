"""The tabletop as a live task for the bridge: a scene, an instruction, grasps executed on it.

:class:`LiveTabletop` holds one random scene at a time (scene ``n`` of a seed, as in
:func:`scene_seed`; under a randomised look with ``randomise``), renders it once per state,
names a random target object in an instruction, executes grasps with the gripper (3-D
grasps in the world frame, as a controller gets them, or image-plane grasps through the
depth image) and moves on to the next scene when asked.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from embodied_transfer.grasp.geometry import Grasp3D
from embodied_transfer.grasp.reasoning import ObjectInfo, instruction
from embodied_transfer.grasp.rectangles import Grasp
from embodied_transfer.grasp.scene_labels import (grasp_from_image, image_grasps, object_infos,
                                                  scene_at_rest)
from embodied_transfer.sim.errors import SimError
from embodied_transfer.sim.tabletop_camera import (Intrinsics, camera_intrinsics,
                                                   camera_link_pose, render)
from embodied_transfer.sim.tabletop_gripper import (GraspOutcome, execute_grasp,
                                                    world_grasp_from_pose)


def scene_seed(seed: int, i: int) -> int:
    """The integer seed of scene ``i`` drawn with ``seed`` (independent of the order used)."""
    return int(np.random.SeedSequence(seed, spawn_key=(i,)).generate_state(1)[0])


@dataclass
class Observation:
    rgb: np.ndarray                 # (H, W, 3) uint8
    depth: np.ndarray               # (H, W) float32 m
    intrinsics: Intrinsics


class LiveTabletop:
    """One scene at a time; ``next_scene`` draws the following one."""

    def __init__(self, seed: int = 0, width: int = 320, height: int = 240,
                 n_objects: int | None = None, randomise: bool = False) -> None:
        if width <= 0 or height <= 0:
            raise SimError(f"image size must be positive, got {width}x{height}")
        self.seed, self.width, self.height, self.n_objects = seed, width, height, n_objects
        self.randomise = randomise
        self.index = -1
        self.next_scene()

    def next_scene(self, seed: int | None = None) -> None:
        """Draw the next scene (restarting the sequence when ``seed`` is given)."""
        if seed is not None:
            self.seed, self.index = seed, -1
        self.index += 1
        seed = scene_seed(self.seed, self.index)
        rng = np.random.default_rng(seed)
        self.scene, self.model, self.data = scene_at_rest(seed, rng, self.n_objects,
                                                          self.randomise)
        self.objects: list[ObjectInfo] = object_infos(self.model, self.scene, self.width,
                                                      self.height)
        self.target = self.objects[int(rng.integers(len(self.objects)))]
        self.instruction = instruction(self.target, rng)
        self._observation: Observation | None = None

    def observe(self) -> Observation:
        """The camera's view of the current state (rendered once per state)."""
        if self._observation is None:
            rgb, depth = render(self.model, self.data, self.width, self.height)
            self._observation = Observation(rgb, depth, camera_intrinsics(
                self.model, self.width, self.height))
        return self._observation

    def true_grasps(self) -> dict[str, list[Grasp]]:
        return image_grasps(self.model, self.scene, self.width, self.height)

    def camera_link_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """World position and rotation of the camera's body frame (it may move between
        scenes under a randomised look)."""
        return camera_link_pose(self.model)

    def execute_3d(self, grasp: Grasp3D) -> GraspOutcome:
        """Execute a 3-D grasp given in the world frame (pre-grasp at its standoff)."""
        world = world_grasp_from_pose(grasp.position, grasp.approach, grasp.closing,
                                      grasp.width)
        outcome = execute_grasp(self.model, self.data, world, standoff=grasp.standoff)
        self._observation = None
        return outcome

    def execute(self, grasp: Grasp) -> GraspOutcome:
        """Execute an image-plane grasp on the current scene (it stays as the grasp left it)."""
        obs = self.observe()
        world = grasp_from_image(grasp, obs.depth, obs.intrinsics, self.model)
        outcome = execute_grasp(self.model, self.data, world)
        self._observation = None
        return outcome
