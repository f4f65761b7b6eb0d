"""Scoring backends on Cornell-layout data: rectangle and target accuracy, failures, pictures."""
from __future__ import annotations

import json
import math

import cv2
import pytest

from embodied_transfer.grasp.backends.base import GraspBackend, Prediction
from embodied_transfer.grasp.cornell import read_dataset
from embodied_transfer.grasp.errors import GraspError, GraspParseError
from embodied_transfer.grasp.evaluate import (draw_samples, evaluate, on_target, scene_reading,
                                             summary)
from embodied_transfer.grasp.reasoning import ObjectInfo
from embodied_transfer.grasp.rectangles import Grasp
from embodied_transfer.grasp.toy_scenes import make_dataset


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    return read_dataset(make_dataset(tmp_path_factory.mktemp("plain"), 5, seed=1,
                                     width=160, height=120))


@pytest.fixture(scope="module")
def instructed(tmp_path_factory):
    return read_dataset(make_dataset(tmp_path_factory.mktemp("instr"), 6, seed=2,
                                     width=160, height=120, with_instruction=True))


class Oracle(GraspBackend):
    """Answers a ground-truth rectangle of the image it is shown (looked up by content)."""

    name = "oracle"

    def __init__(self, dataset):
        self.truth = {s.rgb.tobytes(): s.grasps for s in dataset}

    def predict(self, rgb, depth, instruction):
        return Prediction(self.truth[rgb.tobytes()][-1], text="oracle", score=1.0)


class Silent(GraspBackend):
    name = "silent"

    def predict(self, rgb, depth, instruction):
        return Prediction(None, text="I would rather not.", error="no grasp line")


class Raising(GraspBackend):
    name = "raising"

    def predict(self, rgb, depth, instruction):
        raise GraspParseError("answer must hold exactly one 'grasp:' line", "blah")


class Aimer(GraspBackend):
    """Grasps the centre of the object named in the instruction (or, ``wrong``, another)."""

    name = "aimer"

    def __init__(self, dataset, wrong=False):
        self.objects = {s.instruction: s.objects for s in dataset}
        self.wrong = wrong

    def predict(self, rgb, depth, instruction):
        objs = self.objects[instruction]
        named = [o for o in objs if o.label() in instruction]
        pick = ([o for o in objs if o not in named] or named)[0] if self.wrong else named[0]
        return Prediction(Grasp(pick.u, pick.v, 0.0, 10.0))


def test_oracle_scores_one(plain):
    r = evaluate(plain, Oracle(plain))
    assert r["n"] == 5 and r["n_rectangle"] == 5
    assert r["rectangle_accuracy"] == 1.0
    assert r["parse_failures"] == 0 and r["failures"] == []
    assert r["target_accuracy"] is None and r["n_target"] == 0      # no instructions
    assert r["scene_reading"] is None                               # no object list
    assert r["ms_per_image"] >= 0 and r["ms_median"] >= 0
    assert r["ids"] == plain.ids and r["correct"] == [True] * 5
    assert len(r["predictions"]) == 5 and r["backend"] == "oracle"
    json.dumps(summary(r))                                          # JSON-ready
    assert "predictions" not in summary(r)
    assert evaluate(plain, Oracle(plain), limit=2)["n"] == 2


def test_no_grasp_scores_zero_and_counts_failures(plain):
    r = evaluate(plain, Silent(), limit=3)
    assert r["n"] == 3 and r["rectangle_accuracy"] == 0.0
    assert r["parse_failures"] == 3
    assert r["failures"][0] == {"id": plain.ids[0], "error": "no grasp line",
                                "text": "I would rather not."}
    r = evaluate(plain, Raising())
    assert r["parse_failures"] == 5 and r["rectangle_accuracy"] == 0.0
    assert r["failures"][1]["text"] == "blah" and "exactly one" in r["failures"][1]["error"]
    with pytest.raises(GraspError, match="nothing to evaluate"):
        evaluate(plain, Silent(), limit=0)


def test_on_target_is_the_strictly_closest_object_centre():
    objs = [ObjectInfo("mug", "mug", "red", 10, 10), ObjectInfo("box", "box", "blue", 50, 10)]
    assert on_target(Grasp(20, 12, 0, 5), objs, "mug") is True
    assert on_target(Grasp(20, 12, 0, 5), objs, "box") is False
    assert on_target(Grasp(30, 10, 0, 5), objs, "mug") is False            # a tie
    assert on_target(Grasp(45, 40, 0, 5), objs, "box") is True
    assert on_target(None, objs, "mug") is False
    assert on_target(Grasp(20, 12, 0, 5), objs, None) is None
    assert on_target(Grasp(20, 12, 0, 5), objs, "plate") is None
    assert on_target(Grasp(90, 90, 0, 5), objs[:1], "mug") is True         # the only object


def test_target_accuracy_on_instructed_samples(instructed):
    assert instructed.has_reasoning
    several = [s for s in instructed if len(s.objects) > 1]
    assert several, "the fixture should hold scenes with several objects"
    r = evaluate(instructed, Aimer(instructed))
    assert r["n_target"] == 6 and r["target_accuracy"] == 1.0
    wrong = evaluate(instructed, Aimer(instructed, wrong=True))
    assert wrong["target_accuracy"] == pytest.approx(1 - len(several) / 6)
    # cpos lists only the target's grasps: the oracle is right on both counts
    r = evaluate(instructed, Oracle(instructed))
    assert r["rectangle_accuracy"] == 1.0 and r["target_accuracy"] == 1.0
    assert evaluate(instructed, Silent())["target_accuracy"] == 0.0


def test_scene_reading_matches_listed_objects_to_the_true_ones():
    objs = [ObjectInfo("red_mug", "mug", "red", 10, 10),
            ObjectInfo("blue_box", "box", "blue", 100, 10),
            ObjectInfo("red_can", "can", "red", 100, 100)]
    # the mug read as a can, the box right, the can 30 px off (not placed), one extra item
    text = ("I see a red can at (12, 14), a blue box at (101, 9), a red can at (130, 100) "
            "and a green bowl at (60, 60). The blue box at (101, 9) is a box. "
            "grasp: [12, 14, 0, 10]")
    r = scene_reading([(objs, "red_mug", Prediction(None, text=text)),
                       (objs, "blue_box", Prediction(Grasp(100, 12, 0, 10), reasoning=text)),
                       (objs, None, Prediction(None, text="grasp: [1, 1, 0, 5]"))])
    assert r["answers"] == 2 and r["count"] == 0.0 and r["objects"] == 6
    assert r["placed"] == pytest.approx(4 / 6)
    assert r["colour"] == 1.0 and r["category"] == 0.5
    assert r["target_label_placed"] == 0.5       # the box yes; the mug's item says "can"
    assert r["named_copied"] == 1.0
    assert r["grasp_follows_list"] == 1.0        # only the box's label is listed; no grasp
    one = ("I see a red mug at (10, 10), a blue box at (100, 10) and a red can at (99, 99). "
           "The red can at (100, 10) is a can.")            # the box's position: not a copy
    assert scene_reading([(objs, "red_can", Prediction(Grasp(100, 10, 0, 9), text=one))]) == {
        "answers": 1, "count": 1.0, "objects": 3, "placed": 1.0, "colour": 1.0,
        "category": 1.0, "target_label_placed": 1.0, "named_copied": 0.0,
        "grasp_follows_list": 0.0}                  # the grasp sits on the box, 89 px away
    # the scan format: no second sentence; the grasp follows the marked, last item
    last = "I see a red mug at (10, 10), a red can at (99, 99), a blue box at (100, 10): the one"
    r = scene_reading([(objs, "blue_box", Prediction(Grasp(101, 11, 0, 9), text=last))])
    assert r["named_copied"] is None and r["grasp_follows_list"] == 1.0
    assert r["target_label_placed"] == 1.0 and r["placed"] == 1.0
    assert scene_reading([(objs, "red_mug", Prediction(None, text="no list"))]) is None
    # several mirrored views: read in the original view, whose positions are the image's own
    mirrored = "I see a red can at (199, 89). The red can at (199, 89) is a can."
    views = Prediction(Grasp(100, 100, 0, 9), text=mirrored,
                       extra={"view_answers": [one, mirrored],
                              "view_grasps": [Grasp(100, 10, 0, 9), Grasp(100, 100, 0, 9)]})
    assert scene_reading([(objs, "red_can", views)]) == scene_reading(
        [(objs, "red_can", Prediction(Grasp(100, 10, 0, 9), text=one))])


def test_draw_samples_writes_a_png(plain, instructed, tmp_path):
    r = evaluate(plain, Oracle(plain))
    preds = r["predictions"]
    preds[1] = Prediction(None, error="no grasp")
    preds[2] = Prediction(Grasp(5, 5, math.radians(40), 12))
    out = draw_samples(plain, preds, tmp_path / "pics" / "samples.png", n=4)
    image = cv2.imread(str(out))
    assert image is not None and image.shape[0] > 100 and image.shape[1] > 100
    by_id = {s.id: Prediction(s.grasps[0]) for s in instructed}
    out2 = draw_samples(instructed, by_id, tmp_path / "instr.png", n=8)
    assert cv2.imread(str(out2)) is not None
    with pytest.raises(GraspError, match="no predictions"):
        draw_samples(plain, [], tmp_path / "none.png")
    with pytest.raises(GraspError, match="predictions for"):
        draw_samples(plain, [Prediction(None)] * 6, tmp_path / "many.png")
