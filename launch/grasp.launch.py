"""ros2 launch embodied_transfer grasp.launch.py [params_file:=F]
    [use_sim_time:=true] [namespace:=NS]

The nodes come from the graph 'grasp' in embodied_transfer/bringup.py, the same description
`embodied-transfer grasp serve` brings up in one process where launch_ros is not installed.
"""
from embodied_transfer.app.bringup import generate_graph_launch_description


def generate_launch_description():
    return generate_graph_launch_description("grasp")
