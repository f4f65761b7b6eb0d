"""``embodied-transfer info | export-images``: look into a rosbag2 bag (no ROS graph)."""
from __future__ import annotations

from embodied_transfer.ros.bags import BagReader


def add_parsers(sub) -> None:
    """``info`` and ``export-images`` on the top-level subparsers."""
    info = sub.add_parser("info", help="print a bag's topics, types and counts")
    info.add_argument("bag")
    info.set_defaults(run=lambda args: _info(args.bag))

    export = sub.add_parser("export-images", help="write a bag's sensor_msgs/Image frames as PNG")
    export.add_argument("bag")
    export.add_argument("--topic", required=True, help="an image topic of the bag")
    export.add_argument("--out", required=True, help="directory for NNNNNN.png files")
    export.set_defaults(run=lambda args: _export_images(args.bag, args.topic, args.out))


def _info(path: str) -> int:
    with BagReader(path) as bag:
        print(f"bag {bag.path}: {bag.duration_ns * 1e-9:.3f} s")
        counts = bag.message_counts
        for topic, msgtype in sorted(bag.topics.items()):
            print(f"  {topic:<32} {msgtype:<48} {counts[topic]}")
    return 0


def _export_images(path: str, topic: str, out: str) -> int:
    """Decode every Image on ``topic`` (package converter) and write it as a PNG."""
    from pathlib import Path

    import cv2
    from rclpy.serialization import deserialize_message
    from sensor_msgs.msg import Image

    from embodied_transfer.ros.bags import BagError
    from embodied_transfer.ros.conversions import convert_color, image_to_numpy

    out_dir = Path(out)
    with BagReader(path) as bag:
        bag.check_topics([topic])
        if bag.topics[topic] != "sensor_msgs/msg/Image":
            raise BagError(f"{topic} carries {bag.topics[topic]}, not sensor_msgs/msg/Image")
        out_dir.mkdir(parents=True, exist_ok=True)
        count = 0
        for count, message in enumerate(bag.messages([topic]), start=1):
            msg = deserialize_message(message.data, Image)
            array = image_to_numpy(msg)
            if msg.encoding == "rgb8":
                array = convert_color(array, "rgb8", "bgr8")  # OpenCV writes BGR
            cv2.imwrite(str(out_dir / f"{count:06d}.png"), array)
    print(f"wrote {count} image(s) to {out_dir}")
    return 0
