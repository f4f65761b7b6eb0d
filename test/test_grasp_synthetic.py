"""Synthetic tabletop datasets (Cornell layout), reasoning examples and executed-grasp trials."""
from __future__ import annotations

import math

import numpy as np
import pytest

from embodied_transfer.grasp.backends.base import GraspBackend, Prediction
from embodied_transfer.grasp.cornell import read_dataset
from embodied_transfer.grasp.errors import GraspError
from embodied_transfer.grasp.reasoning import ObjectInfo, parse_answer, parse_scene
from embodied_transfer.grasp.rectangles import Grasp
from embodied_transfer.grasp.synthetic import export_dataset, simulate_trials
from embodied_transfer.grasp.mirroring import flip_scene
from embodied_transfer.grasp.training import answer_grasp, mean_colour, reasoning_examples
from embodied_transfer.grasp.tabletop_task import LiveTabletop


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    out = tmp_path_factory.mktemp("scenes")
    counts = export_dataset(out, 3, seed=5, workers=1, progress=False)
    return out, counts


def test_export_writes_plain_and_instructed_samples(exported, tmp_path):
    out, counts = exported
    plain, instructed = read_dataset(out / "plain"), read_dataset(out / "instructed")
    assert len(plain) == counts["plain"] == 3
    assert len(instructed) == counts["instructed"] == sum(len(s.objects) for s in plain)
    for sample in instructed:
        target = sample.target_object
        assert target is not None and target.colour in sample.instruction \
            and target.category in sample.instruction
        assert sample.depth is not None and sample.depth.shape == sample.rgb.shape[:2]
        # cpos holds only the target's grasps: each is nearer the target than any other object
        for g in sample.grasps:
            nearest = min(sample.objects, key=lambda o: math.hypot(o.u - g.x, o.v - g.y))
            assert nearest.name == target.name
    # every object's grasps together in the plain sample of the same scene
    assert sum(len(s.grasps) for s in instructed) == sum(len(s.grasps) for s in plain)
    # same seed, same data
    again = export_dataset(tmp_path, 1, seed=5, workers=1, progress=False)
    assert again["plain"] == 1
    np.testing.assert_array_equal(read_dataset(tmp_path / "plain")[0].rgb, plain[0].rgb)
    with pytest.raises(GraspError, match="at least one scene"):
        export_dataset(tmp_path, 0)


def test_reasoning_examples_name_one_ground_truth_grasp(exported):
    out, _ = exported
    dataset = read_dataset(out / "instructed")
    examples = reasoning_examples([dataset])
    numbers = reasoning_examples([dataset], reasoning=False)
    assert len(examples) == len(numbers) == len(dataset)
    for (rgb, instruction, text), (_, _, bare), sample in zip(examples, numbers, dataset):
        h, w = rgb.shape[:2]
        parsed = parse_answer(text, w, h)
        assert parsed.reasoning and sample.target_object.label() in parsed.reasoning
        assert parse_answer(bare, w, h).reasoning == "" and bare == text.splitlines()[-1]
        chosen = answer_grasp(sample.grasps, sample.target_object.u, sample.target_object.v)
        assert abs(parsed.grasp.x - chosen.x) <= 0.5 and abs(parsed.grasp.y - chosen.y) <= 0.5
    with pytest.raises(GraspError, match="no grasp"):
        answer_grasp([], 0.0, 0.0)
    with pytest.raises(GraspError, match="no instructed sample"):
        reasoning_examples([read_dataset(out / "plain")])


def test_flip_scene_mirrors_image_objects_and_grasp_together():
    rgb = np.zeros((6, 10, 3), np.uint8)
    rgb[1, 2] = (255, 0, 0)                                    # a red pixel at u=2, v=1
    obj = ObjectInfo("red_can", "can", "red", 2.0, 1.0)
    g = Grasp(2.0, 1.0, math.radians(30), 4.0)
    for horizontal, vertical in ((False, False), (True, False), (False, True), (True, True)):
        img, (o,), f = flip_scene(rgb, [obj], g, horizontal, vertical)
        assert img.shape == rgb.shape and np.shares_memory(img, rgb)   # a view, no copy
        assert tuple(img[int(o.v), int(o.u)]) == (255, 0, 0)           # the object moved with it
        assert (o.u, o.v) == ((7.0 if horizontal else 2.0), (4.0 if vertical else 1.0))
        assert (f.x, f.y) == (o.u, o.v) and f.width == 4.0
        assert math.degrees(f.theta) == pytest.approx(-30 if horizontal != vertical else 30)
        back, (o2,), f2 = flip_scene(img, [o], f, horizontal, vertical)
        np.testing.assert_array_equal(back, rgb)
        assert (o2.u, o2.v, f2.x, f2.y) == (2.0, 1.0, 2.0, 1.0)
        assert f2.theta == pytest.approx(g.theta)


def test_flipped_reasoning_examples_describe_the_mirrored_scene(exported):
    out, _ = exported
    dataset = read_dataset(out / "instructed")
    plain = reasoning_examples([dataset])
    flipped = reasoning_examples([dataset], flips=True)
    assert len(flipped) == 4 * len(plain)
    for k, sample in enumerate(dataset):
        h, w = sample.rgb.shape[:2]
        four = flipped[4 * k:4 * k + 4]
        assert four[0][2] == plain[k][2]
        np.testing.assert_array_equal(four[1][0], sample.rgb[:, ::-1])
        np.testing.assert_array_equal(four[2][0], sample.rgb[::-1])
        np.testing.assert_array_equal(four[3][0], sample.rgb[::-1, ::-1])
        g0 = parse_answer(four[0][2], w, h).grasp
        for (rgb, instruction, text), (fx, fy) in zip(four, ((0, 0), (1, 0), (0, 1), (1, 1))):
            assert instruction == sample.instruction
            parsed = parse_answer(text, w, h)
            assert parsed.grasp.x == pytest.approx(w - 1 - g0.x if fx else g0.x, abs=1)
            assert parsed.grasp.y == pytest.approx(h - 1 - g0.y if fy else g0.y, abs=1)
            listed = {o.name: o for o in parse_scene(parsed.reasoning)}
            assert set(listed) == {o.name for o in sample.objects}
            for o in sample.objects:
                assert listed[o.name].u == pytest.approx(w - 1 - o.u if fx else o.u, abs=0.51)
                assert listed[o.name].v == pytest.approx(h - 1 - o.v if fy else o.v, abs=0.51)
    colour = mean_colour(plain)
    assert len(colour) == 3 and all(0.3 < c < 0.9 for c in colour)     # mostly the table


class Oracle(GraspBackend):
    """Returns the named target's first true grasp of the scene the trials are on."""

    name = "oracle"

    def __init__(self, seed: int, offset: float = 0.0, none: bool = False) -> None:
        self.task, self.calls, self.offset, self.none = LiveTabletop(seed), 0, offset, none

    def predict(self, rgb, depth, instruction):
        if self.calls:
            self.task.next_scene()
        self.calls += 1
        assert instruction == self.task.instruction
        if self.none:
            return Prediction(None, text="grasp: [", error="unparseable")
        g = self.task.true_grasps()[self.task.target.name][0]
        return Prediction(Grasp(g.x + self.offset, g.y, g.theta, g.width, g.height))


def test_trials_execute_the_backends_grasps():
    good = simulate_trials(Oracle(11), 4, seed=11, progress=False)
    assert good["success_rate"] == good["target_success_rate"] == 1.0
    assert all(r["lifted"] == r["target"] for r in good["rows"])
    none = simulate_trials(Oracle(11, none=True), 2, seed=11, progress=False)
    assert none["success_rate"] == 0.0 and none["no_grasp"] == 2
    off = simulate_trials(Oracle(11, offset=60.0), 3, seed=11, progress=False)   # 60 px off
    assert off["target_success_rate"] < 1.0
    with pytest.raises(GraspError, match="at least one trial"):
        simulate_trials(Oracle(11), 0)
