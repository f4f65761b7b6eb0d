"""A text backend picks the object, the ``cnn`` backend's maps place the grasp on it.

The tiny VLM finds the instructed object well (its target accuracy) but draws the grasp
rectangle itself poorly, while the GR-ConvNet-style ``cnn`` draws good rectangles but cannot
follow an instruction. :class:`RefinedBackend` asks the text backend first, then takes the
``cnn``'s best-quality grasp within ``radius_px`` of the text backend's grasp centre
(:func:`~embodied_transfer.grasp.backends.cnn.decode_maps` with ``near``), for each mirrored
view the text backend answered; the views then vote again, weighted by the ``cnn``'s quality
at their grasps, so a view that put its grasp on empty table counts for little. The object is
still named and found by the text backend; the cnn supplies the rectangle and the weights.

Without a depth image (the shipped ``cnn`` is RGB-D) or without a text grasp there is
nothing to refine: the text backend's prediction is returned as it is, with
``extra["refined"]`` False and the reason in ``extra["not_refined"]``.
"""
from __future__ import annotations

import numpy as np

from embodied_transfer.grasp.backends.base import (DEFAULT_REFINE_RADIUS_PX, GraspBackend,
                                                  Prediction)
from embodied_transfer.grasp.backends.cnn import CnnBackend, decode_maps
from embodied_transfer.grasp.backends.vlm import VIEW_AGREEMENT_PX, choose_view
from embodied_transfer.grasp.errors import GraspError
from embodied_transfer.grasp.mirroring import most_agreed
from embodied_transfer.grasp.rectangles import Grasp


def checked_radius(radius_px: float) -> float:
    """``radius_px`` as a float; :class:`GraspError` unless it is finite and >= 0."""
    if not np.isfinite(radius_px) or radius_px < 0:
        raise GraspError(f"refine radius must be a finite number of pixels >= 0, got "
                         f"{radius_px}")
    return float(radius_px)


class RefinedBackend(GraspBackend):
    """``picker`` (a text backend) chooses where, ``planner`` (a :class:`CnnBackend`) how."""

    uses_instruction = True

    def __init__(self, picker: GraspBackend, planner: CnnBackend,
                 radius_px: float = DEFAULT_REFINE_RADIUS_PX) -> None:
        self.picker, self.planner = picker, planner
        self.radius_px = checked_radius(radius_px)
        self.name = f"{picker.name}+{planner.name}"

    @property
    def decoding(self):
        return getattr(self.picker, "decoding", None)

    @property
    def views(self):
        return getattr(self.picker, "views", None)

    def predict(self, rgb: np.ndarray, depth: np.ndarray | None, instruction: str) -> Prediction:
        """The picker's prediction, each of its views' grasps replaced by the planner's best
        one within ``radius_px``, and the views voting again with the planner's quality at
        their grasp as their weight (:func:`~embodied_transfer.grasp.mirroring.most_agreed`):
        a view whose grasp lands where the cnn sees nothing to grasp counts for little. The
        text, reasoning and score are those of the winning view; ``extra["picked_grasp"]``
        keeps the picker's own choice, ``extra["quality"]`` the planner's quality at the
        returned grasp."""
        pred = self.picker.predict(rgb, depth, instruction)
        if pred.grasp is None:
            pred.extra.update(refined=False, not_refined="no grasp to refine")
            return pred
        if self.planner.cfg.use_depth and depth is None and not self.planner.cfg.rgb_fallback:
            pred.extra.update(refined=False, not_refined="the cnn needs a depth image")
            return pred
        maps, frame = self.planner.maps(rgb, depth)
        views = pred.extra.get("view_grasps") or [pred.grasp]
        h, w = np.shape(rgb)[:2]
        found = [None if g is None else self._near(maps, frame, g, w, h) for g in views]
        grasps = [None if f is None else f[0] for f in found]
        weights = [0.0 if f is None else max(f[1], 0.0) for f in found]
        best, votes = most_agreed(grasps, VIEW_AGREEMENT_PX, weights)
        if len(views) > 1 and "view_answers" in pred.extra:      # a VLM's mirrored views
            pred.text, pred.reasoning, pred.score = choose_view(pred.extra, best, votes)
        pred.extra.update(refined=True, picked_grasp=pred.grasp, quality=found[best][1],
                          refined_view_grasps=grasps)
        pred.grasp = grasps[best]
        return pred

    def _near(self, maps: np.ndarray, frame, grasp: Grasp, width: int, height: int
              ) -> tuple[Grasp, float]:
        """The planner's best grasp (image pixels) within ``radius_px`` of ``grasp``'s centre
        and its quality; ``grasp`` itself with quality 0 when that best one's centre lies
        outside the ``width`` × ``height`` image (in the square's padding)."""
        centre = frame.to_input(grasp)
        found, quality = decode_maps(maps, self.planner.cfg.width_norm,
                                     self.planner.cfg.quality_sigma, near=(centre.x, centre.y),
                                     radius=self.radius_px / frame.scale)
        found = frame.to_image(found)
        if not (0.0 <= found.x <= width - 1 and 0.0 <= found.y <= height - 1):
            return grasp, 0.0
        return found, float(quality)

    def close(self) -> None:
        self.picker.close()
        self.planner.close()
