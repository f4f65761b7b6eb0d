"""The GR-ConvNet-style ``cnn`` backend: target maps, decoding, augmentation, training, IO."""
from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest
import torch

from embodied_transfer.grasp.backends.cnn import (CnnBackend, CnnConfig, Frame, GraspNet,
                                                  decode_maps, preprocess)
from embodied_transfer.grasp.cnn_train import augment, grasp_maps, map_loss, train_cnn
from embodied_transfer.grasp.cornell import CornellSample, read_dataset, write_sample
from embodied_transfer.grasp.errors import GraspError
from embodied_transfer.grasp.rectangles import Grasp, angle_difference

torch.set_num_threads(1)

TINY = CnnConfig(input_size=32, channels=4, res_blocks=1, first_kernel=5, use_depth=False)


@pytest.mark.parametrize("g", [Grasp(32.0, 30.0, 0.0, 24.0, 10.0),
                               Grasp(20.4, 41.7, math.radians(35), 18.0, 8.0),
                               Grasp(40.0, 25.0, math.radians(-72), 30.0, 6.0),
                               Grasp(31.5, 33.2, math.radians(90), 12.0, 12.0)])
def test_target_maps_peak_at_the_centre_and_decode_back(g):
    maps = grasp_maps([g], 64, width_norm=32.0)
    q, cos2, sin2, width = maps
    assert set(np.unique(q)) == {0.0, 1.0}
    r, c = round(g.y), round(g.x)
    assert q[r, c] == 1.0                                       # the centre is graspable
    assert cos2[r, c] == pytest.approx(math.cos(2 * g.theta), abs=1e-6)
    assert sin2[r, c] == pytest.approx(math.sin(2 * g.theta), abs=1e-6)
    assert width[r, c] == pytest.approx(g.width / 32.0)
    # only the centre third along the closing axis is marked, the full jaw across it
    along = np.array([math.cos(g.theta), math.sin(g.theta)])
    inside = np.argwhere(q > 0)[:, ::-1] - np.array([g.x, g.y])
    assert np.abs(inside @ along).max() <= g.width / 6 + 1e-9
    assert q.sum() == pytest.approx(g.width / 3 * g.jaw, rel=0.35)
    blurred = cv2.GaussianBlur(q, (0, 0), 1.5)
    pr, pc = np.unravel_index(np.argmax(blurred), q.shape)
    assert math.hypot(pc - g.x, pr - g.y) <= 1.0                 # the filtered peak
    back, quality = decode_maps(maps, 32.0, quality_sigma=1.5)
    assert math.hypot(back.x - g.x, back.y - g.y) <= 1.0
    assert math.degrees(angle_difference(back.theta, g.theta)) <= 1.0
    assert back.width == pytest.approx(g.width, abs=1e-3)
    assert 0.5 < quality <= 1.0


def test_maps_of_tiny_and_outside_rectangles():
    maps = grasp_maps([Grasp(10.2, 10.0, 0.3, 1.0, 0.4), Grasp(-50, -50, 0.0, 10, 5)], 32, 16)
    assert maps[0].sum() >= 1.0 and maps[0][10, 10] == 1.0    # at least the centre pixel
    assert grasp_maps([], 16, 8).shape == (4, 16, 16)


@pytest.mark.parametrize("fit", ["pad", "crop"])
def test_frame_maps_image_pixels_to_input_pixels_and_back(fit):
    cfg = CnnConfig(input_size=128, fit=fit)
    frame = Frame.of(640, 480, cfg)
    assert frame.scale == pytest.approx(5.0 if fit == "pad" else 3.75)
    g = Grasp(300.0, 200.0, 0.7, 60.0, 20.0)
    back = frame.to_image(frame.to_input(g))
    assert (back.x, back.y, back.theta, back.width, back.height) == pytest.approx(
        (g.x, g.y, g.theta, g.width, g.height))
    # a bright rectangle drawn in the image lands where to_input says
    rgb = np.zeros((480, 640, 3), np.uint8)
    cv2.fillPoly(rgb, [np.round(g.corners()).astype(np.int32)], (255, 255, 255))
    x, fr = preprocess(rgb, None, CnnConfig(input_size=128, fit=fit, use_depth=False))
    assert x.shape == (3, 128, 128) and fr == frame
    bright = x[0] - x[0].min()
    bright[bright < 0.2 * bright.max()] = 0.0          # not the (near-mean) padding
    rows, cols = np.mgrid[:128, :128]
    gi = frame.to_input(g)
    assert (bright * cols).sum() / bright.sum() == pytest.approx(gi.x, abs=0.3)
    assert (bright * rows).sum() / bright.sum() == pytest.approx(gi.y, abs=0.3)


def test_preprocess_normalises_and_checks_inputs():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)
    depth = rng.uniform(0.6, 0.8, (60, 80)).astype(np.float32)
    depth[5:9, 5:9] = np.nan
    cfg = CnnConfig(input_size=32)
    x, frame = preprocess(rgb, depth, cfg)
    assert x.shape == (4, 32, 32) and x.dtype == np.float32 and np.isfinite(x).all()
    assert np.abs(x[3]).max() <= cfg.depth_clip
    with pytest.raises(GraspError, match="needs a depth image"):
        preprocess(rgb, None, cfg)
    with pytest.raises(GraspError, match="uint8"):
        preprocess(rgb.astype(np.float32), depth, cfg)
    with pytest.raises(GraspError, match="does not match"):
        preprocess(rgb, depth[:10], cfg)
    with pytest.raises(GraspError, match="multiple of 4"):
        CnnConfig(input_size=30)
    with pytest.raises(GraspError, match="fit"):
        CnnConfig(fit="stretch")


def test_augmentation_moves_the_rectangles_with_the_image():
    n = 64
    g = Grasp(22.0, 40.0, math.radians(20), 24.0, 10.0)
    img = np.zeros((n, n), np.float32)
    cv2.fillPoly(img, [np.round(g.corners() * 16).astype(np.int32)], 1.0, cv2.LINE_8, shift=4)
    x = np.stack([img, img, img])
    rng = np.random.default_rng(3)
    for _ in range(12):
        y, (moved,) = augment(x, [g], rng, rotate_deg=180, flip=True, zoom=0.1)
        a = y[0]
        rows, cols = np.mgrid[:n, :n]
        assert (a * cols).sum() / a.sum() == pytest.approx(moved.x, abs=0.6)
        assert (a * rows).sum() / a.sum() == pytest.approx(moved.y, abs=0.6)
        # the bright region's long axis follows the (moved) rectangle's closing axis
        pts = np.argwhere(a > 0.5)[:, ::-1].astype(float)
        evals, evecs = np.linalg.eigh(np.cov(pts.T))
        major = evecs[:, -1]
        assert math.degrees(angle_difference(math.atan2(major[1], major[0]), moved.theta)) < 6
        assert a.sum() / img.sum() == pytest.approx((moved.width / g.width) ** 2, rel=0.1)


def test_masked_loss_reads_angle_and_width_only_where_graspable():
    target = torch.from_numpy(grasp_maps([Grasp(16, 16, 0.3, 12, 6)], 32, 16.0))[None]
    off = (target[:, 0] == 0).float()
    pred = target.clone()
    pred[:, 1:] += 3.0 * off[:, None]                 # anything off the graspable region
    assert map_loss(pred, target).item() == 0.0
    low = target.clone()
    low[:, 0] *= 0.5                                  # graspable pixels count extra
    assert map_loss(low, target).item() > 10 * map_loss(low, target, masked=False).item()
    assert map_loss(pred, target, masked=False).item() > 1.0
    half = target.clone()
    half[:, 3] *= 0.5                                 # widths too small where it matters
    assert map_loss(half, target).item() > 10 * map_loss(half, target, masked=False).item()


def _bright_rectangles(directory, n, seed, size=64):
    """Bright rotated rectangles on a dark background, grasped across their short side."""
    rng = np.random.default_rng(seed)
    for i in range(n):
        rgb = np.full((size, size, 3), 20, np.uint8)
        length, breadth = rng.uniform(18, 26), rng.uniform(7, 10)
        u, v = rng.uniform(20, size - 20, 2)
        phi = rng.uniform(-math.pi / 2, math.pi / 2)
        body = Grasp(u, v, phi, length, breadth)
        cv2.fillPoly(rgb, [np.round(body.corners()).astype(np.int32)], (230, 230, 230))
        grasp = Grasp(u, v, phi + math.pi / 2, breadth + 4, 5.0)
        write_sample(directory, CornellSample(f"pcd{i:04d}", rgb, None, [grasp]))
    return read_dataset(directory)


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    return _bright_rectangles(tmp_path_factory.mktemp("rects"), 12, seed=0)


def test_a_few_training_steps_lower_the_loss_and_are_deterministic(tiny_data, tmp_path):
    kwargs = dict(epochs=8, batch_size=4, seed=5, lr=1e-2, config=TINY, augment_data=False,
                  progress=False)
    h1 = train_cnn(tiny_data, tmp_path / "a", **kwargs)
    assert h1["steps"] == 24 and len(h1["step_loss"]) == 24 and len(h1["epoch_loss"]) == 8
    assert h1["epoch_loss"][-1] < 0.8 * h1["epoch_loss"][0]     # about 0.6 here
    for name in ("model.safetensors", "config.json", "training_curves.png",
                 "training_curves.json"):
        assert (tmp_path / "a" / name).is_file()
    config = json.loads((tmp_path / "a" / "config.json").read_text())
    assert config["config"]["input_size"] == 32 and config["info"]["seed"] == 5
    h2 = train_cnn(tiny_data, tmp_path / "b", **kwargs)
    assert h2["step_loss"] == h1["step_loss"]                    # same seed, same run
    h3 = train_cnn(str(tiny_data.directory), tmp_path / "c", **{**kwargs, "seed": 6,
                                                                  "epochs": 1})
    assert h3["step_loss"][0] != h1["step_loss"][0]


def test_training_with_augmentation_validation_and_auto_depth(tiny_data, tmp_path):
    h = train_cnn([tiny_data], tmp_path / "m", epochs=2, batch_size=6, seed=0,
                  config=None, use_depth=None, val_data=tiny_data, max_steps=3,
                  progress=False)
    assert h["steps"] == 3 and len(h["val_accuracy"]) == 2 and h["best_epoch"] in (1, 2)
    backend = CnnBackend.load(tmp_path / "m")
    assert backend.cfg.use_depth is False                       # the data has no depth
    with pytest.raises(GraspError, match="has no depth"):
        train_cnn(tiny_data, tmp_path / "d", epochs=1, config=TINY, use_depth=True,
                  progress=False)


def test_save_load_round_trip_gives_identical_predictions(tiny_data, tmp_path):
    backend = CnnBackend.create(TINY, seed=3)
    sample = tiny_data[0]
    before = backend.predict(sample.rgb, None, "ignored")
    assert before.grasp is not None and 0.0 <= before.score <= 1.0
    assert before.grasp.inside(64, 64)
    assert backend.name == "cnn" and backend.uses_instruction is False
    backend.save(tmp_path / "model")
    loaded = CnnBackend.load(tmp_path / "model")
    assert loaded.cfg == backend.cfg
    for s in list(tiny_data)[:3]:
        a, b = backend.predict(s.rgb, None, ""), loaded.predict(s.rgb, None, "")
        assert a.grasp == b.grasp and a.score == b.score
    out_a, _ = backend.maps(sample.rgb, None)
    out_b, _ = loaded.maps(sample.rgb, None)
    assert np.array_equal(out_a, out_b)


def test_missing_or_broken_model_dirs_raise_grasp_error(tmp_path):
    with pytest.raises(GraspError, match="no CNN grasp model at .*nowhere.*no such directory"):
        CnnBackend.load(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(GraspError, match="config.json missing"):
        CnnBackend.load(tmp_path / "empty")
    CnnBackend.create(TINY).save(tmp_path / "m")
    (tmp_path / "m" / "model.safetensors").unlink()
    with pytest.raises(GraspError, match="no weights at"):
        CnnBackend.load(tmp_path / "m")
    (tmp_path / "m" / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(GraspError, match="cannot load"):
        CnnBackend.load(tmp_path / "m")
    (tmp_path / "m" / "config.json").write_text("{}")
    with pytest.raises(GraspError, match="not a 'grconvnet'"):
        CnnBackend.load(tmp_path / "m")


def test_network_output_shape_matches_input():
    net = GraspNet(CnnConfig(input_size=48, channels=4, res_blocks=2)).eval()
    with torch.no_grad():
        assert net(torch.zeros(2, 4, 48, 48)).shape == (2, 4, 48, 48)
