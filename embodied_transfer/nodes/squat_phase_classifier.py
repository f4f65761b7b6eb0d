"""squat_phase_classifier: simulator-domain features in, squat phase and repetitions out.

Subscribes ``real2sim/features`` (SimDomainFeatures; reliable, depth 1000 = BAG_QOS, so a
fast replay loses nothing) and publishes ``squat/phase`` (SquatPhase: header.stamp and
frame_id of the labelled frame, phase = argmax of the classifier's probabilities (through
the checkpoint's causal phase filter when it has one), confidence = that probability,
rep_count = completed Down→Up cycles, counted by
:class:`~embodied_transfer.squat.pipeline.RepCounter` with ``min_run``). Reliable, depth
1000 as well, for the bursts of a flush.

A frame is labelled once ``future`` frames after it have arrived (the window of
:class:`~embodied_transfer.squat.online.ClassifierStream`: past + 1 + future, padded with the
first frame at the start). When no features have arrived for ``flush_after_s`` (node clock; see
:mod:`~embodied_transfer.nodes.lifecycle`),
the last ``future`` frames are labelled with the end padded by the last frame, as the
offline pipeline does at the end of a recording; if the stream then goes on, it keeps its
history. A stamp gap over ``new_stream_gap_s`` flushes and starts a new window.

Rejected (nothing published, counted on /diagnostics with the reason): channel names or
order other than FEATURE_CHANNELS, a wrong number of values, NaN/inf values, stamps not
after the previous frame's. Service ``~/reset_count`` (std_srvs/Trigger) zeroes the count.

Lifecycle: configure loads the classifier checkpoint (a missing or wrong model fails the
transition), activate starts processing, deactivate flushes, cleanup frees the model.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from embodied_transfer_interfaces.msg import SimDomainFeatures, SquatPhase
from std_srvs.srv import Trigger

from embodied_transfer.nodes.common import DIAGNOSTICS, Endpoint, Interface, run
from embodied_transfer.nodes.lifecycle import ManagedNode
from embodied_transfer.ros.conversions import make_header, stamp_to_ns
from embodied_transfer.ros.diagnostics import count_values
from embodied_transfer.ros.qos import BAG_QOS
from embodied_transfer.squat.config import ClassifierNodeConfig
from embodied_transfer.squat.errors import SquatDataError
from embodied_transfer.squat.signals import FEATURE_CHANNELS


class SquatPhaseClassifier(ManagedNode):
    """Labels every frame STOP/DOWN/UP and counts repetitions."""

    CONFIG = ClassifierNodeConfig
    STREAM = True
    INTERFACE = Interface(
        subscribes=(Endpoint("real2sim/features",
                             "embodied_transfer_interfaces/SimDomainFeatures"),),
        publishes=(Endpoint("squat/phase", "embodied_transfer_interfaces/SquatPhase"),
                   DIAGNOSTICS),
        services=(Endpoint("~/reset_count", "std_srvs/Trigger"),))

    def __init__(self, **kwargs) -> None:
        super().__init__("squat_phase_classifier", **kwargs)
        self.stream = None
        self._mode: str | None = None      # input path of the last features (their mode)

    # --- lifecycle ---------------------------------------------------------------------
    def _load(self, config: ClassifierNodeConfig) -> list:
        from embodied_transfer.squat.online import ClassifierStream
        from embodied_transfer.squat.pipeline import DEFAULT_MODELS, Classifier

        path = Path(config.model_path or DEFAULT_MODELS / "classifier")
        if not config.flush_after_s > 0 or not config.new_stream_gap_s > 0:
            raise ValueError(f"flush_after_s ({config.flush_after_s}) and new_stream_gap_s "
                             f"({config.new_stream_gap_s}) must be > 0")
        try:
            classifier = Classifier.load(path)
        except SquatDataError as exc:
            raise SquatDataError(f"cannot load the phase classifier model: {exc}") from None
        self.stream = ClassifierStream(classifier, min_run=config.min_run,
                                       min_rep=config.min_rep,
                                       new_stream_gap_s=config.new_stream_gap_s,
                                       on_reject=self._on_reject)
        pf = classifier.phase_filter
        self.health.model_info = (f"phase_classifier (past {classifier.past}, future "
                                  f"{classifier.future}; phase filter "
                                  + (f"sharpness {pf.sharpness:g}" if pf else "none")
                                  + f") from {path}")
        self._pub = self.create_lifecycle_publisher(SquatPhase, "squat/phase", BAG_QOS)
        return [self._pub,
                self.create_subscription(SimDomainFeatures, "real2sim/features",
                                         self._on_features, BAG_QOS),
                self.create_service(Trigger, "~/reset_count", self._on_reset_count)]

    def _streams(self) -> list:
        return [self.stream]

    def _pending(self) -> int:
        return self.stream.pending

    def _flush(self) -> None:
        self._publish(self.stream.flush(), time.perf_counter())

    def _release(self) -> None:
        self.stream, self._mode = None, None

    # --- input -------------------------------------------------------------------------
    def _check(self, msg: SimDomainFeatures, stamp: int) -> tuple[str, str]:
        """(reason, detail) why ``msg`` cannot be used, or ("", "") if it can."""
        channels = list(msg.channels)
        if channels != list(FEATURE_CHANNELS):
            return "bad_channels", (f"features at {stamp} ns have channels {channels}, "
                                    f"expected {list(FEATURE_CHANNELS)}")
        if len(msg.values) != len(FEATURE_CHANNELS):
            return "bad_length", (f"features at {stamp} ns have {len(msg.values)} values for "
                                  f"{len(FEATURE_CHANNELS)} channels")
        return "", ""

    def _on_features(self, msg: SimDomainFeatures) -> None:
        with self._lock:
            if not self._active:
                return
            start = time.perf_counter()
            self._input()
            stamp = stamp_to_ns(msg.header.stamp)
            reason, detail = self._check(msg, stamp)
            if reason:
                self._reject(reason, detail)
                return
            values = np.asarray(msg.values, dtype=np.float32)
            if msg.mode != self._mode:
                if self._mode is not None:
                    self.get_logger().info(f"input path changed: {self._mode or '(unsaid)'} -> "
                                           f"{msg.mode or '(unsaid)'}")
                self._mode = msg.mode
            self._publish(self.stream.push(stamp, values, tag=(msg.header.frame_id, msg.mode)),
                          start)

    def _on_reset_count(self, request, response):
        with self._lock:
            if self.stream is None:
                response.success, response.message = False, "not configured"
                return response
            was = self.stream.reset_count()
        response.success = True
        response.message = f"repetition count reset (was {was})"
        return response

    # --- output ------------------------------------------------------------------------
    def _publish(self, labels, start: float) -> None:
        for label in labels:
            frame_id, mode = label.tag or ("", "")
            self._pub.publish(SquatPhase(header=make_header(label.stamp_ns, frame_id),
                                         phase=label.phase, confidence=label.confidence,
                                         rep_count=label.rep_count, mode=mode))
            self.health.output(time.perf_counter() - start)

    def _extra_values(self) -> list[tuple[str, str]]:
        s = self.stream
        if s is None:
            return []
        return [("rep_count", str(s.rep_count)), ("mode", self._mode or ""),
                ("suppressed_reps", str(s.counter.suppressed)),
                ("pending_frames", str(s.pending))] \
            + count_values("rejected_", {**s.rejected, **self._rejected}) \
            + count_values("events_", s.events)


def main(args=None) -> int:
    return run(lambda: SquatPhaseClassifier(), args)


if __name__ == "__main__":
    raise SystemExit(main())
