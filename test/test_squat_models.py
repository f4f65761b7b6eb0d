"""Real2Sim models without ROS: checkpoints, MINE, windows, training, evaluation, commands."""
from __future__ import annotations

from conftest import require_real_data
from embodied_transfer.squat.data import real_squat_dir

import json

import numpy as np
import pytest
import torch

from embodied_transfer.squat.errors import SquatDataError
from embodied_transfer.squat.models import (Checkpoint, ModelConfig, MultiEncoderVAE,
                                            PhaseClassifier, StatisticsNetwork,
                                            mine_lower_bound)
from embodied_transfer.squat.phases import DOWN, STOP, UP, PhaseFilter
from embodied_transfer.squat.pipeline import RepCounter
from embodied_transfer.squat.signals import (InputAdaptation, Normalizer, stack,
                                             time_warp, twist, windows)

REAL = real_squat_dir()


def test_windows_pad_with_the_end_frames_and_centre_each_frame():
    x = np.arange(12, dtype=np.float32).reshape(6, 2)
    w = windows(x, past=2, future=1)
    assert w.shape == (6, 4, 2)
    assert np.array_equal(w[0, :, 0], [0, 0, 0, 2])       # first frame repeated before
    assert np.array_equal(w[3, 2], x[3])                  # centre at index `past`
    assert np.array_equal(w[5, :, 0], [6, 8, 10, 10])     # last frame repeated after
    with pytest.raises(SquatDataError):
        windows(x, -1, 0)


def test_stack_rejects_garbage():
    a = np.zeros((4, 3))
    assert stack(a, a, np.ones(4)).shape == (4, 7)
    with pytest.raises(SquatDataError, match="NaN"):
        stack(a, a, np.array([1, np.nan, 1, 1]))
    with pytest.raises(SquatDataError, match="shapes"):
        stack(a, a[:3], np.ones(4))


def test_time_warp_is_the_same_motion_quicker():
    # a knee-like angle q(t) = sin(w t) at 20 Hz: rate w cos(w t), acceleration -w² sin(w t)
    t, w = np.arange(400) / 20.0, 1.3
    def motion(w):
        return stack(-w * w * np.sin(w * t)[:, None].repeat(3, 1),
                     w * np.cos(w * t)[:, None].repeat(3, 1), 1.0 + 0.2 * np.sin(w * t))
    labels = (np.sin(w * t) > 0).astype(np.int64)
    x, y = time_warp(motion(w), labels, 1.5)
    n = len(x)
    assert n == 267 and y.shape == (n,)          # times 0, 1.5, ..., 399 frames
    # the same motion at 1.5 w, seen over the first n frames (interpolation error only)
    np.testing.assert_allclose(x, motion(1.5 * w)[:n], atol=0.02)
    np.testing.assert_array_equal(y[::10], (np.sin(1.5 * w * t[:n:10]) > 0).astype(np.int64))
    slow, _ = time_warp(motion(w), labels, 1 / 1.5)
    assert len(slow) == 599
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(SquatDataError, match="speed"):
            time_warp(motion(w), labels, bad)
    with pytest.raises(SquatDataError, match="time warp needs"):
        time_warp(motion(w)[:, :6], labels, 1.2)


def test_twist_turns_accel_and_gyro_about_the_forearm_and_keeps_the_range():
    rng = np.random.default_rng(0)
    x = stack(rng.normal(size=(50, 3)), rng.normal(size=(50, 3)), 1.0 + rng.random(50))
    t = twist(x, 0.7)
    for vec in (slice(0, 3), slice(3, 6)):
        np.testing.assert_allclose(np.linalg.norm(t[:, vec], axis=1),
                                   np.linalg.norm(x[:, vec], axis=1), rtol=1e-5)
    np.testing.assert_array_equal(t[:, [0, 3, 6]], x[:, [0, 3, 6]])   # x axis and range
    # a quarter turn takes y onto z: (0, 1, 0) → (0, 0, 1)
    unit = stack(np.tile([0.0, 1.0, 0.0], (2, 1)), np.tile([0.0, 0.0, 1.0], (2, 1)), np.ones(2))
    q = twist(unit, np.pi / 2)
    np.testing.assert_allclose(q[:, :6], [[0, 0, 1, 0, -1, 0]] * 2, atol=1e-6)
    np.testing.assert_allclose(twist(t, -0.7), x, atol=1e-5)
    with pytest.raises(SquatDataError, match="finite"):
        twist(x, float("nan"))
    with pytest.raises(SquatDataError, match="twist needs"):
        twist(x[:, :6], 0.1)


def test_uwb_swing_rescales_only_the_range_of_a_share_of_the_windows():
    """uwb_aug: a share of the (normalised) real windows get their UWB channel times one
    factor from U(-1, 1) each (smaller swing, none, or mirrored); IMU channels untouched."""
    from embodied_transfer.squat.train import _uwb_swing

    # seeded, and no value near 0 (the factor below divides by it)
    x = torch.randn(4000, 6, 7, generator=torch.Generator().manual_seed(1))
    x = x + torch.sign(x) * 0.5
    out = _uwb_swing(x, 0.5, torch.Generator().manual_seed(0))
    torch.testing.assert_close(out[..., :6], x[..., :6], rtol=0, atol=0)
    factor = out[..., -1] / x[..., -1]
    assert torch.allclose(factor, factor[:, :1].expand_as(factor), atol=1e-4)  # one per window
    f = factor[:, 0]
    changed = (f - 1.0).abs() > 1e-6
    assert 0.45 < changed.float().mean() < 0.55
    assert f[changed].min() >= -1.0 and f[changed].max() <= 1.0
    assert (f[changed] < 0).float().mean() > 0.4                    # mirrored about half the time
    torch.testing.assert_close(_uwb_swing(x, 0.0, torch.Generator()), x, rtol=0, atol=0)


def test_input_adaptation_maps_a_stream_onto_the_normaliser_causally():
    norm = Normalizer(np.zeros(7, np.float32), np.ones(7, np.float32))
    ad = InputAdaptation(prior_frames=10, horizon_frames=100)
    # a gain and an offset
    x = (np.random.default_rng(0).normal(size=(2000, 7)) * 3.0 + 5.0).astype(np.float32)
    out = ad.apply(x, norm)
    assert out.dtype == np.float32 and out.shape == x.shape
    assert np.all(np.abs(out[1000:].mean(0)) < 0.3)
    assert np.all(np.abs(out[1000:].std(0) - 1.0) < 0.2)
    assert np.all(out[0] > 2.0)                       # the prior holds at first
    stream = ad.stream(norm)
    np.testing.assert_array_equal(np.stack([stream.update(r) for r in x[:50]]), out[:50])
    # causal: a frame's output does not depend on what comes after it
    np.testing.assert_array_equal(ad.apply(x[:30], norm), out[:30])


def test_input_adaptation_does_not_blow_up_a_channel_that_stops_moving():
    norm = Normalizer(np.zeros(7, np.float32), np.full(7, 2.0, np.float32))
    stream = InputAdaptation(prior_frames=5, horizon_frames=20, min_std_ratio=0.25).stream(norm)
    for _ in range(500):
        stream.update(np.ones(7))                    # held for 25 s: running std -> 0
    jump = stream.update(np.full(7, 1.5))
    assert np.all(np.isfinite(jump))
    # running mean ~(19 + 1.5) / 20; std floored at 0.25 * 2 = 0.5 instead of ~0.1
    np.testing.assert_allclose(jump, (1.5 - 1.025) / 0.5 * 2.0, rtol=0.02)
    for bad in ({"prior_frames": 0}, {"horizon_frames": 1}, {"min_std_ratio": 0.0}):
        with pytest.raises(SquatDataError, match="invalid input adaptation"):
            InputAdaptation(**bad)


def test_rep_counter_ignores_short_runs():
    seq = [STOP] * 5 + [DOWN] * 6 + [UP] * 2 + [DOWN] * 2 + [UP] * 6 + [STOP] * 4
    assert RepCounter(min_run=3, min_rep=0).count_all(np.array(seq)) == 1
    assert RepCounter(min_run=1, min_rep=0).count_all(np.array(seq)) == 2


def test_rep_counter_suppresses_cycles_sooner_than_min_rep_and_says_so():
    rep = [DOWN] * 10 + [UP] * 10 + [STOP] * 5            # 25 frames a cycle
    seq = np.array([STOP] * 3 + rep * 3)
    counter = RepCounter(min_run=4, min_rep=26)           # UP confirmed at frames 17, 42, 67
    assert counter.count_all(seq) == 2 and counter.suppressed == 1
    assert RepCounter(min_run=4, min_rep=25).count_all(seq) == 3
    # a suppressed flicker does not move the clock: the next real cycle counts
    flicker = np.array([STOP] * 3 + rep + [DOWN] * 4 + [UP] * 4 + [STOP] * 40 + rep)
    counter = RepCounter(min_run=4, min_rep=48)
    assert counter.count_all(flicker) == 2 and counter.suppressed == 1
    with pytest.raises(SquatDataError, match="min_rep"):
        RepCounter(min_run=4, min_rep=-1)
    with pytest.raises(SquatDataError, match="min_run"):
        RepCounter(min_run=0)


def test_mine_bound_sees_dependence():
    torch.manual_seed(0)
    cfg = ModelConfig("multi_encoder_vae", content_dim=2, style_dim=2)
    stats = StatisticsNetwork(cfg)
    opt = torch.optim.Adam(stats.parameters(), lr=1e-2)
    z_c = torch.randn(512, 2)
    dependent, independent = z_c + 0.1 * torch.randn(512, 2), torch.randn(512, 2)
    for _ in range(300):
        loss = -mine_lower_bound(stats, z_c, dependent)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        assert mine_lower_bound(stats, z_c, dependent) > 0.5
        assert mine_lower_bound(stats, z_c, independent) < 0.2


def test_checkpoint_round_trip_and_errors(tmp_path):
    torch.manual_seed(1)
    model = MultiEncoderVAE(ModelConfig("multi_encoder_vae", past=5))
    norm = Normalizer(np.arange(7, dtype=np.float32), np.ones(7, np.float32))
    Checkpoint(model, norm, norm, {"note": "test"}, InputAdaptation(50, 200)).save(tmp_path / "m")
    back = Checkpoint.load(tmp_path / "m", kind="multi_encoder_vae")
    assert back.adaptation == InputAdaptation(50, 200)
    x = torch.randn(3, 6, 7)
    with torch.no_grad():
        assert torch.allclose(back.model.convert(x), model.eval().convert(x))
    assert back.info == {"note": "test"} and back.cfg.window == 6
    with pytest.raises(SquatDataError, match="expected a phase_classifier"):
        Checkpoint.load(tmp_path / "m", kind="phase_classifier")
    with pytest.raises(SquatDataError, match="config.json missing"):
        Checkpoint.load(tmp_path / "nothing")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    config["input_adaptation"] = {"prior_frames": -1, "horizon_frames": 200}
    (tmp_path / "m" / "config.json").write_text(json.dumps(config))
    with pytest.raises(SquatDataError, match="config.json.*invalid input adaptation"):
        Checkpoint.load(tmp_path / "m")
    config["input_adaptation"] = None                # checkpoints from before adaptation
    (tmp_path / "m" / "config.json").write_text(json.dumps(config))
    assert Checkpoint.load(tmp_path / "m").adaptation is None
    (tmp_path / "m" / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(SquatDataError, match="cannot load"):
        Checkpoint.load(tmp_path / "m")


def test_phase_filter_checkpoint_round_trip_and_errors(tmp_path):
    model = PhaseClassifier(ModelConfig("phase_classifier", past=3, future=2, hidden=8))
    norm = Normalizer(np.zeros(7, np.float32), np.ones(7, np.float32))
    pf = PhaseFilter.fit([np.repeat([STOP, DOWN, STOP, UP], 20)], sharpness=0.5)
    Checkpoint(model, norm, phase_filter=pf).save(tmp_path / "c")
    back = Checkpoint.load(tmp_path / "c", kind="phase_classifier").phase_filter
    np.testing.assert_allclose(back.transitions, pf.transitions)
    assert back.sharpness == 0.5 and back.prior.tolist() == pytest.approx(pf.prior.tolist())
    config = json.loads((tmp_path / "c" / "config.json").read_text())
    config["phase_filter"]["sharpness"] = -1
    (tmp_path / "c" / "config.json").write_text(json.dumps(config))
    with pytest.raises(SquatDataError, match="config.json.*phase filter"):
        Checkpoint.load(tmp_path / "c")
    del config["phase_filter"]                       # checkpoints from before the filter
    (tmp_path / "c" / "config.json").write_text(json.dumps(config))
    assert Checkpoint.load(tmp_path / "c").phase_filter is None


def test_phase_filter_counts_transitions_and_outlasts_a_one_frame_flip():
    labels = np.repeat([STOP, DOWN, STOP, UP, STOP], [30, 40, 10, 40, 30])
    pf = PhaseFilter.fit([labels])
    np.testing.assert_allclose(pf.transitions.sum(1), 1.0)
    assert pf.transitions[DOWN, UP] < pf.transitions[DOWN, STOP] < pf.transitions[DOWN, DOWN]
    assert pf.prior.tolist() == pytest.approx([71 / 153, 41 / 153, 41 / 153])
    down, up = np.array([0.1, 0.8, 0.1]), np.array([0.1, 0.3, 0.6])
    probs = np.stack([down] * 20 + [up] + [down] * 5 + [np.array([0.1, 0.1, 0.8])] * 10)
    filtered = pf.apply(probs)
    assert filtered.shape == probs.shape and filtered.dtype == np.float32
    np.testing.assert_allclose(filtered.sum(1), 1.0, rtol=1e-5)
    phases = filtered.argmax(1)
    assert probs.argmax(1)[20] == UP and phases[20] == DOWN      # the flip is smoothed away
    assert (phases[:26] == DOWN).all() and (phases[-5:] == UP).all()   # a real change is not
    state = pf.stream()                                          # frame by frame = apply
    np.testing.assert_allclose(np.stack([state.update(p) for p in probs]), filtered)
    def lag(sharpness: float) -> int:             # frames until the change to UP shows
        return int(np.argmax(PhaseFilter(pf.transitions, pf.prior, sharpness)
                             .apply(probs).argmax(1)[26:] == UP))
    assert lag(2.0) < lag(0.5)                    # trusting the classifier more
    for bad in (dict(transitions=np.eye(3)), dict(prior=[1.0, 0.0, 0.0]), dict(sharpness=0)):
        kwargs = {"transitions": pf.transitions, "prior": pf.prior, **bad}
        with pytest.raises(SquatDataError, match="phase filter"):
            PhaseFilter(**kwargs)
    with pytest.raises(SquatDataError, match="STOP, DOWN or UP"):
        PhaseFilter.fit([np.array([0, 3])])


def test_classifier_labels_the_centre_frame():
    cfg = ModelConfig("phase_classifier", past=10, future=5)
    model = PhaseClassifier(cfg).eval()
    x = torch.randn(2, cfg.window, 7)
    y = x.clone()
    y[:, 0] += 5.0       # far past changes the answer only through the GRU state
    with torch.no_grad():
        assert model(x).shape == (2, 3)
        assert not torch.allclose(model(x), model(y))


def test_cyclic_phase_filter_knows_the_bottom_pause_leads_up():
    """Four states (standing, down, bottom pause, up): after Down, a Stop is the bottom
    pause, from which the belief moves to Up, never back to Down; standing leads Down."""
    from embodied_transfer.squat.phases import CYCLIC_STATES, cyclic_states

    assert cyclic_states(np.array([0, 0, 1, 1, 0, 0, 2, 2, 0, 1, 0])).tolist() == [
        0, 0, 1, 1, 3, 3, 2, 2, 0, 1, 3]
    cycle = np.repeat([STOP, DOWN, STOP, UP, STOP], [30, 40, 10, 40, 30])
    plain, cyclic = PhaseFilter.fit([cycle] * 50), PhaseFilter.fit([cycle] * 50, cyclic=True)
    assert cyclic.state_phase == CYCLIC_STATES and cyclic.transitions.shape == (4, 4)
    np.testing.assert_allclose(cyclic.phase_prior, plain.prior, rtol=1e-3)   # same phases
    flat = np.tile(plain.prior, (10, 1))                  # 0.5 s of evidence that says nothing

    def drift(pf: PhaseFilter, start_state: int) -> np.ndarray:
        state = pf.stream()
        state.belief = np.eye(len(pf.state_phase))[start_state]
        return np.stack([state.update(p) for p in flat])[-1]
    after_bottom = drift(cyclic, 3)
    assert after_bottom[UP] > 0.3 and after_bottom[UP] > 10 * after_bottom[DOWN]
    from_standing = drift(cyclic, 0)
    assert from_standing[DOWN] > 0.1 and from_standing[DOWN] > 10 * from_standing[UP]
    undecided = drift(plain, STOP)              # one Stop state cannot tell which comes next
    assert undecided[DOWN] == pytest.approx(undecided[UP], rel=0.2)
    back = PhaseFilter.from_dict(json.loads(json.dumps(cyclic.to_dict())))
    assert back.state_phase == CYCLIC_STATES
    probs = np.random.default_rng(0).dirichlet(np.ones(3), size=50)
    np.testing.assert_allclose(back.apply(probs), cyclic.apply(probs))
    legacy = {k: v for k, v in plain.to_dict().items() if k != "state_phase"}
    assert PhaseFilter.from_dict(legacy).state_phase == (STOP, DOWN, UP)
    with pytest.raises(SquatDataError, match="phase filter"):
        PhaseFilter(cyclic.transitions, cyclic.prior, state_phase=(STOP, DOWN, DOWN, STOP))


def _tiny_fine_tuning_setup(cfg):
    """A tiny multi-encoder VAE, classifier, one real and one sim stream, sim windows."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    model = MultiEncoderVAE(ModelConfig("multi_encoder_vae", past=cfg.past, hidden=8))
    classifier = PhaseClassifier(ModelConfig("phase_classifier", past=3, future=2, hidden=8))
    labels = np.repeat([STOP, DOWN, UP, STOP], 10)
    real = [(rng.normal(size=(40, 7)).astype(np.float32), labels)]
    sim = [(rng.normal(size=(40, 7)).astype(np.float32), labels[::-1].copy())]
    xs = torch.randn(20, cfg.past + 1, 7)
    ys = torch.from_numpy(rng.integers(0, 3, (20, cfg.past + 1)))
    return model, classifier, real, sim, xs, ys


def test_real_fine_tuning_moves_only_the_content_encoder():
    """Stage (c): the decoder, style encoder and sim classifier stay frozen; the content
    encoder learns, and the consistency terms read converted real and simulated windows."""
    from embodied_transfer.core.plotting import Curves
    from embodied_transfer.squat.train import TrainConfig, finetune_content

    cfg = TrainConfig(finetune_steps=3, batch=8, past=4)
    model, classifier, real, sim, xs, ys = _tiny_fine_tuning_setup(cfg)
    before = {name: {k: v.clone() for k, v in m.state_dict().items()}
              for name, m in (("content", model.content), ("style", model.style),
                              ("decoder", model.decoder), ("classifier", classifier))}
    curves = Curves()
    finetune_content(model, classifier, sim, xs, ys, real, Normalizer.fit(real[0][0]), cfg,
                      curves, torch.Generator().manual_seed(0), show=False)
    after = {"content": model.content, "style": model.style, "decoder": model.decoder,
             "classifier": classifier}
    for name, m in after.items():
        same = all(torch.equal(v, before[name][k]) for k, v in m.state_dict().items())
        assert same == (name != "content"), name
        assert all(p.requires_grad for p in m.parameters()), f"{name} left frozen"
    assert len(curves.data["content_finetune"]["consistency"]) == 3
    assert len(curves.data["content_finetune"]["consistency_sim"]) == 3


@pytest.mark.parametrize("field, function, value, expected", [
    # speed_aug=0.25: each real recording also enters at 1.25 and 0.8 times its speed
    ("speed_aug", "time_warp", 0.25, [(40, 1.25), (40, 0.8)]),
    # twist_aug=0.4: ... and with the watch turned by +0.4 and -0.4 rad about the forearm
    ("twist_aug", "twist", 0.4, [(40, 0.4), (40, -0.4)]),
])
def test_real_augmentation_fine_tunes_on_the_copies_too(monkeypatch, field, function, value,
                                                        expected):
    from embodied_transfer.core.plotting import Curves
    from embodied_transfer.squat import train as train_module

    calls, original = [], getattr(train_module, function)
    monkeypatch.setattr(train_module, function,
                        lambda x, *args: calls.append((len(x), args[-1])) or original(x, *args))
    weights = {}
    for aug in (0.0, value):
        cfg = train_module.TrainConfig(finetune_steps=2, batch=8, past=4, **{field: aug})
        model, classifier, real, sim, xs, ys = _tiny_fine_tuning_setup(cfg)
        train_module.finetune_content(model, classifier, sim, xs, ys, real,
                                      Normalizer.fit(real[0][0]), cfg, Curves(),
                                      torch.Generator().manual_seed(0), show=False)
        weights[aug] = {k: v.clone() for k, v in model.content.state_dict().items()}
    assert calls == expected
    assert any(not torch.equal(v, weights[value][k]) for k, v in weights[0.0].items())


def _finetune_with_spy(monkeypatch, helper: str, setting: str, shares) -> tuple[list, dict]:
    """Two fine-tuning steps for each value in ``shares`` of the TrainConfig field
    ``setting``, recording (batch length, share) of every call of train.``helper``; returns
    the calls and the content encoder's weights after each value."""
    from embodied_transfer.core.plotting import Curves
    from embodied_transfer.squat import train as train_module

    calls, original = [], getattr(train_module, helper)
    monkeypatch.setattr(train_module, helper,
                        lambda x, share, gen: calls.append((len(x), share))
                        or original(x, share, gen))
    weights = {}
    for share in shares:
        cfg = train_module.TrainConfig(finetune_steps=2, batch=8, past=4, **{setting: share})
        model, classifier, real, sim, xs, ys = _tiny_fine_tuning_setup(cfg)
        train_module.finetune_content(model, classifier, sim, xs, ys, real,
                                      Normalizer.fit(real[0][0]), cfg, Curves(),
                                      torch.Generator().manual_seed(0), show=False)
        weights[share] = {k: v.clone() for k, v in model.content.state_dict().items()}
    return calls, weights


def test_uwb_augmentation_swings_the_real_batches_of_every_step(monkeypatch):
    calls, weights = _finetune_with_spy(monkeypatch, "_uwb_swing", "uwb_aug", (0.0, 1.0))
    assert calls == [(4, 1.0), (4, 1.0)]            # half of each batch is real
    assert any(not torch.equal(v, weights[1.0][k]) for k, v in weights[0.0].items())


def test_uwb_dropout_marks_the_range_missing_in_real_and_simulated_batches(monkeypatch):
    """uwb_dropout: a share of the real windows and of the simulated consistency windows
    get the UWB channel of a missing range (0 once standardised), IMU channels untouched."""
    from embodied_transfer.squat import train as train_module

    x = torch.randn(2000, 6, 7, generator=torch.Generator().manual_seed(1)) + 3.0
    out = train_module._uwb_missing(x, 0.3, torch.Generator().manual_seed(0))
    torch.testing.assert_close(out[..., :6], x[..., :6], rtol=0, atol=0)
    dropped = (out[..., -1] == 0).all(dim=1)
    assert 0.25 < dropped.float().mean() < 0.35
    torch.testing.assert_close(out[~dropped], x[~dropped], rtol=0, atol=0)

    calls, _ = _finetune_with_spy(monkeypatch, "_uwb_missing", "uwb_dropout", (0.0, 0.5))
    assert calls == [(4, 0.5)] * 4                 # real and simulated half-batches, 2 steps


def test_fine_tuning_soup_averages_members_trained_from_the_same_start():
    """finetune_soup=2: two members from the same content weights, each with its own
    batches (the generator runs on), and the content encoder ends as their mean."""
    import copy

    from embodied_transfer.core.plotting import Curves
    from embodied_transfer.squat.train import TrainConfig, finetune_content

    cfg = TrainConfig(finetune_steps=2, batch=8, past=4)
    model, classifier, real, sim, xs, ys = _tiny_fine_tuning_setup(cfg)
    norm = Normalizer.fit(real[0][0])

    def tune(soup: int, gen: torch.Generator) -> dict:
        m = copy.deepcopy(model)
        finetune_content(m, classifier, sim, xs, ys, real, norm,
                         TrainConfig(**{**cfg.__dict__, "finetune_soup": soup}), Curves(), gen,
                         show=False)
        return m.content.state_dict()
    gen = torch.Generator().manual_seed(0)
    first, second = tune(1, gen), tune(1, gen)
    souped = tune(2, torch.Generator().manual_seed(0))
    assert any(not torch.equal(first[k], second[k]) for k in first)
    for k in first:
        torch.testing.assert_close(souped[k], (first[k] + second[k]) / 2)


def test_plain_vae_denoises_gain_without_moving_the_shared_generator():
    """The baseline learns to undo a random per-channel gain (target: the clean window);
    its augmentation has its own generator, so the stages after it see the same batches."""
    from embodied_transfer.core.plotting import Curves
    from embodied_transfer.squat.train import TrainConfig, train_plain_vae

    rng = np.random.default_rng(0)
    t = np.arange(60) / 20.0
    sim = [(np.stack([np.sin(2 * np.pi * f * t + k) for k in range(7)], 1).astype(np.float32),
            np.zeros(60, np.int64)) for f in rng.uniform(0.3, 1.0, 8)]
    norm = Normalizer.fit(np.concatenate([x for x, _ in sim]))
    states, models = {}, {}
    for aug in (0.0, 0.5):
        cfg = TrainConfig(vae_steps=150, batch=32, past=4, vae_gain_aug=aug)
        torch.manual_seed(0)
        gen = torch.Generator().manual_seed(0)
        models[aug] = train_plain_vae(sim, norm, cfg, Curves(), gen, show=False)
        states[aug] = gen.get_state()
    assert torch.equal(states[0.0], states[0.5])
    x = torch.from_numpy(windows(norm(sim[0][0]), 4, 0))
    scaled = x * torch.tensor([2.0, 0.5, 1.5, 0.6, 1.8, 0.7, 1.0])

    def error(model) -> float:
        with torch.no_grad():
            return float(torch.mean((model.convert(scaled)[:, -1] - x[:, -1]) ** 2))
    assert error(models[0.5]) < 0.75 * error(models[0.0])


def test_train_then_evaluate_end_to_end(tmp_path, cli):
    """Tiny training run through the commands; evaluate writes what the issue names, each
    pipeline through its own phase filter."""
    require_real_data(REAL)
    from embodied_transfer.sim.dataset import generate
    from embodied_transfer.squat.train import TrainConfig

    generate(6, seed=2, workers=1, progress=False).save(tmp_path / "sim.npz")
    rc, out, err = cli("squat", "train", "--sim", str(tmp_path / "sim.npz"), "--real",
                       str(REAL / "recording_1.csv"), "--steps-scale", "0.004",
                       "--cls-future", "3", "--out", str(tmp_path / "models"), timeout=300)
    assert rc == 0, err
    for name in ("classifier", "plain_vae", "multi_encoder_vae"):
        cfg = json.loads((tmp_path / "models" / name / "config.json").read_text())
        assert cfg["info"]["real_data"] == [str(REAL / "recording_1.csv")]
    window = json.loads((tmp_path / "models" / "classifier" / "config.json").read_text())
    assert (window["config"]["past"], window["config"]["future"]) == (10, 3)
    assert (tmp_path / "models" / "training_curves.png").stat().st_size > 5000
    filters = json.loads((tmp_path / "models" / "phase_filters.json").read_text())
    assert set(filters) == {"raw", "vae", "proposed"}
    assert filters["proposed"] == window["phase_filter"]          # the node's own
    defaults = TrainConfig()
    for c in ("raw", "vae"):
        sharpness = getattr(defaults, f"{c}_phase_filter_sharpness")
        assert (filters[c] or {}).get("sharpness", 0.0) == sharpness
    rc, out, err = cli("squat", "evaluate", "--csv", str(REAL / "recording_3.csv"),
                       "--models", str(tmp_path / "models"), "--json",
                       str(tmp_path / "eval" / "result.json"), timeout=300)
    assert rc == 0, err
    result = json.loads((tmp_path / "eval" / "result.json").read_text())
    for key in ("accuracy", "accuracy_3class"):
        assert set(result[key]) == {"raw", "vae", "proposed"}
        assert all(0.0 <= v <= 1.0 for v in result[key].values())
    assert result["reps"][0]["true"] == 14 and isinstance(result["reps"][0]["counted"], int)
    assert result["phase_filters"]["proposed"]["sharpness"] == defaults.phase_filter_sharpness
    assert "proposed" in out and (tmp_path / "eval" / "confusion.png").is_file()
    assert (tmp_path / "eval" / "timeline.png").is_file()


def test_classifier_window_options(tmp_path, cli):
    """--cls-past / --cls-future take whole frame counts; their help states TrainConfig's
    defaults (the end-to-end test checks that they reach the checkpoint)."""
    import argparse

    from embodied_transfer.app import squat_commands as cli_module
    from embodied_transfer.squat.train import TrainConfig

    defaults = TrainConfig()
    for n, text in ((0, "0"), (12, "12")):
        assert cli_module._frame_count(text) == n
    for bad in ("-1", "2.5", "five", ""):
        with pytest.raises(argparse.ArgumentTypeError, match="whole number of frames"):
            cli_module._frame_count(bad)
    rc, out, err = cli("squat", "train", "--real", "x.csv", "--out", str(tmp_path),
                       "--cls-future", "-2")
    assert rc == 2 and "--cls-future: must be a whole number of frames >= 0" in err
    rc, out, err = cli("squat", "train", "--help")
    assert rc == 0
    help_text = " ".join(out.split())
    assert f"(default {defaults.cls_past}, the authors'" in help_text
    assert f"(default {defaults.cls_future}, the authors'" in help_text


def test_evaluate_bad_input_is_one_line(tmp_path, cli):
    rc, out, err = cli("squat", "evaluate", "--csv", str(tmp_path / "missing.csv"),
                       "--models", str(tmp_path / "no_models"), "--json", str(tmp_path / "r.json"))
    assert rc == 2 and err.startswith("embodied-transfer: error:") and "Traceback" not in err


def test_each_pipeline_takes_its_own_phase_filter_from_the_models_directory(tmp_path):
    """phase_filters.json gives raw, plain VAE and proposed each their filter (None:
    unfiltered); without it every pipeline uses the classifier's; a broken file is named."""
    import shutil

    from embodied_transfer.squat.phases import (PhaseFilter, read_phase_filters,
                                                write_phase_filters)
    from embodied_transfer.squat.pipeline import DEFAULT_MODELS, load_pipelines

    models = tmp_path / "models"
    shutil.copytree(DEFAULT_MODELS, models, ignore=shutil.ignore_patterns("training_curves*"))
    (models / "phase_filters.json").unlink(missing_ok=True)
    pipelines = load_pipelines(models)
    own = pipelines["proposed"].classifier.phase_filter
    assert own is not None and all(p.phase_filter is own for p in pipelines.values())
    labels = [np.array([0] * 20 + [1] * 15 + [2] * 15 + [0] * 10)] * 3
    sharp02 = PhaseFilter.fit(labels, 0.2)
    write_phase_filters({"raw": sharp02, "vae": None, "proposed": own}, models)
    assert read_phase_filters(models)["raw"].settings == {"sharpness": 0.2, "cyclic": False}
    pipelines = load_pipelines(models)
    assert pipelines["raw"].phase_filter.sharpness == 0.2
    assert pipelines["vae"].phase_filter is None
    assert pipelines["proposed"].phase_filter.to_dict() == own.to_dict()
    probs = np.random.default_rng(0).dirichlet(np.ones(3), size=50).astype(np.float32)
    np.testing.assert_array_equal(pipelines["vae"].filter(probs), probs)
    np.testing.assert_allclose(pipelines["raw"].filter(probs), sharp02.apply(probs))
    assert not np.allclose(pipelines["raw"].filter(probs), own.apply(probs))
    (models / "phase_filters.json").write_text('{"raw": {"prior": 3}}')
    with pytest.raises(SquatDataError, match="phase_filters.json: not a phase filter file"):
        load_pipelines(models)
