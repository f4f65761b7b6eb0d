"""Grasp reasoning (RT-Grasp): rectangles and their metric, Cornell IO, reasoning text, backends."""
