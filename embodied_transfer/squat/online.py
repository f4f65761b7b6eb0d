"""Frame-by-frame Real2Sim inference: the offline rules of :mod:`~.pipeline`, one input at a time.

Pure: numpy only, no rclpy (the models are passed in; :class:`ClassifierStream` imports
the pipeline's RepCounter, and so torch, when it is built). The ROS nodes ``real2sim_converter``
and ``squat_phase_classifier`` are thin shells around these classes, so what they publish for
a replayed recording is what :class:`~.pipeline.Pipeline` computes offline for the same file.

:class:`FrameAssembler` — IMU frames + UWB readings → 7-channel frames
    Offline, UWB is interpolated to every IMU time with ``np.interp`` (linear between the
    readings before and after, the first / last reading held outside their span). Online,
    an IMU frame is *held* until that is computable, i.e. until a UWB reading stamped at
    or after it has arrived; it is then emitted with exactly the ``np.interp`` value.
    Rules, all on header stamps (not arrival times):

    * **Bounded wait.** A held frame is released once an accepted IMU frame is stamped more
      than ``max_wait_s`` after it: it is emitted with the last UWB reading held (counted
      in ``events["uwb_stale"]``). The default 1.0 s exceeds the largest UWB gap in the
      real recordings (0.50 s), so none of their frames is stale, but one of recording_2:
      its accepted readings are 1.02 s apart where multipath readings are left out (the
      frame gets the last range held, 3e-5 m from the offline value). A stale frame differs
      from the offline result only if a UWB reading stamped before it arrives later.
    * **Before the first UWB reading** frames are held too (``np.interp`` gives them the
      first reading); if none arrives within ``max_wait_s`` they are emitted **IMU-only**:
      the UWB channel NaN (missing), which the converter leaves out (a watch without a UWB
      phone, or one whose UWB starts late). ``Frame.imu_only`` says so; each such frame
      counts ``events["imu_only"]``.
    * **UWB lost.** A frame whose last UWB reading is more than ``max_uwb_age_s`` older
      than it is emitted IMU-only too, instead of with an ancient range. When readings
      return, frames use them again; every change between the two paths counts
      ``events["mode_switch"]``.
    * **New stream.** An IMU frame stamped more than ``new_stream_gap_s`` after the last
      accepted one starts a new stream: held frames are flushed, UWB readings of the old
      stream are forgotten (so a bag of recordings laid end to end gives each recording
      its offline result). :class:`ConverterStream` and :class:`ClassifierStream` apply
      the same gap rule to their windows (and the converter restarts its per-stream input
      adaptation, as :meth:`~.pipeline.Converter.convert` does for each recording).
    * **Time jumps back.** A stamp more than ``new_stream_gap_s`` *before* the last one (a
      bag played again, ``--loop``, a simulation reset; tf2's buffer clears on such /clock
      jumps too) starts a new stream on the new timeline (``events["time_jump_back"]``):
      held frames are flushed with the old timeline's readings, and only UWB readings of the
      new timeline are kept. Smaller steps back stay rejections (below).
    * **Rejected inputs** (counted per reason in ``rejected``, reported to ``on_reject``,
      never emitted): ``imu_non_finite`` (NaN/inf), ``imu_out_of_order`` (stamp before the
      last accepted IMU stamp), ``imu_repeated_stamp`` (equal to it); ``uwb_invalid``
      (NaN, negative or a finite value outside [min_range, max_range]), ``uwb_too_far``
      (+inf) and ``uwb_too_close`` (-inf) per REP-117, ``uwb_out_of_order``,
      ``uwb_repeated_stamp``; ``uwb_multipath``: a range further than ``max_uwb_jump_m``
      from the median of the last readings (:class:`~.range_gate.RangeGate`, the rule
      :func:`~.real.read_real_csv` applies offline); frames use the accepted readings
      around it, or the IMU-only path when none is recent enough.
      Strictly increasing stamps are accepted however close: the real recordings have
      rows 20-300 µs apart, and they are frames of the dataset.
    * **Bounds.** At most ``queue_size`` held frames and ``queue_size`` UWB readings are
      kept. A frame pushed when the hold queue is full releases the oldest as if its wait
      had run out (``events["queue_overflow"]``); a UWB reading that pushes the oldest
      kept one out counts ``events["uwb_overflow"]``. Work per input is constant (UWB
      history is pruned to the readings the held frames can still need).
    * **Rate.** Frames are not decimated (that would break the equivalence for the real
      data's close rows). The IMU rate over the last 64 stamps is kept in
      :attr:`FrameAssembler.imu_rate_hz`; each frame accepted while it exceeds
      ``max_rate_hz`` (once 64 stamps are in) counts ``events["rate_high"]``. Memory stays
      bounded by the queues.

    :meth:`~FrameAssembler.flush` (end of a stream) emits every held frame with the last
    reading held — again the ``np.interp`` value, since no later reading exists.

:class:`ConverterStream` — a frame's causal window (``past`` + 1, the first frame repeated
before the start, as :func:`~.signals.windows` pads) → its simulator-domain frame.

:class:`ClassifierStream` — converted frames → per-frame labels, ``future`` frames late:
the window ``past`` + 1 + ``future`` is padded with the first frame at the start and, by
:meth:`~ClassifierStream.flush`, with the last frame at the end. A flush keeps the history,
so if the stream goes on its next frames still see their real past. Labels carry the
centre frame's stamp, the probabilities (through the classifier checkpoint's phase
filter, one belief per stream, when it has one), the argmax phase, its probability and the
repetition count of a :class:`~.pipeline.RepCounter` fed in label order (kept across
streams; :meth:`~ClassifierStream.reset_count` zeroes it).
"""
from __future__ import annotations

import math
from collections import deque
from typing import Any, Callable, NamedTuple

import numpy as np

from embodied_transfer.squat.placement import RangeTrend
from embodied_transfer.squat.range_gate import MAX_JUMP_M, RangeGate

NS_PER_S = 1_000_000_000
RATE_WINDOW = 64  # IMU stamps the rate estimate is taken over

#: (reason, detail) → None; what a node passes to report rejections on /diagnostics.
RejectHook = Callable[[str, str], None]


class Frame(NamedTuple):
    """One assembled frame: IMU stamp, (7,) float32 in CHANNELS order, and how it was made."""

    stamp_ns: int
    values: np.ndarray
    tag: Any = None       # passed through from push_imu (the nodes: the IMU frame_id)
    stale: bool = False   # UWB held from an older reading after the wait ran out
    imu_only: bool = False  # no usable UWB: values[6] is NaN (missing)


class Label(NamedTuple):
    """The classifier's output for one frame."""

    stamp_ns: int
    probabilities: np.ndarray  # (3,) float32, STOP/DOWN/UP
    phase: int
    confidence: float
    rep_count: int
    tag: Any = None


def _seconds_to_ns(seconds: float | None) -> int | None:
    return None if seconds is None else int(round(seconds * NS_PER_S))


class _Counts:
    """Per-reason counters shared by the stream classes."""

    def __init__(self, on_reject: RejectHook | None) -> None:
        self.on_reject = on_reject
        self.on_restart: Callable[[str], None] | None = None   # told when time jumps back
        self.rejected: dict[str, int] = {}
        self.events: dict[str, int] = {}

    def _reject(self, reason: str, detail: str) -> None:
        self.rejected[reason] = self.rejected.get(reason, 0) + 1
        if self.on_reject is not None:
            self.on_reject(reason, detail)

    def _event(self, name: str, n: int = 1) -> None:
        self.events[name] = self.events.get(name, 0) + n

    def _jumped_back(self, stamp_ns: int, last_ns: int | None) -> bool:
        """Whether time jumped back (a bag replayed again, ``--loop``, a /clock reset): a
        stamp more than ``new_stream_gap_s`` before the last one. Counted in
        ``events["time_jump_back"]``; the stream then starts again."""
        gap = getattr(self, "gap_ns", None)
        if gap is None or last_ns is None or last_ns - stamp_ns <= gap:
            return False
        self._event("time_jump_back")
        if self.on_restart is not None:
            self.on_restart(f"{type(self).__name__}: time jumped back "
                            f"{(last_ns - stamp_ns) / NS_PER_S:.3f} s (a bag replayed or "
                            f"looped, a simulation reset): the stream starts again")
        return True


class FrameAssembler(_Counts):
    """IMU frames and UWB readings in, frames with UWB interpolated to the IMU stamp out.

    See the module docstring for the rules. Every ``push_*`` and :meth:`flush` returns the
    frames it completed, in IMU stamp order.
    """

    def __init__(self, max_wait_s: float = 1.0, max_uwb_age_s: float = 5.0,
                 queue_size: int = 256, new_stream_gap_s: float | None = 1.0,
                 max_rate_hz: float = 200.0, on_reject: RejectHook | None = None,
                 max_uwb_jump_m: float = MAX_JUMP_M) -> None:
        super().__init__(on_reject)
        if not max_wait_s >= 0 or not max_uwb_age_s > 0 or queue_size < 1 \
                or not max_rate_hz > 0 or (new_stream_gap_s is not None
                                           and not new_stream_gap_s > 0):
            raise ValueError(f"bad FrameAssembler limits: max_wait_s={max_wait_s}, "
                             f"max_uwb_age_s={max_uwb_age_s}, queue_size={queue_size}, "
                             f"new_stream_gap_s={new_stream_gap_s}, max_rate_hz={max_rate_hz}")
        self.max_wait_ns = _seconds_to_ns(max_wait_s)
        self.max_uwb_age_ns = _seconds_to_ns(max_uwb_age_s)
        self.queue_size = int(queue_size)
        self.gap_ns = _seconds_to_ns(new_stream_gap_s)
        self.max_rate_hz = float(max_rate_hz)
        self._gate = RangeGate(max_uwb_jump_m)
        self.reset()

    def reset(self) -> None:
        """Forget everything but the counters."""
        self._held: deque = deque()                      # (stamp, (6,) float64, tag)
        self._uwb: deque = deque()                       # (stamp, value)
        self._imu_stamps: deque = deque(maxlen=RATE_WINDOW)
        self.last_imu_ns: int | None = None              # last accepted IMU stamp
        self.last_uwb_ns: int | None = None              # last accepted UWB stamp
        self.max_hold_ns = 0                             # longest stamp-time hold so far
        self.imu_only: bool | None = None                # path of the last emitted frame
        self._gate.reset()

    # --- state for diagnostics and tests ------------------------------------------------
    @property
    def held(self) -> int:
        """IMU frames waiting for UWB."""
        return len(self._held)

    @property
    def uwb_kept(self) -> int:
        """UWB readings kept for interpolation."""
        return len(self._uwb)

    @property
    def imu_rate_hz(self) -> float:
        """IMU frame rate over the last accepted stamps (0 until two have arrived)."""
        if len(self._imu_stamps) < 2:
            return 0.0
        span = self._imu_stamps[-1] - self._imu_stamps[0]
        return (len(self._imu_stamps) - 1) * NS_PER_S / span if span > 0 else math.inf

    @property
    def rate_high(self) -> bool:
        """Whether the IMU stamp rate over a full window exceeds ``max_rate_hz``."""
        return len(self._imu_stamps) == RATE_WINDOW and self.imu_rate_hz > self.max_rate_hz

    # --- input --------------------------------------------------------------------------
    def push_imu(self, stamp_ns: int, accel, gyro, tag: Any = None) -> list[Frame]:
        """Add an IMU frame (user acceleration m/s², angular rate rad/s)."""
        stamp_ns = int(stamp_ns)
        imu = np.concatenate([np.asarray(accel, np.float64).reshape(-1),
                              np.asarray(gyro, np.float64).reshape(-1)])
        if imu.shape != (6,):
            self._reject("imu_invalid", f"IMU at {stamp_ns} ns has {imu.size} values, not 6")
            return []
        if not np.all(np.isfinite(imu)):
            self._reject("imu_non_finite", f"IMU at {stamp_ns} ns has NaN/inf: {imu.tolist()}")
            return []
        out: list[Frame] = []
        if self._jumped_back(stamp_ns, self.last_imu_ns):
            out += self._restart(stamp_ns)
        if self.last_imu_ns is not None:
            if stamp_ns == self.last_imu_ns:
                self._reject("imu_repeated_stamp",
                             f"IMU stamp {stamp_ns} ns repeats the previous frame's")
                return []
            if stamp_ns < self.last_imu_ns:
                self._reject("imu_out_of_order", f"IMU stamp {stamp_ns} ns is "
                             f"{(self.last_imu_ns - stamp_ns) / 1e6:.3f} ms before the last")
                return []
            if self.gap_ns is not None and stamp_ns - self.last_imu_ns > self.gap_ns:
                out += self._new_stream()
        self.last_imu_ns = stamp_ns
        self._imu_stamps.append(stamp_ns)
        if self.rate_high:
            self._event("rate_high")
        if len(self._held) >= self.queue_size:
            self._event("queue_overflow")
            out += self._release(force=1)
        self._held.append((stamp_ns, imu, tag))
        out += self._release()
        return out

    def push_uwb(self, stamp_ns: int, range_m: float, min_range: float = 0.0,
                 max_range: float = math.inf) -> list[Frame]:
        """Add a UWB range [m]; REP-117 readings other than valid ones are rejected."""
        stamp_ns, value = int(stamp_ns), float(range_m)
        if math.isnan(value):
            self._reject("uwb_invalid", f"UWB at {stamp_ns} ns is NaN")
            return []
        if value == math.inf:
            self._reject("uwb_too_far", f"UWB at {stamp_ns} ns is +inf (out of range)")
            return []
        if value == -math.inf:
            self._reject("uwb_too_close", f"UWB at {stamp_ns} ns is -inf (too close)")
            return []
        if not (max(min_range, 0.0) <= value <= max_range):
            self._reject("uwb_invalid", f"UWB {value} m at {stamp_ns} ns is outside "
                                        f"[{max(min_range, 0.0)}, {max_range}] m")
            return []
        out: list[Frame] = []
        if self._jumped_back(stamp_ns, self.last_uwb_ns):
            out += self.flush()            # the old timeline's frames, with its readings
            self._uwb.clear()
            self._gate.reset()
            self.last_uwb_ns = None
        if self.last_uwb_ns is not None and stamp_ns <= self.last_uwb_ns:
            reason = "uwb_repeated_stamp" if stamp_ns == self.last_uwb_ns else "uwb_out_of_order"
            self._reject(reason, f"UWB stamp {stamp_ns} ns is not after the last "
                                 f"({self.last_uwb_ns} ns)")
            return out
        self.last_uwb_ns = stamp_ns
        deviation = self._gate.deviation(value)
        if not self._gate.accept(value):
            self._reject("uwb_multipath", f"UWB {value:.3f} m at {stamp_ns} ns is "
                                          f"{deviation:.2f} m from the recent median (multipath)")
            return out
        if len(self._uwb) >= self.queue_size:
            self._uwb.popleft()
            self._event("uwb_overflow")
        self._uwb.append((stamp_ns, value))
        return out + self._release()

    def flush(self) -> list[Frame]:
        """End of stream: emit every held frame (UWB of the last reading held)."""
        n = len(self._held)
        out = self._release(force=n, flushing=True)
        if n:
            self._event("flushed", n)
        return out

    # --- internals ----------------------------------------------------------------------
    def _restart(self, stamp_ns: int) -> list[Frame]:
        """IMU time jumped back to ``stamp_ns``: flush the old timeline's frames, keep only
        UWB readings of the new one (stamped before the old timeline resumed there)."""
        out = self.flush()
        self._uwb = deque(r for r in self._uwb if r[0] <= stamp_ns + (self.gap_ns or 0))
        self.last_uwb_ns = self._uwb[-1][0] if self._uwb else None
        self._gate.reset()
        self._imu_stamps.clear()
        self.last_imu_ns = None
        return out

    def _new_stream(self) -> list[Frame]:
        self._event("new_stream")
        out = self.flush()
        last = self.last_imu_ns
        while self._uwb and self._uwb[0][0] <= last:   # the old stream's readings
            self._uwb.popleft()
        self._imu_stamps.clear()
        return out

    def _interp(self, stamp: int) -> float:
        """``np.interp(stamp, uwb stamps, uwb values)`` over the kept readings."""
        uwb = self._uwb
        if stamp <= uwb[0][0]:
            return uwb[0][1]
        if stamp >= uwb[-1][0]:
            return uwb[-1][1]
        j = len(uwb) - 2
        while uwb[j][0] > stamp:
            j -= 1
        (t0, v0), (t1, v1) = uwb[j], uwb[j + 1]
        if stamp == t0:
            return v0
        slope = (v1 - v0) / ((t1 - t0) / NS_PER_S)
        return slope * ((stamp - t0) / NS_PER_S) + v0

    def _release(self, force: int = 0, flushing: bool = False) -> list[Frame]:
        """Emit (or drop) held frames from the oldest while their UWB is decided.

        ``force`` frames are released even if their wait has not run out; ``flushing``: at
        the end of a stream, where holding the last reading is what ``np.interp`` does
        (so not counted as stale).
        """
        out: list[Frame] = []
        newest = self.last_imu_ns
        while self._held:
            stamp, imu, tag = self._held[0]
            missing = False
            if self._uwb and self._uwb[-1][0] >= stamp:
                value, stale = self._interp(stamp), False
            elif force > 0 or newest - stamp > self.max_wait_ns:
                stale = not flushing
                if not self._uwb or stamp - self._uwb[-1][0] > self.max_uwb_age_ns:
                    value, stale, missing = math.nan, False, True      # IMU-only
                else:
                    value = self._uwb[-1][1]
                if stale:
                    self._event("uwb_stale")
            else:
                break
            self._held.popleft()
            force -= 1
            self.max_hold_ns = max(self.max_hold_ns, newest - stamp)
            if missing:
                self._event("imu_only")
            if self.imu_only is not None and missing != self.imu_only:
                self._event("mode_switch")
            self.imu_only = missing
            out.append(Frame(stamp, np.append(imu, value).astype(np.float32), tag, stale,
                             missing))
        self._prune()
        return out

    def _prune(self) -> None:
        """Drop UWB readings that no future frame can need (all but the last one ≤ last IMU)."""
        if self.last_imu_ns is None:
            return
        horizon = self._held[0][0] if self._held else self.last_imu_ns
        while len(self._uwb) >= 2 and self._uwb[1][0] <= horizon:
            self._uwb.popleft()


class ConverterStream(_Counts):
    """A :class:`~.pipeline.Converter` applied frame by frame on causal windows."""

    def __init__(self, converter, new_stream_gap_s: float | None = 1.0,
                 on_reject: RejectHook | None = None) -> None:
        super().__init__(on_reject)
        self.converter = converter
        self.size = converter.past + 1
        self.gap_ns = _seconds_to_ns(new_stream_gap_s)
        self.reset()

    def reset(self) -> None:
        self._window: deque = deque(maxlen=self.size)
        self._adapter = self.converter.adapter()
        self.last_ns: int | None = None

    def mirror_uwb(self) -> None:
        """From now on the stream is as if its UWB range had been mirrored about the
        converter's normaliser mean from the start (m0 + m0 - r): the input adaptation's
        statistics and the window's adapted values are mirrored exactly, so the caller
        feeds mirrored ranges from here on (the phone lies above the wrist)."""
        mean0 = float(self.converter.ckpt.normalizer.mean[-1])
        if self._adapter is not None:
            self._adapter.mirror(len(self.converter.ckpt.normalizer.mean) - 1)
        window = []
        for x in self._window:
            x = x.copy()
            x[-1] = 2 * mean0 - x[-1]
            window.append(x)
        self._window = deque(window, maxlen=self.size)

    def push(self, stamp_ns: int, values: np.ndarray) -> np.ndarray | None:
        """(7,) physical frame → (7,) float32 simulator-domain frame (None if rejected).
        A NaN UWB value (the last channel) marks it missing: the IMU-only path."""
        stamp_ns = int(stamp_ns)
        x = np.asarray(values, dtype=np.float32).reshape(-1)
        if not (np.all(np.isfinite(x[:-1])) and not np.isinf(x[-1])):
            self._reject("non_finite", f"frame at {stamp_ns} ns has NaN/inf")
            return None
        if self._jumped_back(stamp_ns, self.last_ns):
            self.reset()
        if self.last_ns is not None:
            if stamp_ns <= self.last_ns:
                self._reject("out_of_order", f"frame at {stamp_ns} ns is not after the last "
                                             f"({self.last_ns} ns)")
                return None
            if self.gap_ns is not None and stamp_ns - self.last_ns > self.gap_ns:
                self._event("new_stream")
                self.reset()
        self.last_ns = stamp_ns
        if self._adapter is not None:
            x = self._adapter.update(x)
        if not self._window:
            self._window.extend([x] * self.size)
        else:
            self._window.append(x)
        return self.converter.convert_windows(np.stack(self._window)[None])[0]


class PlacementCheck:
    """The phone-placement check of :mod:`~.placement`, frame by frame, for a live stream.

    Beside the real pipeline it runs the converter and the classifier on the watch alone
    (the UWB channel marked missing) and sums the range's frame-to-frame change over the
    frames that pass labels Down and over those it labels Up. Once both counts reach
    ``min_frames`` the sign decides: ``placement`` becomes "below" or "above" and the side
    pipeline stops (no cost after that). :meth:`reset` starts over (a new stream).
    """

    def __init__(self, converter, classifier, min_frames: int = 40) -> None:
        if min_frames < 1:
            raise ValueError(f"min_frames must be >= 1, got {min_frames}")
        self.converter, self.classifier, self.min_frames = converter, classifier, min_frames
        self.reset()

    def reset(self) -> None:
        self.placement = ""                 # "" until decided
        self._conv = ConverterStream(self.converter, new_stream_gap_s=None)
        self._cls = ClassifierStream(self.classifier, min_run=1, min_rep=0,
                                     new_stream_gap_s=None)
        self._rate: dict[int, float] = {}   # frame stamp → range change since the last frame
        self._last_uwb: float | None = None
        self._trend = RangeTrend()

    @property
    def trend(self) -> float:
        """Mean range change per frame over Down minus over Up frames so far (m)."""
        return self._trend.trend

    @property
    def counts(self) -> dict[str, int]:
        """Frames labelled Down and Up so far."""
        return dict(self._trend.counts)

    def push(self, frame: Frame) -> str:
        """Take an assembled frame (IMU-only frames are skipped); returns the placement
        ("" while undecided)."""
        if self.placement or frame.imu_only:
            return self.placement
        uwb = float(frame.values[-1])
        rate = 0.0 if self._last_uwb is None else uwb - self._last_uwb
        self._last_uwb = uwb
        self._rate[frame.stamp_ns] = rate
        x = np.array(frame.values, dtype=np.float32)
        x[-1] = np.nan
        y = self._conv.push(frame.stamp_ns, x)
        if y is None:
            return self.placement
        for label in self._cls.push(frame.stamp_ns, y):
            self._trend.add(self._rate.pop(label.stamp_ns, 0.0), label.phase)
        if min(self._trend.counts.values()) >= self.min_frames and self.trend != 0.0:
            self.placement = self._trend.placement
            self._rate.clear()
        return self.placement


class ClassifierStream(_Counts):
    """A :class:`~.pipeline.Classifier` applied frame by frame, ``future`` frames late."""

    def __init__(self, classifier, min_run: int | None = None, min_rep: int | None = None,
                 new_stream_gap_s: float | None = 1.0, on_reject: RejectHook | None = None
                 ) -> None:
        from embodied_transfer.squat.config import MIN_REP, MIN_RUN
        from embodied_transfer.squat.pipeline import RepCounter

        super().__init__(on_reject)
        self.classifier = classifier
        self.past, self.future = classifier.past, classifier.future
        self.size = self.past + 1 + self.future
        self.gap_ns = _seconds_to_ns(new_stream_gap_s)
        self.counter = RepCounter(MIN_RUN if min_run is None else min_run,
                                  MIN_REP if min_rep is None else min_rep)
        self.reset()

    def reset(self) -> None:
        """Forget the window, pending frames and phase belief (the count is kept)."""
        self._window: deque = deque(maxlen=self.size)   # frames, padded at the start
        self._pending: deque = deque()                  # (stamp, tag) not yet labelled
        self.last_ns: int | None = None
        pf = self.classifier.phase_filter
        self._belief = pf.stream() if pf is not None else None

    def reset_count(self) -> int:
        """Zero the repetition count; returns what it was."""
        was = self.counter.count
        self.counter.reset()
        return was

    @property
    def pending(self) -> int:
        """Frames received but not labelled yet (at most ``future``)."""
        return len(self._pending)

    @property
    def rep_count(self) -> int:
        return self.counter.count

    def push(self, stamp_ns: int, values: np.ndarray, tag: Any = None) -> list[Label]:
        """Add a converted frame; returns the label(s) that became computable."""
        stamp_ns = int(stamp_ns)
        x = np.asarray(values, dtype=np.float32).reshape(-1)
        if not np.all(np.isfinite(x)):
            self._reject("non_finite", f"frame at {stamp_ns} ns has NaN/inf")
            return []
        out: list[Label] = []
        if self._jumped_back(stamp_ns, self.last_ns):
            out += self.flush()
            self.reset()
        if self.last_ns is not None:
            if stamp_ns <= self.last_ns:
                reason = "repeated_stamp" if stamp_ns == self.last_ns else "out_of_order"
                self._reject(reason, f"frame at {stamp_ns} ns is not after the last "
                                     f"({self.last_ns} ns)")
                return []
            if self.gap_ns is not None and stamp_ns - self.last_ns > self.gap_ns:
                self._event("new_stream")
                out += self.flush()
                self._window.clear()
                if self._belief is not None:
                    self._belief.reset()
        self.last_ns = stamp_ns
        if not self._window:
            self._window.extend([x] * self.past)
        self._window.append(x)
        self._pending.append((stamp_ns, tag))
        if len(self._pending) > self.future:
            out += self._label([np.stack(self._window)], [self._pending.popleft()])
        return out

    def flush(self) -> list[Label]:
        """End of stream: label the pending frames, padding with the last frame."""
        if not self._pending:
            return []
        frames = list(self._window)
        n = len(self._pending)
        padded = frames + [frames[-1]] * self.future
        windows = [np.stack(padded[i - self.past:i + 1 + self.future])
                   for i in range(len(frames) - n, len(frames))]
        pending = list(self._pending)
        self._pending.clear()
        self._event("flushed", len(pending))
        return self._label(windows, pending)

    def _label(self, windows: list[np.ndarray], frames: list[tuple[int, Any]]) -> list[Label]:
        probs = self.classifier.probabilities_windows(np.stack(windows))
        out = []
        for p, (stamp, tag) in zip(probs, frames):
            if self._belief is not None:
                p = self._belief.update(p)
            phase = int(np.argmax(p))
            out.append(Label(stamp, p.astype(np.float32), phase, float(p[phase]),
                             self.counter.update(phase), tag))
        return out
