"""Thin ROS 2 helpers shared by every node: conversions, QoS, diagnostics, bags, isolation."""
