"""Read the real squat recordings (``shared/data/real_squat/*.csv``) into numpy arrays.

Format (one header line, then one row per logged sample, about 20 rows a second)::

    timestamp,UWB,accel_x,accel_y,accel_z,gyro_x,gyro_y,gyro_z,updown,ExcerciseType
    0.171177983,0.6697363257408142 m,0.0081587,0.0264706,-0.0323897,0.1460813,...,Stop, Squat

``timestamp`` is seconds since the recording started (kept as is, not shifted to 0); a
file may hold several recordings, one after the other: a new one starts where the timestamp
decreases. ``UWB`` is the phone–watch range with a unit (``m``; ``cm`` and ``mm`` are also
accepted and converted), empty on rows with no new range. Accelerations are watch user
acceleration in g (gravity removed) as CoreMotion reports it, and are returned in m/s^2 with
the sign of REP-145 user acceleration (the kinematic acceleration; CoreMotion's axes read
-1 g for a device lying face up, so its userAcceleration is the negative of it); gyro is
rad/s, right-handed, in the same Apple Watch frame the simulator's watch uses; ``updown`` is
Stop/Down/Up; ``ExcerciseType`` must be Squat (surrounding spaces ignored). A UTF-8 BOM and
CRLF line endings are accepted.

Skip rule — a row is dropped only for one of these reasons, each counted in
:attr:`RealRecording.skipped`, so that kept + sum(skipped) == data lines:

* ``repeated_timestamp``: the row's timestamp equals the previous kept row's exactly. It is
  merged into that row: its UWB reading is taken over when the kept row has none; where
  the two rows differ (UWB, IMU values or phase label) the first row's values win and the
  difference is counted in :attr:`RealRecording.conflicts` under ``uwb``, ``imu``,
  ``phase``.
* ``blank_line``: an empty line.

Everything else that is wrong (wrong header, missing or extra columns, a non-numeric,
NaN or infinite value, a UWB cell without a known unit or with a negative range, an
unknown phase label, another exercise type, an empty file, a header without rows) raises
:class:`SquatDataError` naming the file and line. A recording whose UWB column is empty (a
watch without a UWB phone) is read with no UWB readings and ``uwb_at_imu`` all NaN: the
IMU-only path (:mod:`embodied_transfer.squat.placement`) takes it.

UWB readings that jump by metres from the recent ones (multipath, see
:mod:`~.range_gate`) are kept in ``uwb`` as logged, flagged in ``uwb_multipath``, and left
out of ``uwb_at_imu``, as the live converter leaves them out.

Note on the published recordings: no timestamp repeats exactly, but 36-40 % of the rows
repeat the previous row's six IMU values (see :attr:`RealRecording.held_imu_rows`), most of
them logged 20-300 µs after it (often right after a row carrying a UWB range): the app
writes a row per event and holds the last IMU sample. Such rows are kept, as they carry the
labels the dataset was published with; distinct IMU samples come at about 12 Hz.
"""
from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from embodied_transfer.core.units import g_to_mps2
from embodied_transfer.squat.errors import SquatDataError
from embodied_transfer.squat.phases import count_repetitions, phase_from_name
from embodied_transfer.squat.range_gate import MAX_JUMP_M, multipath_mask

COLUMNS: tuple[str, ...] = ("timestamp", "UWB", "accel_x", "accel_y", "accel_z",
                            "gyro_x", "gyro_y", "gyro_z", "updown", "ExcerciseType")
_IMU_COLUMNS = COLUMNS[2:8]
EXERCISE = "Squat"
#: Accepted UWB units and their factor to metres.
UWB_UNITS: dict[str, float] = {"m": 1.0, "cm": 0.01, "mm": 0.001}
_UWB_CELL = re.compile(r"\s*(?P<value>\S*?)\s*(?P<unit>[^\s\d.+-]*)\s*")


@dataclass
class RealRecording:
    """One recording: N kept rows (IMU frames) and the M rows among them with a UWB range."""

    source: str  #: file path, with ``#k`` (1-based) when the file held several recordings
    t: np.ndarray  #: (N,) float64 s since the recording started, strictly increasing
    accel: np.ndarray  #: (N, 3) float64 m/s^2, user acceleration (gravity removed), watch frame
    gyro: np.ndarray  #: (N, 3) float64 rad/s, watch frame
    uwb_t: np.ndarray  #: (M,) float64 s, times of the rows that carried a new UWB range
    uwb: np.ndarray  #: (M,) float64 m
    uwb_at_imu: np.ndarray  #: (N,) float64 m, accepted UWB interpolated to ``t`` (ends held;
                            #: NaN: none)
    phase: np.ndarray  #: (N,) int8 STOP/DOWN/UP
    lines: np.ndarray  #: (N,) int64 1-based CSV line of each kept row
    skipped: dict[str, int] = field(default_factory=dict)  #: dropped lines per reason
    conflicts: dict[str, int] = field(default_factory=dict)  #: merged rows whose values differed
    #: (M,) bool, readings rejected as multipath (:class:`~.range_gate.RangeGate`); None: none
    uwb_multipath: np.ndarray | None = None

    @property
    def frames(self) -> int:
        return int(self.t.size)

    @property
    def duration(self) -> float:
        """Seconds from the first to the last kept row."""
        return float(self.t[-1] - self.t[0]) if self.t.size else 0.0

    @property
    def rate_hz(self) -> float:
        """Mean row rate."""
        return (self.t.size - 1) / self.duration if self.duration > 0 else 0.0

    @property
    def uwb_rate_hz(self) -> float:
        """Mean rate of new UWB ranges."""
        return self.uwb.size / self.duration if self.duration > 0 else 0.0

    @property
    def repetitions(self) -> int:
        """Completed Down→Up cycles in the labels."""
        return count_repetitions(self.phase)

    @property
    def held_imu_rows(self) -> int:
        """Rows whose six IMU values equal the previous row's (a re-logged sample)."""
        imu = np.hstack([self.accel, self.gyro])
        return int(np.all(imu[1:] == imu[:-1], axis=1).sum())

    def as_arrays(self) -> dict[str, np.ndarray]:
        """The per-row and per-UWB arrays by field name."""
        return {name: getattr(self, name) for name in
                ("t", "accel", "gyro", "uwb_t", "uwb", "uwb_at_imu", "phase", "lines")}


def _error(path: Path, line: int, message: str) -> SquatDataError:
    return SquatDataError(f"{path}:{line}: {message}")


def _number(cell: str, column: str, path: Path, line: int) -> float:
    try:
        value = float(cell)
    except ValueError:
        raise _error(path, line, f"{column} is not a number: {cell!r}") from None
    if not math.isfinite(value):
        raise _error(path, line, f"{column} is not finite: {cell!r}")
    return value


def _uwb(cell: str, path: Path, line: int) -> float | None:
    """The UWB cell in metres, or None when empty."""
    if not cell.strip():
        return None
    match = _UWB_CELL.fullmatch(cell)
    value, unit = (match["value"], match["unit"]) if match else (cell, "")
    if not value:
        raise _error(path, line, f"UWB is not a number with a unit: {cell!r}")
    if not unit:
        raise _error(path, line, f"UWB has no unit: {cell!r} (expected e.g. '0.67 m')")
    if unit not in UWB_UNITS:
        raise _error(path, line, f"UWB unit {unit!r} is not one of {', '.join(UWB_UNITS)}: "
                                 f"{cell!r}")
    metres = _number(value, "UWB", path, line) * UWB_UNITS[unit]
    if metres < 0:
        raise _error(path, line, f"UWB range is negative: {cell!r}")
    return metres


class _Builder:
    """Rows of one recording being read."""

    def __init__(self) -> None:
        self.t: list[float] = []
        self.imu: list[list[float]] = []
        self.uwb: list[float | None] = []
        self.phase: list[int] = []
        self.lines: list[int] = []
        self.skipped: dict[str, int] = {}
        self.conflicts: dict[str, int] = {}

    def count(self, table: dict[str, int], reason: str) -> None:
        table[reason] = table.get(reason, 0) + 1

    def add(self, t: float, uwb: float | None, imu: list[float], phase: int, line: int) -> None:
        if self.t and t == self.t[-1]:
            self.count(self.skipped, "repeated_timestamp")
            if uwb is not None:
                if self.uwb[-1] is None:
                    self.uwb[-1] = uwb
                elif self.uwb[-1] != uwb:
                    self.count(self.conflicts, "uwb")
            if imu != self.imu[-1]:
                self.count(self.conflicts, "imu")
            if phase != self.phase[-1]:
                self.count(self.conflicts, "phase")
            return
        self.t.append(t)
        self.imu.append(imu)
        self.uwb.append(uwb)
        self.phase.append(phase)
        self.lines.append(line)

    def build(self, source: str, max_uwb_jump_m: float) -> RealRecording:
        t = np.array(self.t, dtype=np.float64)
        imu = np.array(self.imu, dtype=np.float64).reshape(-1, 6)
        has_uwb = np.array([u is not None for u in self.uwb], dtype=bool)
        uwb_t = t[has_uwb]
        uwb = np.array([u for u in self.uwb if u is not None], dtype=np.float64)
        multipath = multipath_mask(uwb, max_uwb_jump_m)
        ok = ~multipath
        at_imu = (np.interp(t, uwb_t[ok], uwb[ok]) if ok.any()
                  else np.full(t.shape, np.nan))
        return RealRecording(
            source=source, t=t,
            accel=np.asarray(-g_to_mps2(imu[:, :3]), dtype=np.float64), gyro=imu[:, 3:].copy(),
            uwb_t=uwb_t, uwb=uwb, uwb_at_imu=at_imu,
            phase=np.array(self.phase, dtype=np.int8),
            lines=np.array(self.lines, dtype=np.int64),
            skipped=dict(self.skipped), conflicts=dict(self.conflicts), uwb_multipath=multipath)


def _read_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise SquatDataError(f"{path}: no such file") from None
    except OSError as exc:
        raise SquatDataError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise _error(path, line, "not UTF-8 text") from None


def _check_header(header: list[str] | None, path: Path) -> None:
    if header is None:
        raise _error(path, 1, f"empty file; expected the header {','.join(COLUMNS)}")
    if [h.strip() for h in header] != list(COLUMNS):
        raise _error(path, 1, f"unexpected header {','.join(header)!r}; "
                              f"expected {','.join(COLUMNS)!r}")


def read_real_csv(path: str | Path, max_uwb_jump_m: float = MAX_JUMP_M
                  ) -> list[RealRecording]:
    """All recordings in ``path``, split where the timestamp decreases (see module doc);
    ``max_uwb_jump_m``: the multipath gate's threshold (0: keep every reading)."""
    path = Path(path)
    reader = csv.reader(io.StringIO(_read_text(path), newline=""))
    try:
        _check_header(next(reader, None), path)
        builders: list[_Builder] = []
        pending_blank = 0
        for row in reader:
            line = reader.line_num
            if not row:
                if builders:
                    builders[-1].count(builders[-1].skipped, "blank_line")
                else:
                    pending_blank += 1
                continue
            if len(row) != len(COLUMNS):
                raise _error(path, line, f"expected {len(COLUMNS)} columns, got {len(row)}")
            t = _number(row[0], "timestamp", path, line)
            uwb = _uwb(row[1], path, line)
            imu = [_number(cell, name, path, line) for cell, name in zip(row[2:8], _IMU_COLUMNS)]
            try:
                phase = phase_from_name(row[8])
            except SquatDataError as exc:
                raise _error(path, line, f"updown: {exc}") from None
            if row[9].strip() != EXERCISE:
                raise _error(path, line, f"ExcerciseType is {row[9]!r}, expected {EXERCISE!r}")
            if not builders or t < builders[-1].t[-1]:
                builders.append(_Builder())
                if pending_blank:
                    builders[-1].skipped["blank_line"] = pending_blank
                    pending_blank = 0
            builders[-1].add(t, uwb, imu, phase, line)
    except csv.Error as exc:
        raise _error(path, reader.line_num, f"malformed CSV: {exc}") from None
    if not builders:
        raise _error(path, reader.line_num, "no data rows after the header")
    if len(builders) == 1:
        return [builders[0].build(str(path), max_uwb_jump_m)]
    return [b.build(f"{path}#{k}", max_uwb_jump_m) for k, b in enumerate(builders, start=1)]


def load_real_csv(path: str | Path, max_uwb_jump_m: float = MAX_JUMP_M) -> RealRecording:
    """The one recording in ``path``; raises if the file holds several."""
    recordings = read_real_csv(path, max_uwb_jump_m)
    if len(recordings) > 1:
        starts = ", ".join(str(r.lines[0]) for r in recordings[1:])
        raise SquatDataError(f"{path}: holds {len(recordings)} recordings (timestamp restarts "
                             f"at line {starts}); use read_real_csv")
    return recordings[0]
