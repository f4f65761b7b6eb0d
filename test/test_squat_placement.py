"""Phone placement and missing UWB, told from the data (squat.placement, squat evaluate)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from embodied_transfer.squat.data import real_squat_dir
from embodied_transfer.squat.phases import DOWN, STOP, UP
from embodied_transfer.squat.placement import (RangeTrend, has_uwb, mirrored, range_trend,
                                               run_any_placement, without_uwb)
from conftest import require_real_data


def test_range_trend_sign_follows_the_placement():
    phases = np.array([STOP] * 10 + [DOWN] * 20 + [STOP] * 5 + [UP] * 20 + [STOP] * 10)
    # phone below the wrist: the range shrinks going down, grows going up
    height = np.concatenate([np.ones(10), np.linspace(1, 0.4, 20), np.full(5, 0.4),
                             np.linspace(0.4, 1, 20), np.ones(10)])
    assert range_trend(height, phases) < 0
    assert range_trend(2.0 - height, phases) > 0          # phone above: mirrored
    assert range_trend(height, np.full(len(phases), STOP)) == 0.0


def test_the_range_trend_is_the_same_fed_at_once_or_frame_by_frame():
    rng = np.random.default_rng(0)
    rates, phases = rng.normal(size=200), rng.choice([STOP, DOWN, UP], size=200)
    whole, frames = RangeTrend(), RangeTrend()
    whole.add(rates, phases)
    for r, ph in zip(rates, phases):
        frames.add(float(r), int(ph))
    assert whole.counts == frames.counts == {"down": int((phases == DOWN).sum()),
                                             "up": int((phases == UP).sum())}
    assert whole.trend == pytest.approx(frames.trend)
    assert whole.trend == pytest.approx(rates[phases == DOWN].mean() - rates[phases == UP].mean())
    assert RangeTrend().trend == 0.0 and RangeTrend().placement == "below"
    whole.add(np.where(phases == DOWN, 10.0, 0.0), phases)    # the range grows going down
    assert whole.placement == "above"


def test_uwb_presence_mirroring_and_filling():
    x = np.zeros((6, 7), np.float32)
    x[:, 6] = [0.5, 0.7, 0.9, 0.8, 0.6, 0.5]
    assert has_uwb(x)
    np.testing.assert_allclose(mirrored(x)[:, 6], [0.9, 0.7, 0.5, 0.6, 0.8, 0.9], atol=1e-6)
    assert not has_uwb(without_uwb(x)) and np.isnan(without_uwb(x)[:, 6]).all()
    x[:, 6] = np.nan
    assert not has_uwb(x)


@pytest.fixture(scope="module")
def recording_1():
    from embodied_transfer.squat.real import load_real_csv

    return load_real_csv(require_real_data(real_squat_dir() / "recording_1.csv"))


def test_shipped_pipeline_takes_the_right_path_on_a_real_recording(recording_1):
    """Unchanged: UWB, phone below. Mirrored: recognised as above, and processed exactly as
    the unchanged recording. No UWB: the IMU-only path."""
    from embodied_transfer.squat.pipeline import load_pipelines
    from embodied_transfer.squat.signals import real_recording

    pipeline = load_pipelines()["proposed"]
    x, y = real_recording(recording_1)
    _, probs, path = run_any_placement(pipeline, x)
    assert (path.mode, path.placement) == ("uwb", "below") and path.range_trend < 0
    _, probs_m, path_m = run_any_placement(pipeline, mirrored(x))
    assert (path_m.mode, path_m.placement) == ("uwb", "above") and path_m.range_trend > 0
    np.testing.assert_allclose(probs_m, probs, atol=1e-5)
    nan = x.copy()
    nan[:, 6] = np.nan
    _, probs_n, path_n = run_any_placement(pipeline, nan)
    assert (path_n.mode, path_n.placement) == ("imu_only", "") and np.isnan(path_n.range_trend)
    moving = y != STOP
    assert np.mean(probs_n.argmax(1)[moving] == y[moving]) > 0.6    # the watch alone works


def test_squat_evaluate_scores_a_recording_without_uwb(cli, tmp_path):
    source = require_real_data(real_squat_dir() / "recording_1.csv")
    lines = source.read_text().splitlines()
    head, rows = lines[0], [line.split(",") for line in lines[1:]]
    watch_only = tmp_path / "watch_only.csv"
    watch_only.write_text("\n".join([head, *(",".join([r[0], "", *r[2:]]) for r in rows)]) + "\n")
    out_json = tmp_path / "eval.json"
    rc, out, err = cli("squat", "evaluate", "--csv", str(source), str(watch_only),
                       "--json", str(out_json))
    assert rc == 0, err
    result = json.loads(out_json.read_text())
    paths = {r["file"]: (r["mode"], r["placement"]) for r in result["reps"]}
    assert paths == {str(source): ("uwb", "below"), str(watch_only): ("imu_only", "")}
    assert "imu_only" in out
    rc, _, err = cli("squat", "evaluate", "--csv", str(watch_only), "--json",
                     str(tmp_path / "e2.json"), "--no-placement-check")
    assert rc == 2 and "has no UWB reading" in err
