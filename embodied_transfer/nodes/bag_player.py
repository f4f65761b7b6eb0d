"""bag_player: publish a rosbag2 bag's messages with their recorded timing.

CDR payloads are published as they are stored (no decode/encode), so what subscribers get
is byte-identical to the bag. ``/clock`` (rosgraph_msgs/Clock) follows the bag's time when
``clock`` is true, for nodes running with ``use_sim_time``.
"""
from __future__ import annotations

import importlib
import threading
import time

from rclpy.node import Node
from rclpy.task import Future
from rosgraph_msgs.msg import Clock

from embodied_transfer.nodes.common import Endpoint, Interface, declare_config, read_config, run
from embodied_transfer.ros.bags import BagError, BagReader
from embodied_transfer.ros.config import BagPlayerConfig
from embodied_transfer.ros.conversions import ns_to_stamp
from embodied_transfer.ros.qos import CLOCK_QOS, replay_qos


def message_class(msgtype: str):
    """The rclpy message class for a ROS 2 type name such as ``sensor_msgs/msg/Imu``."""
    package, kind, name = msgtype.split("/")
    try:
        return getattr(importlib.import_module(f"{package}.{kind}"), name)
    except (ImportError, AttributeError):
        raise BagError(f"message type {msgtype} is not available to rclpy here "
                       f"(install the {package} interface package)") from None


def absolute(topic: str) -> str:
    """Bags store fully qualified names; accept ``imu`` for ``/imu``."""
    return topic if topic.startswith("/") else f"/{topic}"


class BagPlayer(Node):
    """Plays one bag once (or in a loop); ``finished`` completes when playback ends."""

    CONFIG = BagPlayerConfig
    INTERFACE = Interface(publishes=(Endpoint("(the bag's topics)", "as recorded"),
                                     Endpoint("/clock", "rosgraph_msgs/Clock", "clock")))

    def __init__(self, **kwargs) -> None:
        super().__init__("bag_player", **kwargs)
        declare_config(self, BagPlayerConfig)
        config = read_config(self, BagPlayerConfig)
        path, topics = config.bag, config.topics
        self.rate, self.publish_clock = config.rate, config.clock
        self.clock_hz, self.loop = config.clock_rate_hz, config.loop
        self.start_delay = config.start_delay
        self.wait_for_subscribers = config.wait_for_subscribers
        if not path:
            raise BagError("parameter 'bag' is empty: give the bag to play")
        if not self.rate > 0:
            raise BagError(f"rate must be > 0, got {self.rate}")
        self.bag = BagReader(path)
        self.topics = self.bag.check_topics([absolute(t) for t in topics]) or list(self.bag.topics)
        # each topic with the QoS its publishers offered when recorded (a latched /tf_static
        # reaches late subscribers), as ros2 bag play does; BAG_QOS when the bag has none
        self._pubs = {t: self.create_publisher(message_class(self.bag.topics[t]), t,
                                               replay_qos(self.bag.offered_qos(t)))
                      for t in self.topics}
        self._clock_pub = self.create_publisher(Clock, "/clock", CLOCK_QOS) \
            if self.publish_clock else None
        self.finished = Future()
        self.published = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._play_safely, daemon=True)
        self._thread.start()

    def _play_safely(self) -> None:
        try:
            self._wait_for_subscribers()
            if self._stop.wait(self.start_delay):
                return
            while not self._stop.is_set():
                self._play_once()
                if not self.loop:
                    break
        except BagError as exc:
            self.get_logger().error(str(exc))
            self.finished.set_exception(exc)
            return
        self.get_logger().info(f"played {self.published} message(s) from {self.bag.path}")
        self.finished.set_result(self.published)

    def _wait_for_subscribers(self) -> None:
        deadline = time.monotonic() + self.wait_for_subscribers
        while time.monotonic() < deadline and not self._stop.is_set():
            if all(p.get_subscription_count() > 0 for p in self._pubs.values()):
                return
            time.sleep(0.01)

    def _play_once(self) -> None:
        t0_bag = None
        t0_wall = time.monotonic()
        for message in self.bag.messages(self.topics):
            if t0_bag is None:
                t0_bag = message.timestamp
            due = t0_wall + (message.timestamp - t0_bag) * 1e-9 / self.rate
            if not self._sleep_until(due, t0_bag, t0_wall):
                return
            if self._clock_pub is not None:
                self._publish_clock(message.timestamp)
            self._pubs[message.topic].publish(message.data)
            self.published += 1

    def _sleep_until(self, due: float, t0_bag: int, t0_wall: float) -> bool:
        """Sleep until ``due`` (monotonic), ticking /clock; False if stopped meanwhile."""
        while True:
            now = time.monotonic()
            if now >= due:
                return not self._stop.is_set()
            step = due - now
            if self._clock_pub is not None:
                step = min(step, 1.0 / self.clock_hz)
            if self._stop.wait(step):
                return False
            if self._clock_pub is not None and time.monotonic() < due:
                self._publish_clock(t0_bag + int((time.monotonic() - t0_wall) * self.rate * 1e9))

    def _publish_clock(self, stamp_ns: int) -> None:
        self._clock_pub.publish(Clock(clock=ns_to_stamp(stamp_ns)))

    def stop(self) -> None:
        """Stop playback (used on shutdown)."""
        self._stop.set()
        self._thread.join(timeout=2.0)

    def destroy_node(self) -> None:
        if hasattr(self, "_thread"):
            self.stop()
        if hasattr(self, "bag"):
            self.bag.close()
        super().destroy_node()


def main(args=None) -> int:
    return run(BagPlayer, args, until=lambda node: node.finished)
