"""The other process of the cross-process tests.

``python ros_peer.py publish``: publishes each sample of ros_samples once its topic has a
subscriber, then waits for the test to end it. ``python ros_peer.py serve``: serves
align_tactile and plan_grasp with ros_samples' deterministic answers. Both end on SIGTERM
through the package's own shutdown path (``ros_context`` and ``spin_node``, as every
``ros2 run`` entry point does) and must then exit with status 0.
"""
from __future__ import annotations

import sys
import time

import rclpy

import ros_samples
from embodied_transfer.nodes.common import ros_context, spin_node
from embodied_transfer.ros.qos import RELIABLE_QOS
from embodied_transfer_interfaces.srv import AlignTactile, PlanGrasp


def publish(node) -> None:
    pending = {topic: (node.create_publisher(type(msg), topic, RELIABLE_QOS), msg)
               for topic, msg in ros_samples.samples().items()}
    deadline = time.monotonic() + 30.0
    while pending and rclpy.ok() and time.monotonic() < deadline:
        for topic, (pub, msg) in list(pending.items()):
            if pub.get_subscription_count() > 0:
                pub.publish(msg)
                del pending[topic]
        time.sleep(0.01)
    print("published" if not pending else f"no subscriber for {sorted(pending)}", flush=True)
    spin_node(node)  # keep the writers alive until the test terminates us


def serve(node) -> None:
    node.create_service(AlignTactile, "align_tactile", ros_samples.answer_align)
    node.create_service(PlanGrasp, "plan_grasp", ros_samples.answer_plan)
    print("serving", flush=True)
    spin_node(node)


if __name__ == "__main__":
    with ros_context():
        {"publish": publish, "serve": serve}[sys.argv[1]](rclpy.create_node("ros_peer"))
