"""Real squat recordings: CSV reader (real files and bad input) and csv2bag round trips."""
from __future__ import annotations

from conftest import require_real_data
from embodied_transfer.squat.data import real_squat_dir

import csv
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from embodied_transfer.ros.bags import BagError, BagReader
from embodied_transfer.core.units import STANDARD_GRAVITY
from embodied_transfer.app.csv2bag import (DEFAULT_START_NS, GAP_NS, TOPICS,
                                             cumulative_repetitions, csv2bag)
from embodied_transfer.squat.errors import SquatDataError
from embodied_transfer.squat.phases import DOWN, STOP, UP, count_repetitions
from embodied_transfer.squat.real import COLUMNS, load_real_csv, read_real_csv

DATA = real_squat_dir()
#: file → (rows, seconds, squats) from the data's README.
README = {"recording_1.csv": (1716, 85.6, 12), "recording_2.csv": (1987, 99.2, 14),
          "recording_3.csv": (1822, 90.9, 14)}
HEADER = ",".join(COLUMNS)


def real_file(name: str) -> Path:
    return require_real_data(DATA / name)


def row(t: float | str, uwb: str = "", accel=(0.01, -0.02, 0.5), gyro=(0.1, 0.2, -0.3),
        phase: str = "Stop", exercise: str = " Squat") -> str:
    return ",".join([str(t), uwb, *map(str, accel), *map(str, gyro), phase, exercise])


def write_csv(path: Path, rows: list[str], header: str = HEADER, eol: str = "\n",
              bom: bool = False) -> Path:
    text = eol.join([header, *rows]) + eol
    path.write_bytes(("\ufeff" if bom else "").encode() + text.encode())
    return path


# -- the real recordings ----------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(README))
def test_real_recording_matches_readme(name):
    path = real_file(name)
    rows, seconds, squats = README[name]
    rec = load_real_csv(path)
    assert rec.source == str(path)
    data_lines = len(path.read_bytes().splitlines()) - 1
    assert data_lines == rows
    assert rec.frames + sum(rec.skipped.values()) == rows
    assert rec.repetitions == squats
    assert rec.duration == pytest.approx(seconds, abs=0.06)
    assert 19.5 < rec.rate_hz < 20.5
    assert 6.0 < rec.uwb_rate_hz < 7.0
    assert np.all(np.diff(rec.t) > 0)
    assert 0.3 < rec.held_imu_rows / rec.frames < 0.45  # the app re-logs IMU samples
    assert np.all(np.diff(rec.lines) > 0) and rec.lines[0] == 2 and rec.lines[-1] <= rows + 1
    n = rec.frames
    assert rec.accel.shape == rec.gyro.shape == (n, 3)
    assert rec.phase.dtype == np.int8 and set(np.unique(rec.phase)) == {STOP, DOWN, UP}
    assert rec.uwb_at_imu.shape == (n,) and rec.uwb.shape == rec.uwb_t.shape
    # Units: user acceleration of a squat is a few m/s^2, never g-sized numbers below 0.5.
    magnitude = np.linalg.norm(rec.accel, axis=1)
    assert 1.0 < magnitude.max() < 15.0 and np.median(magnitude) < 2.0
    assert np.abs(rec.gyro).max() < 5.0
    # UWB: interpolated values hit the accepted readings at their own times, ends held;
    # multipath readings (recording_2 jumps by metres) are kept in uwb but left out.
    ok = ~rec.uwb_multipath
    assert rec.uwb_multipath.shape == rec.uwb.shape
    assert rec.uwb_multipath.sum() == (7 if name == "recording_2.csv" else 0)
    np.testing.assert_array_equal(np.interp(rec.uwb_t[ok], rec.t, rec.uwb_at_imu), rec.uwb[ok])
    assert np.all((rec.uwb > 0.1) & (rec.uwb < 5.0))
    assert rec.uwb_at_imu.max() < 3.0 < rec.uwb.max() or name != "recording_2.csv"
    first = np.searchsorted(rec.t, rec.uwb_t[0])
    assert np.all(rec.uwb_at_imu[:first + 1] == rec.uwb[0])
    # Values are the file's, converted: compare against a plain csv read of kept rows.
    with path.open(newline="", encoding="utf-8-sig") as f:
        raw = list(csv.reader(f))
    for i in (0, n // 2, n - 1):
        cells = raw[rec.lines[i] - 1]
        assert rec.t[i] == float(cells[0])
        np.testing.assert_allclose(rec.accel[i], -np.array(cells[2:5], float) * STANDARD_GRAVITY)
        np.testing.assert_array_equal(rec.gyro[i], np.array(cells[5:8], float))


def test_real_recordings_load_fast():
    paths = [real_file(name) for name in sorted(README)]
    start = time.perf_counter()
    recordings = [rec for path in paths for rec in read_real_csv(path)]
    assert time.perf_counter() - start < 1.0
    assert [r.frames for r in recordings] == [README[p.name][0] for p in paths]


# -- reader rules on small files ----------------------------------------------------------


def test_repeated_timestamp_rows_merge_and_are_counted(tmp_path):
    path = write_csv(tmp_path / "rep.csv", [
        row(0.1, phase="Down"),
        row(0.1, uwb="0.5 m", phase="Down"),            # merged: UWB taken over
        row(0.2, uwb="0.6 m", phase="Down"),
        row(0.2, uwb="0.7 m", phase="Down"),            # merged: UWB conflict, first wins
        row(0.2, accel=(9, 9, 9), phase="Up"),          # merged: IMU and phase conflict
        "",                                             # blank line
        row(0.3, uwb="80 cm", phase="Up"),
    ])
    rec = load_real_csv(path)
    assert rec.t.tolist() == [0.1, 0.2, 0.3]
    assert rec.lines.tolist() == [2, 4, 8]
    assert rec.uwb_t.tolist() == [0.1, 0.2, 0.3]
    assert rec.uwb.tolist() == pytest.approx([0.5, 0.6, 0.8])
    assert rec.phase.tolist() == [DOWN, DOWN, UP]
    np.testing.assert_allclose(rec.accel[1], -np.array([0.01, -0.02, 0.5]) * STANDARD_GRAVITY)
    assert rec.skipped == {"repeated_timestamp": 3, "blank_line": 1}
    assert rec.conflicts == {"uwb": 1, "imu": 1, "phase": 1}
    assert rec.frames + sum(rec.skipped.values()) == 7
    assert rec.repetitions == 1


def test_a_recording_without_uwb_is_read_with_uwb_missing(tmp_path):
    """A watch without a UWB phone: no readings, UWB NaN at every IMU frame (the IMU-only
    path scores it); each recording of a file on its own."""
    from embodied_transfer.squat.signals import real_recording

    path = write_csv(tmp_path / "watch_only.csv", [GOOD, row(0.1), row(0.0), row(0.1)])
    first, second = read_real_csv(path)
    assert first.uwb.size == 1 and second.uwb.size == 0 and second.uwb_t.size == 0
    assert np.isnan(second.uwb_at_imu).all() and second.uwb_at_imu.shape == second.t.shape
    x, _ = real_recording(second)
    assert np.isnan(x[:, 6]).all() and np.isfinite(x[:, :6]).all()


def test_uwb_interpolation_holds_the_ends(tmp_path):
    path = write_csv(tmp_path / "interp.csv", [
        row(0.0), row(1.0, uwb="1 m"), row(2.0), row(3.0, uwb="3000 mm"), row(4.0)])
    rec = load_real_csv(path)
    assert rec.uwb_at_imu.tolist() == [1.0, 1.0, 2.0, 3.0, 3.0]
    assert rec.uwb_t.tolist() == [1.0, 3.0]


def test_timestamp_restart_splits_recordings(tmp_path):
    path = write_csv(tmp_path / "two.csv", [
        row(0.05, "1 m", phase="Down"), row(0.10, phase="Up"), row(0.15),
        row(0.02, "2 m"), row(0.07, phase="Down"), row(0.12, "2.5 m", phase="Up"),
        row(0.17, phase="Down"), row(0.22, phase="Up")])
    first, second = read_real_csv(path)
    assert (first.source, second.source) == (f"{path}#1", f"{path}#2")
    assert first.lines.tolist() == [2, 3, 4] and second.lines.tolist() == [5, 6, 7, 8, 9]
    assert second.t[0] == 0.02 and second.duration == pytest.approx(0.20)
    assert (first.repetitions, second.repetitions) == (1, 2)
    with pytest.raises(SquatDataError, match=rf"{re.escape(str(path))}: holds 2 recordings "
                                             r"\(timestamp restarts at line 5\)"):
        load_real_csv(path)


def test_crlf_and_bom_are_accepted(tmp_path):
    rows = [row(0.0, "0.5 m"), row(0.05, phase="Down"), row(0.1, "0.6 m", phase="Up")]
    plain = load_real_csv(write_csv(tmp_path / "lf.csv", rows))
    windows = load_real_csv(write_csv(tmp_path / "crlf.csv", rows, eol="\r\n", bom=True))
    for name, value in plain.as_arrays().items():
        np.testing.assert_array_equal(getattr(windows, name), value, err_msg=name)
    assert windows.phase.tolist() == [STOP, DOWN, UP]


GOOD = row(0.0, "0.5 m")
BAD_INPUT = {
    "header": ([GOOD], HEADER.replace("gyro_z", "gyro_w"), 1, "unexpected header"),
    "header_only": ([], HEADER, 1, "no data rows after the header"),
    "missing_column": ([GOOD, row(0.1).rsplit(",", 1)[0]], HEADER, 3,
                       "expected 10 columns, got 9"),
    "extra_column": ([GOOD, row(0.1) + ",x"], HEADER, 3, "expected 10 columns, got 11"),
    "not_a_number": ([GOOD, row(0.1, accel=(0, "abc", 0))], HEADER, 3,
                     "accel_y is not a number: 'abc'"),
    "empty_number": ([GOOD, row(0.1, gyro=(0, "", 0))], HEADER, 3, "gyro_y is not a number: ''"),
    "nan": ([GOOD, row(0.1, gyro=(0, 0, "nan"))], HEADER, 3, "gyro_z is not finite: 'nan'"),
    "inf_timestamp": ([GOOD, row("inf")], HEADER, 3, "timestamp is not finite: 'inf'"),
    "uwb_unit": ([GOOD, row(0.1, "2 ft")], HEADER, 3, "UWB unit 'ft' is not one of m, cm, mm"),
    "uwb_no_unit": ([GOOD, row(0.1, "0.67")], HEADER, 3, "UWB has no unit: '0.67'"),
    "uwb_not_a_number": ([GOOD, row(0.1, "near m")], HEADER, 3, "UWB is not a number: 'near'"),
    "uwb_negative": ([GOOD, row(0.1, "-0.2 m")], HEADER, 3, "UWB range is negative"),
    "phase": ([GOOD, row(0.1, phase="Sideways")], HEADER, 3,
              "updown: unknown squat phase label 'Sideways'"),
    "exercise": ([GOOD, row(0.1, exercise=" Lunge")], HEADER, 3,
                 "ExcerciseType is ' Lunge', expected 'Squat'"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUT))
def test_bad_input_names_file_and_line(tmp_path, case):
    rows, header, line, message = BAD_INPUT[case]
    path = write_csv(tmp_path / f"{case}.csv", rows, header=header, eol="\r\n")
    with pytest.raises(SquatDataError, match=rf"^{re.escape(str(path))}:{line}: .*{message}"):
        read_real_csv(path)


def test_empty_missing_and_binary_files(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(SquatDataError, match=rf"^{re.escape(str(empty))}:1: empty file"):
        read_real_csv(empty)
    missing = tmp_path / "missing.csv"
    with pytest.raises(SquatDataError, match=rf"^{re.escape(str(missing))}: no such file"):
        read_real_csv(missing)
    with pytest.raises(SquatDataError, match="cannot read"):
        read_real_csv(tmp_path)
    binary = tmp_path / "binary.csv"
    binary.write_bytes(f"{HEADER}\n{GOOD}\n".encode() + b"\xff\xfe,\n")
    with pytest.raises(SquatDataError, match=rf"^{re.escape(str(binary))}:3: not UTF-8"):
        read_real_csv(binary)


def test_reader_does_not_import_rclpy():
    code = ("import sys, embodied_transfer.squat.real; "
            "sys.exit('rclpy' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0


def test_cumulative_repetitions_agree_with_count_repetitions():
    rng = np.random.default_rng(0)
    for _ in range(200):
        phase = rng.integers(0, 3, rng.integers(0, 12)).astype(np.int8)
        reps = cumulative_repetitions(phase)
        assert reps.tolist() == [count_repetitions(phase[:i + 1]) for i in range(phase.size)]


# -- csv2bag ------------------------------------------------------------------------------


def read_bag(path: Path) -> tuple[dict[str, int], dict[str, list], dict[str, list[int]]]:
    """(message counts, deserialized messages per topic, bag times per topic)."""
    from embodied_transfer_interfaces.msg import SquatPhase
    from rclpy.serialization import deserialize_message
    from sensor_msgs.msg import Imu, Range

    classes = {"/imu": Imu, "/uwb/range": Range, "/squat/phase_truth": SquatPhase}
    msgs: dict[str, list] = {t: [] for t in classes}
    times: dict[str, list[int]] = {t: [] for t in classes}
    with BagReader(path) as bag:
        assert bag.topics == TOPICS
        counts = bag.message_counts
        for m in bag.messages():
            assert len(m.data) % 4 == 0
            msgs[m.topic].append(deserialize_message(m.data, classes[m.topic]))
            times[m.topic].append(m.timestamp)
    return counts, msgs, times


def stamp_ns(msg) -> int:
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
def test_csv2bag_round_trip_small(tmp_path, storage):
    from sensor_msgs.msg import Range

    one = write_csv(tmp_path / "one.csv", [
        row(0.5, "0.8 m", accel=(0.1, 0.2, 0.3), gyro=(1, 2, 3)), row(0.6, phase="Down"),
        row(0.6, "0.9 m", phase="Down"), row(0.7, phase="Up"), row(0.8, "0.05 m", phase="Up")])
    two = write_csv(tmp_path / "two.csv", [
        row(0.25, "100 m", phase="Down"), row(0.5, phase="Up"),
        row(0.1, "1.5 m"), row(0.2, phase="Down"), row(0.3, phase="Up")], eol="\r\n", bom=True)
    start = DEFAULT_START_NS + 123
    report = csv2bag([one, str(two)], tmp_path / "bag", storage=storage, start_ns=start,
                     frame_id="wrist", uwb_frame_id="phone")
    assert [r.source for r in report.recordings] == [str(one), f"{two}#1", f"{two}#2"]
    assert [r.frames for r in report.recordings] == [4, 2, 3]
    assert [r.uwb_readings for r in report.recordings] == [3, 1, 1]
    assert [r.repetitions for r in report.recordings] == [1, 1, 1]
    assert report.recordings[0].skipped == {"repeated_timestamp": 1}
    assert [r.uwb_out_of_limits for r in report.recordings] == [1, 1, 0]
    # Laid end to end: first row of each recording 2 s after the last row of the one before.
    ns = [(r.first_ns, r.last_ns) for r in report.recordings]
    assert ns[0] == (start + 500_000_000, start + 800_000_000)
    assert ns[1] == (ns[0][1] + GAP_NS, ns[0][1] + GAP_NS + 250_000_000)
    assert ns[2] == (ns[1][1] + GAP_NS, ns[1][1] + GAP_NS + 200_000_000)
    summary = report.summary()
    assert f"{two}#2" in summary and re.search(r"total\s+9\s+5\b", summary)
    assert "repeated_timestamp 1" in summary and "sent as -inf/+inf: 2" in summary

    counts, msgs, times = read_bag(tmp_path / "bag")
    assert counts == {"/imu": 9, "/uwb/range": 5, "/squat/phase_truth": 9}
    for topic in TOPICS:
        assert [stamp_ns(m) for m in msgs[topic]] == times[topic]
    imu_times = times["/imu"]
    assert imu_times == times["/squat/phase_truth"]
    assert imu_times[:4] == [start + t for t in (500_000_000, 600_000_000, 700_000_000,
                                                 800_000_000)]
    assert imu_times[4] == ns[1][0] and imu_times[6] == ns[2][0]
    first = msgs["/imu"][0]
    assert first.header.frame_id == "wrist"
    assert [first.linear_acceleration.x, first.linear_acceleration.y,
            first.linear_acceleration.z] == pytest.approx(
                [-0.1 * STANDARD_GRAVITY, -0.2 * STANDARD_GRAVITY, -0.3 * STANDARD_GRAVITY])
    assert [first.angular_velocity.x, first.angular_velocity.y,
            first.angular_velocity.z] == [1.0, 2.0, 3.0]
    assert first.orientation_covariance[0] == -1.0
    ranges = msgs["/uwb/range"]
    assert [r.range for r in ranges] == pytest.approx([0.8, 0.9, -np.inf, np.inf, 1.5])
    assert times["/uwb/range"][:2] == imu_times[:2]  # merged row's UWB at the kept row's time
    assert {(r.header.frame_id, r.radiation_type, r.min_range, r.max_range) for r in ranges} \
        == {("phone", Range.INFRARED, float(np.float32(0.1)), 50.0)}  # float32 fields
    phases = msgs["/squat/phase_truth"]
    assert [p.phase for p in phases] == [STOP, DOWN, UP, UP, DOWN, UP, STOP, DOWN, UP]
    assert [p.rep_count for p in phases] == [0, 0, 1, 1, 0, 1, 0, 0, 1]
    assert {(p.confidence, p.header.frame_id) for p in phases} == {(1.0, "wrist")}


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
def test_csv2bag_real_recording(tmp_path, storage):
    path = real_file("recording_1.csv")
    rec = load_real_csv(path)
    report = csv2bag([path], tmp_path / "bag", storage=storage)
    assert report.frames == 1716 and report.repetitions == 12
    counts, msgs, times = read_bag(tmp_path / "bag")
    assert counts == {"/imu": rec.frames, "/uwb/range": rec.uwb.size,
                      "/squat/phase_truth": rec.frames}
    expected = DEFAULT_START_NS + np.round(rec.t * 1e9).astype(np.int64)
    assert times["/imu"] == expected.tolist() == times["/squat/phase_truth"]
    assert times["/uwb/range"] == (DEFAULT_START_NS
                                   + np.round(rec.uwb_t * 1e9).astype(np.int64)).tolist()
    for topic in TOPICS:
        assert [stamp_ns(m) for m in msgs[topic]] == times[topic]
    phases = msgs["/squat/phase_truth"]
    assert [p.phase for p in phases] == rec.phase.tolist()
    assert phases[-1].rep_count == 12
    assert max(p.rep_count for p in phases) == 12
    accel = np.array([[m.linear_acceleration.x, m.linear_acceleration.y,
                       m.linear_acceleration.z] for m in msgs["/imu"]])
    np.testing.assert_array_equal(accel, rec.accel)
    np.testing.assert_allclose([r.range for r in msgs["/uwb/range"]], rec.uwb, rtol=1e-6)


def test_csv2bag_errors(tmp_path):
    with pytest.raises(SquatDataError, match="no CSV files given"):
        csv2bag([], tmp_path / "none")
    bad = write_csv(tmp_path / "bad.csv", [GOOD, row(0.1, phase="Sideways")])
    good = write_csv(tmp_path / "good.csv", [GOOD])
    with pytest.raises(SquatDataError, match=rf"{re.escape(str(bad))}:3: "):
        csv2bag([good, bad], tmp_path / "out")
    assert not (tmp_path / "out").exists()  # nothing written when a CSV is bad
    (tmp_path / "taken").mkdir()
    with pytest.raises(BagError, match="already exists"):
        csv2bag([good], tmp_path / "taken")
    with pytest.raises(BagError, match="unknown storage"):
        csv2bag([good], tmp_path / "zip", storage="zip")
