"""A console view of a running squat graph, for ``embodied-transfer sim`` (not a graph node).

Prints one line a second: sim time, the true phase and repetition count, the rates of
``imu`` and ``uwb/range`` as received, and (when the classifier runs) its phase, confidence,
count and how often it agreed with the truth of the same stamp so far.
"""
from __future__ import annotations

import math

from rclpy.node import Node

from embodied_transfer.ros.qos import RELIABLE_QOS, SENSOR_QOS
from embodied_transfer.squat.phases import PHASE_NAMES


class SquatMonitor(Node):
    """Subscribes like a user would and summarises once a second."""

    def __init__(self, namespace: str = "", period_s: float = 1.0, out=print) -> None:
        from embodied_transfer_interfaces.msg import SquatPhase
        from sensor_msgs.msg import Imu, Range

        super().__init__("squat_monitor", namespace=namespace)
        self._out = out
        self.counts = {"imu": 0, "uwb": 0}
        self.truth = None
        self.last_range = float("nan")
        self.lines: list[str] = []
        self.create_subscription(Imu, "imu", lambda m: self._count("imu"), SENSOR_QOS)
        self.create_subscription(Range, "uwb/range", self._on_range, SENSOR_QOS)
        self.create_subscription(SquatPhase, "squat/phase_truth", self._on_truth, RELIABLE_QOS)
        self.create_subscription(SquatPhase, "squat/phase", self._on_phase, RELIABLE_QOS)
        self.predicted = None
        self.truth_by_stamp: dict[int, int] = {}
        self.agree = self.compared = 0
        self._period = period_s
        self.create_timer(period_s, self._report)

    def _count(self, key: str) -> None:
        self.counts[key] += 1

    def _on_range(self, msg) -> None:
        self._count("uwb")
        self.last_range = msg.range

    def _on_truth(self, msg) -> None:
        self.truth = msg
        self.truth_by_stamp[msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec] = msg.phase
        if len(self.truth_by_stamp) > 2000:          # bounded: forget the oldest
            self.truth_by_stamp.pop(next(iter(self.truth_by_stamp)))

    def _on_phase(self, msg) -> None:
        self.predicted = msg
        truth = self.truth_by_stamp.get(msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec)
        if truth is not None:
            self.compared += 1
            self.agree += int(truth == msg.phase)

    def _report(self) -> None:
        if self.truth is None:
            line = "waiting for squat/phase_truth ..."
        else:
            stamp = self.truth.header.stamp
            line = (f"sim t={stamp.sec + stamp.nanosec * 1e-9:7.2f} s  "
                    f"truth {PHASE_NAMES[self.truth.phase]:<4} reps {self.truth.rep_count:<3} "
                    f"imu {self.counts['imu'] / self._period:5.1f} Hz  "
                    f"uwb {self.counts['uwb'] / self._period:4.1f} Hz "
                    f"({self.last_range:.2f} m)")
            if self.predicted is not None:
                line += (f"  | classifier {PHASE_NAMES[self.predicted.phase]:<4} "
                         f"({self.predicted.confidence:.2f}) reps {self.predicted.rep_count}, "
                         f"agrees with truth on {self.agree}/{self.compared} frames")
        self.counts = dict.fromkeys(self.counts, 0)
        self.lines.append(line)
        self._out(line, flush=True)


class GraspMonitor(Node):
    """The grasp loop as a user sees it: each instruction, the grasp it got, the outcome."""

    def __init__(self, namespace: str = "", out=print) -> None:
        from embodied_transfer_interfaces.msg import Grasp3D, GraspOutcome, GraspPose
        from std_msgs.msg import String

        super().__init__("grasp_monitor", namespace=namespace)
        self._out = out
        self.lines: list[str] = []
        self.outcomes: list[bool] = []
        self.create_subscription(String, "instruction", self._on_instruction, RELIABLE_QOS)
        self.create_subscription(GraspPose, "grasp", self._on_grasp, RELIABLE_QOS)
        self.create_subscription(Grasp3D, "grasp_3d", self._on_grasp_3d, RELIABLE_QOS)
        self.create_subscription(GraspOutcome, "grasp_outcome", self._on_outcome, RELIABLE_QOS)

    def _say(self, line: str) -> None:
        self.lines.append(line)
        self._out(line, flush=True)

    def _on_instruction(self, msg) -> None:
        self._say(f"instruction: '{msg.data}'")

    def _on_grasp(self, msg) -> None:
        reasoning = f"  reasoning: {msg.reasoning}" if msg.reasoning else ""
        self._say(f"  grasp x={msg.x:.0f} y={msg.y:.0f} theta={math.degrees(msg.theta):.0f} deg "
                  f"width={msg.width:.0f} px{reasoning}")

    def _on_grasp_3d(self, msg) -> None:
        p = msg.pose.position
        self._say(f"  grasp_3d in {msg.header.frame_id}: ({p.x:.3f}, {p.y:.3f}, {p.z:.3f}) m, "
                  f"opening {msg.width * 1000:.0f} mm, standoff {msg.standoff * 1000:.0f} mm")

    def _on_outcome(self, msg) -> None:
        self.outcomes.append(bool(msg.success))
        self._say(f"  outcome: {'SUCCESS' if msg.success else 'failure'} ({msg.message}); "
                  f"{sum(self.outcomes)}/{len(self.outcomes)} grasps succeeded so far")
