"""ROS 2 nodes: one node class per module, translating messages to the pure modules."""
