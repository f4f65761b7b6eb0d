"""The graph description, entry points, config files and one-process bringup agree."""
from __future__ import annotations

import configparser
import importlib
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from rclpy.parameter import Parameter

from embodied_transfer.app import bringup
from embodied_transfer.app.bringup import BringupError

REPO = Path(__file__).resolve().parent.parent


def console_scripts() -> dict[str, str]:
    """name → 'module:function' as declared in setup.py."""
    text = (REPO / "setup.py").read_text()
    return dict(re.findall(r'"([\w-]+) = ([\w.]+:\w+)"', text))


def test_every_graph_node_has_an_entry_point_and_a_config_file():
    scripts = console_scripts()
    assert bringup.all_nodes(), "no node in any graph"
    for spec in bringup.all_nodes():
        assert spec.name in scripts, f"{spec.name} has no console_scripts entry in setup.py"
        module, func = scripts[spec.name].split(":")
        assert module == spec.module
        assert callable(getattr(importlib.import_module(module), func))
        assert spec.params_file.is_file(), f"config/{spec.name}.yaml is missing"
        assert isinstance(spec.node_class(), type)


def test_config_files_name_known_nodes_only():
    names = {spec.name for spec in bringup.all_nodes()}
    for path in (REPO / "config").glob("*.yaml"):
        data = yaml.safe_load(path.read_text())
        key = f"/**/{path.stem}"      # rcl applies it under any namespace
        assert list(data) == [key], f"{path.name} must hold exactly the node key {key}"
        assert path.stem in names, f"{path.name} configures a node no graph names"
        assert "ros__parameters" in data[key]


def required_overrides(tmp_path: Path) -> dict[str, dict]:
    """What each node needs to construct at all (paths to real files)."""
    from test_bags import write_bag

    write_bag(tmp_path / "bag", "sqlite3", n=1)
    return {"bag_player": {"bag": str(tmp_path / "bag"), "start_delay": 60.0},
            "bag_recorder": {"out": str(tmp_path / "out"), "topics": ["/imu"]}}


@pytest.mark.ros
def test_every_config_parameter_is_declared_by_its_node(tmp_path, rclpy_context):
    overrides = required_overrides(tmp_path)
    for spec in bringup.all_nodes():
        started = bringup.bring_up([spec], overrides=overrides)
        try:
            node = started.nodes[0]
            declared = set(bringup.load_params(spec.params_file, spec.name))
            missing = [p for p in declared if not node.has_parameter(p)]
            assert not missing, f"{spec.name} does not declare {missing}"
            for name in declared:
                assert node.describe_parameter(name).description, f"{spec.name}.{name}"
        finally:
            started.shutdown()


@pytest.mark.ros
def test_config_defaults_equal_the_defaults_the_nodes_declare(tmp_path, rclpy_context):
    """config/*.yaml and the declare() calls write each default twice; they must agree, so
    `ros2 run` without a params file behaves as the package's launch files do."""
    required = required_overrides(tmp_path)
    for spec in bringup.all_nodes():
        need = required.get(spec.name, {})
        node = spec.node_class()(parameter_overrides=[Parameter(k, value=v)
                                                      for k, v in need.items()],
                                 use_global_arguments=False)
        try:
            for name, value in bringup.load_params(spec.params_file, spec.name).items():
                if name in need:
                    continue
                declared = node.get_parameter(name).value
                declared = list(declared) if isinstance(declared, (list, tuple)) else declared
                assert declared == value or (value == [] and declared in ([], [""])), \
                    f"{spec.name}.{name}: config says {value!r}, the node declares {declared!r}"
        finally:
            node.destroy_node()


@pytest.mark.ros
def test_bringup_applies_namespace_params_file_and_sim_time(tmp_path, rclpy_context):
    overrides = required_overrides(tmp_path)
    user = tmp_path / "params.yaml"
    # rcl's rules: a bare node name applies outside a namespace only; /** and /**/node anywhere
    user.write_text("bag_player:\n  ros__parameters:\n    rate: 4.0\n"
                    "/**:\n  ros__parameters:\n    loop: true\n"
                    "/**/bag_player:\n  ros__parameters:\n    start_delay: 30.0\n")
    overrides["bag_player"].pop("start_delay")
    for namespace, rate in (("robot1", 1.0), ("", 4.0)):
        started = bringup.bring_up([bringup.BAG_PLAYER], namespace=namespace,
                                   params_file=str(user), use_sim_time=True,
                                   overrides=overrides)
        try:
            node = started.nodes[0]
            assert node.get_fully_qualified_name() == f"/{namespace + '/' * bool(namespace)}" \
                                                      "bag_player"
            assert node.get_parameter("rate").value == rate
            assert node.get_parameter("loop").value is True
            assert node.get_parameter("start_delay").value == 30.0
            assert node.get_parameter("use_sim_time").value is True
        finally:
            started.shutdown()


@pytest.mark.ros
@pytest.mark.parametrize("namespace", ["", "robot1", "fleet/robot1"])
def test_package_and_user_params_files_reach_plain_nodes_in_any_namespace(
        tmp_path, rclpy_context, namespace):
    """What ros2 launch does: the node is given --params-file config/<node>.yaml and the
    user's file; rcl matches the keys against the node's namespace."""
    from embodied_transfer.nodes.real2sim_converter import Real2SimConverter

    package = tmp_path / "package.yaml"          # the package file with a changed default
    package.write_text((REPO / "config/real2sim_converter.yaml").read_text()
                       .replace("flush_after_s: 0.5", "flush_after_s: 0.77"))
    user = tmp_path / "user.yaml"
    user.write_text("/**:\n  ros__parameters:\n    queue_size: 300\n")
    node = Real2SimConverter(namespace=namespace, use_global_arguments=False, cli_args=[
        "--ros-args", "--params-file", str(package), "--params-file", str(user)])
    try:
        assert node.get_parameter("flush_after_s").value == 0.77
        assert node.get_parameter("queue_size").value == 300
        assert bringup.load_params(package, "real2sim_converter", namespace)[
            "flush_after_s"] == 0.77
    finally:
        node.destroy_node()


def test_params_file_keys_match_as_rcl_matches_them():
    m = bringup._matches
    assert m("/**", "node", "a/b") and m("/**/node", "node", "a") and m("/**/node", "node", "")
    assert m("node", "node", "") and m("/node", "node", "") and not m("node", "node", "robot1")
    assert m("/robot1/node", "node", "robot1") and not m("/robot1/node", "node", "robot2")
    assert m("/*/node", "node", "robot1") and not m("/*/node", "node", "a/b")
    assert not m("/**/other", "node", "robot1")


def test_bad_graph_and_params_files(tmp_path):
    with pytest.raises(BringupError, match="unknown graph 'nope'"):
        bringup.graph("nope")
    with pytest.raises(BringupError, match="does not exist"):
        bringup.load_params(tmp_path / "missing.yaml", "x")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [unclosed\n")
    with pytest.raises(BringupError, match="not valid YAML"):
        bringup.load_params(bad, "x")


def test_setup_cfg_installs_executables_where_ros2_run_looks():
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    assert cfg["install"]["install_scripts"] == "$base/lib/embodied_transfer"
    assert cfg["develop"]["script_dir"] == "$base/lib/embodied_transfer"


def test_sim_command_says_what_it_started(cli):
    rc, out, err = cli("sim", "--duration", "1")
    assert rc == 0, err
    specs = bringup.graph("sim")
    assert specs and all(spec.name in out for spec in specs)


def test_launch_files_describe_known_graphs():
    import ast

    files = sorted((REPO / "launch").glob("*.launch.py"))
    assert {f.name.split(".")[0] for f in files} == set(bringup.GRAPHS)
    for path in files:
        tree = ast.parse(path.read_text())
        calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)
                 and getattr(n.func, "id", "") == "generate_graph_launch_description"]
        assert [c.args[0].value for c in calls] == [path.name.split(".")[0]]


def test_launch_node_arguments_match_the_one_process_bringup():
    specs = {spec for specs in bringup.GRAPHS.values() for spec in specs}
    assert bringup.TABLETOP_BRIDGE in specs
    for spec in specs:
        kwargs = bringup.launch_node_kwargs(spec, "/tmp/user.yaml", True, "robot1")
        assert kwargs["executable"] == spec.name == kwargs["name"]
        assert kwargs["package"] == "embodied_transfer"
        graph_values = [dict(spec.parameters)] if spec.parameters else []
        assert kwargs["parameters"] == [str(spec.params_file), *graph_values, "/tmp/user.yaml",
                                        {"use_sim_time": True}]
        assert kwargs["namespace"] == "robot1"
        assert kwargs["remappings"] == list(spec.remappings)
    assert set(bringup.LAUNCH_ARGUMENTS) == {"params_file", "use_sim_time", "namespace",
                                             "autostart"}
    assert all(text for _, text in bringup.LAUNCH_ARGUMENTS.values())


def test_sim_graphs_follow_their_bridges_clock_by_default():
    for name in bringup.GRAPHS:
        default = bringup.launch_arguments(name)["use_sim_time"][0]
        assert default == ("true" if name in ("sim", "grasp_sim") else "false"), name
    from embodied_transfer.app.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["sim"]).use_sim_time is None               # the graph's default
    assert parser.parse_args(["sim", "--no-use-sim-time"]).use_sim_time is False


class ModelNode:
    """A lifecycle node that, like the model nodes, fails configure without its model."""

    def __new__(cls, **kwargs):
        from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn

        class _Model(LifecycleNode):
            def __init__(self) -> None:
                super().__init__("model_node", **kwargs)
                self.declare_parameter("model_path", "")
                self.loaded = None

            def on_configure(self, state):
                path = Path(self.get_parameter("model_path").value)
                if not path.is_file():
                    self.get_logger().error(f"model file '{path}' not found")
                    return TransitionCallbackReturn.FAILURE
                self.loaded = path.read_text()
                return TransitionCallbackReturn.SUCCESS

        return _Model()


@pytest.mark.ros
def test_bringup_activates_lifecycle_nodes_and_fails_without_model(tmp_path, rclpy_context,
                                                                    monkeypatch):
    spec = bringup.NodeSpec("model_node", "test_graph", "ModelNode", lifecycle=True)
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "model_node.yaml").write_text(
        "model_node:\n  ros__parameters:\n    model_path: ''\n")
    monkeypatch.setattr(bringup, "config_dir", lambda: tmp_path / "config")
    model = tmp_path / "model.txt"
    model.write_text("weights")
    ok = bringup.bring_up([spec], overrides={"model_node": {"model_path": str(model)}})
    try:
        node = ok.nodes[0]
        assert node.loaded == "weights"
        assert node._state_machine.current_state[1] == "active"
    finally:
        ok.shutdown()
    with pytest.raises(BringupError, match="model_node failed to start"):
        bringup.bring_up([spec], overrides={"model_node": {"model_path": str(tmp_path / "no")}})


@pytest.mark.ros
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ros2_run_entry_point_ends_cleanly_on_a_signal(rclpy_context, sig):
    """What ``ros2 run`` / ``ros2 launch`` do to a node: start it, then Ctrl-C or SIGTERM.

    The node must exit with status 0 and no traceback, wherever the signal lands (rclpy
    shuts the context down from its signal thread, racing the executor's rcl calls).
    """
    from embodied_transfer_interfaces.srv import AlignTactile

    caller = rclpy_context.create_node("signal_test")
    client = caller.create_client(AlignTactile, "align_tactile")
    proc = subprocess.Popen([sys.executable, "-m", "embodied_transfer.nodes.tactile_alignment"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert client.wait_for_service(timeout_sec=60.0), "tactile_alignment never served"
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, out + err
    assert "Traceback" not in err and "Exception" not in err, err
