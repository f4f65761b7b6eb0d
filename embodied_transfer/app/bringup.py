"""The node graphs of the package, described once and brought up two ways.

``launch/*.launch.py`` turns a graph into launch_ros actions on a real ROS 2 install;
:func:`bring_up` composes the same nodes in this process on one executor (for
machines with rclpy from PyPI, where launch_ros is missing). Each node reads its defaults
from ``config/<node>.yaml``, then an optional user ``params_file`` on top: both ways hand the
files to rcl, which applies a file's keys as ``ros2 launch`` does (``/**:`` and
``/**/<node>:`` under any namespace, a bare ``<node>:`` only outside one).
"""
from __future__ import annotations

import importlib
import logging
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import yaml

from embodied_transfer.core.errors import EmbodiedTransferError

PACKAGE = "embodied_transfer"


class BringupError(EmbodiedTransferError):
    """A graph could not be brought up (unknown graph, bad parameter file, failed start)."""


@dataclass(frozen=True)
class NodeSpec:
    """One node of a graph: ``name`` is the node name, executable and config file stem."""

    name: str
    module: str                      # embodied_transfer.nodes.<module>
    cls: str                         # the Node subclass in that module
    lifecycle: bool = False
    remappings: tuple[tuple[str, str], ...] = ()
    description: str = ""
    #: Parameter values this graph sets over the config file (a user params_file wins).
    parameters: tuple[tuple[str, object], ...] = ()

    @property
    def params_file(self) -> Path:
        return config_dir() / f"{self.name}.yaml"

    def node_class(self):
        return getattr(importlib.import_module(self.module), self.cls)


BAG_PLAYER = NodeSpec("bag_player", "embodied_transfer.nodes.bag_player", "BagPlayer",
                      description="plays a rosbag2 bag with its recorded timing")
BAG_RECORDER = NodeSpec("bag_recorder", "embodied_transfer.nodes.bag_recorder", "BagRecorder",
                        description="records topics into a rosbag2 bag")
MUJOCO_BRIDGE = NodeSpec("mujoco_bridge", "embodied_transfer.nodes.mujoco_bridge", "MujocoBridge",
                         lifecycle=True,
                         description="simulated squatter: imu, uwb/range, squat/phase_truth, "
                                     "/clock")
REAL2SIM_CONVERTER = NodeSpec(
    "real2sim_converter", "embodied_transfer.nodes.real2sim_converter", "Real2SimConverter",
    lifecycle=True, description="imu + uwb/range -> real2sim/features (multi-encoder VAE)")
SQUAT_PHASE_CLASSIFIER = NodeSpec(
    "squat_phase_classifier", "embodied_transfer.nodes.squat_phase_classifier",
    "SquatPhaseClassifier", lifecycle=True,
    description="real2sim/features -> squat/phase (sim-trained Bi-GRU, repetition count)")

TABLETOP_BRIDGE = NodeSpec("mujoco_bridge", "embodied_transfer.nodes.mujoco_bridge",
                           "MujocoBridge", lifecycle=True, parameters=(("scene", "tabletop"),),
                           description="simulated tabletop: image_raw, depth, camera_info, "
                                       "/tf_static, instruction; executes grasp_3d -> "
                                       "grasp_outcome")
GRASP_REASONING = NodeSpec(
    "grasp_reasoning", "embodied_transfer.nodes.grasp_reasoning", "GraspReasoning",
    lifecycle=True, description="image_raw (+ depth, camera_info) + instruction -> grasp "
                                "(GraspPose), grasp_3d, grasp_pose, grasp_image; service "
                                "plan_grasp")

TACTILE_ALIGNMENT = NodeSpec(
    "tactile_alignment", "embodied_transfer.nodes.tactile_alignment", "TactileAlignment",
    lifecycle=True, description="service align_tactile; tactile/input -> tactile/converted "
                                "(shared tactile latent, UniTacHand)")

#: Graph name → nodes. ``sim`` is the simulated graph `make demo` runs; the MuJoCo bridge,
#: converter and classifier join it as they are built (see the README's status table).
GRAPHS: dict[str, tuple[NodeSpec, ...]] = {
    "sim": (MUJOCO_BRIDGE, REAL2SIM_CONVERTER, SQUAT_PHASE_CLASSIFIER),
    "grasp_sim": (TABLETOP_BRIDGE, GRASP_REASONING),
    "real2sim": (REAL2SIM_CONVERTER, SQUAT_PHASE_CLASSIFIER),
    "grasp": (GRASP_REASONING,),
    "tactile": (TACTILE_ALIGNMENT,),
    "replay": (BAG_PLAYER,),
    "record": (BAG_RECORDER,),
}


def graph(name: str) -> tuple[NodeSpec, ...]:
    try:
        return GRAPHS[name]
    except KeyError:
        raise BringupError(f"unknown graph '{name}' (known: {', '.join(GRAPHS)})") from None


def all_nodes() -> list[NodeSpec]:
    """Every node named in any graph, once."""
    seen: dict[str, NodeSpec] = {}
    for specs in GRAPHS.values():
        for spec in specs:
            seen.setdefault(spec.name, spec)
    return list(seen.values())


def config_dir() -> Path:
    """``config/`` of the source tree when running from it, else the installed share dir."""
    source = Path(__file__).resolve().parents[2] / "config"
    if source.is_dir():
        return source
    try:
        from ament_index_python.packages import get_package_share_directory

        return Path(get_package_share_directory(PACKAGE)) / "config"
    except Exception as exc:  # PackageNotFoundError, or ament_index missing
        raise BringupError(f"cannot find the {PACKAGE} config directory: {exc}") from None


def _matches(key: str, node_name: str, namespace: str) -> bool:
    """Whether a parameter file's node key applies to ``namespace``/``node_name``, as rcl
    decides: ``/**`` and ``/**/name`` anywhere, ``/ns/name`` exactly, a bare ``name`` (or
    ``/name``) only outside a namespace; ``*`` stands for one name, ``**`` for any."""
    full = "/".join(part for part in (namespace.strip("/"), node_name) if part)
    key = key if key.startswith("/") else "/" + key
    pattern = re.escape(key).replace(r"/\*\*", "(/[^/]+)*").replace(r"\*", "[^/]+")
    return re.fullmatch(pattern, "/" + full) is not None


def read_params_file(path: Path) -> dict:
    """A ROS 2 parameter file as {node key: section}, or :class:`BringupError` saying why
    it cannot be one."""
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except FileNotFoundError:
        raise BringupError(f"parameter file '{path}' does not exist") from None
    except yaml.YAMLError as exc:
        raise BringupError(f"parameter file '{path}' is not valid YAML: {exc}") from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise BringupError(f"parameter file '{path}' must map node names to ros__parameters")
    return data


def load_params(path: Path, node_name: str, namespace: str = "") -> dict:
    """The ``ros__parameters`` a ROS 2 parameter file gives node ``node_name`` in
    ``namespace`` (or {}), merged in the file's order as rcl merges them."""
    params: dict = {}
    for key, section in read_params_file(path).items():
        if _matches(str(key), node_name, namespace):
            params.update(section.get("ros__parameters") or {})
    return params


def _unmatched_warning(path: Path, names: Iterable[str], namespace: str) -> str | None:
    """A warning when no key of a user parameter file applies to any node of the graph (a
    :class:`BringupError` when it is no parameter file)."""
    data = read_params_file(path)
    if any(_matches(str(k), n, namespace) for k in data for n in names):
        return None
    return (f"no key of {path} ({', '.join(map(str, data)) or 'none'}) applies to the nodes "
            f"{', '.join(names)} in namespace '{namespace or '/'}'; use '/**:' or "
            f"'/**/<node>:' keys to match under any namespace")


def parameter_layers(spec: NodeSpec, params_file: str | None) -> list:
    """What a node's parameters come from, later ones winning: its config file, the graph's
    own values (a dict), the user's ``params_file``; both ways of starting a graph use it."""
    layers: list = [spec.params_file]
    if spec.parameters:
        layers.append(dict(spec.parameters))
    if params_file:
        layers.append(Path(params_file))
    return layers


@dataclass
class Bringup:
    """The nodes brought up in this process and the executor spinning them."""

    nodes: list = field(default_factory=list)
    executor: object = None

    def shutdown(self) -> None:
        if self.executor is not None:
            self.executor.shutdown(timeout_sec=1.0)
        for node in reversed(self.nodes):
            node.destroy_node()
        self.nodes.clear()


def bring_up(specs: Iterable[NodeSpec], *, namespace: str = "", params_file: str | None = None,
             use_sim_time: bool = False, overrides: dict[str, dict] | None = None,
             executor=None) -> Bringup:
    """Create, configure and activate ``specs`` in this process (rclpy must be initialised).

    Parameters come from the node's config file, then ``params_file``, then
    ``overrides[node_name]`` (what the command line sets); remappings from the spec.
    Lifecycle nodes are configured and activated; a failed transition raises
    :class:`BringupError` after destroying what was created.
    """
    from embodied_transfer.nodes.common import Executor, autostart

    specs = list(specs)
    if params_file:
        warning = _unmatched_warning(Path(params_file), [s.name for s in specs], namespace)
        if warning:
            logging.getLogger(__name__).warning(warning)
    result = Bringup(executor=executor or Executor())
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for spec in specs:
                result.nodes.append(_create(spec, namespace, params_file, use_sim_time,
                                            (overrides or {}).get(spec.name, {}), Path(tmp)))
                if not autostart(result.nodes[-1]):
                    raise BringupError(f"node {spec.name} failed to start (see its log above)")
                result.executor.add_node(result.nodes[-1])
    except BaseException:
        result.shutdown()
        raise
    return result


def _create(spec: NodeSpec, namespace: str, params_file: str | None, use_sim_time: bool,
            overrides: dict, tmp: Path):
    """One node, its parameter files given to rcl exactly as ``ros2 launch`` gives them."""
    from rclpy.exceptions import InvalidParameterValueException
    from rclpy.parameter import Parameter

    files = parameter_layers(spec, params_file)
    for i, layer in enumerate(files):
        if isinstance(layer, dict):      # a file for rcl, as launch_ros writes one
            files[i] = tmp / f"{spec.name}_{i}.yaml"
            files[i].write_text(yaml.safe_dump({"/**": {"ros__parameters": layer}}))
    values = {**overrides, "use_sim_time": use_sim_time}
    # ROS parameters cannot type an empty list: write it as [""] (nodes drop blanks).
    values = {k: ([""] if v == [] else v) for k, v in values.items()}
    cli = ["--ros-args", *(a for f in files for a in ("--params-file", str(f))),
           *(a for src, dst in spec.remappings for a in ("-r", f"{src}:={dst}"))]
    try:
        return spec.node_class()(
            namespace=namespace, cli_args=cli, use_global_arguments=False,
            parameter_overrides=[Parameter(k, value=v) for k, v in values.items()])
    except InvalidParameterValueException as exc:   # outside a declared range
        raise BringupError(f"node {spec.name} failed to start: {exc}") from None


def domain_summary() -> str:
    """A line naming the ROS domain, for what `embodied-transfer` prints at start."""
    return (f"ROS_DOMAIN_ID={os.environ.get('ROS_DOMAIN_ID', '0')}, discovery range "
            f"{os.environ.get('ROS_AUTOMATIC_DISCOVERY_RANGE', 'SUBNET')}")


# --- launch_ros (real ROS 2 installs) ------------------------------------------------------

#: Graphs whose own simulator publishes /clock: their nodes follow it by default.
SIM_GRAPHS = ("sim", "grasp_sim")


def uses_sim_time(name: str) -> bool:
    """The default of ``use_sim_time`` for graph ``name``."""
    return name in SIM_GRAPHS


LAUNCH_ARGUMENTS = {
    "params_file": ("", "ROS 2 parameter YAML applied over the package's config/ defaults"),
    "use_sim_time": ("false", "Use /clock (simulation or bag replay with --clock) as time "
                              "(default true in the sim graphs, whose bridge publishes it)"),
    "namespace": ("", "Namespace for every node of the graph"),
    "autostart": ("true", "Lifecycle nodes configure and activate themselves; false: they "
                          "wait for a lifecycle manager"),
}


def launch_arguments(name: str) -> dict[str, tuple[str, str]]:
    """The launch arguments of graph ``name``: (default, description) each."""
    args = dict(LAUNCH_ARGUMENTS)
    args["use_sim_time"] = (str(uses_sim_time(name)).lower(), args["use_sim_time"][1])
    return args


def launch_node_kwargs(spec: NodeSpec, params_file: str, use_sim_time: bool,
                       namespace: str, autostart: bool | None = None) -> dict:
    """Keyword arguments of the launch_ros Node action for ``spec`` (pure, testable);
    ``autostart`` (lifecycle nodes) set over the files when given."""
    parameters: list = [layer if isinstance(layer, dict) else str(layer)
                        for layer in parameter_layers(spec, params_file)]
    parameters.append({"use_sim_time": use_sim_time})
    if spec.lifecycle and autostart is not None:
        parameters[-1]["autostart"] = autostart
    return {"package": PACKAGE, "executable": spec.name, "name": spec.name,
            "namespace": namespace, "parameters": parameters,
            "remappings": list(spec.remappings), "output": "screen"}


def generate_graph_launch_description(name: str):
    """A LaunchDescription for graph ``name``: its arguments, then its nodes."""
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument, OpaqueFunction
    from launch.substitutions import LaunchConfiguration
    from launch_ros.actions import LifecycleNode, Node

    arguments_of_graph = launch_arguments(name)

    def nodes(context):
        value = {arg: LaunchConfiguration(arg).perform(context) for arg in arguments_of_graph}
        sim_time = value["use_sim_time"].lower() in ("1", "true", "yes")
        start = value["autostart"].lower() in ("1", "true", "yes")
        actions = []
        for spec in graph(name):
            kwargs = launch_node_kwargs(spec, value["params_file"], sim_time, value["namespace"],
                                        start)
            # Lifecycle nodes configure and activate themselves on start unless autostart is
            # false (then a lifecycle manager drives them; see nodes.common.autostart).
            actions.append((LifecycleNode if spec.lifecycle else Node)(**kwargs))
        return actions

    arguments = [DeclareLaunchArgument(arg, default_value=default, description=text)
                 for arg, (default, text) in arguments_of_graph.items()]
    return LaunchDescription([*arguments, OpaqueFunction(function=nodes)])
