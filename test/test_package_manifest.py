"""package.xml declares what the package imports (rosdep / pip keys), nothing it does not."""
from __future__ import annotations

import ast
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

#: Top-level module imported → the package.xml key that provides it.
KEYS = {
    "PIL": "python3-pil", "accelerate": "python3-accelerate-pip",
    "ament_index_python": "ament_index_python", "builtin_interfaces": "builtin_interfaces",
    "cv2": "python3-opencv", "cv_bridge": "cv_bridge", "diagnostic_msgs": "diagnostic_msgs",
    "diffusers": "python3-diffusers-pip",
    "embodied_transfer_interfaces": "embodied_transfer_interfaces",
    "geometry_msgs": "geometry_msgs", "huggingface_hub": "python3-huggingface-hub-pip",
    "launch": "launch", "launch_ros": "launch_ros", "lifecycle_msgs": "lifecycle_msgs",
    "matplotlib": "python3-matplotlib", "mujoco": "python3-mujoco-pip",
    "numpy": "python3-numpy", "open_clip": "python3-open-clip-torch-pip",
    "peft": "python3-peft-pip", "rcl_interfaces": "rcl_interfaces", "rclpy": "rclpy",
    "rosbags": "python3-rosbags-pip", "rosgraph_msgs": "rosgraph_msgs",
    "safetensors": "python3-safetensors-pip", "sensor_msgs": "sensor_msgs",
    "std_msgs": "std_msgs", "std_srvs": "std_srvs", "tf2_msgs": "tf2_msgs",
    "tokenizers": "python3-tokenizers-pip", "torch": "python3-torch",
    "tqdm": "python3-tqdm", "transformers": "python3-transformers-pip",
    "yaml": "python3-yaml",
}

#: Declared without a direct import, and why.
RUN_TIME_ONLY = {"lifecycle_msgs": "the lifecycle services every node serves (rclpy.lifecycle)",
                 "python3-gymnasium-robotics-pip": "the Shadow Hand's model files "
                                                   "(sim/shadow_hand.py finds them by path)"}


def imported_modules() -> set[str]:
    found = set()
    for path in (REPO / "embodied_transfer").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return found - set(sys.stdlib_module_names) - {"embodied_transfer"}


def declared() -> set[str]:
    root = ET.parse(REPO / "package.xml").getroot()
    return {e.text.strip() for e in root if e.tag in ("depend", "exec_depend")}


def test_every_import_is_declared_in_package_xml():
    modules = imported_modules()
    unmapped = sorted(modules - set(KEYS))
    assert not unmapped, f"imports without a package.xml key in KEYS: {unmapped}"
    missing = sorted({KEYS[m] for m in modules} - declared())
    assert not missing, f"package.xml lacks exec_depend {missing}"


def test_package_xml_declares_nothing_unused():
    used = {KEYS[m] for m in imported_modules()} | set(RUN_TIME_ONLY)
    assert sorted(declared() - used) == []
