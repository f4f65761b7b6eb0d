"""Grasp reasoning (RT-Grasp): rectangles and their metric, Cornell IO, reasoning text, backends,
and the MuJoCo tabletop as grasp data (image labels, the live task, synthetic datasets)."""
