"""Grasping on images the package did not render: workspace crops, depth holes and flat
depth, RGB-only input, letterboxing for the tiny VLM, everyday instructions, object-wise
folds, the on-object metric and fine-tuning on real data."""
from __future__ import annotations

import math
from dataclasses import asdict

import cv2
import numpy as np
import pytest

from embodied_transfer.grasp.backends.cnn import (CnnBackend, CnnConfig, Frame,
                                                  nothing_to_grasp, preprocess)
from embodied_transfer.grasp.backends.vlm import Letterbox
from embodied_transfer.grasp.cnn_train import _epoch_order, train_cnn
from embodied_transfer.grasp.config import parse_workspace
from embodied_transfer.grasp.cornell import CornellSample, read_dataset, write_sample
from embodied_transfer.grasp.errors import GraspError
from embodied_transfer.grasp.evaluate import centre_on_object, evaluate
from embodied_transfer.grasp.folds import (cross_validate_cnn, dataset_groups, object_folds,
                                           read_groups)
from embodied_transfer.grasp.language import normalise_instruction
from embodied_transfer.grasp.rectangles import Grasp

TINY = CnnConfig(input_size=32, channels=4, res_blocks=1, first_kernel=3)


def test_workspace_frame_maps_pixels_both_ways_and_is_checked():
    cfg = CnnConfig(input_size=64, workspace=(0.25, 0.2, 0.75, 0.8))
    frame = Frame.of(640, 480, cfg)
    assert (frame.x0, frame.y0, frame.side) == (160 + (320 - 320) // 2, 96 - 16, 320)
    g = Grasp(330.0, 250.0, 0.3, 40.0, 20.0)
    back = frame.to_image(frame.to_input(g))
    assert math.isclose(back.x, g.x) and math.isclose(back.y, g.y)
    assert math.isclose(back.width, g.width)
    whole = Frame.of(640, 480, CnnConfig(input_size=64))
    assert (whole.x0, whole.y0, whole.side) == (0, -80, 640)          # as before: pad
    for bad in ((0.5, 0.2, 0.4, 0.8), (0, 0, 1), (0, 0, 1, 1.2), ("a", 0, 1, 1)):
        with pytest.raises(GraspError, match="workspace"):
            CnnConfig(workspace=bad)
    assert parse_workspace("") is None and parse_workspace("0.1 0.2 0.9 0.8") == \
        (0.1, 0.2, 0.9, 0.8)
    with pytest.raises(GraspError, match="four fractions"):
        parse_workspace("0.1 0.2")


def test_depth_holes_count_as_the_centre_and_median_ignores_walls():
    rgb = np.random.default_rng(0).integers(0, 256, (40, 40, 3), dtype=np.uint8)
    depth = np.full((40, 40), 1.0, np.float32)
    depth[:, 30:] = 2.0                               # a far wall on a quarter of the image
    depth[10:14, 10:14] = 0.0                         # holes: no reading
    depth[20:22, 20:22] = np.nan
    cfg = CnnConfig(input_size=40, depth_centre="median", fit="crop")
    x, _ = preprocess(rgb, depth, cfg)
    assert np.isfinite(x).all()
    assert abs(float(x[3, 5, 5])) < 1e-6               # the table sits at the median
    assert abs(float(x[3, 11, 11])) < 1e-6 and abs(float(x[3, 20, 20])) < 1e-6   # holes
    assert float(x[3, 5, 35]) == pytest.approx(cfg.depth_clip)      # the wall, clipped
    none = preprocess(rgb, np.full((40, 40), np.nan, np.float32), cfg)[0]
    assert not none[3].any()                          # no valid depth: flat


def test_rgb_only_input_needs_a_model_trained_for_it():
    rgb = np.full((32, 32, 3), 128, np.uint8)
    with pytest.raises(GraspError, match="needs a depth image"):
        preprocess(rgb, None, CnnConfig(input_size=32))
    x, _ = preprocess(rgb, None, CnnConfig(input_size=32, rgb_fallback=True))
    assert x.shape[0] == 4 and not x[3].any()


def _table(h=60, w=80, with_object=True):
    rgb = np.full((h, w, 3), 200, np.uint8)
    depth = np.tile(np.linspace(0.9, 1.1, h, dtype=np.float32)[:, None], (1, w))  # oblique
    if with_object:
        rgb[20:40, 30:50] = 40
        depth[20:40, 30:50] -= 0.05
    return rgb, depth


def test_nothing_to_grasp_on_an_empty_table_a_blank_image_or_flat_depth():
    rgb, depth = _table()
    assert nothing_to_grasp(rgb, depth) == ""
    empty_rgb, empty_depth = _table(with_object=False)
    assert "nothing stands above the table" in nothing_to_grasp(empty_rgb, empty_depth)
    for value in (0, 255):
        blank = np.full((60, 80, 3), value, np.uint8)
        assert "uniform" in nothing_to_grasp(blank, None)
        assert "uniform" in nothing_to_grasp(blank, np.full((60, 80), np.nan, np.float32))
    backend = CnnBackend.create(TINY, seed=0)
    pred = backend.predict(empty_rgb, empty_depth)
    assert pred.grasp is None and pred.score == 0.0 and "nothing stands" in pred.error
    assert backend.predict(rgb, depth).grasp is not None
    with pytest.raises(GraspError, match="does not match"):
        backend.predict(rgb, depth[:30])
    big = cv2.resize(rgb, (3840, 2160), interpolation=cv2.INTER_NEAREST)
    big_depth = cv2.resize(depth, (3840, 2160), interpolation=cv2.INTER_NEAREST)
    g = backend.predict(big, big_depth).grasp                          # a 4K frame
    assert g is not None and 0 <= g.x < 3840 and 0 <= g.y < 2160


def test_on_object_metric_reads_depth_not_labels():
    _, depth = _table()
    assert centre_on_object(Grasp(40, 30, 0, 10), depth) is True
    assert centre_on_object(Grasp(10, 50, 0, 10), depth) is False
    assert centre_on_object(None, depth) is False
    assert centre_on_object(Grasp(40, 30, 0, 10), None) is None
    assert centre_on_object(Grasp(40, 30, 0, 10), np.full((60, 80), np.nan)) is None


def test_letterbox_maps_answers_back_to_the_input_pixels():
    rgb = np.zeros((480, 640, 3), np.uint8)
    box = Letterbox.of(rgb, (320, 320))
    assert box.scale == 0.5 and (box.x0, box.y0) == (0, 40)
    small = box.apply(rgb)
    assert small.shape == (320, 320, 3)
    g = box.to_image(Grasp(100.0, 140.0, 0.2, 20.0, 10.0))
    assert g.x == pytest.approx(200.5) and g.y == pytest.approx(200.5)
    assert g.width == pytest.approx(40.0) and g.theta == pytest.approx(0.2)
    assert Letterbox.of(rgb, (640, 480)) is None


@pytest.mark.parametrize("said, used, notes", [
    ("grab the crimson cup", "pick up the red mug", ("'cup' read as 'mug'", "'crimson'")),
    ("can you hand me the ball", "pick up the sphere", ("'ball' read as 'sphere'",)),
    ("Please get the navy blue box", "pick up the blue box", ("'navy' read as 'blue'",)),
    ("pick up the pink bowl", "pick up the bowl", ("colour 'pink'",)),
    ("grasp the red mug", "grasp the red mug", ()),            # a trained phrasing: kept
    ("fetch the teapot", "fetch the teapot", ("no object category",)),
])
def test_everyday_instructions_are_restated_in_the_trained_phrasing(said, used, notes):
    out = normalise_instruction(said)
    assert out.text == used
    assert len(out.notes) == len(notes)
    for note, expected in zip(out.notes, notes):
        assert expected in note


def _objects_dataset(directory, n_objects=4, poses=3, size=48):
    """Bright bars on a dark table with a depth bump: ``poses`` images per object."""
    rng = np.random.default_rng(0)
    i = 0
    for obj in range(n_objects):
        length = 14 + 3 * obj
        for _ in range(poses):
            rgb = np.full((size, size, 3), 20, np.uint8)
            depth = np.full((size, size), 0.8, np.float32)
            u, v = rng.uniform(16, size - 16, 2)
            phi = rng.uniform(-math.pi / 2, math.pi / 2)
            body = Grasp(u, v, phi, length, 7.0)
            poly = [np.round(body.corners()).astype(np.int32)]
            cv2.fillPoly(rgb, poly, (230, 230, 230))
            cv2.fillPoly(depth, poly, 0.75)
            write_sample(directory, CornellSample(f"pcd{i:04d}", rgb, depth,
                                                  [Grasp(u, v, phi + math.pi / 2, 11.0, 5.0)]))
            i += 1
    (directory / "objects.txt").write_text(
        "".join(f"pcd{o * poses:04d}-pcd{o * poses + poses - 1:04d} bar{o}\n"
                for o in range(n_objects)))
    return read_dataset(directory)


def test_object_folds_keep_each_object_in_one_fold(tmp_path):
    ds = _objects_dataset(tmp_path / "real")
    groups = dataset_groups(ds)
    assert groups == read_groups(tmp_path / "real" / "objects.txt")
    folds = object_folds(ds.ids, 2, groups)
    assert sorted(sum(folds, [])) == ds.ids
    for fold in folds:
        assert {groups[sid] for sid in fold}.isdisjoint(
            {groups[sid] for f in folds if f is not fold for sid in f})
    assert object_folds(ds.ids, 3) == [ds.ids[0:4], ds.ids[4:8], ds.ids[8:12]]   # blocks
    with pytest.raises(GraspError, match="5 folds of 4 objects"):
        object_folds(ds.ids, 5, groups)
    with pytest.raises(GraspError, match="names no object"):
        object_folds(ds.ids + ["pcd0099"], 2, groups)
    bad = tmp_path / "bad.txt"
    bad.write_text("pcd0001 x\nnot a line\n")
    with pytest.raises(GraspError, match="bad.txt:2"):
        read_groups(bad)
    sub = ds.subset(folds[0])
    assert sub.ids == sorted(folds[0]) and len(ds) == 12
    assert sub[0].id == sorted(folds[0])[0]


def test_half_real_batches_and_fine_tuning_from_a_model(tmp_path):
    rng = np.random.default_rng(0)
    order = _epoch_order(20, 5, 8, 3, rng)
    assert len(order) == 24
    for b in range(3):
        batch = order[b * 8:(b + 1) * 8]
        assert (batch >= 20).sum() == 4 and (batch < 20).sum() == 4
    assert (_epoch_order(0, 5, 4, 3, rng) >= 0).all()
    ds = _objects_dataset(tmp_path / "real")
    start = CnnBackend.create(TINY, seed=1)
    start.save(tmp_path / "start")
    train_cnn(None, tmp_path / "same", real_data=ds, init=tmp_path / "start", epochs=1,
              lr=0.0, progress=False)
    tuned = CnnBackend.load(tmp_path / "same")
    for k, v in start.model.state_dict().items():
        if "running" not in k and "num_batches" not in k:         # BN statistics move
            assert np.array_equal(v.numpy(), tuned.model.state_dict()[k].numpy()), k
    assert tuned.cfg.rgb_fallback and tuned.info["real_samples"] == 12
    assert tuned.info["initialised_from"] == str(tmp_path / "start")
    with pytest.raises(GraspError, match="another architecture"):
        train_cnn(None, tmp_path / "x", real_data=ds, init=tmp_path / "start",
                  config=CnnConfig(**{**asdict(TINY), "channels": 8}), epochs=1,
                  progress=False)


def test_object_wise_cross_validation_scores_every_image_once(tmp_path):
    ds = _objects_dataset(tmp_path / "real")
    start = CnnBackend.create(TINY, seed=1)
    start.save(tmp_path / "start")
    result = cross_validate_cnn(ds, 2, groups=dataset_groups(ds), init=tmp_path / "start",
                                workspace=(0.0, 0.0, 1.0, 1.0), epochs=2, batch_size=4)
    assert result["n"] == 12 and result["object_wise"]
    assert sorted(sum((f["test_ids"] for f in result["per_fold"]), [])) == ds.ids
    assert 0.0 <= result["rectangle_accuracy"] <= 1.0
    assert 0.0 <= result["rgb_only_accuracy"] <= 1.0          # trained with depth dropout
    plain = evaluate(ds, start)
    assert plain["on_object"] is not None and 0.0 <= plain["on_object"] <= 1.0


def test_cli_trains_on_real_data_and_cross_validates_by_object(tmp_path, cli):
    import json

    ds = _objects_dataset(tmp_path / "real")
    CnnBackend.create(TINY, seed=1).save(tmp_path / "start")
    rc, out, err = cli("grasp", "train", "--backend", "cnn", "--real", str(ds.directory),
                       "--init", str(tmp_path / "start"), "--workspace", "0", "0", "1", "1",
                       "--depth-centre", "median", "--epochs", "1", "--batch-size", "4",
                       "--out", str(tmp_path / "tuned"), timeout=300)
    assert rc == 0, err
    tuned = CnnBackend.load(tmp_path / "tuned")
    assert tuned.cfg.depth_centre == "median" and tuned.info["real_samples"] == 12
    rc, out, err = cli("grasp", "evaluate", "--backend", "cnn", "--model",
                       str(tmp_path / "start"), "--dataset", str(ds.directory), "--folds",
                       "2", "--epochs", "1", "--json", str(tmp_path / "cv.json"), timeout=300)
    assert rc == 0, err
    assert "object-wise 2-fold cross-validation" in out
    result = json.loads((tmp_path / "cv.json").read_text())
    assert result["n"] == 12 and result["object_wise"] and len(result["per_fold"]) == 2
    rc, out, err = cli("grasp", "train", "--backend", "tiny-vlm", "--real", str(ds.directory),
                       "--out", str(tmp_path / "x"))
    assert rc == 2 and "apply to --backend cnn only" in err
