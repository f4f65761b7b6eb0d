"""real2sim_converter: watch IMU + UWB range in, simulator-domain features out.

Subscribes ``imu`` (sensor_msgs/Imu; linear_acceleration includes gravity as REP-145 says,
which the node removes with the message's orientation or, without one, a gyro-aided filter
(:mod:`~embodied_transfer.squat.gravity`); with ``imu_includes_gravity: false`` it is taken as
*user* acceleration, what the real watch's CSV holds) and ``uwb/range`` (sensor_msgs/Range,
5–7 Hz), both
best effort like sensor data but 100 deep (SENSOR_STREAM_QOS: every frame counts, and a 10×
replay comes in bursts). Publishes ``real2sim/features`` (SimDomainFeatures; header = the
IMU frame's stamp and frame_id; channels = FEATURE_CHANNELS; float32 values), reliable with
a deep queue (BAG_QOS, compatible with RELIABLE_QOS subscribers) so that the bursts
released when a UWB reading arrives are not dropped.

UWB is interpolated to each IMU stamp as the offline pipeline does (np.interp), which
holds every frame until a UWB reading stamped at or after it arrives — at most
``max_uwb_wait_s`` of stamp time, after which the last range is held (counted as stale).
With no usable range (none yet, or the last one older than ``max_uwb_age_s``: a watch
without a UWB phone, a radio switched off) frames go on from the watch alone, the range
marked missing (``mode`` ``imu_only`` in the features, on /diagnostics as a WARN and in the
log at each switch); they use the range again as soon as readings return. The rules,
bounds and rejection reasons are those of
:class:`~embodied_transfer.squat.online.FrameAssembler`; the converter itself is
:class:`~embodied_transfer.squat.online.ConverterStream`. When no input has arrived for
``flush_after_s`` (on the node's clock, or on the wall clock once that clock stands still:
:mod:`~embodied_transfer.nodes.lifecycle`) the held frames are flushed, so the end of a
stream is not lost. Nothing is published for a rejected input; /diagnostics reports every
rejection (with per-reason counts), stale frames, the IMU stamp rate, hold time and
per-frame processing latency.

With ``placement_check`` (default) a :class:`~embodied_transfer.squat.online.PlacementCheck`
runs a watch-only converter + classifier beside the stream until it can tell whether the
phone lies below the wrist (as in training) or above it; in the second case the range is
mirrored from then on, with the converter's state mirrored at that moment, and the log and
/diagnostics (``placement``: deciding / below / above / off) say so.

Lifecycle: configure loads the converter checkpoint (a missing or wrong model fails the
transition), activate starts processing, deactivate flushes held frames, cleanup frees the
model.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from embodied_transfer_interfaces.msg import SimDomainFeatures
from sensor_msgs.msg import Imu, Range

from embodied_transfer.nodes.common import DIAGNOSTICS, Endpoint, Interface, run
from embodied_transfer.nodes.lifecycle import ManagedNode
from embodied_transfer.ros.conversions import (ConversionError, make_header, range_reading,
                                               stamp_to_ns)
from embodied_transfer.ros.diagnostics import count_values
from embodied_transfer.ros.qos import BAG_QOS, SENSOR_STREAM_QOS
from embodied_transfer.squat.config import ConverterNodeConfig
from embodied_transfer.squat.gravity import GravityTracker, gravity_from_orientation
from embodied_transfer.squat.errors import SquatDataError
from embodied_transfer.squat.signals import FEATURE_CHANNELS

GRAVITY_SUSPECT = 7.0      # mean |accel| [m/s²] above which the IMU seems to include gravity
GRAVITY_MISSING = 4.0      # mean |accel| [m/s²] below which it seems to have it removed


class Real2SimConverter(ManagedNode):
    """Assembles IMU + UWB frames and converts them to the simulator domain."""

    CONFIG = ConverterNodeConfig
    STREAM = True
    INTERFACE = Interface(
        subscribes=(Endpoint("imu", "sensor_msgs/Imu"), Endpoint("uwb/range", "sensor_msgs/Range")),
        publishes=(Endpoint("real2sim/features", "embodied_transfer_interfaces/SimDomainFeatures"),
                   DIAGNOSTICS))

    def __init__(self, **kwargs) -> None:
        super().__init__("real2sim_converter", **kwargs)
        self.health.warning = self._warning
        self.assembler = self.stream = self._gravity = self.placement = None
        self._last_stale = False
        self._mode = ""                    # "uwb" / "imu_only": path of the last frame out
        self._accel_norm = 0.0
        self._accel_frames = 0

    # --- lifecycle ---------------------------------------------------------------------
    def _load(self, config: ConverterNodeConfig) -> list:
        from embodied_transfer.squat.online import (ConverterStream, FrameAssembler,
                                                    PlacementCheck)
        from embodied_transfer.squat.pipeline import DEFAULT_MODELS, Classifier, Converter

        path = Path(config.model_path or DEFAULT_MODELS / "multi_encoder_vae")
        if not config.flush_after_s > 0:
            raise ValueError(f"flush_after_s must be > 0, got {config.flush_after_s}")
        self.assembler = FrameAssembler(
            max_wait_s=config.max_uwb_wait_s, max_uwb_age_s=config.max_uwb_age_s,
            queue_size=config.queue_size, new_stream_gap_s=config.new_stream_gap_s,
            max_rate_hz=config.max_imu_rate_hz, on_reject=self._on_reject,
            max_uwb_jump_m=config.max_uwb_jump_m)
        try:
            converter = Converter.load(path)
        except SquatDataError as exc:
            raise SquatDataError(f"cannot load the converter model: {exc}") from None
        self.stream = ConverterStream(converter, new_stream_gap_s=config.new_stream_gap_s,
                                      on_reject=self._on_reject)
        self._gravity = GravityTracker(config.gravity_time_constant_s,
                                       new_stream_gap_s=config.new_stream_gap_s)
        self.placement = None
        if config.placement_check:
            cls_path = Path(config.placement_classifier_path or DEFAULT_MODELS / "classifier")
            try:
                classifier = Classifier.load(cls_path)
            except SquatDataError as exc:
                raise SquatDataError(f"cannot load the placement check's classifier: "
                                     f"{exc}") from None
            self.placement = PlacementCheck(converter, classifier,
                                            config.placement_min_frames)
        self._uwb_mean = float(converter.ckpt.normalizer.mean[-1])
        ad = converter.ckpt.adaptation
        self.health.model_info = (
            f"{converter.ckpt.cfg.kind} (past {converter.past}; input adaptation "
            + (f"{ad.prior_frames}-frame prior, {ad.horizon_frames}-frame horizon" if ad
               else "off") + f") from {path}")
        self._pub = self.create_lifecycle_publisher(SimDomainFeatures, "real2sim/features", BAG_QOS)
        return [self._pub,
                self.create_subscription(Imu, "imu", self._on_imu, SENSOR_STREAM_QOS),
                self.create_subscription(Range, "uwb/range", self._on_uwb, SENSOR_STREAM_QOS)]

    def _streams(self) -> list:
        return [s for s in (self.assembler, self.stream, self._gravity, self.placement)
                if s is not None]

    def _pending(self) -> int:
        return self.assembler.held

    def _flush(self) -> None:
        self._emit(self.assembler.flush())

    def _release(self) -> None:
        self.assembler = self.stream = self._gravity = self.placement = None
        self._mode = ""

    # --- input -------------------------------------------------------------------------
    def _on_imu(self, msg: Imu) -> None:
        with self._lock:
            if not self._active:
                return
            self._input()
            stamp = stamp_to_ns(msg.header.stamp)
            if msg.linear_acceleration_covariance[0] == -1.0 \
                    or msg.angular_velocity_covariance[0] == -1.0:
                self._reject("imu_unavailable", f"IMU at {stamp} ns marks accel or gyro "
                                                "unavailable (covariance[0] == -1)")
                return
            a, w = msg.linear_acceleration, msg.angular_velocity
            accel, gyro = np.array([a.x, a.y, a.z]), np.array([w.x, w.y, w.z])
            user = self._user_acceleration(msg, stamp, accel, gyro)
            last = self.assembler.last_imu_ns
            frames = self.assembler.push_imu(stamp, user, gyro, tag=msg.header.frame_id)
            if self.assembler.last_imu_ns != last:         # accepted
                norm = float(np.linalg.norm(accel))
                self._accel_frames += 1
                self._accel_norm += (norm - self._accel_norm) / min(self._accel_frames, 100)
            self._emit(frames)

    def _user_acceleration(self, msg: Imu, stamp: int, accel, gyro) -> np.ndarray:
        """The acceleration without gravity (module docstring)."""
        if not self.config.imu_includes_gravity or not np.all(np.isfinite(accel)):
            return accel
        if msg.orientation_covariance[0] != -1.0:
            q = msg.orientation
            quat = (q.x, q.y, q.z, q.w)
            if np.isfinite(quat).all() and np.linalg.norm(quat) > 0.5:
                return accel - gravity_from_orientation(quat)
        return self._gravity.update(stamp, accel, gyro)

    def _on_uwb(self, msg: Range) -> None:
        with self._lock:
            if not self._active:
                return
            self._input()
            stamp = stamp_to_ns(msg.header.stamp)
            try:
                value, _ = range_reading(msg)
            except ConversionError as exc:
                self._reject("uwb_bad_limits", f"UWB at {stamp} ns: {exc}")
                return
            self._emit(self.assembler.push_uwb(stamp, value, msg.min_range, msg.max_range))

    # --- output ------------------------------------------------------------------------
    def _emit(self, frames) -> None:
        for frame in frames:
            start = time.perf_counter()
            values = self._placed(frame)
            y = self.stream.push(frame.stamp_ns, values)
            if y is None:
                continue
            if not np.all(np.isfinite(y)):
                self._reject("output_non_finite", f"the converter gave NaN/inf for the "
                                                  f"frame at {frame.stamp_ns} ns")
                continue
            self._last_stale = frame.stale
            mode = "imu_only" if frame.imu_only else "uwb"
            if mode != self._mode:
                self.get_logger().info(
                    "no usable UWB range: converting from the watch alone (imu_only)"
                    if frame.imu_only else "UWB range in use (uwb)")
                self._mode = mode
            msg = SimDomainFeatures(header=make_header(frame.stamp_ns,
                                                       self.config.frame_id or frame.tag or ""),
                                    channels=list(FEATURE_CHANNELS), values=y.tolist(),
                                    mode=mode)
            self._pub.publish(msg)
            self.health.output(time.perf_counter() - start)

    def _placed(self, frame):
        """The frame's values, its range mirrored once the placement check has found the
        phone above the wrist (the converter's state mirrored at that moment, exactly)."""
        check = self.placement
        if check is None:
            return frame.values
        if not check.placement and check.push(frame):
            self.get_logger().info(
                f"placement check: phone {check.placement} the wrist (range trend "
                f"{check.trend * 1000:+.2f} mm/frame over {check.counts['down']} Down and "
                f"{check.counts['up']} Up frames)"
                + ("; the range is mirrored from now on" if check.placement == "above" else ""))
            if check.placement == "above":
                self.stream.mirror_uwb()
        if check.placement != "above" or frame.imu_only:
            return frame.values
        values = np.array(frame.values, dtype=np.float32)
        values[-1] = 2 * self._uwb_mean - values[-1]
        return values

    # --- diagnostics -------------------------------------------------------------------
    def _extra_values(self) -> list[tuple[str, str]]:
        a = self.assembler
        if a is None:
            return []
        placement = ("off" if self.placement is None
                     else self.placement.placement or "deciding")
        return [("mode", self._mode), ("placement", placement),
                ("imu_stamp_rate_hz", f"{a.imu_rate_hz:.2f}"),
                ("held_frames", str(a.held)), ("uwb_readings_kept", str(a.uwb_kept)),
                ("max_hold_ms", f"{a.max_hold_ns / 1e6:.1f}"),
                ("accel_norm_mean", f"{self._accel_norm:.3f}")] \
            + count_values("rejected_",
                           {**a.rejected, **self.stream.rejected, **self._rejected}) \
            + count_values("events_", {**a.events, **self.stream.events})

    def _warning(self) -> str:
        a = self.assembler
        if a is None:
            return ""
        if a.rate_high:
            return f"IMU stamp rate {a.imu_rate_hz:.0f} Hz is above max_imu_rate_hz"
        if self._last_stale:
            return "UWB stale: frames emitted with the last range held"
        if self._mode == "imu_only":
            return "no usable UWB range: converting from the watch alone (imu_only)"
        if self._accel_frames >= 50:
            with_g = self.config.imu_includes_gravity
            if not with_g and self._accel_norm > GRAVITY_SUSPECT:
                return (f"mean |accel| {self._accel_norm:.1f} m/s² looks like it includes "
                        "gravity, but imu_includes_gravity is false")
            if with_g and self._accel_norm < GRAVITY_MISSING:
                return (f"mean |accel| {self._accel_norm:.1f} m/s² looks like user "
                        "acceleration (gravity removed): set imu_includes_gravity false")
        return ""


def main(args=None) -> int:
    return run(lambda: Real2SimConverter(), args)


if __name__ == "__main__":
    raise SystemExit(main())
