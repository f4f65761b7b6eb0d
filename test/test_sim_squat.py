"""The squat simulator: sensor models, motion plans, the humanoid, episodes and datasets."""
from __future__ import annotations

import json
from dataclasses import asdict

import mujoco
import numpy as np
import pytest

from embodied_transfer.sim import episode as episode_module
from embodied_transfer.sim.dataset import FORMAT, SquatDataset, generate
from embodied_transfer.sim.episode import (EpisodeConfig, LiveSquat, simulate_episode)
from embodied_transfer.sim.errors import SimError
from embodied_transfer.sim.sensors import (ImuModel, UwbModel, frame_average, hold_index,
                                           interpolate_uwb)
from embodied_transfer.sim.squat import (ARM_POSES, JOINTS, MODEL_XML, Body, RepMotion,
                                         SensorLayout, SquatPlan, Sway, build_model,
                                         gravity_in_sensor, min_jerk, reset_to)
from embodied_transfer.squat.phases import DOWN, STOP, UP, count_repetitions

EXACT_IMU = ImuModel(accel_noise=0.0, accel_bias=0.0, gyro_noise=0.0, gyro_bias=0.0, hold_max=0.0)
EXACT_UWB = UwbModel(noise=0.0, offset=0.0, dropout=0.0, burst=0.0)


def random_quat(rng: np.random.Generator) -> np.ndarray:
    q = rng.normal(size=4)
    return q / np.linalg.norm(q)


def sampled_plan(rng: np.random.Generator, reps: int) -> SquatPlan:
    """Repetitions chained the way episodes and LiveSquat chain them."""
    plan = SquatPlan(sway=Sway.sample(rng))
    for _ in range(reps):
        plan.append(RepMotion.sample(rng, plan.reps[-1] if plan.reps else None))
    return plan


def joint_ranges(model: mujoco.MjModel) -> np.ndarray:
    return np.array([model.jnt_range[model.joint(name).id] for name in JOINTS])


# -- gravity, the accelerometer at rest ---------------------------------------------------


def test_gravity_in_sensor_matches_a_mujoco_accelerometer_at_rest():
    rng = np.random.default_rng(7)
    for _ in range(6):
        body_quat, site_quat = random_quat(rng), random_quat(rng)
        xml = f"""
        <mujoco>
          <worldbody>
            <body name="b" pos="0.3 -0.2 1" quat="{' '.join(map(str, body_quat))}">
              <geom size="0.05" mass="1"/>
              <site name="s" pos="0.1 0.05 -0.02" quat="{' '.join(map(str, site_quat))}"/>
            </body>
          </worldbody>
          <sensor>
            <accelerometer name="acc" site="s"/>
            <framequat name="quat" objtype="site" objname="s"/>
          </sensor>
        </mujoco>"""
        model = mujoco.MjModel.from_xml_string(xml)
        data = mujoco.MjData(model)
        mujoco.mj_forward(model, data)
        g = float(np.linalg.norm(model.opt.gravity))
        measured = data.sensor("acc").data.copy()
        assert np.linalg.norm(measured) == pytest.approx(g)
        assert abs(measured[2]) < 0.99 * g           # the orientation is not trivial
        quat = data.sensor("quat").data.copy()
        np.testing.assert_allclose(gravity_in_sensor(quat, g=g)[0], measured, atol=1e-9)
        np.testing.assert_allclose(gravity_in_sensor(-quat, g=g)[0], measured, atol=1e-9)
    quats = np.array([random_quat(rng) for _ in range(5)])
    batch = gravity_in_sensor(quats)
    assert batch.shape == (5, 3)
    np.testing.assert_allclose(np.linalg.norm(batch, axis=1), 9.80665)
    np.testing.assert_allclose(gravity_in_sensor([1.0, 0, 0, 0]), [[0, 0, 9.80665]])


# -- sensor models ------------------------------------------------------------------------


def test_frame_average_and_uwb_interpolation():
    samples = np.arange(20.0).reshape(10, 2)
    np.testing.assert_array_equal(frame_average(samples, 3), [[2, 3], [8, 9], [14, 15]])
    np.testing.assert_array_equal(frame_average(samples, 1), samples)
    with pytest.raises(SimError, match="do not fill one frame"):
        frame_average(samples[:2], 3)
    t = np.array([0.0, 1.0, 1.5, 2.0, 2.75, 9.0])
    np.testing.assert_allclose(interpolate_uwb(np.array([1.0, 2.0, 3.0]),
                                               np.array([10.0, 20.0, 16.0]), t),
                               [10, 10, 15, 20, 17, 16])
    with pytest.raises(SimError, match="no UWB reading"):
        interpolate_uwb(np.empty(0), np.empty(0), t)


def test_uwb_rate_and_jitter():
    rng = np.random.default_rng(1)
    rates = np.array([1.0 / UwbModel().period(rng) for _ in range(2000)])
    assert rates.min() >= 5.0 and rates.max() <= 7.0
    assert rates.min() < 5.1 and rates.max() > 6.9
    with pytest.raises(SimError, match="bad UWB rate range"):
        UwbModel(rate_min=0.0).period(rng)
    with pytest.raises(SimError, match="bad UWB rate range"):
        UwbModel(rate_min=8.0, rate_max=7.0).period(rng)
    model = UwbModel(dropout=0.0, burst=0.0)
    for period in (1 / 5.0, 1 / 6.3, 1 / 7.0):
        times = model.sample_times(60.0, 660.0, period, rng)
        assert np.all(np.diff(times) > 0)
        assert times[0] >= 60.0 and times[-1] < 660.0
        assert abs(len(times) - 600.0 / period) <= 1.5
        gaps = np.diff(times) / period
        assert gaps.min() >= 1 - 2 * model.jitter - 1e-9
        assert gaps.max() <= 1 + 2 * model.jitter + 1e-9
        assert gaps.std() > 0.05                  # jittered, not a perfect grid


def test_uwb_dropouts_and_bursts():
    rng = np.random.default_rng(2)
    period = 1 / 6.0
    lossy = UwbModel(dropout=0.25, burst=0.0).sample_times(0.0, 1000.0, period, rng)
    assert len(lossy) / (1000.0 / period) == pytest.approx(0.75, abs=0.03)
    assert np.all(np.diff(lossy) > 0) and lossy[0] >= 0.0 and lossy[-1] < 1000.0
    bursty = UwbModel(dropout=0.0, burst=0.05).sample_times(0.0, 1000.0, period, rng)
    gaps = np.diff(bursty)
    outages = gaps[gaps > (1 + 2 * 0.15) * period + 1e-9]
    assert len(outages) > 50
    assert outages.min() > 0.5 and outages.max() < 2.0 + 2 * period
    default = UwbModel().sample_times(0.0, 1000.0, period, rng)
    assert 0.7 < len(default) / (1000.0 / period) < 0.95


def test_uwb_ranges_noise_offset_and_limits():
    rng = np.random.default_rng(3)
    exact = UwbModel(noise=0.0)
    np.testing.assert_allclose(exact.apply(np.array([0.0, 0.05, 0.5, 49.99, 80.0]), 0.0, rng),
                               [0.1, 0.1, 0.5, 49.99, 50.0])
    np.testing.assert_allclose(exact.apply(np.array([1.0, 2.0]), 0.07, rng), [1.07, 2.07])
    noisy = UwbModel().apply(np.full(20000, 2.0), 0.05, rng)
    assert noisy.mean() == pytest.approx(2.05, abs=0.002)
    assert noisy.std() == pytest.approx(0.04, rel=0.05)
    assert noisy.min() >= 0.1 and noisy.max() <= 50.0


def test_imu_noise_and_bias_statistics():
    rng = np.random.default_rng(4)
    model = ImuModel()
    biases = np.array([np.concatenate(model.biases(rng)) for _ in range(4000)])
    assert biases[:, :3].std() == pytest.approx(model.accel_bias, rel=0.05)
    assert biases[:, 3:].std() == pytest.approx(model.gyro_bias, rel=0.05)
    accel_bias, gyro_bias = np.array([0.1, -0.2, 0.05]), np.array([0.01, 0.0, -0.02])
    accel0 = np.tile([0.0, 0.0, 9.81], (20000, 1))
    gyro0 = np.tile([0.5, -0.5, 0.0], (20000, 1))
    accel, gyro = model.apply(accel0, gyro0, (accel_bias, gyro_bias), rng)
    assert accel.shape == gyro.shape == (20000, 3)
    np.testing.assert_allclose(accel.mean(0), accel0[0] + accel_bias, atol=0.003)
    np.testing.assert_allclose(gyro.mean(0), gyro0[0] + gyro_bias, atol=0.0006)
    np.testing.assert_allclose(accel.std(0), model.accel_noise, rtol=0.05)
    np.testing.assert_allclose(gyro.std(0), model.gyro_noise, rtol=0.05)
    exact, _ = EXACT_IMU.apply(accel0, gyro0, EXACT_IMU.biases(rng), rng)
    np.testing.assert_array_equal(exact, accel0)
    louder, _ = model.apply(accel0, gyro0, (accel_bias, gyro_bias), rng, noise_scale=3.0)
    np.testing.assert_allclose(louder.std(0), 3.0 * model.accel_noise, rtol=0.05)


def test_imu_episode_style_and_frame_holds():
    rng = np.random.default_rng(5)
    model = ImuModel(noise_scale_max=4.0, hold_max=0.5)
    styles = np.array([model.style(rng) for _ in range(4000)])
    assert styles[:, 0].min() >= 1.0 and styles[:, 0].max() <= 4.0
    assert np.median(styles[:, 0]) == pytest.approx(2.0, rel=0.05)     # log-uniform
    assert styles[:, 1].min() >= 0.0 and styles[:, 1].max() <= 0.5
    idx = hold_index(20000, 0.4, rng)
    assert idx[0] == 0 and np.all(np.diff(idx) >= 0) and np.all(idx <= np.arange(20000))
    held = idx[1:] == idx[:-1]
    assert held.mean() == pytest.approx(0.4, abs=0.02)
    assert np.array_equal(idx[1:][~held], np.arange(1, 20000)[~held])    # others are fresh
    np.testing.assert_array_equal(hold_index(50, 0.0, rng), np.arange(50))
    for bad in ({"noise_scale_max": 0.5}, {"hold_max": 1.0}, {"hold_max": -0.1}):
        with pytest.raises(SimError, match="IMU model"):
            ImuModel(**bad)


# -- motion plans -------------------------------------------------------------------------


def test_min_jerk_profile():
    s = np.linspace(-0.5, 1.5, 4001)
    y = min_jerk(s)
    assert min_jerk(np.array([0.0, 0.5, 1.0])).tolist() == [0.0, 0.5, 1.0]
    assert np.all(y[s <= 0] == 0.0) and np.all(y[s >= 1] == 1.0)
    inside = (s > 0) & (s < 1)
    assert np.all(np.diff(y[inside]) > 0)
    h = 1e-3      # zero velocity at both ends, peak velocity 15/8 in the middle
    assert min_jerk(np.array([h]))[0] / h < 1e-4 and (1 - min_jerk(np.array([1 - h]))[0]) / h < 1e-4
    assert (min_jerk(np.array([0.5 + h])) - min_jerk(np.array([0.5 - h])))[0] / (2 * h) \
        == pytest.approx(1.875, rel=1e-5)


def test_plan_bounds_phases_and_completed_reps():
    reps = [RepMotion(), RepMotion(pause_before=0.5, descent=1.5, pause_bottom=0.0, ascent=1.0,
                                   depth=1.2, arm_pose="forward", arms=ARM_POSES["forward"] * 2)]
    plan = SquatPlan(reps)
    np.testing.assert_allclose(plan.rep_bounds(), [(1.0, 5.8), (6.3, 8.8)])
    assert plan.end == pytest.approx(8.8)
    assert [plan.completed(t) for t in (0.0, 5.79, 5.8, 8.79, 8.8, 100.0)] == [0, 0, 1, 1, 2, 2]
    t = np.array([0.0, 0.99, 1.0, 2.99, 3.0, 3.79, 3.8, 5.79, 5.8, 6.29, 6.3, 7.79, 7.8,
                  8.79, 8.8, 20.0])
    assert plan.phase(t).tolist() == [STOP, STOP, DOWN, DOWN, STOP, STOP, UP, UP, STOP, STOP,
                                      DOWN, DOWN, UP, UP, STOP, STOP]
    assert plan.phase(t).dtype == np.int8
    # without sway the knee stands at 0 and reaches each repetition's depth at the bottom
    knee = plan.targets(np.array([0.0, 3.0, 3.5, 5.8, 7.8, 8.8, 30.0]))[:, 1]
    np.testing.assert_allclose(knee, [0, 1.6, 1.6, 0, 1.2, 0, 0], atol=1e-12)
    # the arms reach the second repetition's pose during its standing pause
    np.testing.assert_allclose(plan.targets(np.array([6.3]))[0, 3:], ARM_POSES["forward"] * 2)
    np.testing.assert_allclose(plan.targets(np.array([5.8]))[0, 3:], ARM_POSES["hanging"] * 2)


def test_phases_follow_the_direction_of_the_knee_target():
    rng = np.random.default_rng(5)
    for _ in range(10):
        plan = sampled_plan(rng, 3)
        plan.sway = Sway()          # no sway: the knee is exactly still when the plan says STOP
        t = rng.uniform(-1.0, plan.end + 2.0, 3000)
        edges = np.array([[s + r.pause_before, s + r.pause_before + r.descent,
                           s + r.duration - r.ascent, s + r.duration]
                          for s, r in zip(plan.starts, plan.reps)]).ravel()
        t = t[np.abs(t[:, None] - edges[None]).min(axis=1) > 2e-4]
        eps = 1e-4
        velocity = plan.targets(t + eps)[:, 1] - plan.targets(t - eps)[:, 1]
        phase = plan.phase(t)
        np.testing.assert_array_equal(phase == DOWN, velocity > 0)
        np.testing.assert_array_equal(phase == UP, velocity < 0)
        np.testing.assert_array_equal(phase == STOP, velocity == 0)
        assert {STOP, DOWN, UP} <= set(phase.tolist())
        assert count_repetitions(plan.phase(np.arange(0.0, plan.end + 1, 0.05))) == 3


def test_sampled_targets_are_continuous_and_inside_the_joint_ranges():
    model = build_model()
    ranges = joint_ranges(model)
    np.testing.assert_array_equal(ranges, model.actuator_ctrlrange)  # actuators in JOINTS order
    assert [model.actuator(i).name for i in range(model.nu)] == list(JOINTS)
    rng = np.random.default_rng(6)
    poses = set()
    worst_step = 0.0
    for chain in range(25):
        plan = sampled_plan(rng, 40)        # a long live session: arm poses drift and change
        poses |= {r.arm_pose for r in plan.reps}
        targets = plan.targets(np.arange(-0.5, plan.end + 2.0, 0.01))
        low, high = targets.min(axis=0), targets.max(axis=0)
        # arms, ankle and hip strictly inside their ranges (no joint limit hit, no ctrl clip)
        others = [i for i in range(len(JOINTS)) if JOINTS[i] != "knee"]
        assert np.all(low[others] > ranges[others, 0] + 0.02), (chain, low - ranges[:, 0])
        assert np.all(high[others] < ranges[others, 1] - 0.02), (chain, ranges[:, 1] - high)
        # the knee stands straight (its extension limit, up to sway) and never bends too far
        knee = JOINTS.index("knee")
        assert -0.02 < low[knee] and high[knee] < ranges[knee, 1] - 0.2
        fine = plan.targets(np.arange(0.0, min(plan.end, 60.0), 0.002))
        worst_step = max(worst_step, np.abs(np.diff(fine, axis=0)).max())
    assert poses == set(ARM_POSES)
    assert 0.002 < worst_step < 0.012        # rad per 2 ms physics step: at most 6 rad/s


def test_sampled_repetitions_stay_in_their_ranges():
    rng = np.random.default_rng(8)
    plan = sampled_plan(rng, 2000)
    reps = plan.reps
    pauses = np.array([r.pause_before for r in reps])
    assert 0.6 <= pauses.min() and pauses.max() <= 2.0
    for name, lo, hi in (("descent", 1.2, 3.4), ("ascent", 1.2, 3.4),
                         ("pause_bottom", 0.2, 1.8), ("depth", 0.9, 2.0)):
        values = np.array([getattr(r, name) for r in reps])
        assert lo <= values.min() and values.max() <= hi, name
    kept = np.mean([a.arm_pose == b.arm_pose for a, b in zip(reps, reps[1:])])
    assert 0.9 <= kept <= 0.97                      # 90 % keep + a third of the redraws
    changed = [b for a, b in zip(reps, reps[1:]) if a.arm_pose != b.arm_pose]
    assert min(r.pause_before for r in changed) >= 1.6
    assert all(r.arm_follow == 0.0 for r in reps if r.arm_pose != "hanging")


def test_bad_repetitions_raise_sim_error():
    plan = SquatPlan()
    with pytest.raises(SimError, match="no repetitions"):
        plan.targets(np.array([0.0]))
    for bad in (RepMotion(descent=0.0), RepMotion(ascent=-1.0), RepMotion(pause_before=-0.1),
                RepMotion(pause_bottom=-0.5)):
        with pytest.raises(SimError, match="durations must be positive"):
            plan.append(bad)
    with pytest.raises(SimError, match="bad arm pose 'sideways'"):
        plan.append(RepMotion(arm_pose="sideways"))
    with pytest.raises(SimError, match="7 arm targets"):
        plan.append(RepMotion(arms=(ARM_POSES["hanging"] * 2)[:7]))
    assert plan.reps == [] and plan.end == 0.0
    plan.append(RepMotion(pause_before=0.0))        # no standing pause is allowed
    np.testing.assert_allclose(plan.rep_bounds(), [(0.0, 4.8)])


# -- the model ----------------------------------------------------------------------------


def standing(body: Body) -> tuple[mujoco.MjModel, mujoco.MjData]:
    model = build_model(body)
    data = mujoco.MjData(model)
    reset_to(model, data, np.zeros(len(JOINTS)))
    return model, data


def test_body_scale_and_mass():
    model, data = standing(Body())
    pelvis = data.site("pelvis").xpos[2]
    head_top = data.geom("head").xpos[2] + model.geom("head").size[0]
    assert pelvis == pytest.approx(0.95, abs=0.01)
    assert head_top == pytest.approx(1.75, abs=0.05)          # nominal adult
    feet = model.body("feet").id
    mass = model.body_subtreemass[feet]
    assert mass == pytest.approx(70.0, abs=1.0)
    big, big_data = standing(Body(scale=1.1, mass_scale=0.9))
    assert big_data.site("pelvis").xpos[2] == pytest.approx(1.1 * pelvis, rel=1e-9)
    assert big_data.geom("head").xpos[2] + big.geom("head").size[0] \
        == pytest.approx(1.1 * head_top, rel=1e-9)
    assert big_data.site("watch_imu").xpos[2] == pytest.approx(1.1 * data.site("watch_imu").xpos[2])
    assert big.body_subtreemass[feet] == pytest.approx(0.9 * mass, rel=1e-9)
    small, _ = standing(Body(scale=0.9, mass_scale=1.1))
    assert small.body_subtreemass[feet] == pytest.approx(1.1 * mass, rel=1e-9)
    # the scene is not part of the person
    assert small.body_mass[small.body("phone").id] == pytest.approx(0.14)
    assert small.body_mass[small.body("table").id] == pytest.approx(14.0)


def test_phone_on_the_table_or_the_floor():
    for xy in ((1.2, 0.4), (-0.3, 2.5), (0.5, -1.0)):
        model, data = standing(Body(phone_xy=xy, phone_place="table"))
        phone = data.geom("phone")
        bottom = phone.xpos[2] - model.geom("phone").size[2]
        top = data.geom("table_top").xpos[2] + model.geom("table_top").size[2]
        assert bottom == pytest.approx(top, abs=1e-3)
        assert abs(top - 0.75) < 0.01
        np.testing.assert_allclose(data.site("phone_uwb").xpos[:2], xy, atol=1e-12)
        half = model.geom("table_top").size[:2]
        assert np.all(np.abs(phone.xpos[:2] - data.geom("table_top").xpos[:2]) < half)

        model, data = standing(Body(phone_xy=xy, phone_place="floor"))
        bottom = data.geom("phone").xpos[2] - model.geom("phone").size[2]
        assert bottom == pytest.approx(0.0, abs=1e-3)
        np.testing.assert_allclose(data.site("phone_uwb").xpos[:2], xy, atol=1e-12)
        half = model.geom("table_top").size[:2]      # the table stands out of the way
        assert np.any(np.abs(xy - data.geom("table_top").xpos[:2]) > half + 0.1)


def squat_pose(body: Body, depth: float = 1.6) -> tuple[mujoco.MjModel, mujoco.MjData]:
    """The humanoid at the bottom of a squat (knee flexed by ``depth``), arms hanging."""
    model = build_model(body)
    data = mujoco.MjData(model)
    targets = np.zeros(len(JOINTS))
    targets[:3] = (0.42 * depth, depth, 0.35 * depth + 0.6 * depth)
    reset_to(model, data, targets)
    return model, data


def test_phone_places_put_the_uwb_where_they_say_and_the_range_follows():
    """Surface places at their heights, pocket and hand on their body parts; going down
    shrinks the range to a phone below the wrist and grows it to one on a high shelf."""
    def uwb_range(model, data):
        return float(np.linalg.norm(data.site("watch_imu").xpos - data.site("phone_uwb").xpos))

    xy = (0.6, 0.3)
    heights = {"floor": 0.0, "table": 0.75, "bench": 0.45, "shelf": 1.15}
    change = {}
    for place, top in heights.items():
        body = Body(phone_xy=xy, phone_place=place, phone_height=1.15 if place == "shelf" else 0)
        model, data = standing(body)
        bottom = data.geom("phone").xpos[2] - model.geom("phone").size[2]
        assert bottom == pytest.approx(top, abs=1e-3), place
        np.testing.assert_allclose(data.site("phone_uwb").xpos[:2], xy, atol=1e-12)
        change[place] = uwb_range(*squat_pose(body)) - uwb_range(model, data)
    assert change["floor"] < change["bench"] < 0 < change["shelf"]
    for place, part in (("pocket", "thigh"), ("hand", "forearm_r")):
        model, data = standing(Body(phone_place=place, scale=1.1))
        site = model.site("phone_uwb")
        assert model.body(site.bodyid[0]).name == part
        assert model.site("phone_uwb_unused").bodyid[0] == model.body("phone").id
    with pytest.raises(SimError, match="unknown phone place 'car'"):
        Body(phone_place="car")


def test_body_sample_draws_the_phone_places_asked_for():
    rng = np.random.default_rng(3)
    bodies = [Body.sample(rng, ("shelf", "pocket")) for _ in range(200)]
    places = {b.phone_place for b in bodies}
    assert places == {"shelf", "pocket"}
    shelves = [b.phone_height for b in bodies if b.phone_place == "shelf"]
    assert min(shelves) >= 0.95 and max(shelves) <= 1.2
    with pytest.raises(SimError, match="unknown phone places"):
        Body.sample(rng, ("roof",))


def test_body_sample_ranges():
    rng = np.random.default_rng(9)
    bodies = [Body.sample(rng) for _ in range(500)]
    scales = np.array([(b.scale, b.mass_scale) for b in bodies])
    assert scales.min() >= 0.9 and scales.max() <= 1.1
    assert scales.min() < 0.91 and scales.max() > 1.09
    distance = np.array([np.hypot(*b.phone_xy) for b in bodies])
    table = np.array([b.phone_place == "table" for b in bodies])
    assert distance[~table].min() >= 0.3 - 1e-9 and distance[~table].max() <= 1.5 + 1e-9
    assert distance[table].min() >= 0.8 - 1e-9 and distance[table].max() <= 2.0 + 1e-9
    assert 0.08 < table.mean() < 0.25
    offsets = np.array([b.watch_offset for b in bodies])
    assert np.abs(offsets).max() <= 0.01
    turns = np.array([b.watch_rotvec for b in bodies])
    assert turns[:, 0].std() > 2 * turns[:, 1:].std(0).max()  # mostly a twist on the forearm


def test_the_watch_twist_turns_about_the_forearm():
    """A twist (watch x) keeps the crown axis along the forearm and turns the screen."""
    _, nominal = standing(Body())
    _, twisted = standing(Body(watch_rotvec=(0.6, 0.0, 0.0)))
    before = nominal.site("watch_imu").xmat.reshape(3, 3)
    after = twisted.site("watch_imu").xmat.reshape(3, 3)
    np.testing.assert_allclose(after[:, 0], before[:, 0], atol=1e-6)
    assert np.dot(after[:, 2], before[:, 2]) == pytest.approx(np.cos(0.6), abs=1e-6)


def test_watch_offset_and_orientation():
    nominal = build_model()
    offset = np.array([0.008, -0.005, 0.003])
    moved = build_model(Body(watch_offset=tuple(offset)))
    np.testing.assert_allclose(moved.site("watch_imu").pos - nominal.site("watch_imu").pos,
                               offset, atol=1e-12)
    np.testing.assert_array_equal(moved.site("watch_imu").quat, nominal.site("watch_imu").quat)
    rotvec = np.array([0.05, 0.4, -0.1])
    turned = build_model(Body(watch_rotvec=tuple(rotvec)))
    np.testing.assert_array_equal(turned.site("watch_imu").pos, nominal.site("watch_imu").pos)
    # the turn is about an axis given in the watch frame: q_turned = q_nominal * q(rotvec)
    rel = np.zeros(4)
    inverse = np.zeros(4)
    mujoco.mju_negQuat(inverse, nominal.site("watch_imu").quat)
    mujoco.mju_mulQuat(rel, inverse, turned.site("watch_imu").quat)
    rel *= np.sign(rel[0])
    angle = 2 * np.arctan2(np.linalg.norm(rel[1:]), rel[0])
    assert angle == pytest.approx(np.linalg.norm(rotvec), rel=1e-9)
    np.testing.assert_allclose(rel[1:] / np.linalg.norm(rel[1:]), rotvec / np.linalg.norm(rotvec),
                               atol=1e-9)
    # the nominal watch: z out of the back of the left wrist (lateral, +y, with the arm hanging)
    model, data = standing(Body())
    axes = data.site("watch_imu").xmat.reshape(3, 3)
    assert axes[1, 2] > 0.95
    # Apple Watch axes: x along the forearm toward the hand (down with the arm hanging)
    assert axes[2, 0] < -0.95 and data.geom("hand_l").xpos[2] < data.site("watch_imu").xpos[2]


def test_bad_bodies_and_model_files(tmp_path):
    for body in (Body(scale=0.3), Body(scale=1.6), Body(mass_scale=0.4), Body(mass_scale=2.0)):
        with pytest.raises(SimError, match="outside"):
            build_model(body)
    with pytest.raises(SimError, match="cannot load the squat model"):
        build_model(xml=tmp_path / "missing.xml")
    broken = tmp_path / "broken.xml"
    broken.write_text("<mujoco><worldbody><body name='feet'>")
    with pytest.raises(SimError, match="cannot load the squat model"):
        build_model(xml=broken)
    other = tmp_path / "other.xml"
    other.write_text("<mujoco><worldbody><body name='x'><geom size='0.1'/></body>"
                     "</worldbody></mujoco>")
    with pytest.raises(SimError, match="has no body feet"):
        build_model(xml=other)
    no_sensor = mujoco.MjModel.from_xml_string("<mujoco><worldbody/></mujoco>")
    with pytest.raises(SimError, match="no sensor 'watch_accel'"):
        SensorLayout.of(no_sensor)
    assert MODEL_XML.is_file()


# -- the humanoid squatting live ----------------------------------------------------------


def test_one_second_of_the_humanoid_raises_no_mujoco_warnings():
    for seed in range(3):
        for body in (None, Body(scale=0.9, mass_scale=1.1), Body(scale=1.1, mass_scale=0.9)):
            live = LiveSquat(seed, body=body)
            frames = [live.step_frame() for _ in range(20)]
            assert frames[-1].t == pytest.approx(1.0)
            assert live.warnings() == {}
            assert all(w.number == 0 for w in live.data.warning)
            assert np.all(np.isfinite(live.data.qpos)) and np.all(np.isfinite(live.data.qacc))
    # a warning would be reported by name
    live.data.warning[mujoco.mjtWarning.mjWARN_BADQACC].number = 1
    assert live.warnings() == {"mjWARN_BADQACC": 1}


@pytest.fixture(scope="module")
def live_run():
    """30 s of a noise-free LiveSquat: frames, targets, pelvis heights, watch gravity."""
    live = LiveSquat(11, EpisodeConfig(imu=EXACT_IMU))
    frames, targets, pelvis, gravity, distance = [], [], [], [], []
    for _ in range(600):
        frame = live.step_frame()
        frames.append(frame)
        targets.append(live.plan.targets(np.array([frame.t]))[0])
        sensors = live.data.sensordata
        pelvis.append(sensors[live.layout.pelvis_pos][2])
        gravity.append(gravity_in_sensor(sensors[live.layout.watch_quat])[0])
        distance.append(np.linalg.norm(sensors[live.layout.watch_pos]
                                       - sensors[live.layout.phone_pos]))
    return live, frames, np.array(targets), np.array(pelvis), np.array(gravity), np.array(distance)


def test_live_squat_keeps_squatting(live_run):
    live, frames, targets, pelvis, _, _ = live_run
    assert live.warnings() == {}
    t = np.array([f.t for f in frames])
    np.testing.assert_allclose(t, (np.arange(600) + 1) * 0.05)
    reps = np.array([f.reps for f in frames])
    phase = np.array([f.phase for f in frames])
    assert reps[-1] >= 2 and reps[0] == 0
    assert np.all(np.diff(reps) >= 0) and np.all(np.diff(reps) <= 1)
    done = np.flatnonzero(np.diff(reps)) + 1     # a repetition completes as its ascent ends
    assert np.all(phase[done - 1] == UP) and np.all(phase[done] == STOP)
    assert count_repetitions(phase) >= reps[-1]
    assert live.plan.end >= 30.0 + live.horizon - 1e-9      # planned ahead
    # the PD actuators track the plan: every joint, all the time, the knee at the bottom
    positions = np.array([f.joint_positions for f in frames])
    error = np.abs(positions - targets)
    assert error.max() < 0.08, dict(zip(JOINTS, error.max(axis=0).round(3)))
    bottom = (phase == STOP) & (targets[:, 1] > 1.0)
    assert bottom.sum() > 5
    assert error[bottom, 1].max() < 0.05
    assert positions[bottom, 1].min() > 0.9      # the knees really bend
    velocities = np.array([f.joint_velocities for f in frames])
    assert np.abs(velocities[bottom, 1]).max() < 0.2
    # the pelvis goes down while the label says DOWN, up while it says UP
    v = np.diff(pelvis) / 0.05
    assert np.all(v[phase[1:] == DOWN] < 0.01) and np.all(v[phase[1:] == UP] > -0.01)
    assert np.mean(v[phase[1:] == DOWN]) < -0.05 and np.mean(v[phase[1:] == UP]) > 0.05
    assert pelvis.max() - pelvis.min() > 0.25


def test_live_squat_accelerometer_and_uwb(live_run):
    live, frames, targets, pelvis, gravity, distance = live_run
    accel = np.array([f.accel for f in frames])
    t = np.array([f.t for f in frames])
    first_move = live.plan.rep_bounds()[0][0]
    still = t < min(first_move, 0.9 * live.plan.reps[0].pause_before)
    assert still.sum() >= 8
    np.testing.assert_allclose(np.linalg.norm(accel[still], axis=1), 9.81, atol=0.1)
    np.testing.assert_allclose(accel[still], gravity[still], atol=0.2)
    assert np.abs(accel - gravity).max() > 0.5          # moving arms accelerate the watch
    # UWB: 5-7 Hz with dropouts, times inside their frame, ranges near the true distance
    readings = [(f.t, time, value) for f in frames for time, value in f.uwb]
    times = np.array([r[1] for r in readings])
    assert np.all(np.diff(times) > 0)
    assert all(end - 0.05 - 1e-9 <= time < end for end, time, _ in readings)
    rate = len(times) / 30.0
    assert 3.5 < rate <= 7.1
    assert 5.0 <= 1.0 / live._uwb_period <= 7.0
    assert np.diff(times).max() < 2.5
    frame_of = {f.t: i for i, f in enumerate(frames)}
    errors = np.array([value - distance[frame_of[end]] for end, _, value in readings])
    assert np.abs(errors - errors.mean()).max() < 0.25          # noise 4 cm, offset constant
    assert np.abs(errors.mean()) < 0.25


def test_live_uwb_timing_stays_regular_across_scheduling_chunks():
    """Readings are scheduled a minute ahead at a time; the slot grid must run on unbroken."""
    live = LiveSquat(6, EpisodeConfig(uwb=EXACT_UWB))
    times = np.array([time for _ in range(2500) for time, _ in live.step_frame().uwb])  # 125 s
    period = live._uwb_period
    gaps = np.diff(times) / period
    assert gaps.min() >= 1 - 2 * 0.15 - 1e-9 and gaps.max() <= 1 + 2 * 0.15 + 1e-9
    assert abs(len(times) - 125.0 / period) <= 2


def test_live_squat_reset_reproduces_the_frames():
    def run(live: LiveSquat, n: int = 40):
        return [(f.accel.tolist(), f.gyro.tolist(), f.uwb, f.phase, f.joint_positions.tolist())
                for f in (live.step_frame() for _ in range(n))]
    live = LiveSquat(3)
    first = run(live)
    assert live.time == pytest.approx(2.0)
    live.reset()
    assert live.time == 0.0
    assert run(live) == first
    live.reset(4)
    other = run(live)
    assert other != first
    live.reset(3)
    assert run(live) == first
    assert run(LiveSquat(3)) == first
    fixed = LiveSquat(5, body=Body(scale=1.05))
    assert fixed.body == Body(scale=1.05)
    fixed.reset(6)
    assert fixed.body == Body(scale=1.05)


# -- episodes -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def exact_episode():
    """A noise-free 2-repetition episode and the physics behind it (sensordata per step)."""
    captured = {}
    original = episode_module.rollout.rollout

    def spy(model, data, state, control, *args, **kwargs):
        state_out, sensordata = original(model, data, state, control, *args, **kwargs)
        captured.update(model=model, sensordata=sensordata[0].copy(), control=control[0].copy())
        return state_out, sensordata
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(episode_module.rollout, "rollout", spy)
        ep = simulate_episode(21, EpisodeConfig(reps=2, imu=EXACT_IMU, uwb=EXACT_UWB))
    return ep, captured


def test_episode_is_deterministic_per_seed():
    a = simulate_episode(5)
    b = simulate_episode(5)
    c = simulate_episode(6)
    d = simulate_episode(np.random.SeedSequence(5))
    for name in ("t", "accel", "gyro", "gravity", "uwb_at_imu", "phase", "uwb_t", "uwb",
                 "rep_frames"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
        np.testing.assert_array_equal(getattr(a, name), getattr(d, name))
    assert a.params == b.params
    assert a.params != c.params
    n = min(len(a.t), len(c.t))
    assert not np.array_equal(a.accel[:n], c.accel[:n])


def test_episode_shapes_rates_and_labels():
    for seed in range(3):
        ep = simulate_episode(seed, EpisodeConfig(reps=2))
        n = len(ep.t)
        assert n > 100
        np.testing.assert_allclose(ep.t, (np.arange(n) + 1) * 0.05)
        assert ep.accel.shape == ep.gyro.shape == ep.gravity.shape == (n, 3)
        assert ep.uwb_at_imu.shape == ep.phase.shape == (n,)
        assert ep.phase.dtype == np.int8
        assert set(np.unique(ep.phase).tolist()) == {STOP, DOWN, UP}
        assert ep.phase[0] == STOP and ep.phase[-1] == STOP
        assert count_repetitions(ep.phase) == 2
        assert ep.rep_frames.shape == (2, 2)
        for first, after in ep.rep_frames:
            assert ep.phase[first] == DOWN and ep.phase[first - 1] != DOWN
            assert ep.phase[after - 1] == UP and ep.phase[after] == STOP
            assert set(ep.phase[first:after].tolist()) <= {DOWN, STOP, UP}
            assert DOWN in ep.phase[first:after] and UP in ep.phase[first:after]
        assert np.all(ep.phase[:ep.rep_frames[0, 0]] == STOP)
        assert np.all(ep.phase[ep.rep_frames[-1, 1]:] == STOP)
        # UWB: sorted raw readings inside the episode, 5-7 Hz less dropouts, interpolated
        assert ep.uwb.shape == ep.uwb_t.shape and np.all(np.diff(ep.uwb_t) > 0)
        assert ep.uwb_t[0] >= 0 and ep.uwb_t[-1] < ep.t[-1]
        assert 5.0 <= ep.params["uwb_rate_hz"] <= 7.0
        assert 0.5 * 5.0 < len(ep.uwb_t) / ep.t[-1] <= 7.5
        np.testing.assert_array_equal(ep.uwb_at_imu, np.interp(ep.t, ep.uwb_t, ep.uwb))
        assert np.all((ep.uwb >= 0.1) & (ep.uwb <= 50.0))
        # standing at the start: accel (with gravity) ~ 9.81 m/s^2 along the gravity reaction
        np.testing.assert_allclose(np.linalg.norm(ep.gravity, axis=1), 9.80665)
        magnitude = np.linalg.norm(ep.accel[:8], axis=1)     # noise up to 4 x 0.06 m/s^2
        assert magnitude.mean() == pytest.approx(9.81, abs=0.3)
        body = ep.params["body"]
        assert 0.9 <= body["scale"] <= 1.1 and 0.9 <= body["mass_scale"] <= 1.1
        assert len(ep.params["reps"]) == 2 and ep.params["duration"] == pytest.approx(ep.t[-1])


def test_episode_signals_match_its_physics(exact_episode):
    ep, phys = exact_episode
    model = phys["model"]
    layout = SensorLayout.of(model)
    settle = int(round(0.5 / model.opt.timestep))
    spf = int(round(0.05 / model.opt.timestep))
    sensors = phys["sensordata"][settle:]
    assert len(sensors) == len(ep.t) * spf
    # noise-free: accel and gyro are the frame means of the MuJoCo sensors
    np.testing.assert_allclose(ep.accel, sensors[:, layout.accel].reshape(-1, spf, 3).mean(1))
    np.testing.assert_allclose(ep.gyro, sensors[:, layout.gyro].reshape(-1, spf, 3).mean(1))
    frame_end = sensors[spf - 1::spf]
    np.testing.assert_allclose(ep.gravity, gravity_in_sensor(frame_end[:, layout.watch_quat]))
    # no warning-worthy physics: finite, the standing person at rest reads gravity
    still = ep.t < 0.5
    np.testing.assert_allclose(ep.accel[still], ep.gravity[still], atol=0.25)
    # UWB (exact model): the phone-watch distance at the reading times
    step = np.minimum((ep.uwb_t / model.opt.timestep).astype(int), len(sensors) - 1)
    true = np.linalg.norm(sensors[step][:, layout.watch_pos] - sensors[step][:, layout.phone_pos],
                          axis=1)
    np.testing.assert_allclose(ep.uwb, np.clip(true, 0.1, 50.0))
    assert len(ep.uwb_t) / ep.t[-1] == pytest.approx(ep.params["uwb_rate_hz"], abs=0.5)
    # the labels describe the pelvis: down during DOWN, up during UP, still during STOP
    pelvis = frame_end[:, layout.pelvis_pos][:, 2]
    v = np.diff(pelvis) / 0.05
    phase = ep.phase[1:]
    assert np.all(v[phase == DOWN] < 0.01) and np.all(v[phase == UP] > -0.01)
    assert np.mean(v[phase == DOWN]) < -0.05 and np.mean(v[phase == UP]) > 0.05
    assert np.abs(v[phase == STOP]).max() < 0.1
    assert np.median(np.abs(v[phase == STOP])) < 0.01
    for first, after in ep.rep_frames:
        assert pelvis[first] - pelvis[first:after].min() > 0.2
        assert abs(pelvis[after] - pelvis[first]) < 0.02
    # the control was the plan: the knee target reaches the sampled depth
    knee = JOINTS.index("knee")
    depths = [r["depth"] for r in ep.params["reps"]]
    assert phys["control"][:, knee].max() == pytest.approx(max(depths), abs=0.011)


# -- datasets -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dataset():
    return generate(3, seed=7, workers=1, progress=False)


def test_dataset_does_not_depend_on_the_worker_count(dataset):
    parallel = generate(3, seed=7, workers=2, progress=False)
    for name in ("t", "accel", "gyro", "gravity", "uwb_at_imu", "phase", "uwb_t", "uwb",
                 "episode_offsets", "uwb_offsets", "rep_frames"):
        np.testing.assert_array_equal(getattr(dataset, name), getattr(parallel, name))
    assert json.dumps(dataset.meta) == json.dumps(parallel.meta)
    # episode i is the episode of SeedSequence(seed, spawn_key=(i,))
    ep = simulate_episode(np.random.SeedSequence(7, spawn_key=(2,)))
    np.testing.assert_array_equal(dataset.episode(2)["accel"], ep.accel)
    np.testing.assert_array_equal(dataset.episode(2)["uwb"], ep.uwb)
    other = generate(3, seed=8, workers=1, progress=False)
    assert not np.array_equal(other.accel[:100], dataset.accel[:100])


def test_dataset_layout(dataset):
    assert dataset.episodes == 3
    offsets = dataset.episode_offsets
    assert offsets[0] == 0 and offsets[-1] == len(dataset.t) and np.all(np.diff(offsets) > 0)
    assert dataset.uwb_offsets[-1] == len(dataset.uwb_t)
    assert dataset.rep_frames.shape == (3, 2)
    for e in range(3):
        arrays = dataset.episode(e)
        assert arrays["t"][0] == pytest.approx(0.05)            # t restarts every episode
        first, after = dataset.rep_frames[e]
        assert offsets[e] < first < after < offsets[e + 1]
        assert dataset.phase[first] == DOWN and dataset.phase[after - 1] == UP
        np.testing.assert_array_equal(arrays["uwb_at_imu"],
                                      np.interp(arrays["t"], arrays["uwb_t"], arrays["uwb"]))
    meta = dataset.meta
    assert meta["format"] == FORMAT and meta["seed"] == 7 and meta["episodes"] == 3
    assert meta["rate_hz"] == 20.0 and meta["frames"] == len(dataset.t)
    assert meta["phases"] == ["Stop", "Down", "Up"]
    signals = meta["signals"]
    assert {"accel", "gyro", "gravity", "uwb", "imu_model", "uwb_model"} <= set(signals)
    assert "INCLUDING gravity" in signals["accel"] and "m/s^2" in signals["accel"]
    assert "rad/s" in signals["gyro"] and "interpolated" in signals["uwb"]
    assert signals["imu_model"] == asdict(ImuModel())
    assert signals["physics_dt"] == 0.002 and signals["frame_dt"] == 0.05
    assert len(meta["episode_params"]) == 3
    json.dumps(meta)


def test_dataset_save_load_round_trip(dataset, tmp_path):
    path = dataset.save(tmp_path / "sub" / "squats.data")    # the name is kept as given
    assert path == tmp_path / "sub" / "squats.data" and path.is_file()
    loaded = SquatDataset.load(path)
    for name in ("t", "accel", "gyro", "gravity", "uwb_at_imu", "phase", "uwb_t", "uwb",
                 "episode_offsets", "uwb_offsets", "rep_frames"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(dataset, name))
        assert getattr(loaded, name).dtype == getattr(dataset, name).dtype
    assert loaded.meta == json.loads(json.dumps(dataset.meta))


def test_dataset_load_errors(tmp_path):
    with pytest.raises(SimError, match="does not exist"):
        SquatDataset.load(tmp_path / "missing.npz")
    text = tmp_path / "text.npz"
    text.write_text("t,accel\n1,2\n")
    with pytest.raises(SimError, match="is not a squat dataset"):
        SquatDataset.load(text)
    with pytest.raises(SimError, match="is not a squat dataset"):
        SquatDataset.load(tmp_path)
    bare = tmp_path / "bare.npy"
    np.save(bare, np.arange(3))
    with pytest.raises(SimError, match="is not a squat dataset"):
        SquatDataset.load(bare)
    cases = {
        "no_meta.npz": {"t": np.arange(3)},
        "other_format.npz": {"meta": np.array(json.dumps({"format": "something/2"}))},
        "not_json.npz": {"meta": np.array("not json at all")},
        "json_list.npz": {"meta": np.array("[1, 2]")},
        "missing_arrays.npz": {"meta": np.array(json.dumps({"format": FORMAT})),
                               "t": np.arange(3)},
    }
    for name, arrays in cases.items():
        with open(tmp_path / name, "wb") as f:
            np.savez(f, **arrays)
        with pytest.raises(SimError, match=name):
            SquatDataset.load(tmp_path / name)
    with pytest.raises(SimError, match="'something/2', expected"):
        SquatDataset.load(tmp_path / "other_format.npz")


def test_generate_rejects_bad_arguments():
    with pytest.raises(SimError, match="at least one squat"):
        generate(0, progress=False)
    with pytest.raises(SimError, match="workers"):
        generate(1, workers=-2, progress=False)


def test_a_spec_that_does_not_compile_raises_a_sim_error_naming_the_model():
    from embodied_transfer.sim.errors import compiled

    ok = mujoco.MjSpec.from_string('<mujoco><worldbody><geom size="0.1"/></worldbody></mujoco>')
    assert compiled(ok, "a ball").ngeom == 1
    massless = mujoco.MjSpec.from_string(
        '<mujoco><worldbody><body><joint type="hinge"/><geom size="0.1" mass="0"/></body>'
        '</worldbody></mujoco>')
    with pytest.raises(SimError, match="cannot compile the squat model: .*mass and inertia"):
        compiled(massless, "the squat model")
