"""Squats, pure Python: phase labels, real-recording ingest, signals, models (no rclpy)."""
