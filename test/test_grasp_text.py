"""Grasp rectangles (conventions, IoU, metric) and the reasoning answer format and parser."""
from __future__ import annotations

import math

import numpy as np
import pytest

from embodied_transfer.core.geometry import wrap_angle
from embodied_transfer.grasp.errors import GraspError, GraspParseError
from embodied_transfer.grasp.reasoning import (ObjectInfo, answer, consistent_prefix,
                                               format_grasp, instruction, parse_answer,
                                               parse_scene, reading_order, scene_text)
from embodied_transfer.grasp.mirroring import FLIPS, flip_grasp, most_agreed
from embodied_transfer.grasp.rectangles import Grasp, angle_difference, correct, iou, matches

GRASPS = [Grasp(100.3, 50.7, 0.3, 40.0, 20.0), Grasp(10.0, 10.0, math.pi / 2, 33.3),
          Grasp(200.0, 100.0, -1.2, 57.1, 13.3), Grasp(320.5, 240.25, 1.0, 80.0, 35.0)]


@pytest.mark.parametrize("g", GRASPS)
def test_iou_of_identical_rectangles_is_one_never_above(g):
    # the intersection is computed on float32 corners: clamped to 1, may be a hair below
    assert iou(g, g) <= 1.0
    assert iou(g, g) == pytest.approx(1.0, abs=1e-5)
    assert matches(g, g) and correct(g, [g])


def test_iou_of_disjoint_and_half_overlapping_rectangles():
    a = Grasp(50, 50, 0.0, 20, 10)
    assert iou(a, Grasp(150, 50, 0.0, 20, 10)) == 0.0
    # shifted by half its width along the axis: intersection 10x10, union 300
    assert iou(a, Grasp(60, 50, 0.0, 20, 10)) == pytest.approx(100 / 300, abs=1e-4)
    assert iou(a, Grasp(60, 50, 0.0, 20, 10)) == iou(Grasp(60, 50, 0.0, 20, 10), a)


@pytest.mark.parametrize("theta", [-1.5, -0.7, 0.0, 0.4, 1.2, math.pi / 2])
def test_theta_and_theta_plus_pi_are_the_same_grasp(theta):
    a, b = Grasp(80, 60, theta, 30, 12), Grasp(80, 60, theta + math.pi, 30, 12)
    assert a.theta == pytest.approx(b.theta, abs=1e-9)
    assert -math.pi / 2 < a.theta <= math.pi / 2
    assert angle_difference(theta, theta + math.pi) == pytest.approx(0.0, abs=1e-9)
    assert angle_difference(theta, theta - math.pi) == pytest.approx(0.0, abs=1e-9)
    assert iou(a, b) == pytest.approx(1.0)
    assert matches(a, b)


def test_wrap_angle_range_and_symmetric_difference():
    assert wrap_angle(-math.pi / 2) == pytest.approx(math.pi / 2)
    assert wrap_angle(math.pi / 2) == pytest.approx(math.pi / 2)
    for t in np.linspace(-7, 7, 57):
        assert -math.pi / 2 < wrap_angle(t) <= math.pi / 2 + 1e-12
    # 85° and -85° are 10° apart, not 170°
    assert math.degrees(angle_difference(math.radians(85), math.radians(-85))) \
        == pytest.approx(10.0)
    assert angle_difference(0.2, 0.9) == pytest.approx(angle_difference(0.9, 0.2))


def test_metric_thresholds_angle_30_degrees_and_iou_25_percent():
    truth = Grasp(100, 100, 0.0, 40, 20)
    assert matches(Grasp(100, 100, math.radians(29), 40, 20), truth)
    assert not matches(Grasp(100, 100, math.radians(31), 40, 20), truth)
    assert not matches(Grasp(135, 100, 0.0, 40, 20), truth)         # IoU 5/75
    assert not correct(None, [truth])
    assert not correct(Grasp(100, 100, 0.0, 40, 20), [])


@pytest.mark.parametrize("g", GRASPS)
def test_corners_round_trip_and_cornell_order(g):
    p = g.corners()
    back = Grasp.from_corners(p)
    assert (back.x, back.y, back.width, back.height) == pytest.approx(
        (g.x, g.y, g.width, g.jaw), abs=1e-9)
    assert angle_difference(back.theta, g.theta) < 1e-9
    # p0 -> p1 runs along the closing axis (length = opening), p1 -> p2 across (jaw)
    assert np.hypot(*(p[1] - p[0])) == pytest.approx(g.width)
    assert np.hypot(*(p[2] - p[1])) == pytest.approx(g.jaw)
    # starting at the opposite corner gives the same grasp (theta + pi)
    flipped = Grasp.from_corners(np.roll(p, 2, axis=0))
    assert (flipped.x, flipped.y) == pytest.approx((g.x, g.y))
    assert angle_difference(flipped.theta, g.theta) < 1e-9


def test_bad_grasps_are_rejected():
    with pytest.raises(GraspError):
        Grasp(float("nan"), 1, 0, 10)
    with pytest.raises(GraspError):
        Grasp(1, 1, 0, 0)
    with pytest.raises(GraspError):
        Grasp(1, 1, 0, 10, -2)
    with pytest.raises(GraspError):
        Grasp.from_corners(np.array([[0, 0], [1, 0], [np.nan, 1], [0, 1]]))
    with pytest.raises(GraspError):
        Grasp.from_corners(np.zeros((3, 2)))


def test_scaled_and_inside():
    g = Grasp(10, 20, 0.5, 8, 4).scaled(2.0)
    assert (g.x, g.y, g.width, g.height) == (20, 40, 16, 8)
    assert g.inside(21, 41) and not g.inside(20, 41)


# ------------------------------------------------------------------- reasoning text

W, H = 320, 240
RED_MUG = ObjectInfo("mug_1", "mug", "red", 60.0, 200.0)
ORANGE_BOWL = ObjectInfo("orange_bowl", "bowl", "orange", 257.2, 116.6)


def test_format_grasp_parse_answer_round_trip():
    for g in [Grasp(123.4, 57.6, math.radians(-30), 40.2), Grasp(0, 0, math.pi / 2, 1),
              Grasp(319, 239, math.radians(-89.6), 17), Grasp(5, 5, math.radians(-90.2), 9)]:
        line = format_grasp(g)
        parsed = parse_answer(line, W, H)
        assert abs(parsed.grasp.x - round(g.x)) < 1e-9 and abs(parsed.grasp.y - round(g.y)) < 1e-9
        assert math.degrees(angle_difference(parsed.grasp.theta, g.theta)) <= 0.5 + 1e-9
        assert parsed.grasp.width == max(1, round(g.width))
        assert parsed.reasoning == ""
        assert format_grasp(parsed.grasp) == line


def test_answer_with_reasoning_parses_and_keeps_the_reasoning():
    g = Grasp(60, 200, math.radians(15), 30)
    text = answer(RED_MUG, g, W, H, objects=[RED_MUG, ORANGE_BOWL])
    assert text.splitlines()[-1] == "grasp: [60, 200, 15, 30]"
    parsed = parse_answer(text, W, H)
    assert "red mug" in parsed.reasoning and "front left" in parsed.reasoning
    assert parsed.reasoning.startswith("I see an orange bowl at (257, 117) and a red mug at "
                                       "(60, 200). The red mug at (60, 200) is ")
    # without the scene's objects the reasoning lists the named object alone
    assert answer(RED_MUG, g, W, H).startswith("I see a red mug at (60, 200). The red mug")
    assert parsed.grasp.x == 60 and parsed.grasp.y == 200
    assert answer(RED_MUG, g, W, H, reasoning=False) == "grasp: [60, 200, 15, 30]"
    # scan: the list stops at the named object, marks it, and does not place it again
    scan = answer(ORANGE_BOWL, g, W, H, objects=[RED_MUG, ORANGE_BOWL], answer_format="scan")
    assert scan.startswith("I see an orange bowl at (257, 117): the one to pick. It is a wide "
                           "open hemisphere, ")
    scan = answer(RED_MUG, g, W, H, objects=[RED_MUG, ORANGE_BOWL], answer_format="scan")
    assert scan.startswith("I see an orange bowl at (257, 117), a red mug at (60, 200): the one "
                           "to pick. It is a cylinder with a handle")
    assert scan.count("(") == 2 and parse_answer(scan, W, H).grasp.x == 60
    with pytest.raises(GraspParseError, match="answer format"):
        answer(RED_MUG, g, W, H, answer_format="last")
    assert "red mug" in instruction(RED_MUG, np.random.default_rng(0))


@pytest.mark.parametrize("text, why", [
    ("The mug is red.", "exactly one"),                                  # missing line
    ("", "empty"),
    ("grasp: [1, 2, 3, 4]\ngrasp: [1, 2, 3, 4]", "exactly one"),         # two lines
    ("grasp: [1, 2, 3, 4]\nthen something", "last line"),                # not the last line
    ("grasp: [1.5, 2, 3, 4]", "whole numbers"),                          # malformed numbers
    ("grasp: [1, 2, 3]", "whole numbers"),
    ("grasp: [1,2,3,4]", "whole numbers"),
    ("grasp: [a, 2, 3, 4]", "whole numbers"),
    ("grasp: [NaN, 2, 3, 4]", "whole numbers"),                          # NaN text
    ("grasp: [nan, nan, nan, nan]", "whole numbers"),
    ("grasp: [10, 20, 30, -4]", "whole numbers"),
    ("grasp: [320, 20, 30, 4]", "outside"),                              # outside the image
    ("grasp: [-1, 20, 30, 4]", "outside"),
    ("grasp: [10, 240, 30, 4]", "outside"),
    ("grasp: [10, 20, -90, 4]", r"\(-90, 90\]"),                         # -90 is invalid
    ("grasp: [10, 20, 91, 4]", r"\(-90, 90\]"),
    ("grasp: [10, 20, 30, 0]", "width"),
    ("grasp: [10, 20, 30, 401]", "width"),
])
def test_parse_answer_is_strict(text, why):
    with pytest.raises(GraspParseError, match=why) as info:
        parse_answer(text, W, H)
    assert info.value.text == text


def test_parse_answer_accepts_90_degrees_and_edges():
    p = parse_answer("Some reasoning.\n  grasp: [0, 239, 90, 400]  \n", W, H)
    assert p.grasp.theta == pytest.approx(math.pi / 2)
    assert (p.grasp.x, p.grasp.y, p.grasp.width) == (0, 239, 400)
    assert parse_answer("grasp: [319, 0, -89, 1]", W, H).grasp.theta \
        == pytest.approx(math.radians(-89))
    with pytest.raises(GraspParseError, match="not text"):
        parse_answer(None, W, H)  # type: ignore[arg-type]


def test_scene_text_lists_objects_in_reading_order_and_parses_back():
    objects = [ObjectInfo("a", "can", "blue", 164.4, 41.0),
               ObjectInfo("b", "mug", "red", 83, 154),
               ObjectInfo("c", "bowl", "orange", 257, 117),
               ObjectInfo("d", "box", "white", 20, 119)]
    # rows of 240 / 6 = 40 px, then left to right: (20, 119) and (257, 117) share row 2
    assert [o.name for o in reading_order(objects, H)] == ["a", "d", "c", "b"]
    text = scene_text(objects, H)
    assert text == ("I see a blue can at (164, 41), a white box at (20, 119), an orange bowl at "
                    "(257, 117) and a red mug at (83, 154).")
    parsed = parse_scene("Some words. " + text + " The red mug at (83, 154) is a mug.")
    assert [(o.colour, o.category, o.u, o.v) for o in parsed] == [
        ("blue", "can", 164.0, 41.0), ("white", "box", 20.0, 119.0),
        ("orange", "bowl", 257.0, 117.0), ("red", "mug", 83.0, 154.0)]
    assert parsed[0].name == "blue_can"
    assert scene_text(objects[:1], H) == "I see a blue can at (164, 41)."
    # scan: reading order up to the target (the orange bowl, third), which is marked
    scan = scene_text(objects, H, objects[2], "scan")
    assert scan == ("I see a blue can at (164, 41), a white box at (20, 119), an orange bowl "
                    "at (257, 117): the one to pick.")
    assert [o.name for o in parse_scene(scan)] == ["blue_can", "white_box", "orange_bowl"]
    assert scene_text(objects[:1], H, objects[0], "scan") == ("I see a blue can at (164, 41): "
                                                              "the one to pick.")
    with pytest.raises(GraspParseError, match="target"):
        scene_text(objects[1:], H, objects[0], "scan")
    assert parse_scene("grasp: [1, 2, 3, 4]") == [] and parse_scene(None) == []  # type: ignore
    with pytest.raises(GraspParseError):
        scene_text([], H)


def test_consistent_prefix_quotes_the_answers_own_list():
    listed = "I see a red mug at (83, 154), a blue can at (164, 41) and a red box at (9, 9)."
    wrong = f"{listed} The red mug at (83, 41) is a mug.\ngrasp: [83, 41, 0, 20]"
    assert consistent_prefix(wrong) == f"{listed} The red mug at (83, 154)"
    right = f"{listed} The blue can at (164, 41) is a can.\ngrasp: [164, 41, 0, 20]"
    assert consistent_prefix(right) is None
    # a label the list does not hold: the only listed object of its colour, if there is one
    assert consistent_prefix(f"{listed} The blue box at (9, 41) is a box.") == \
        f"{listed} The blue box at (164, 41)"
    assert consistent_prefix(f"{listed} The blue box at (164, 41) is a box.") is None
    assert consistent_prefix(f"{listed} The red can at (1, 2) is a can.") is None  # two reds
    assert consistent_prefix(f"{listed} The green mug at (1, 2) is a mug.") is None
    # a label the list holds twice: nothing to quote
    twice = "I see a red mug at (83, 154) and a red mug at (200, 20). The red mug at (1, 2) is"
    assert consistent_prefix(twice) is None
    # answers without a restatement (numbers-only, scan) and non-text
    assert consistent_prefix("grasp: [83, 41, 0, 20]") is None
    assert consistent_prefix("I see a red mug at (83, 154): the one to pick. It is a mug.") is None
    assert consistent_prefix(None) is None
    # a template answer is already consistent
    objs = [ObjectInfo("red_mug", "mug", "red", 83.2, 154.4),
            ObjectInfo("blue_can", "can", "blue", 164.0, 41.0)]
    text = answer(objs[0], Grasp(83, 150, 0.0, 20), 320, 240, objects=objs)
    assert consistent_prefix(text) is None


def test_flip_grasp_is_its_own_inverse_and_keeps_the_rectangle():
    g = Grasp(100.0, 50.0, 0.4, 30.0, 12.0)
    for horizontal, vertical in FLIPS:
        f = flip_grasp(g, 320, 240, horizontal, vertical)
        back = flip_grasp(f, 320, 240, horizontal, vertical)
        assert (back.x, back.y, back.width, back.height) == (g.x, g.y, g.width, g.height)
        assert math.isclose(back.theta, g.theta)
        assert math.isclose(f.x, 219.0 if horizontal else 100.0)
        assert math.isclose(f.y, 189.0 if vertical else 50.0)
        assert math.isclose(f.theta, -0.4 if horizontal != vertical else 0.4)


def test_most_agreed_picks_the_grasp_most_views_agree_on():
    a, b = Grasp(100, 100, 0.0, 20), Grasp(200, 50, 0.0, 20)
    near_b = Grasp(210, 55, 0.3, 20)
    assert most_agreed([a, b, near_b, None], radius=20) == (1, 2)
    assert most_agreed([a, b], radius=20) == (0, 1)              # a tie: the earliest view
    assert most_agreed([None, b, a], radius=20) == (1, 1)
    assert most_agreed([None, None], radius=20) == (None, 0)
    assert most_agreed([a, near_b, b], radius=5) == (0, 1)
    # weighted: the two agreeing grasps weigh less than the one alone
    assert most_agreed([a, b, near_b], radius=20, weights=[1.0, 0.3, 0.4]) == (0, 1)
    assert most_agreed([a, b, near_b], radius=20, weights=[0.5, 0.3, 0.4]) == (1, 2)
