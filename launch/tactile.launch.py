"""ros2 launch embodied_transfer tactile.launch.py [params_file:=F]
    [use_sim_time:=true] [namespace:=NS]

The nodes come from the graph 'tactile' in embodied_transfer/bringup.py, the same description
`embodied-transfer tactile serve` brings up in one process where launch_ros is not installed.
"""
from embodied_transfer.app.bringup import generate_graph_launch_description


def generate_launch_description():
    return generate_graph_launch_description("tactile")
