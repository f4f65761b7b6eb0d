"""``embodied-transfer grasp ...`` and ``tactile ...`` from the command line: outputs and one-line errors."""
from __future__ import annotations

import json

from test_squat_cli import assert_one_line_error


def test_export_evaluate_and_trials_with_the_shipped_cnn(cli, tmp_path):
    rc, out, err = cli("grasp", "export", "--out", str(tmp_path / "d"), "--scenes", "3",
                       "--seed", "1", "--workers", "1", timeout=120)
    assert rc == 0, err
    assert "wrote 3 samples" in out
    rc, out, err = cli("grasp", "evaluate", "--backend", "cnn", "--dataset",
                       str(tmp_path / "d" / "plain"), "--json", str(tmp_path / "r.json"),
                       "--png", str(tmp_path / "r.png"), timeout=120)
    assert rc == 0, err
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["n"] == 3 and 0.0 <= result["rectangle_accuracy"] <= 1.0
    assert result["ms_per_image"] > 0 and (tmp_path / "r.png").stat().st_size > 0
    assert "rectangle accuracy" in out
    rc, out, err = cli("grasp", "simulate-trials", "--backend", "cnn", "--trials", "2",
                       "--json", str(tmp_path / "t.json"), timeout=120)
    assert rc == 0, err
    trials = json.loads((tmp_path / "t.json").read_text())
    assert trials["trials"] == 2 and len(trials["rows"]) == 2 and "succeeded" in out


def test_bad_input_gives_one_line_errors(cli, tmp_path):
    import numpy as np

    from embodied_transfer.grasp.cornell import CornellSample, write_sample
    from embodied_transfer.grasp.rectangles import Grasp

    data = tmp_path / "data"
    write_sample(data, CornellSample("pcd0001", np.zeros((24, 32, 3), np.uint8),
                                     grasps=[Grasp(10.0, 10.0, 0.0, 8.0, 4.0)]))
    rc, out, err = cli("grasp", "evaluate", "--backend", "cnn", "--dataset",
                       str(tmp_path / "nowhere"))
    assert_one_line_error(rc, out, err, "nowhere")
    rc, out, err = cli("grasp", "evaluate", "--backend", "tiny-vlm", "--model",
                       str(tmp_path / "no_model"), "--dataset", str(data))
    assert_one_line_error(rc, out, err, "no_model")
    rc, out, err = cli("grasp", "evaluate", "--backend", "vlm", "--dataset", str(data))
    assert_one_line_error(rc, out, err, "needs a model")
    rc, out, err = cli("grasp", "export", "--out", str(tmp_path / "x"), "--scenes", "0")
    assert_one_line_error(rc, out, err, "at least one scene")
    rc, out, err = cli("tactile", "evaluate", "--json", str(tmp_path / "t.json"), "--model",
                       str(tmp_path / "no_tactile"))
    assert_one_line_error(rc, out, err, "no_tactile")
