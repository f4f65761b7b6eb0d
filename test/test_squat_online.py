"""Frame-by-frame inference (squat.online) gives the offline pipeline's result; bad input is
rejected with a reason, and memory stays bounded."""
from __future__ import annotations

from conftest import require_real_data
from embodied_transfer.squat.data import real_squat_dir

import math
from pathlib import Path

import numpy as np
import pytest

from embodied_transfer.squat.online import (ClassifierStream, ConverterStream, FrameAssembler,
                                            NS_PER_S)
from embodied_transfer.squat.pipeline import RepCounter
from embodied_transfer.squat.signals import windows

REAL = real_squat_dir()
MS = 1_000_000


def real_file(name: str = "recording_1.csv") -> Path:
    return require_real_data(REAL / name)


@pytest.fixture
def one_thread():
    """Frame-by-frame inference as the nodes run it (torch on one thread)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def small_models(x: np.ndarray, seed: int = 0):
    """Random-init converter (past 15) and classifier (past 10, future 5), normalised on x."""
    import torch

    from embodied_transfer.squat.models import (Checkpoint, ModelConfig, MultiEncoderVAE,
                                                PhaseClassifier)
    from embodied_transfer.squat.phases import DOWN, STOP, UP, PhaseFilter
    from embodied_transfer.squat.pipeline import Classifier, Converter
    from embodied_transfer.squat.signals import InputAdaptation, Normalizer

    torch.manual_seed(seed)
    norm = Normalizer.fit(x)
    vae = MultiEncoderVAE(ModelConfig("multi_encoder_vae", hidden=32, past=15)).eval()
    with torch.no_grad():
        vae.z_style.normal_()
    converter = Converter(Checkpoint(vae, norm, Normalizer(norm.mean, norm.std * 2),
                                     adaptation=InputAdaptation(prior_frames=20,
                                                                horizon_frames=80)))
    phases = np.repeat([STOP, DOWN, STOP, UP, STOP], 30)
    classifier = Classifier(Checkpoint(
        PhaseClassifier(ModelConfig("phase_classifier", hidden=32, past=10, future=5)).eval(),
        norm, phase_filter=PhaseFilter.fit([phases], sharpness=0.5)))
    return converter, classifier


def feed_recording(rec, assembler: FrameAssembler, uwb_first: bool = False) -> list:
    """Push a RealRecording's rows in time order (a row's UWB after its IMU, as in its bag)."""
    t = np.round(rec.t * 1e9).astype(np.int64)
    rows = np.searchsorted(rec.t, rec.uwb_t)
    uwb = dict(zip(rows.tolist(), rec.uwb.tolist()))
    out = []
    for i in range(t.size):
        if uwb_first and i in uwb:
            out += assembler.push_uwb(int(t[i]), uwb[i])
        out += assembler.push_imu(int(t[i]), rec.accel[i], rec.gyro[i])
        if not uwb_first and i in uwb:
            out += assembler.push_uwb(int(t[i]), uwb[i])
    return out + assembler.flush()


# --- equivalence with the offline pipeline ---------------------------------------------

def test_real_recording_gives_the_offline_pipeline_result(one_thread):
    from embodied_transfer.squat.pipeline import Pipeline
    from embodied_transfer.squat.real import load_real_csv
    from embodied_transfer.squat.signals import real_recording

    rec = load_real_csv(real_file())
    x, _ = real_recording(rec)
    converter, classifier = small_models(x)
    sim_offline, probs_offline = Pipeline(classifier, converter).run(x)

    frames = feed_recording(rec, FrameAssembler())
    conv = ConverterStream(converter)
    cls = ClassifierStream(classifier, min_run=3)
    sim, labels = [], []
    for f in frames:
        y = conv.push(f.stamp_ns, f.values)
        sim.append(y)
        labels += cls.push(f.stamp_ns, y)
    labels += cls.flush()

    assert [f.stamp_ns for f in frames] == np.round(rec.t * 1e9).astype(np.int64).tolist()
    assert not any(f.stale for f in frames)
    np.testing.assert_array_equal(np.stack([f.values for f in frames]), x)
    np.testing.assert_allclose(np.stack(sim), sim_offline, atol=1e-5, rtol=1e-5)
    assert [lab.stamp_ns for lab in labels] == [f.stamp_ns for f in frames]
    probs = np.stack([lab.probabilities for lab in labels])
    np.testing.assert_allclose(probs, probs_offline, atol=1e-5)
    phases = np.array([lab.phase for lab in labels])
    margin = np.sort(probs_offline, axis=1)[:, -1] - np.sort(probs_offline, axis=1)[:, -2]
    assert np.array_equal(phases[margin > 1e-4], probs_offline.argmax(1)[margin > 1e-4])
    assert [lab.confidence for lab in labels] == pytest.approx(probs.max(1).tolist())
    counts = [lab.rep_count for lab in labels]
    assert counts == sorted(counts) and counts[-1] == RepCounter(3).count_all(phases)


@pytest.mark.parametrize("name", ["recording_1.csv", "recording_2.csv", "recording_3.csv"])
@pytest.mark.parametrize("uwb_first", [False, True])
def test_uwb_is_np_interp_at_every_imu_stamp_with_bounded_hold(name, uwb_first):
    """A max wait above every gap between accepted UWB readings (0.5 s; 1.02 s in
    recording_2 once its multipath readings are left out): no frame is stale, whichever
    topic's message of a row arrives first."""
    from embodied_transfer.squat.real import load_real_csv
    from embodied_transfer.squat.signals import real_recording

    rec = load_real_csv(real_file(name))
    x, _ = real_recording(rec)
    assembler = FrameAssembler(max_wait_s=1.5)
    frames = feed_recording(rec, assembler, uwb_first)
    np.testing.assert_array_equal(np.stack([f.values for f in frames]), x)
    multipath = int(rec.uwb_multipath.sum())     # recording_2's jumps, rejected as offline
    assert assembler.rejected == ({"uwb_multipath": multipath} if multipath else {})
    assert "uwb_stale" not in assembler.events
    gaps = np.diff(rec.uwb_t[~rec.uwb_multipath]).max()
    assert gaps < 1.5 and assembler.max_hold_ns <= gaps * NS_PER_S + 1


# --- FrameAssembler rules -------------------------------------------------------------

def imu(assembler, stamp_ns, value=0.0):
    return assembler.push_imu(stamp_ns, [value, 0.0, 0.0], [0.0, 0.0, value])


def test_range_gate_rejects_jumps_of_metres_and_follows_a_real_change_of_place():
    from embodied_transfer.squat.range_gate import RangeGate, multipath_mask

    ranges = [1.0, 1.1, 0.9, 1.0, 3.5, 1.05, 2.9, 0.95] + [3.0] * 8    # then the phone moved
    mask = multipath_mask(ranges)
    assert mask.tolist() == [False] * 4 + [True, False, True, False] + [True] * 3 + [False] * 5
    assert not multipath_mask(ranges, max_jump_m=0).any()
    with pytest.raises(ValueError, match="max_jump_m"):
        RangeGate(-1.0)


def test_multipath_readings_are_rejected_and_frames_use_the_readings_around_them():
    a = FrameAssembler()
    reasons = []
    a.on_reject = lambda reason, detail: reasons.append((reason, detail))
    frames = []
    for k, r in enumerate([1.0, 1.1, 0.9, 1.0, 3.5, 1.2]):
        frames += imu(a, k * 100_000_000)
        frames += a.push_uwb(k * 100_000_000 + 50_000_000, r)
    frames += a.flush()
    assert a.rejected == {"uwb_multipath": 1} and reasons[0][0] == "uwb_multipath"
    assert "multipath" in reasons[0][1]
    uwb = [float(f.values[-1]) for f in frames]
    assert len(frames) == 6 and max(uwb) <= 1.2 + 1e-6       # nothing made from the 3.5 m
    assert uwb[4] == pytest.approx(1.0 + (1.2 - 1.0) * 0.05 / 0.2, abs=1e-6)  # 1.0 → 1.2


def test_frames_wait_for_the_uwb_reading_after_them_and_get_np_interp():
    a = FrameAssembler()
    assert a.push_uwb(0, 1.0) == []
    assert imu(a, 100 * MS) == [] and imu(a, 150 * MS) == []     # waiting for a later reading
    frames = a.push_uwb(200 * MS, 2.0)
    assert [f.stamp_ns for f in frames] == [100 * MS, 150 * MS]
    assert [float(f.values[6]) for f in frames] == pytest.approx([1.5, 1.75])
    assert [f.values[6] for f in imu(a, 200 * MS)] == [np.float32(2.0)]   # exactly on a reading
    assert a.held == 0 and a.uwb_kept == 1


def test_frames_before_the_first_reading_get_it_and_without_uwb_go_imu_only():
    a = FrameAssembler(max_wait_s=0.5)
    imu(a, 0)
    imu(a, 100 * MS)
    frames = a.push_uwb(150 * MS, 0.8)        # np.interp holds the first reading before it
    assert [float(f.values[6]) for f in frames] == pytest.approx([0.8, 0.8])

    b = FrameAssembler(max_wait_s=0.5)
    emitted = []
    for i in range(40):                        # 2 s at 20 Hz, no UWB at all
        emitted += imu(b, i * 50 * MS)
    assert b.held <= 11 and len(emitted) == 40 - b.held   # held ≤ max wait, then IMU-only
    emitted += b.flush()
    assert [f.stamp_ns for f in emitted] == [i * 50 * MS for i in range(40)]
    assert all(f.imu_only and np.isnan(f.values[6]) and not f.stale for f in emitted)
    assert all(np.isfinite(f.values[:6]).all() for f in emitted)
    assert b.rejected == {} and b.events["imu_only"] == 40 and "mode_switch" not in b.events
    # the UWB starts late: IMU-only until then, interpolated from the first reading on
    late = emitted[:0] + b.push_uwb(2000 * MS, 0.9)
    for i in range(40, 60):
        late += imu(b, i * 50 * MS)
        if i % 4 == 0:
            late += b.push_uwb(i * 50 * MS, 0.9)
    assert late and not any(f.imu_only for f in late)
    assert b.events["mode_switch"] == 1


def test_nan_and_inf_imu_are_rejected_and_never_emitted():
    reasons = []
    a = FrameAssembler(on_reject=lambda reason, detail: reasons.append((reason, detail)))
    a.push_uwb(0, 1.0)
    assert a.push_imu(10 * MS, [math.nan, 0, 0], [0, 0, 0]) == []
    assert a.push_imu(20 * MS, [0, 0, 0], [0, math.inf, 0]) == []
    assert a.push_imu(25 * MS, [0, 0], [0, 0, 0]) == []
    imu(a, 30 * MS)
    frames = a.push_uwb(40 * MS, 1.0)
    assert [f.stamp_ns for f in frames] == [30 * MS]
    assert all(np.all(np.isfinite(f.values)) for f in frames)
    assert a.rejected == {"imu_non_finite": 2, "imu_invalid": 1}
    assert reasons[0][0] == "imu_non_finite" and "NaN" in reasons[0][1]


def test_out_of_order_and_repeated_stamps_are_rejected_close_ones_accepted():
    a = FrameAssembler()
    a.push_uwb(0, 1.0)
    imu(a, 100 * MS)
    imu(a, 100 * MS + 100_000)                 # 100 µs later: a frame, as in the real data
    imu(a, 100 * MS + 100_001)                 # 1 ns later still counts
    imu(a, 100 * MS + 100_001)                 # repeated
    imu(a, 90 * MS)                            # out of order
    frames = a.push_uwb(200 * MS, 1.0)
    assert [f.stamp_ns for f in frames] == [100 * MS, 100 * MS + 100_000, 100 * MS + 100_001]
    assert a.rejected == {"imu_repeated_stamp": 1, "imu_out_of_order": 1}


def test_invalid_and_out_of_order_uwb_readings_are_rejected():
    a = FrameAssembler()
    a.push_uwb(100 * MS, 1.0)
    for value in (math.nan, math.inf, -math.inf, 60.0, -0.5, 0.05):
        assert a.push_uwb(200 * MS, value, min_range=0.1, max_range=50.0) == []
    a.push_uwb(100 * MS, 1.0)
    a.push_uwb(50 * MS, 1.0)
    assert a.rejected == {"uwb_invalid": 4, "uwb_too_far": 1, "uwb_too_close": 1,
                          "uwb_repeated_stamp": 1, "uwb_out_of_order": 1}
    imu(a, 150 * MS)
    frames = a.push_uwb(200 * MS, 3.0)          # the valid reading still interpolates
    assert float(frames[0].values[6]) == pytest.approx(2.0)


def stream_20hz(a, seconds, uwb_silent=(), start=0, uwb_value=lambda t: 1.0 + 0.1 * t):
    """IMU at 20 Hz and UWB at 5 Hz (after the IMU frame of the same stamp)."""
    out = []
    for i in range(int(seconds * 20)):
        t = start + i * 50 * MS
        out += imu(a, t, 0.01 * i)
        if i % 4 == 0 and not any(lo <= t / NS_PER_S < hi for lo, hi in uwb_silent):
            out += a.push_uwb(t, uwb_value(t / NS_PER_S))
    return out


def test_uwb_silent_for_3_s_frames_go_on_with_the_range_held():
    a = FrameAssembler(max_wait_s=1.0)
    frames = stream_20hz(a, 10.0, uwb_silent=[(3.0, 6.0)])
    frames += a.flush()
    stamps = [f.stamp_ns for f in frames]
    assert stamps == [i * 50 * MS for i in range(200)]          # none lost, in order
    stale = [f for f in frames if f.stale]
    # frames after 2.8 s that waited more than 1 s: those from 2.85 s until 5.0 s
    assert len(stale) == a.events["uwb_stale"] == 43
    assert all(float(f.values[6]) == pytest.approx(1.28) for f in stale)   # held 2.8 s reading
    assert a.max_hold_ns <= 1050 * MS                        # bounded latency (stamp time)
    after = [f for f in frames if f.stamp_ns > 5000 * MS and f.stamp_ns % (200 * MS)]
    assert all(not f.stale for f in after)                   # interpolation resumes
    assert a.rejected == {}


def test_uwb_lost_for_longer_than_its_max_age_goes_imu_only_and_back():
    a = FrameAssembler(max_wait_s=1.0, max_uwb_age_s=5.0)
    frames = stream_20hz(a, 12.0, uwb_silent=[(1.0, 9.0)]) + a.flush()
    # readings at 0.8 s then 9.0 s: frames stamped more than 5 s after 0.8 s (from 5.85 s)
    # go IMU-only when their 1 s wait runs out, up to 7.95 s; from 8.0 s the 9.0 s reading
    # arrives within their wait and they are interpolated
    imu_only = [i for i, f in enumerate(frames) if f.imu_only]
    assert imu_only == list(range(117, 160)) and len(frames) == 240
    assert all(np.isnan(frames[i].values[6]) for i in imu_only)
    assert all(np.all(np.isfinite(f.values)) for f in frames if not f.imu_only)
    assert a.rejected == {} and a.events["mode_switch"] == 2      # to IMU-only and back


def test_one_minute_of_1khz_imu_keeps_every_queue_bounded():
    a = FrameAssembler(max_wait_s=1.0, queue_size=256)
    emitted = max_held = max_uwb = 0
    for i in range(60_000):                                  # 60 s at 1 kHz
        t = i * MS
        emitted += len(imu(a, t, 0.001 * (i % 100)))
        if i % 166 == 0:                                     # UWB at 6 Hz
            emitted += len(a.push_uwb(t, 1.0))
        max_held, max_uwb = max(max_held, a.held), max(max_uwb, a.uwb_kept)
    emitted += len(a.flush())
    assert emitted == 60_000 and a.rejected == {}
    assert max_held <= 167 and max_uwb <= 2
    assert a.imu_rate_hz == pytest.approx(1000.0) and a.rate_high
    assert a.events["rate_high"] == 60_000 - 63              # once the rate window is full

    b = FrameAssembler(max_wait_s=1.0, queue_size=256)       # and with the UWB gone
    b.push_uwb(0, 1.0)
    held = []
    for i in range(20_000):
        imu(b, i * MS)
        held.append(b.held)
    assert max(held) == 256 and b.events["queue_overflow"] > 0
    assert b.events["imu_only"] > 0                          # 5 s after the last reading


def test_a_full_hold_queue_releases_its_oldest_frame_as_stale():
    a = FrameAssembler(max_wait_s=10.0, queue_size=4)
    a.push_uwb(0, 1.0)
    out = []
    for i in range(1, 7):
        out += imu(a, i * MS)
    assert a.held == 4 and [f.stamp_ns for f in out] == [1 * MS, 2 * MS]
    assert all(f.stale for f in out) and a.events["queue_overflow"] == 2


def test_a_stamp_gap_starts_a_new_stream_with_its_own_uwb():
    a = FrameAssembler(new_stream_gap_s=1.0)
    first = stream_20hz(a, 2.0, uwb_value=lambda t: 1.0)
    # second recording 2 s later; its first UWB reading comes 0.1 s after its first frame
    start = 4000 * MS
    second = imu(a, start) + imu(a, start + 50 * MS)
    assert [f.stamp_ns for f in second] == [first[-1].stamp_ns + 50 * MS * k for k in (1, 2, 3)]
    second += a.push_uwb(start + 100 * MS, 2.0)
    second += imu(a, start + 100 * MS) + a.flush()
    assert a.events["new_stream"] == 1
    assert [float(f.values[6]) for f in second[-3:]] == [2.0, 2.0, 2.0]


def test_flush_emits_held_frames_with_the_last_reading():
    a = FrameAssembler()
    a.push_uwb(0, 1.5)
    imu(a, 10 * MS)
    imu(a, 20 * MS)
    frames = a.flush()
    assert [float(f.values[6]) for f in frames] == [1.5, 1.5]
    assert not any(f.stale for f in frames) and a.events["flushed"] == 2 and a.held == 0


def test_bad_limits_are_refused():
    with pytest.raises(ValueError):
        FrameAssembler(queue_size=0)
    with pytest.raises(ValueError):
        FrameAssembler(max_wait_s=-1.0)


# --- ConverterStream and ClassifierStream ---------------------------------------------

class FakeConverter:
    past = 3

    def __init__(self) -> None:
        self.seen = []

    def convert_windows(self, w):
        self.seen.append(w.copy())
        return w[:, -1] * 2

    def adapter(self):
        return None


class FakeClassifier:
    """Probabilities from the centre frame's first three values; keeps the windows seen."""

    past, future = 3, 2
    phase_filter = None

    def __init__(self) -> None:
        self.seen = []

    def probabilities_windows(self, w):
        self.seen += list(w.copy())
        z = w[:, self.past, :3].astype(np.float64)
        e = np.exp(z - z.max(1, keepdims=True))
        return (e / e.sum(1, keepdims=True)).astype(np.float32)


def frames_with_phases(phases) -> np.ndarray:
    x = np.zeros((len(phases), 7), np.float32)
    x[np.arange(len(phases)), phases] = 5.0
    x[:, 6] = np.arange(len(phases))          # makes every frame distinct
    return x


def test_converter_stream_uses_the_offline_causal_windows():
    conv = FakeConverter()
    stream = ConverterStream(conv)
    x = np.random.default_rng(0).normal(size=(20, 7)).astype(np.float32)
    out = [stream.push(i * 50 * MS, x[i]) for i in range(20)]
    np.testing.assert_array_equal(np.concatenate(conv.seen), windows(x, 3, 0))
    np.testing.assert_array_equal(np.stack(out), x * 2)
    assert stream.push(19 * 50 * MS, x[0]) is None                   # not after the last
    assert stream.push(20 * 50 * MS, np.full(7, np.nan)) is None
    assert stream.rejected == {"out_of_order": 1, "non_finite": 1}
    stream.push(5000 * MS, x[0])                                     # gap: new window
    assert stream.events == {"new_stream": 1}
    np.testing.assert_array_equal(conv.seen[-1][0], np.repeat(x[:1], 4, 0))


def test_converter_stream_adapts_each_stream_afresh_as_convert_does(one_thread):
    x = np.random.default_rng(1).normal(size=(60, 7)).astype(np.float32)
    converter, _ = small_models(x)
    stream = ConverterStream(converter)
    scaled = x * 3 + 1                                 # another wearer: gain and offset
    first = [stream.push(i * 50 * MS, scaled[i]) for i in range(60)]
    again = [stream.push(10**10 + i * 50 * MS, scaled[i]) for i in range(60)]   # after a gap
    np.testing.assert_allclose(np.stack(first), converter.convert(scaled), atol=1e-5)
    np.testing.assert_array_equal(np.stack(first), np.stack(again))
    assert stream.events == {"new_stream": 1}


def test_imu_only_frames_convert_as_the_offline_imu_only_pass(one_thread):
    """A watch-only stretch in the middle of a stream: the UWB channel NaN leaves the input
    adaptation's UWB statistics alone and reads as the normaliser's mean, frame by frame
    as in Converter.convert; the IMU channels still adapt."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=(90, 7)).astype(np.float32) * 2 + 0.5
    x[30:60, 6] = np.nan
    converter, classifier = small_models(np.nan_to_num(x))
    stream = ConverterStream(converter)
    online = np.stack([stream.push(i * 50 * MS, x[i]) for i in range(90)])
    offline = converter.convert(x)
    assert np.isfinite(offline).all() and stream.rejected == {}
    np.testing.assert_allclose(online, offline, atol=1e-5)
    # the missing channel is the mean, not a number the adaptation ever saw
    adapted = converter.ckpt.adaptation.apply(x, converter.ckpt.normalizer)
    assert np.isnan(adapted[30:60, 6]).all() and np.isfinite(adapted[60:, 6]).all()
    assert (converter.ckpt.normalizer(adapted)[30:60, 6] == 0).all()
    # an infinite range is still a bad frame
    assert stream.push(10_000 * MS, np.append(x[0, :6], np.inf)) is None
    assert stream.rejected == {"non_finite": 1}
    probs = classifier.probabilities(offline)
    assert np.isfinite(probs).all()


def test_classifier_stream_labels_each_frame_future_frames_late_with_offline_padding():
    cls = FakeClassifier()
    stream = ClassifierStream(cls, min_run=2, min_rep=6)
    phases = [0, 0, 1, 1, 1, 2, 2, 2, 0, 1, 1, 2, 2, 0]
    x = frames_with_phases(phases)
    labels = []
    for i in range(len(x)):
        got = stream.push(i * 50 * MS, x[i], tag="watch")
        assert [lab.stamp_ns for lab in got] == ([] if i < 2 else [(i - 2) * 50 * MS])
        labels += got
    assert stream.pending == 2
    labels += stream.flush()
    assert stream.pending == 0 and stream.flush() == []
    np.testing.assert_array_equal(np.stack(cls.seen), windows(x, 3, 2))
    assert [lab.stamp_ns for lab in labels] == [i * 50 * MS for i in range(len(x))]
    assert [lab.phase for lab in labels] == phases
    assert all(lab.tag == "watch" for lab in labels)
    assert [lab.confidence for lab in labels] == pytest.approx(
        [float(lab.probabilities.max()) for lab in labels])
    # an UP run counts once it has lasted min_run (2) frames: at frames 6 and 12, which are
    # min_rep (6) frames apart
    assert [lab.rep_count for lab in labels] == [0] * 6 + [1] * 6 + [2] * 2
    assert stream.reset_count() == 2 and stream.rep_count == 0


def test_classifier_stream_short_stream_flush_continue_gap_and_bad_frames():
    cls = FakeClassifier()
    stream = ClassifierStream(cls)
    x = frames_with_phases([1, 2, 0, 1, 2, 0, 1, 2])
    assert stream.push(0, x[0]) == []
    labels = stream.flush()                                  # one frame: padded both sides
    np.testing.assert_array_equal(cls.seen[-1], np.repeat(x[:1], 6, 0))
    assert [lab.phase for lab in labels] == [1]
    # the stream goes on after a flush: new frames see their real past
    for i in range(1, 8):
        labels += stream.push(i * 50 * MS, x[i])
    np.testing.assert_array_equal(cls.seen[-1], windows(x, 3, 2)[5])
    # rejected frames change nothing
    assert stream.push(6 * 50 * MS, x[0]) == [] and stream.push(7 * 50 * MS, x[0]) == []
    assert stream.push(8 * 50 * MS, np.full(7, np.inf)) == []
    assert stream.rejected == {"out_of_order": 1, "repeated_stamp": 1, "non_finite": 1}
    # a gap ends the stream: the pending frames are flushed, the window restarts
    got = stream.push(5000 * MS, x[0])
    assert [lab.stamp_ns for lab in got] == [6 * 50 * MS, 7 * 50 * MS]
    assert stream.events["new_stream"] == 1 and stream.pending == 1
    got = stream.flush()
    np.testing.assert_array_equal(cls.seen[-1], np.repeat(x[:1], 6, 0))
    stream.reset()
    assert stream.pending == 0 and stream.push(0, x[0]) == []   # stamps start over


# --- time jumping back: a bag replayed, --loop ------------------------------------------

@pytest.mark.parametrize("uwb_first", [False, True])
def test_a_second_replay_of_a_recording_gives_the_first_replays_frames(uwb_first):
    """A bag played twice (or looped): its stamps start again; the second pass is a new
    stream with the first pass's result, not thousands of out-of-order rejections."""
    from embodied_transfer.squat.real import load_real_csv

    rec = load_real_csv(real_file())
    a = FrameAssembler()
    restarts = []
    a.on_restart = restarts.append
    first = feed_recording(rec, a, uwb_first)
    second = feed_recording(rec, a, uwb_first)
    assert a.events["time_jump_back"] >= 1 and restarts and "jumped back" in restarts[0]
    assert not a.rejected.get("imu_out_of_order") and not a.rejected.get("uwb_out_of_order")
    assert len(second) == len(first)
    np.testing.assert_array_equal(np.stack([f.values for f in second]),
                                  np.stack([f.values for f in first]))


def test_small_steps_back_stay_rejections_and_streams_restart_on_big_ones():
    a = FrameAssembler(new_stream_gap_s=1.0)
    stream_20hz(a, 3.0)
    assert imu(a, 2000 * MS) == [] and a.rejected == {"imu_out_of_order": 1}   # 0.95 s back
    stream_20hz(a, 1.0, start=0)                                                # 2.95 s back
    assert a.events["time_jump_back"] == 1 and a.rejected == {"imu_out_of_order": 1}
    conv = FakeConverter()
    s = ConverterStream(conv)
    x = np.ones((30, 7), np.float32)
    for i in range(30):
        s.push(i * 50 * MS, x[i])
    assert s.push(0, x[0]) is not None and s.events == {"time_jump_back": 1}
    np.testing.assert_array_equal(conv.seen[-1][0], np.repeat(x[:1], 4, 0))   # a new window


def test_classifier_stream_labels_a_replay_as_it_labelled_the_first_pass(one_thread):
    x = np.random.default_rng(2).normal(size=(80, 7)).astype(np.float32)
    _, classifier = small_models(x)
    stream = ClassifierStream(classifier)
    first = [lab for i in range(80) for lab in stream.push(i * 50 * MS, x[i])]
    second = [lab for i in range(80) for lab in stream.push(i * 50 * MS, x[i])] + stream.flush()
    assert stream.events["time_jump_back"] == 1 and not stream.rejected
    tail, again = second[:-80], second[-80:]       # the first pass's tail came on the jump
    assert [lab.stamp_ns for lab in again] == [i * 50 * MS for i in range(80)]
    np.testing.assert_array_equal([lab.phase for lab in again],
                                  [lab.phase for lab in first + tail])


def test_mirroring_a_converter_stream_midway_is_exact(one_thread):
    """mirror_uwb() after k frames, then mirrored ranges: the outputs from there on equal
    those of a stream fed the mirrored ranges from the start."""
    rng = np.random.default_rng(4)
    x = rng.normal(size=(80, 7)).astype(np.float32) * 1.5 + 0.8
    converter, _ = small_models(x)
    mean0 = float(converter.ckpt.normalizer.mean[6])
    mirrored = x.copy()
    mirrored[:, 6] = 2 * mean0 - x[:, 6]
    reference = ConverterStream(converter)
    expected = np.stack([reference.push(i * 50 * MS, mirrored[i]) for i in range(80)])
    stream = ConverterStream(converter)
    for i in range(30):
        stream.push(i * 50 * MS, x[i])
    stream.mirror_uwb()
    after = np.stack([stream.push(i * 50 * MS, mirrored[i]) for i in range(30, 80)])
    np.testing.assert_allclose(after, expected[30:], atol=1e-4)
    one = ConverterStream(converter)          # the first frame fills the window: still exact
    one.push(0, x[0])
    one.mirror_uwb()
    np.testing.assert_allclose(one.push(50 * MS, mirrored[1]), expected[1], atol=1e-4)


def test_placement_check_tells_a_mirrored_real_recording(one_thread):
    """The shipped converter and classifier: recording_1 as recorded is 'below', with its
    range mirrored 'above', decided within the first minute; IMU-only frames are skipped."""
    from embodied_transfer.squat.online import PlacementCheck
    from embodied_transfer.squat.pipeline import DEFAULT_MODELS, Classifier, Converter
    from embodied_transfer.squat.real import load_real_csv
    from embodied_transfer.squat.selection import uwb_stressed

    converter = Converter.load(DEFAULT_MODELS / "multi_encoder_vae")
    classifier = Classifier.load(DEFAULT_MODELS / "classifier")
    rec = load_real_csv(real_file())
    for recording, expected in ((rec, "below"), (uwb_stressed(rec, "uwb_mirrored"), "above")):
        check = PlacementCheck(converter, classifier)
        decided_at = None
        for f in feed_recording(recording, FrameAssembler()):
            if check.push(f) and decided_at is None:
                decided_at = f.stamp_ns / 1e9 - rec.t[0]
        assert check.placement == expected and decided_at < 60.0, (expected, decided_at)
    skipped = PlacementCheck(converter, classifier)
    frame = feed_recording(rec, FrameAssembler())[0]
    assert skipped.push(frame._replace(imu_only=True)) == "" and skipped.counts == {"down": 0,
                                                                                   "up": 0}
    with pytest.raises(ValueError, match="min_frames"):
        PlacementCheck(converter, classifier, min_frames=0)
