"""ament_python package embodied_transfer (also pip-installable into a plain venv)."""
from glob import glob

from setuptools import find_packages, setup

PACKAGE = "embodied_transfer"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(include=[PACKAGE, f"{PACKAGE}.*"]),
    package_data={PACKAGE: ["ros/*.xml", "**/*.xml", "**/*.json", "**/*.yaml",
                           "models/**/*.safetensors", "models/**/*.md", "models/**/*.jinja",
                           "models/**/*.txt", "models/**/*.png"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml")),
    ],
    install_requires=["setuptools"],
    zip_safe=False,
    maintainer="embodied_transfer maintainers",
    maintainer_email="maintainers@embodied-transfer.invalid",
    description="Real2Sim wearables, tactile alignment and VLM grasp reasoning as ROS 2 nodes",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "embodied-transfer = embodied_transfer.app.cli:main",
            # One executable per node (`ros2 run embodied_transfer <node>`); the graph in
            # embodied_transfer/bringup.py names these, and test_graph checks they exist.
            "bag_player = embodied_transfer.nodes.bag_player:main",
            "bag_recorder = embodied_transfer.nodes.bag_recorder:main",
            "grasp_reasoning = embodied_transfer.nodes.grasp_reasoning:main",
            "mujoco_bridge = embodied_transfer.nodes.mujoco_bridge:main",
            "real2sim_converter = embodied_transfer.nodes.real2sim_converter:main",
            "squat_phase_classifier = embodied_transfer.nodes.squat_phase_classifier:main",
            "tactile_alignment = embodied_transfer.nodes.tactile_alignment:main",
        ],
    },
)
