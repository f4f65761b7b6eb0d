"""embodied_transfer: move skills and signals between domains, as ROS 2 nodes.

Pure modules (algorithms, models, data) import no ROS; ROS glue lives in ``ros/`` and
``nodes/``.
"""

__version__ = "0.1.0"
