"""The nodes under a lifecycle manager (nav2_lifecycle_manager, launch_ros events): every
node answers the parameter and lifecycle services from another node, and with
``autostart: false`` the transitions are driven from outside."""
from __future__ import annotations

import pytest
from lifecycle_msgs.msg import State, Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rcl_interfaces.srv import ListParameters
from rclpy.node import Node

from embodied_transfer.app import bringup
from ros_helpers import call
from test_graph import required_overrides

NS = "robot1"


def _client(started, kind, node_name: str, service: str):
    manager = started.nodes[-1]          # the test's own plain node, spun with the others
    return manager.create_client(kind, f"/{NS}/{node_name}/{service}")


def _with_manager(started):
    manager = Node("lifecycle_manager", namespace=NS)
    started.nodes.append(manager)
    started.executor.add_node(manager)
    return started


@pytest.mark.ros
def test_every_node_answers_list_parameters_and_get_state(tmp_path, rclpy_context):
    overrides = required_overrides(tmp_path)
    overrides["grasp_reasoning"] = {"backend": "cnn"}
    for spec in [*bringup.all_nodes(), bringup.TABLETOP_BRIDGE]:
        started = _with_manager(bringup.bring_up([spec], namespace=NS, overrides=overrides))
        try:
            names = call(started, _client(started, ListParameters, spec.name,
                                          "list_parameters"), ListParameters.Request())
            assert "use_sim_time" in names.result.names, spec.name
            if spec.lifecycle:
                assert "autostart" in names.result.names
                state = call(started, _client(started, GetState, spec.name, "get_state"),
                             GetState.Request())
                assert state.current_state.id == State.PRIMARY_STATE_ACTIVE, spec.name
        finally:
            started.shutdown()


def _transition(started, name: str, transition: int) -> bool:
    request = ChangeState.Request(transition=Transition(id=transition))
    return call(started, _client(started, ChangeState, name, "change_state"), request,
                wait_s=30.0).success


def _state(started, name: str) -> int:
    return call(started, _client(started, GetState, name, "get_state"),
                GetState.Request()).current_state.id


@pytest.mark.ros
def test_autostart_false_leaves_the_transitions_to_a_manager(tmp_path, rclpy_context):
    specs = [bringup.REAL2SIM_CONVERTER, bringup.SQUAT_PHASE_CLASSIFIER]
    params = tmp_path / "params.yaml"
    params.write_text("/**:\n  ros__parameters:\n    autostart: false\n")
    started = _with_manager(bringup.bring_up(specs, namespace=NS, params_file=str(params)))
    try:
        for spec in specs:
            name = spec.name
            assert _state(started, name) == State.PRIMARY_STATE_UNCONFIGURED
            assert _transition(started, name, Transition.TRANSITION_CONFIGURE)
            assert _state(started, name) == State.PRIMARY_STATE_INACTIVE
            node = next(n for n in started.nodes if n.get_name() == name)
            outputs = [e for e in node._entities if hasattr(e, "is_activated")]
            assert outputs and not any(p.is_activated for p in outputs)   # lifecycle publishers
            assert _transition(started, name, Transition.TRANSITION_ACTIVATE)
            assert _state(started, name) == State.PRIMARY_STATE_ACTIVE
            assert all(p.is_activated for p in outputs)
            # a manager's reset: deactivate, clean up, and bring it back
            for t in (Transition.TRANSITION_DEACTIVATE, Transition.TRANSITION_CLEANUP,
                      Transition.TRANSITION_CONFIGURE, Transition.TRANSITION_ACTIVATE):
                assert _transition(started, name, t), (name, t)
            assert _state(started, name) == State.PRIMARY_STATE_ACTIVE
            # configuring an active node is refused, as a manager expects, not an error
            assert not _transition(started, name, Transition.TRANSITION_CONFIGURE)
    finally:
        started.shutdown()


def test_launch_files_pass_autostart_to_lifecycle_nodes_only():
    assert bringup.LAUNCH_ARGUMENTS["autostart"][0] == "true"
    for spec in (bringup.REAL2SIM_CONVERTER, bringup.BAG_PLAYER):
        kwargs = bringup.launch_node_kwargs(spec, "", False, NS, autostart=False)
        assert kwargs["parameters"][-1] == ({"use_sim_time": False, "autostart": False}
                                            if spec.lifecycle else {"use_sim_time": False})
