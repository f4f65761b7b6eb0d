"""A text backend picks the object, the ``cnn`` backend's maps place the grasp on it.

The tiny VLM finds the instructed object well (its target accuracy) but draws the grasp
rectangle itself poorly, while the GR-ConvNet-style ``cnn`` draws good rectangles but cannot
follow an instruction. :class:`RefinedBackend` asks the text backend first, then takes the
``cnn``'s best-quality grasp within ``radius_px`` of the text backend's grasp centre
(:func:`~embodied_transfer.grasp.backends.cnn.decode_maps` with ``near``). The reasoning and
the object choice stay the text backend's; only the rectangle changes.

Without a depth image (the shipped ``cnn`` is RGB-D) or without a text grasp there is
nothing to refine: the text backend's prediction is returned as it is, and
``extra["refined"]`` says why.
"""
from __future__ import annotations

import numpy as np

from embodied_transfer.grasp.backends.base import (DEFAULT_REFINE_RADIUS_PX, GraspBackend,
                                                  Prediction)
from embodied_transfer.grasp.backends.cnn import CnnBackend, decode_maps
from embodied_transfer.grasp.errors import GraspError


class RefinedBackend(GraspBackend):
    """``picker`` (a text backend) chooses where, ``planner`` (a :class:`CnnBackend`) how."""

    uses_instruction = True

    def __init__(self, picker: GraspBackend, planner: CnnBackend,
                 radius_px: float = DEFAULT_REFINE_RADIUS_PX) -> None:
        if not np.isfinite(radius_px) or radius_px < 0:
            raise GraspError(f"refine radius must be a finite number of pixels >= 0, got "
                             f"{radius_px}")
        self.picker, self.planner, self.radius_px = picker, planner, float(radius_px)
        self.name = f"{picker.name}+{planner.name}"

    @property
    def decoding(self):
        return getattr(self.picker, "decoding", None)

    @property
    def views(self):
        return getattr(self.picker, "views", None)

    def predict(self, rgb: np.ndarray, depth: np.ndarray | None, instruction: str) -> Prediction:
        """The picker's prediction with its grasp replaced by the planner's best one near it
        (``extra["picked_grasp"]`` keeps the picker's, ``extra["quality"]`` the planner's
        quality there)."""
        pred = self.picker.predict(rgb, depth, instruction)
        if pred.grasp is None:
            pred.extra["refined"] = "no: no grasp to refine"
            return pred
        if self.planner.cfg.use_depth and depth is None:
            pred.extra["refined"] = "no: the cnn needs a depth image"
            return pred
        maps, frame = self.planner.maps(rgb, depth)
        centre = frame.to_input(pred.grasp)
        found, quality = decode_maps(maps, self.planner.cfg.width_norm,
                                     self.planner.cfg.quality_sigma, near=(centre.x, centre.y),
                                     radius=self.radius_px / frame.scale)
        pred.extra.update(refined="yes", picked_grasp=pred.grasp, quality=quality)
        pred.grasp = frame.to_image(found)
        return pred

    def close(self) -> None:
        self.picker.close()
        self.planner.close()
