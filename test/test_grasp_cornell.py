"""Cornell-layout datasets: write/read round trips, real-file quirks, clear errors."""
from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest

from embodied_transfer.grasp.cornell import (CornellSample, read_cpos, read_dataset,
                                             write_sample)
from embodied_transfer.grasp.errors import GraspError
from embodied_transfer.grasp.reasoning import ObjectInfo
from embodied_transfer.grasp.rectangles import Grasp, angle_difference


def _sample(sid="pcd0100", *, depth=True, instruction=None, objects=(), target=None, seed=0):
    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    d = rng.uniform(0.5, 1.0, (48, 64)).astype(np.float32) if depth else None
    if d is not None:
        d[0, 0] = np.nan                     # missing readings survive the round trip
    grasps = [Grasp(20.25, 30.5, 0.4, 18.0, 7.5), Grasp(40.0, 10.0, -1.2, 12.0, 4.0)]
    return CornellSample(sid, rgb, d, grasps, instruction, list(objects), target)


def _same_grasps(a, b, tol=2e-3):
    assert len(a) == len(b)
    for g, h in zip(a, b):
        assert (g.x, g.y, g.width, g.jaw) == pytest.approx((h.x, h.y, h.width, h.jaw), abs=tol)
        assert angle_difference(g.theta, h.theta) < 1e-3


def test_round_trip_with_depth(tmp_path):
    s = _sample()
    path = write_sample(tmp_path, s)
    assert path.name == "pcd0100r.png"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pcd0100cpos.txt", "pcd0100d.tiff",
                                                          "pcd0100r.png"]
    ds = read_dataset(tmp_path)
    assert len(ds) == 1 and ds.ids == ["pcd0100"]
    back = ds[0]
    assert back.id == "pcd0100"
    assert back.rgb.dtype == np.uint8 and np.array_equal(back.rgb, s.rgb)   # RGB order kept
    assert back.depth.dtype == np.float32
    assert np.array_equal(back.depth, s.depth, equal_nan=True)             # exact float32
    _same_grasps(back.grasps, s.grasps)
    assert back.instruction is None and back.objects == [] and back.target is None
    assert ds.has_depth(0) and not ds.has_reasoning
    # the file is Cornell text: four "u v" lines per rectangle, p0 -> p1 along the opening
    lines = (tmp_path / "pcd0100cpos.txt").read_text().splitlines()
    assert len(lines) == 8
    p = np.array([[float(v) for v in ln.split()] for ln in lines[:4]])
    assert np.hypot(*(p[1] - p[0])) == pytest.approx(18.0, abs=2e-3)


def test_round_trip_with_instruction_and_objects(tmp_path):
    objects = [ObjectInfo("red_mug", "mug", "red", 20.0, 30.0),
               ObjectInfo("blue_box", "box", "blue", 50.0, 12.5)]
    s = _sample("pcd0007", depth=False, instruction="pick up the red mug", objects=objects,
                target="red_mug")
    write_sample(tmp_path, s)
    write_sample(tmp_path, _sample("pcd0003", seed=1))
    ds = read_dataset(tmp_path)
    assert ds.ids == ["pcd0003", "pcd0007"]                   # sorted
    back = ds.get("pcd0007")
    assert back.depth is None and not ds.has_depth(1)
    assert back.instruction == "pick up the red mug"
    assert back.objects == objects and back.target == "red_mug"
    assert back.target_object == objects[0]
    assert ds.has_reasoning
    meta = json.loads((tmp_path / "pcd0007meta.json").read_text())
    assert meta["target"] == "red_mug" and meta["objects"][1]["category"] == "box"
    assert [s.id for s in ds] == ds.ids
    with pytest.raises(GraspError, match="no sample 'pcd9999'"):
        ds.get("pcd9999")
    # rewriting without the instruction removes the stale instruction and metadata files
    write_sample(tmp_path, _sample("pcd0007", depth=True))
    again = read_dataset(tmp_path).get("pcd0007")
    assert again.instruction is None and again.objects == [] and again.depth is not None


def test_write_rejects_bad_samples(tmp_path):
    with pytest.raises(GraspError, match="pcdNNNN"):
        write_sample(tmp_path, _sample("image_1"))
    bad = _sample()
    bad.depth = np.zeros((10, 10), np.float32)
    with pytest.raises(GraspError, match="does not match"):
        write_sample(tmp_path, bad)
    with pytest.raises(GraspError, match="target"):
        write_sample(tmp_path, _sample(objects=[ObjectInfo("a", "box", "red", 1, 1)],
                                       target="b"))
    with pytest.raises(GraspError, match="one non-empty line"):
        write_sample(tmp_path, _sample(instruction="two\nlines"))


REAL_CPOS = """253.000 319.700
309.000 324.000
307.000 350.000
251.000 345.700
NaN NaN
NaN NaN
NaN NaN
NaN NaN
262.000 311.000
279.000 301.000
 292.000 323.000
275.000 333.000
"""


def test_real_cornell_cpos_floats_and_nan_rectangle(tmp_path):
    (tmp_path / "pcd0101cpos.txt").write_text(REAL_CPOS)
    cv2.imwrite(str(tmp_path / "pcd0101r.png"), np.zeros((480, 640, 3), np.uint8))
    grasps, skipped = read_cpos(tmp_path / "pcd0101cpos.txt")
    assert skipped == 1 and len(grasps) == 2
    g = grasps[0]
    assert (g.x, g.y) == pytest.approx(((253 + 309 + 307 + 251) / 4,
                                        (319.7 + 324 + 350 + 345.7) / 4))
    assert g.width == pytest.approx(math.hypot(56, 4.3))           # p0 -> p1: the opening
    assert g.height == pytest.approx(math.hypot(2, 26))            # p1 -> p2: the jaw
    assert g.theta == pytest.approx(math.atan2(4.3, 56))
    ds = read_dataset(tmp_path)
    assert ds.skipped_rectangles == 1
    s = ds[0]
    assert s.skipped_rectangles == 1 and len(s.grasps) == 2 and s.depth is None
    assert s.rgb.shape == (480, 640, 3)


def test_real_cornell_subdirectories(tmp_path):
    write_sample(tmp_path / "01", _sample("pcd0100"))
    write_sample(tmp_path / "02", _sample("pcd0205", seed=2))
    (tmp_path / "backgrounds").mkdir()
    ds = read_dataset(tmp_path)
    assert ds.ids == ["pcd0100", "pcd0205"]
    assert np.array_equal(ds[1].rgb, _sample(seed=2).rgb)


@pytest.mark.parametrize("text, where, why", [
    ("1 2\n3 4\n5 6\n", ":1:", "not a multiple of 4"),
    ("1 2\n3 4\n5 6\n7 8\n1 2\n", ":5:", "not a multiple of 4"),
    ("1 2\n3 4\n5 x\n7 8\n", ":3:", "two numbers"),
    ("1 2\n3 4 5\n5 6\n7 8\n", ":2:", "two numbers"),
    ("1,2\n3 4\n5 6\n7 8\n", ":1:", "two numbers"),
    ("0 0\n10 0\n10 5\n0 5\n1 1\n1 1\n1 1\n1 1\n", ":5:", "degenerate"),
    ("0 0\ninf 0\n10 5\n0 5\n", ":2:", "infinite"),
])
def test_malformed_cpos_names_file_and_line(tmp_path, text, where, why):
    write_sample(tmp_path, _sample("pcd0001"))
    (tmp_path / "pcd0001cpos.txt").write_text(text)
    with pytest.raises(GraspError, match=why) as info:
        read_dataset(tmp_path)
    assert f"pcd0001cpos.txt{where}" in str(info.value)


def test_missing_or_empty_or_incomplete_datasets(tmp_path):
    with pytest.raises(GraspError, match="no grasp dataset at .*nowhere"):
        read_dataset(tmp_path / "nowhere")
    with pytest.raises(GraspError, match="holds no Cornell samples"):
        read_dataset(tmp_path)
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(GraspError, match="holds no Cornell samples"):
        read_dataset(tmp_path)
    write_sample(tmp_path, _sample("pcd0001"))
    (tmp_path / "pcd0001cpos.txt").unlink()
    with pytest.raises(GraspError, match="no grasp file 'pcd0001cpos.txt'"):
        read_dataset(tmp_path)


def test_bad_side_files_are_named(tmp_path):
    write_sample(tmp_path, _sample("pcd0001"))
    (tmp_path / "pcd0001instruction.txt").write_text("one\ntwo\n")
    with pytest.raises(GraspError, match="pcd0001instruction.txt.*exactly one"):
        read_dataset(tmp_path)
    (tmp_path / "pcd0001instruction.txt").write_text("pick up the cup\n")
    (tmp_path / "pcd0001meta.json").write_text("{not json")
    with pytest.raises(GraspError, match="pcd0001meta.json"):
        read_dataset(tmp_path)
    (tmp_path / "pcd0001meta.json").write_text(json.dumps({"objects": [], "target": "cup"}))
    with pytest.raises(GraspError, match="target 'cup' is not one of"):
        read_dataset(tmp_path)
    (tmp_path / "pcd0001meta.json").unlink()
    cv2.imwrite(str(tmp_path / "pcd0001d.tiff"), np.zeros((5, 5), np.float32))
    ds = read_dataset(tmp_path)                       # images are read lazily ...
    with pytest.raises(GraspError, match="pcd0001d.tiff.*5x5"):
        ds[0]                                         # ... and checked on access
    (tmp_path / "pcd0001r.png").write_bytes(b"not a png")
    (tmp_path / "pcd0001d.tiff").unlink()
    with pytest.raises(GraspError, match="cannot read image"):
        read_dataset(tmp_path)[0]
