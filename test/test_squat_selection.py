"""Leave-one-out selection of the Real2Sim fine-tuning settings (no ROS)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import require_real_data
from embodied_transfer.squat.data import real_squat_dir
from embodied_transfer.squat.errors import SquatDataError
from embodied_transfer.squat.selection import leave_one_out, parse_variant
from embodied_transfer.squat.train import TrainConfig

REAL = real_squat_dir()


def test_variants_parse_typed_and_reject_what_they_cannot_change():
    assert parse_variant("no_adapt:adapt_prior_frames=0,gain_aug=0.3") == (
        "no_adapt", {"adapt_prior_frames": 0, "gain_aug": 0.3})
    name, over = parse_variant("w:consistency_weight=5")
    assert isinstance(over["consistency_weight"], float)
    assert parse_variant("c:phase_filter_cyclic=true")[1] == {"phase_filter_cyclic": True}
    assert parse_variant("c:phase_filter_cyclic=0")[1] == {"phase_filter_cyclic": False}
    for bad, words in (("nocolon", "NAME:field"), ("x:bogus=1", "not field=value"),
                       ("x:gain_aug", "not field=value"), ("x:gain_aug=high", "not a float"),
                       ("x:phase_filter_cyclic=maybe", "not a bool"),
                       ("x:classifier_steps=10", "simulated stages"),
                       ("x:raw_phase_filter_sharpness=0.2", "chosen per pipeline")):
        with pytest.raises(SquatDataError, match=words):
            parse_variant(bad)


@pytest.fixture(scope="module")
def tiny_sim():
    from embodied_transfer.sim.dataset import generate
    from embodied_transfer.squat.signals import sim_episodes

    return sim_episodes(generate(6, seed=2, workers=1, progress=False))


def test_each_fold_fine_tunes_on_the_other_recordings_only(tiny_sim, monkeypatch):
    """The recording a fold scores is never in what that fold fine-tunes on; the LOO score
    is the mean over the folds, for the default recipe and each variant."""
    require_real_data(REAL)
    from embodied_transfer.squat import selection
    from embodied_transfer.squat.real import read_real_csv
    from embodied_transfer.squat.signals import real_recording

    recordings = [rec for name in ("recording_1.csv", "recording_2.csv")
                  for rec in read_real_csv(REAL / name)]
    seen = []
    real_finetune = selection.finetune_content

    def spy(model, classifier, sim, xs, ys, real, real_norm, cfg, *rest):
        seen.append(([len(x) for x, _ in real], cfg.gain_aug, cfg.adapt_prior_frames))
        return real_finetune(model, classifier, sim, xs, ys, real, real_norm, cfg, *rest)
    monkeypatch.setattr(selection, "finetune_content", spy)
    cfg = TrainConfig(classifier_steps=2, vae_steps=2, content_steps=2, style_steps=2,
                      finetune_steps=2, batch=16)
    result = leave_one_out(tiny_sim, recordings, {
        "no_adapt": {"adapt_prior_frames": 0, "gain_aug": 0.2},
        "unfiltered": {"phase_filter_sharpness": 0.0}}, cfg, show=False)
    lengths = [len(real_recording(rec)[0]) for rec in recordings]
    # "unfiltered" changes only how the models are applied: no fine-tuning of its own
    prior = TrainConfig().adapt_prior_frames
    assert seen == [([lengths[1]], 0.5, prior), ([lengths[0]], 0.5, prior),
                    ([lengths[1]], 0.2, 0), ([lengths[0]], 0.2, 0)]
    assert list(result["variants"]) == ["default", "no_adapt", "unfiltered"]
    unfiltered = result["variants"]["unfiltered"]
    assert unfiltered["loo"] == unfiltered["loo_unfiltered"]
    assert unfiltered["loo_unfiltered"] == result["variants"]["default"]["loo_unfiltered"]
    for v in result["variants"].values():
        assert [f["held_out"] for f in v["folds"]] == [rec.source for rec in recordings]
        for c in ("raw", "vae", "proposed"):
            assert v["loo"][c] == pytest.approx(np.mean([f["accuracy"][c] for f in v["folds"]]))
            assert 0.0 <= v["loo"][c] <= 1.0
        assert [f["reps_true"] for f in v["folds"]] == [12, 14]
    # raw does not depend on the fine-tuning settings; the converters do
    raw = [f["accuracy"]["raw"] for v in result["variants"].values() for f in v["folds"]]
    assert raw[:2] == raw[2:4]
    for v in result["variants"].values():   # every fold also scored under each UWB stress
        for mode in selection.UWB_STRESS:
            assert v["loo_stress"][mode]["proposed"] == pytest.approx(
                np.mean([f["stress"][mode]["accuracy"]["proposed"] for f in v["folds"]]))
    assert "proposed uwb_mirrored" in selection.table(result).splitlines()[0]
    json.dumps(result)          # the command writes it as JSON


def test_own_filters_give_raw_and_vae_the_phase_filters_they_ship_with(tiny_sim):
    """own_filters=True (the bench): raw and plain VAE through raw_/vae_phase_filter_*, the
    proposed pipeline through the classifier's; without it all three share the variant's."""
    require_real_data(REAL)
    from embodied_transfer.squat.real import read_real_csv

    recordings = [rec for name in ("recording_1.csv", "recording_3.csv")
                  for rec in read_real_csv(REAL / name)]
    cfg = TrainConfig(classifier_steps=2, vae_steps=2, content_steps=2, style_steps=2,
                      finetune_steps=2, batch=16, raw_phase_filter_sharpness=0.0,
                      vae_phase_filter_sharpness=0.0)
    own = leave_one_out(tiny_sim, recordings, {}, cfg, show=False,
                        own_filters=True)["variants"]["default"]
    shared = leave_one_out(tiny_sim, recordings, {}, cfg, show=False)["variants"]["default"]
    for c in ("raw", "vae"):
        assert own["loo"][c] == own["loo_unfiltered"][c]            # unfiltered, as asked
        assert shared["loo"][c] != shared["loo_unfiltered"][c]      # the classifier's filter
    assert own["loo"]["proposed"] == shared["loo"]["proposed"]


def test_uwb_stress_mirrors_or_flattens_the_range_within_its_own_span():
    require_real_data(REAL)
    from embodied_transfer.squat.real import load_real_csv
    from embodied_transfer.squat.selection import uwb_stressed

    rec = load_real_csv(REAL / "recording_1.csv")
    lo, hi = rec.uwb.min(), rec.uwb.max()
    mirrored = uwb_stressed(rec, "uwb_mirrored")
    np.testing.assert_allclose(mirrored.uwb + rec.uwb, lo + hi)
    np.testing.assert_allclose(mirrored.uwb_at_imu + rec.uwb_at_imu, lo + hi)
    assert np.all((mirrored.uwb_at_imu >= lo - 1e-12) & (mirrored.uwb_at_imu <= hi + 1e-12))
    flat = uwb_stressed(rec, "uwb_constant")
    assert np.all(flat.uwb_at_imu == rec.uwb.mean()) and np.all(flat.uwb == rec.uwb.mean())
    for kept in ("accel", "gyro", "phase", "t"):
        assert getattr(mirrored, kept) is getattr(rec, kept)
    assert rec.uwb_at_imu.std() > 0            # the original is left as it was
    with pytest.raises(SquatDataError, match="unknown UWB stress"):
        uwb_stressed(rec, "uwb_upside_down")


def test_select_needs_two_recordings(tiny_sim):
    with pytest.raises(SquatDataError, match="at least two"):
        leave_one_out(tiny_sim, [], {}, show=False)


def test_select_command_bad_variant_is_one_line(tmp_path, cli):
    rc, out, err = cli("squat", "select", "--real", str(tmp_path / "a.csv"), "--variant",
                       "oops", "--json", str(tmp_path / "r.json"))
    assert rc == 2 and err.startswith("embodied-transfer: error:") and "Traceback" not in err
    assert "variant 'oops'" in err


def test_each_condition_gets_its_own_best_settings_and_the_shipped_one_is_named():
    from embodied_transfer.squat import selection

    def variant(raw, vae, proposed, overrides, stress=(0.85, 0.85)):
        loo = {"raw": raw, "vae": vae, "proposed": proposed}
        return {"loo": loo, "loo_unfiltered": loo, "rep_errors": {"proposed": 0},
                "overrides": overrides,
                "loo_stress": {m: {"proposed": s} for m, s in zip(("uwb_mirrored",
                                                                  "uwb_absent"), stress)}}

    result = {"base_config": {"phase_filter_sharpness": 1.0, "phase_filter_cyclic": False},
              "variants": {"default": variant(0.88, 0.84, 0.91, {}),
                           "sharp": variant(0.92, 0.84, 0.895,
                                            {"phase_filter_sharpness": 0.2}),
                           "cyclic": variant(0.89, 0.86, 0.915, {"phase_filter_cyclic": True},
                                             (0.85, 0.79)),
                           "drop": variant(0.88, 0.84, 0.905, {"uwb_dropout": 0.4})}}
    best = selection.per_condition(result)
    assert {c: b["variant"] for c, b in best.items()} == {"raw": "sharp", "vae": "cyclic",
                                                           "proposed": "cyclic"}
    text = selection.table(result)
    assert "raw 92.0% (sharp), vae 86.0% (cyclic), proposed 91.5% (cyclic)" in text
    assert "proposed does not beat raw when each has its own settings (91.5 vs 92.0%)" in text
    # cyclic is best but below 80 % without UWB: the recipe is the best of the others
    assert selection.recipe(result) == {
        "variant": "default", "reason": "best proposed LOO among the variants at >= 80% with "
                                        "the range mirrored and without UWB",
        "settings": {"raw_phase_filter_sharpness": 0.2, "raw_phase_filter_cyclic": False,
                     "vae_phase_filter_sharpness": 1.0, "vae_phase_filter_cyclic": True}}
    assert "shipped: 'default' (best proposed LOO among" in text
    assert "raw and plain VAE through their own phase filters (sharpness 0.2 / 1)" in text
    for v in result["variants"].values():
        v["loo_stress"]["uwb_absent"]["proposed"] = 0.7
    result["variants"]["drop"]["loo_stress"]["uwb_absent"]["proposed"] = 0.78
    assert selection.recipe(result)["variant"] == "drop"          # best mean
    assert "no variant reaches 80%" in selection.recipe(result)["reason"]
    result["variants"]["sharp"]["loo"]["raw"] = 0.90
    assert "proposed beats raw" in selection.table(result)


def test_the_shipped_models_use_the_recipe_the_selection_chose():
    """``squat train``'s defaults are what :func:`recipe` picks from the shipped
    selection_loo.json (everything else as the selection ran), and the shipped phase
    filters are those settings."""
    from embodied_transfer.squat.phases import read_phase_filters
    from embodied_transfer.squat.pipeline import DEFAULT_MODELS
    from embodied_transfer.squat.selection import recipe

    result = json.loads((DEFAULT_MODELS / "selection_loo.json").read_text())
    assert len(result["recordings"]) == 3
    chosen, cfg = recipe(result), TrainConfig()
    for key, value in chosen["settings"].items():
        assert getattr(cfg, key) == value, key
    for key, value in result["base_config"].items():
        if key not in chosen["settings"]:
            assert getattr(cfg, key) == value, key
    filters = read_phase_filters(DEFAULT_MODELS)
    for c, prefix in (("raw", "raw_"), ("vae", "vae_"), ("proposed", "")):
        want = getattr(cfg, f"{prefix}phase_filter_sharpness")
        assert (filters[c].settings if filters[c] else {"sharpness": 0.0})["sharpness"] == want
        if filters[c]:
            assert filters[c].settings["cyclic"] == getattr(cfg, f"{prefix}phase_filter_cyclic")
