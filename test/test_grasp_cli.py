"""``embodied-transfer grasp ...`` and ``tactile ...`` from the command line: outputs and
one-line errors."""
from __future__ import annotations

import json

from test_squat_cli import assert_one_line_error


def test_randomised_export_varies_the_look_and_keeps_the_size_on_request(cli, tmp_path):
    import cv2

    for name, extra in (("free", []), ("kept", ["--keep-size"])):
        rc, out, err = cli("grasp", "export", "--out", str(tmp_path / name), "--scenes", "4",
                           "--seed", "20", "--workers", "1", "--randomise", *extra,
                           timeout=120)
        assert rc == 0, err
    sizes = {name: {cv2.imread(str(p)).shape[:2]
                    for p in (tmp_path / name / "plain").glob("*r.png")}
             for name in ("free", "kept")}
    assert sizes["kept"] == {(240, 320)} and len(sizes["free"]) > 1


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
    assert trials["randomised"] is False
    rc, out, err = cli("grasp", "simulate-trials", "--backend", "cnn", "--trials", "1",
                       "--randomise", "--json", str(tmp_path / "t.json"), timeout=120)
    assert rc == 0, err
    assert json.loads((tmp_path / "t.json").read_text())["randomised"] is True
    # the shipped tiny VLM picks, the cnn places the grasp (its default; one view is quick)
    rc, out, err = cli("grasp", "evaluate", "--backend", "tiny-vlm", "--views", "1",
                       "--dataset", str(tmp_path / "d" / "instructed"),
                       "--limit", "2", "--json", str(tmp_path / "v.json"), timeout=180)
    assert rc == 0, err
    refined = json.loads((tmp_path / "v.json").read_text())
    assert (refined["backend"], refined["refine"], refined["n"]) == ("tiny-vlm+cnn", "cnn", 2)
    assert refined["views"] == 1 and refined["decoding"] == "consistent"
    rc, out, err = cli("grasp", "evaluate", "--backend", "tiny-vlm", "--views", "1",
                       "--refine", "none", "--dataset", str(tmp_path / "d" / "instructed"),
                       "--limit", "1", "--json", str(tmp_path / "v1.json"), timeout=180)
    assert rc == 0, err
    alone = json.loads((tmp_path / "v1.json").read_text())
    assert (alone["backend"], alone["refine"]) == ("tiny-vlm", "none")


def test_tiny_vlm_training_pretrains_the_tower_then_tunes_with_it_frozen(cli, tmp_path):
    """Stage 0 + frozen tuning, end to end, and stage 0 + frozen + unfrozen epochs."""
    from safetensors.torch import load_file

    from embodied_transfer.grasp.backends import load_backend

    rc, _, err = cli("grasp", "export", "--out", str(tmp_path / "d"), "--scenes", "2",
                     "--seed", "4", "--workers", "1", timeout=120)
    assert rc == 0, err
    data = str(tmp_path / "d" / "instructed")
    rc, _, err = cli("grasp", "train", "--backend", "tiny-vlm", "--dataset", data,
                     "--vision-dataset", str(tmp_path / "d" / "plain"), "--val", data,
                     "--vision-epochs", "2", "--epochs", "1", "--unfreeze-epochs", "0",
                     "--out", str(tmp_path / "m"),
                     timeout=300)
    assert rc == 0, err
    vision = json.loads((tmp_path / "m" / "vision_pretraining.json").read_text())
    assert vision["epochs"] == 2 and len(vision["val_epochs"]) == 2 and vision["shift"] > 0
    assert (tmp_path / "m" / "vision_pretraining.png").is_file()
    meta = json.loads((tmp_path / "m" / "grasp_vlm.json").read_text())
    assert meta["vision_frozen"] is True and meta["kind"] == "tiny-vlm"
    # end to end without the stage: the tower is trained with the rest, so it differs
    rc, _, err = cli("grasp", "train", "--backend", "tiny-vlm", "--dataset", data,
                     "--vision-epochs", "0", "--epochs", "1", "--out", str(tmp_path / "e2e"),
                     timeout=300)
    assert rc == 0, err
    assert not (tmp_path / "e2e" / "vision_pretraining.json").exists()
    assert json.loads((tmp_path / "e2e" / "grasp_vlm.json").read_text())["vision_frozen"] is False
    a, b = (load_file(tmp_path / d / "model.safetensors") for d in ("m", "e2e"))
    tower = [k for k in a if "vision_tower" in k]
    assert any(not (a[k].shape == b[k].shape and (a[k] == b[k]).all()) for k in tower)
    backend = load_backend("tiny-vlm", tmp_path / "m", refine="none")
    assert backend.name == "tiny-vlm"
    assert load_backend("tiny-vlm", tmp_path / "m").name == "tiny-vlm+cnn"   # the default
    assert meta["answer_format"] == "restate" and meta["unfreeze_epochs"] == 0
    # the same stage 0 and frozen epoch, then one epoch with the tower trained too
    rc, _, err = cli("grasp", "train", "--backend", "tiny-vlm", "--dataset", data,
                     "--vision-dataset", str(tmp_path / "d" / "plain"), "--val", data,
                     "--vision-epochs", "2", "--epochs", "1", "--unfreeze-epochs", "1",
                     "--answer-format", "scan", "--number-tokens", "--out", str(tmp_path / "u"),
                     timeout=300)
    assert rc == 0, err
    meta = json.loads((tmp_path / "u" / "grasp_vlm.json").read_text())
    assert meta["vision_frozen"] is False and meta["unfreeze_epochs"] == 1
    assert meta["answer_format"] == "scan" and meta["frozen_epochs"] == 1
    assert meta["tiny_vlm"]["number_tokens"] is True
    assert (tmp_path / "u" / "training_curves_frozen.json").is_file()
    assert (tmp_path / "u" / "vision_pretraining.json").is_file()
    c = load_file(tmp_path / "u" / "model.safetensors")
    assert any(not (a[k] == c[k]).all() for k in tower)
    # --init: one more epoch of every weight from that model, its earlier curves kept
    rc, _, err = cli("grasp", "train", "--backend", "tiny-vlm", "--dataset", data,
                     "--init", str(tmp_path / "u"), "--epochs", "1", "--lr", "5e-4",
                     "--answer-format", "scan", "--out", str(tmp_path / "c"), timeout=300)
    assert rc == 0, err
    meta = json.loads((tmp_path / "c" / "grasp_vlm.json").read_text())
    assert meta["continued_epochs"] == 1 and meta["lr"] == 5e-4 and meta["unfreeze_epochs"] == 1
    assert meta["numbers_only"] is False and meta["answer_format"] == "scan"
    assert meta["recipe_steps"][-1]["epochs"] == 1 and meta["tiny_vlm"]["number_tokens"] is True
    for name in ("vision_pretraining.json", "training_curves_frozen.json",
                 "training_curves_step1.json", "training_curves.json"):
        assert (tmp_path / "c" / name).is_file(), name
    d = load_file(tmp_path / "c" / "model.safetensors")
    assert any(not (c[k] == d[k]).all() for k in c)
    # a second continuation keeps every earlier step's curves, one file per step
    rc, _, err = cli("grasp", "train", "--backend", "tiny-vlm", "--dataset", data,
                     "--init", str(tmp_path / "c"), "--epochs", "1", "--lr", "2e-4",
                     "--out", str(tmp_path / "c2"), timeout=300)
    assert rc == 0, err
    meta = json.loads((tmp_path / "c2" / "grasp_vlm.json").read_text())
    assert [s["lr"] for s in meta["recipe_steps"]] == [1e-3, 5e-4] and meta["lr"] == 2e-4
    assert meta["answer_format"] == "scan"          # the model's own, --answer-format left out
    for name in ("training_curves_frozen.json", "training_curves_step1.json",
                 "training_curves_step2.json", "vision_pretraining.png"):
        assert (tmp_path / "c2" / name).is_file(), name
    rc, _, err = cli("grasp", "train", "--backend", "tiny-vlm", "--dataset", data,
                     "--init", str(tmp_path / "nothing"), "--out", str(tmp_path / "x"))
    assert rc != 0 and "--init" in err and "Traceback" not in err
    # options --init would ignore, or answers of another kind, are refused before training
    for extra, message in ((["--vision-layers", "2"], "--vision-layers"),
                           (["--number-tokens"], "--number-tokens"),
                           (["--answer-format", "restate"], "'scan' answers"),
                           (["--numbers-only"], "leave out --numbers-only"),
                           # cnn: --init is the cnn to start from; a tiny VLM is not one
                           (["--backend", "cnn"], "is not a CNN grasp model")):
        rc, _, err = cli("grasp", "train", "--backend", "tiny-vlm", "--dataset", data,
                         "--init", str(tmp_path / "c"), "--out", str(tmp_path / "x"), *extra)
        assert rc != 0 and message in err and "Traceback" not in err, (extra, err)
        assert not (tmp_path / "x").exists()


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
    rc, out, err = cli("grasp", "evaluate", "--backend", "cnn", "--refine", "cnn",
                       "--dataset", str(data))
    assert_one_line_error(rc, out, err, "text backends")
    rc, out, err = cli("grasp", "export", "--out", str(tmp_path / "x"), "--scenes", "0")
    assert_one_line_error(rc, out, err, "at least one scene")
    rc, out, err = cli("tactile", "evaluate", "--json", str(tmp_path / "t.json"), "--model",
                       str(tmp_path / "no_tactile"))
    assert_one_line_error(rc, out, err, "no_tactile")
    rc, out, err = cli("tactile", "evaluate", "--source", "mujoco", "--json",
                       str(tmp_path / "t.json"), "--png", str(tmp_path / "t.png"))
    assert_one_line_error(rc, out, err, "not with --source mujoco")
    rc, out, err = cli("tactile", "skill", "--json", str(tmp_path / "s.json"), "--trials", "0")
    assert_one_line_error(rc, out, err, "--trials must be at least 1")
    rc, out, err = cli("tactile", "skill", "--json", str(tmp_path / "s.json"), "--model",
                       "embodied_transfer/models/tactile")
    assert_one_line_error(rc, out, err, "does not pair glove_137 with one Shadow Hand layout")
