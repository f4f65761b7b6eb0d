"""bag_recorder: write chosen topics to a rosbag2 bag (sqlite3 or mcap) as CDR payloads.

Topics are subscribed as soon as a publisher makes their type known, with a QoS that
matches the publishers (reliable only if all of them are reliable, transient local, so that
latched messages such as ``/tf_static`` are received, only if all of them are; like ``ros2
bag record``), and the publishers' offered QoS profiles are stored in the bag's metadata.
Messages are stored with their receive time, byte for byte as received.
"""
from __future__ import annotations

import threading

from rclpy.node import Node

from embodied_transfer.nodes.bag_player import message_class
from embodied_transfer.nodes.common import Endpoint, Interface, declare_config, read_config, run
from embodied_transfer.ros.bags import BackgroundBagWriter, BagError
from embodied_transfer.ros.config import BagRecorderConfig
from embodied_transfer.ros.qos import replay_qos, to_bag_qos


class BagRecorder(Node):
    """Records ``topics`` into the bag ``out`` until destroyed."""

    CONFIG = BagRecorderConfig
    INTERFACE = Interface(subscribes=(Endpoint("(topics)", "any, as offered"),))

    def __init__(self, **kwargs) -> None:
        super().__init__("bag_recorder", **kwargs)
        self._lock = threading.Lock()
        self.writer: BackgroundBagWriter | None = None
        self.counts: dict[str, int] = {}
        declare_config(self, BagRecorderConfig)
        config = read_config(self, BagRecorderConfig)
        out, storage, topics = config.out, config.storage, config.topics
        self.discovery_period = config.discovery_period
        if not out:
            raise BagError("parameter 'out' is empty: give the bag directory to create")
        if not topics:
            raise BagError("no topics to record: set parameter 'topics'")
        self.writer = BackgroundBagWriter(out, storage)
        self.topics = [self.resolve_topic_name(t) for t in topics]
        self.counts = {t: 0 for t in self.topics}
        self._subs = {}
        self._timer = self.create_timer(self.discovery_period, self._discover)
        self._discover()

    def _discover(self) -> None:
        graph = dict(self.get_topic_names_and_types())
        for topic in self.topics:
            if topic in self._subs or topic not in graph:
                continue
            msgtype = graph[topic][0]
            if len(graph[topic]) > 1:
                self.get_logger().warning(f"{topic} has several types {graph[topic]}; "
                                          f"recording {msgtype}")
            offered = [i.qos_profile for i in self.get_publishers_info_by_topic(topic)]
            try:
                self.writer.add_topic(topic, msgtype, [to_bag_qos(q) for q in offered])
                self._subs[topic] = self.create_subscription(
                    message_class(msgtype), topic, self._callback_for(topic),
                    replay_qos(offered), raw=True)
            except BagError as exc:
                self.get_logger().error(f"cannot record {topic}: {exc}")
                self._subs[topic] = None
                continue
            self.get_logger().info(f"recording {topic} [{msgtype}]")

    def _callback_for(self, topic: str):
        def callback(data: bytes) -> None:
            stamp = self.get_clock().now().nanoseconds
            with self._lock:
                self.writer.write(topic, stamp, data)
                self.counts[topic] += 1
        return callback

    def destroy_node(self) -> None:
        with self._lock:
            if self.writer is not None:
                self.writer.close()
                self.writer = None
                self.get_logger().info(
                    "recorded " + ", ".join(f"{t}: {n}" for t, n in self.counts.items()))
        super().destroy_node()


def main(args=None) -> int:
    return run(BagRecorder, args)
