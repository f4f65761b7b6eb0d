"""Refinement: a text backend picks the object, the cnn's maps place the grasp near it."""
from __future__ import annotations

import math

import numpy as np
import pytest

from embodied_transfer.grasp.backends import load_backend
from embodied_transfer.grasp.backends.base import GraspBackend, Prediction
from embodied_transfer.grasp.backends.cnn import CnnBackend, CnnConfig, decode_maps
from embodied_transfer.grasp.backends.refined import RefinedBackend
from embodied_transfer.grasp.cnn_train import grasp_maps
from embodied_transfer.grasp.errors import GraspError
from embodied_transfer.grasp.rectangles import Grasp

SIZE = 64
# two graspable places: a strong one on the left, a weaker one on the right
STRONG = Grasp(16.0, 32.0, 0.0, 12.0, 6.0)
WEAK = Grasp(48.0, 32.0, math.radians(60), 18.0, 6.0)


def _two_peaks() -> np.ndarray:
    maps = grasp_maps([STRONG, WEAK], SIZE, width_norm=32.0)
    maps[0][grasp_maps([WEAK], SIZE, 32.0)[0] > 0] = 0.6
    return maps


def test_decode_near_a_point_keeps_to_its_disk():
    maps = _two_peaks()
    best, q_best = decode_maps(maps, 32.0)
    assert math.hypot(best.x - STRONG.x, best.y - STRONG.y) <= 1.0
    near, q_near = decode_maps(maps, 32.0, near=(45.0, 30.0), radius=8.0)
    assert math.hypot(near.x - WEAK.x, near.y - WEAK.y) <= 1.0
    assert math.degrees(abs(near.theta - WEAK.theta)) <= 1.0
    assert near.width == pytest.approx(WEAK.width, abs=1e-3)
    assert q_near < q_best
    # a disk holding neither peak still answers inside it; radius 0 is the nearest pixel
    far, _ = decode_maps(maps, 32.0, near=(32.0, 5.0), radius=4.0)
    assert math.hypot(far.x - 32.0, far.y - 5.0) <= 4.5
    point, _ = decode_maps(maps, 32.0, near=(-10.0, 70.0), radius=0.0)
    assert (point.x, point.y) == pytest.approx((0.0, SIZE - 1.0), abs=0.5)   # clipped in


class Picker(GraspBackend):
    """Answers a fixed grasp (or none) with some text."""

    name = "picker"

    def __init__(self, grasp: Grasp | None) -> None:
        self.grasp = grasp
        self.decoding, self.views = "consistent", 4

    def predict(self, rgb, depth, instruction):
        return Prediction(self.grasp, text=f"grasp for {instruction}", reasoning="because",
                          score=0.75, error="" if self.grasp else "unparseable")


class Planner(CnnBackend):
    """A cnn whose maps are given (input pixels = image pixels)."""

    def __init__(self, maps: np.ndarray, use_depth: bool = True) -> None:
        self.cfg = CnnConfig(input_size=SIZE, use_depth=use_depth, quality_sigma=1.5,
                             width_scale=0.5)
        self._maps = maps

    def maps(self, rgb, depth):
        from embodied_transfer.grasp.backends.cnn import Frame

        return self._maps, Frame.of(rgb.shape[1], rgb.shape[0], self.cfg)


def _image():
    return np.zeros((SIZE, SIZE, 3), np.uint8), np.ones((SIZE, SIZE), np.float32)


def test_refined_grasp_is_the_planners_near_the_pickers():
    rgb, depth = _image()
    picked = Grasp(44.0, 35.0, 0.0, 30.0)
    backend = RefinedBackend(Picker(picked), Planner(_two_peaks()), radius_px=8.0)
    assert backend.name == "picker+cnn" and backend.uses_instruction
    assert (backend.decoding, backend.views) == ("consistent", 4)
    pred = backend.predict(rgb, depth, "the weak one")
    assert math.hypot(pred.grasp.x - WEAK.x, pred.grasp.y - WEAK.y) <= 1.0
    assert pred.grasp.width == pytest.approx(WEAK.width, abs=1e-3)
    assert pred.extra["picked_grasp"] == picked and pred.extra["refined"] is True
    assert 0.5 < pred.extra["quality"] < 0.7
    # the text and its reasoning are the picker's
    assert (pred.text, pred.reasoning, pred.score) == ("grasp for the weak one", "because", 0.75)


class ViewPicker(Picker):
    """Four mirrored views' answers, as the VLM backend returns them."""

    def __init__(self, view_grasps: list[Grasp | None]) -> None:
        super().__init__(view_grasps[0])
        self.view_grasps = view_grasps

    def predict(self, rgb, depth, instruction):
        pred = super().predict(rgb, depth, instruction)
        pred.extra.update(view_grasps=self.view_grasps,
                          view_answers=[f"answer {i}" for i in range(4)],
                          view_reasonings=[f"reasoning {i}" for i in range(4)])
        return pred


def test_views_vote_again_weighted_by_the_planners_quality():
    rgb, depth = _image()
    # two views agree on empty table, one is near the strong grasp, one near the weak one
    empty, also_empty = Grasp(32.0, 6.0, 0.0, 10.0), Grasp(36.0, 8.0, 0.0, 10.0)
    views = [empty, also_empty, Grasp(18.0, 30.0, 0.0, 10.0), Grasp(46.0, 34.0, 0.0, 10.0)]
    pred = RefinedBackend(ViewPicker(views), Planner(_two_peaks()), radius_px=6.0).predict(
        rgb, depth, "x")
    assert math.hypot(pred.grasp.x - STRONG.x, pred.grasp.y - STRONG.y) <= 1.0
    assert pred.text == "answer 2" and pred.score == 0.25
    assert pred.reasoning == "[answer to the image mirrored top-bottom] reasoning 2"
    assert pred.extra["view"] == "top-bottom" and pred.extra["picked_grasp"] == empty
    assert len(pred.extra["refined_view_grasps"]) == 4
    # with the strong place gone the weak one wins; unweighted, the empty pair would
    weak_only = RefinedBackend(ViewPicker(views[:2] + [None, views[3]]),
                               Planner(_two_peaks()), radius_px=6.0).predict(rgb, depth, "x")
    assert math.hypot(weak_only.grasp.x - WEAK.x, weak_only.grasp.y - WEAK.y) <= 1.0
    assert weak_only.text == "answer 3"


def test_nothing_to_refine_keeps_the_pickers_prediction():
    rgb, depth = _image()
    none = RefinedBackend(Picker(None), Planner(_two_peaks())).predict(rgb, depth, "x")
    assert none.grasp is None and none.error == "unparseable"
    assert none.extra["refined"] is False and "no grasp" in none.extra["not_refined"]
    picked = Grasp(44.0, 35.0, 0.0, 30.0)
    no_depth = RefinedBackend(Picker(picked), Planner(_two_peaks())).predict(rgb, None, "x")
    assert no_depth.grasp == picked and not no_depth.extra["refined"]
    assert "depth" in no_depth.extra["not_refined"]
    rgb_only = RefinedBackend(Picker(picked), Planner(_two_peaks(), use_depth=False))
    assert rgb_only.predict(rgb, None, "x").extra["refined"] is True


def test_bad_refine_settings_raise_grasp_errors():
    with pytest.raises(GraspError, match="radius"):
        RefinedBackend(Picker(None), Planner(_two_peaks()), radius_px=float("nan"))
    with pytest.raises(GraspError, match="unknown grasp refiner"):
        load_backend("tiny-vlm", refine="gr-convnet")
    with pytest.raises(GraspError, match="text backends"):
        load_backend("cnn", refine="cnn")
    with pytest.raises(GraspError, match="no CNN grasp model"):
        load_backend("tiny-vlm", refine="cnn", refine_model="/nonexistent/cnn")
    # a bad radius is refused before any model is loaded (that path does not exist)
    with pytest.raises(GraspError, match="radius"):
        load_backend("tiny-vlm", refine="cnn", refine_model="/nonexistent/cnn",
                     refine_radius_px=-1.0)


def test_a_refined_centre_off_the_image_keeps_the_pickers_grasp():
    # a wide image padded to a square: the maps' strong peak lies in the padding above it
    rgb, depth = np.zeros((32, SIZE, 3), np.uint8), np.ones((32, SIZE), np.float32)
    maps = grasp_maps([Grasp(30.0, 12.0, 0.0, 12.0, 6.0)], SIZE, width_norm=32.0)
    picked = Grasp(30.0, 1.0, 0.0, 20.0)          # input row 17, near that peak at row 12
    pred = RefinedBackend(Picker(picked), Planner(maps), radius_px=8.0).predict(rgb, depth, "x")
    assert pred.grasp == picked and pred.extra["quality"] == 0.0
