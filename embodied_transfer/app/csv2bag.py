"""Convert real squat recordings (CSV, see :mod:`embodied_transfer.squat.real`) to a rosbag2 bag.

Topics, one message per kept CSV row unless said otherwise:

* ``/imu`` — ``sensor_msgs/msg/Imu``: linear_acceleration [m/s^2] (user acceleration,
  gravity removed, as the watch's CSV holds it: replay it into ``real2sim_converter`` with
  ``imu_includes_gravity: false``; :data:`REPLAY_HINT`) and angular_velocity [rad/s];
  orientation unknown (orientation_covariance[0] = -1, REP-145); covariances all zero
  ("unknown").
* ``/uwb/range`` — ``sensor_msgs/msg/Range``, only on rows that carried a new UWB range;
  omnidirectional (field_of_view 2*pi), radiation type INFRARED (electromagnetic
  time-of-flight, the nearest Range.msg has to a radio; see ``numpy_to_range``). A reading
  outside [min_range, max_range] is sent as -inf / +inf (REP-117) and counted.
* ``/squat/phase_truth`` — ``embodied_transfer_interfaces/msg/SquatPhase``: the row's label,
  confidence 1.0, rep_count = completed Down→Up cycles up to and including that row (as
  :func:`~embodied_transfer.squat.phases.count_repetitions` counts them on the rows so far).

Bag time and header.stamp are identical: ``start_ns`` + the row's timestamp. Recordings are
laid end to end in the order given, the first row of each one :data:`GAP_NS` after the last
row of the one before. Payloads are CDR, padded to a multiple of 4 bytes as Fast DDS
delivers them (and so as ``ros2 bag record`` stores them).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from embodied_transfer.ros.bags import BagWriter
from embodied_transfer.squat.errors import SquatDataError
from embodied_transfer.squat.phases import DOWN, STOP, UP
from embodied_transfer.squat.real import RealRecording, read_real_csv

IMU_TOPIC = "/imu"
UWB_TOPIC = "/uwb/range"
PHASE_TOPIC = "/squat/phase_truth"
TOPICS: dict[str, str] = {
    IMU_TOPIC: "sensor_msgs/msg/Imu",
    UWB_TOPIC: "sensor_msgs/msg/Range",
    PHASE_TOPIC: "embodied_transfer_interfaces/msg/SquatPhase",
}
#: Bag time of timestamp 0 of the first recording (2023-11-14T22:13:20Z).
DEFAULT_START_NS = 1_700_000_000 * 1_000_000_000
#: Time from the last row of one recording to the first row of the next.
GAP_NS = 2_000_000_000
UWB_MIN_RANGE = 0.1
UWB_MAX_RANGE = 50.0
#: How to replay such a bag: its IMU holds user acceleration, not REP-145 specific force.
REPLAY_HINT = ("the IMU holds user acceleration (gravity removed): replay with "
               "real2sim_converter's imu_includes_gravity false, e.g. a params file with "
               "'/**/real2sim_converter: {ros__parameters: {imu_includes_gravity: false}}'")


@dataclass(frozen=True)
class RecordingReport:
    """What was written for one recording."""

    source: str
    frames: int
    uwb_readings: int
    duration: float  #: s
    repetitions: int
    skipped: dict[str, int] = field(default_factory=dict)
    uwb_out_of_limits: int = 0  #: readings sent as -inf / +inf
    first_ns: int = 0  #: bag time of the first row
    last_ns: int = 0  #: bag time of the last row


@dataclass(frozen=True)
class Csv2BagReport:
    """The bag written and one :class:`RecordingReport` per recording, in bag order."""

    out: Path
    storage: str
    recordings: list[RecordingReport]

    @property
    def frames(self) -> int:
        return sum(r.frames for r in self.recordings)

    @property
    def uwb_readings(self) -> int:
        return sum(r.uwb_readings for r in self.recordings)

    @property
    def repetitions(self) -> int:
        return sum(r.repetitions for r in self.recordings)

    def summary(self) -> str:
        """A small text table, one line per recording and a total, then :data:`REPLAY_HINT`."""
        def skipped(counts: dict[str, int]) -> str:
            return ", ".join(f"{k} {v}" for k, v in sorted(counts.items()) if v) or "-"

        rows = [(r.source, str(r.frames), str(r.uwb_readings), f"{r.duration:.1f}",
                 str(r.repetitions), skipped(r.skipped)) for r in self.recordings]
        total_skipped: dict[str, int] = {}
        for r in self.recordings:
            for k, v in r.skipped.items():
                total_skipped[k] = total_skipped.get(k, 0) + v
        rows.append(("total", str(self.frames), str(self.uwb_readings),
                     f"{sum(r.duration for r in self.recordings):.1f}", str(self.repetitions),
                     skipped(total_skipped)))
        head = ("recording", "frames", "uwb", "seconds", "squats", "skipped")
        widths = [max(len(row[i]) for row in [head, *rows]) for i in range(len(head))]

        def fmt(row: tuple[str, ...]) -> str:
            cells = [row[0].ljust(widths[0])]
            cells += [cell.rjust(w) for cell, w in zip(row[1:5], widths[1:5])]
            return "  ".join([*cells, row[5]])
        out_of_limits = sum(r.uwb_out_of_limits for r in self.recordings)
        lines = [fmt(head), *(fmt(row) for row in rows),
                 f"bag: {self.out} ({self.storage}), topics: {', '.join(TOPICS)}"]
        if out_of_limits:
            lines.append(f"UWB readings outside [{UWB_MIN_RANGE}, {UWB_MAX_RANGE}] m sent as "
                         f"-inf/+inf: {out_of_limits}")
        lines.append(REPLAY_HINT)
        return "\n".join(lines)


def cumulative_repetitions(phase: np.ndarray) -> np.ndarray:
    """(N,) uint32: completed Down→Up cycles in ``phase[:i + 1]`` at each row i.

    The same rule as ``count_repetitions``: a cycle counts at the first UP row after a DOWN
    run (STOP rows between are ignored).
    """
    phase = np.asarray(phase)
    moving = np.flatnonzero(phase != STOP)
    values = phase[moving]
    completes = np.zeros(phase.size, dtype=np.uint32)
    completes[moving[1:]] = (values[1:] == UP) & (values[:-1] == DOWN)
    return np.cumsum(completes, dtype=np.uint32)


def _padded(data: bytes) -> bytes:
    return data + bytes(-len(data) % 4)


def _write_recording(bag: BagWriter, rec: RealRecording, stamps: np.ndarray, frame_id: str,
                     uwb_frame_id: str) -> int:
    """Write one recording's messages at ``stamps`` (ns); returns UWB readings out of limits."""
    from embodied_transfer_interfaces.msg import SquatPhase
    from rclpy.serialization import serialize_message
    from sensor_msgs.msg import Range

    from embodied_transfer.ros.conversions import make_header, numpy_to_imu, numpy_to_range

    uwb_rows = np.searchsorted(rec.t, rec.uwb_t)
    if not np.array_equal(rec.t[uwb_rows], rec.uwb_t):
        raise SquatDataError(f"{rec.source}: UWB times are not row times")
    uwb_at_row = dict(zip(uwb_rows.tolist(), rec.uwb.tolist()))
    reps = cumulative_repetitions(rec.phase).tolist()
    out_of_limits = 0
    for i, stamp in enumerate(stamps.tolist()):
        imu = numpy_to_imu(rec.accel[i], rec.gyro[i], header=make_header(stamp, frame_id))
        bag.write(IMU_TOPIC, stamp, _padded(serialize_message(imu)))
        if i in uwb_at_row:
            value = uwb_at_row[i]
            if not UWB_MIN_RANGE <= value <= UWB_MAX_RANGE:
                value = -math.inf if value < UWB_MIN_RANGE else math.inf
                out_of_limits += 1
            rng = numpy_to_range(value, make_header(stamp, uwb_frame_id),
                                 radiation_type=Range.INFRARED, field_of_view=2.0 * math.pi,
                                 min_range=UWB_MIN_RANGE, max_range=UWB_MAX_RANGE)
            bag.write(UWB_TOPIC, stamp, _padded(serialize_message(rng)))
        phase = SquatPhase(header=make_header(stamp, frame_id), phase=int(rec.phase[i]),
                           confidence=1.0, rep_count=reps[i])
        bag.write(PHASE_TOPIC, stamp, _padded(serialize_message(phase)))
    return out_of_limits


def csv2bag(csv_paths: list[str | Path], out: str | Path, storage: str = "sqlite3",
            frame_id: str = "watch_imu", uwb_frame_id: str = "uwb_phone",
            start_ns: int = DEFAULT_START_NS) -> Csv2BagReport:
    """Write every recording of ``csv_paths`` (in order) to one new bag at ``out``.

    All CSV files are read before the bag is created, so a bad file leaves no bag behind.
    Raises :class:`SquatDataError` for bad CSV input, ``BagError`` for a bad output path or
    storage.
    """
    if not csv_paths:
        raise SquatDataError("no CSV files given")
    recordings = [rec for path in csv_paths for rec in read_real_csv(path)]
    reports: list[RecordingReport] = []
    offset_ns = int(start_ns)
    with BagWriter(out, storage) as bag:
        for topic, msgtype in TOPICS.items():
            bag.add_topic(topic, msgtype)
        for rec in recordings:
            rel = np.round(rec.t * 1e9).astype(np.int64)
            if np.any(np.diff(rel) <= 0):
                raise SquatDataError(f"{rec.source}: row times closer than 1 ns")
            if reports:
                offset_ns = reports[-1].last_ns + GAP_NS - int(rel[0])
            stamps = offset_ns + rel
            out_of_limits = _write_recording(bag, rec, stamps, frame_id, uwb_frame_id)
            reports.append(RecordingReport(
                source=rec.source, frames=rec.frames, uwb_readings=int(rec.uwb.size),
                duration=rec.duration, repetitions=rec.repetitions, skipped=dict(rec.skipped),
                uwb_out_of_limits=out_of_limits, first_ns=int(stamps[0]),
                last_ns=int(stamps[-1])))
    return Csv2BagReport(out=Path(out), storage=storage, recordings=reports)
