"""One source per setting: the settings dataclasses make the node parameters (with ranges),
config/<node>.yaml, docs/nodes.md and the README's nodes table, and each node's documented
interface is what it really creates."""
from __future__ import annotations

import dataclasses

import pytest
import yaml
from rclpy.exceptions import InvalidParameterValueException
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.parameter import Parameter

from embodied_transfer.app import bringup, docs
from embodied_transfer.core.config import (ConfigError, Setting, from_values, setting,
                                           settings, validate)


@dataclasses.dataclass
class Example:
    rate_hz: float = setting(20.0, "A rate", unit="Hz", low=0.0, high=100.0)
    count: int = setting(3, "A count", low=1)
    mode: str = setting("a", "A mode", choices=("a", "b"))
    names: list = setting([""], "Some names")


def test_settings_carry_defaults_units_ranges_and_choices():
    rate, count, mode, names = settings(Example)
    assert rate == Setting("rate_hz", 20.0, "A rate", "Hz", 0.0, 100.0)
    assert (count.kind, mode.kind, names.kind) == (int, str, list)
    assert mode.choices == ("a", "b") and Example().names == [""]
    assert Example().names is not Example().names          # a fresh list per instance


@pytest.mark.parametrize("values, message", [
    ({"rate_hz": -1.0}, "rate_hz must be >= 0"), ({"rate_hz": 101.0}, "rate_hz must be <= 100"),
    ({"rate_hz": float("nan")}, "rate_hz must be finite"), ({"count": 0}, "count must be >= 1"),
    ({"mode": "c"}, "mode must be one of 'a', 'b'"), ({"speed": 1}, "unknown Example setting"),
])
def test_out_of_range_values_are_config_errors(values, message):
    with pytest.raises(ConfigError, match=message):
        from_values(Example, values)
    assert isinstance(ConfigError("x"), ValueError)


def test_valid_values_pass():
    config = from_values(Example, {"rate_hz": 100.0, "mode": "b"})
    validate(config)
    assert (config.rate_hz, config.count, config.mode) == (100.0, 3, "b")


def test_a_field_without_setting_is_refused():
    @dataclasses.dataclass
    class Bad:
        x: int = 1

    with pytest.raises(TypeError, match="Bad.x is not declared with setting"):
        settings(Bad)


def test_generated_files_are_current():
    """config/*.yaml, docs/nodes.md and the README table are what the settings make."""
    stale = [str(p) for p, text in docs.generated_files().items()
             if not p.exists() or p.read_text() != text]
    assert stale == [], "run: python -m embodied_transfer.app.docs"


def test_parameter_files_hold_every_setting_with_its_default():
    for spec in bringup.all_nodes():
        data = yaml.safe_load(spec.params_file.read_text())[f"/**/{spec.name}"]["ros__parameters"]
        config = spec.node_class().CONFIG
        assert list(data) == [s.name for s in settings(config)]
        for item in settings(config):
            default = (list(item.default) or [""]) if item.kind is list else item.default
            assert data[item.name] == default, f"{spec.name}.{item.name}"


@pytest.mark.ros
def test_declared_ranges_are_enforced_by_rclpy(rclpy_context, tmp_path):
    """A value outside a setting's range is refused by rclpy itself (ros2 param set too)."""
    from embodied_transfer.nodes.squat_phase_classifier import SquatPhaseClassifier

    node = SquatPhaseClassifier()
    try:
        d = node.describe_parameter("min_run")
        assert d.integer_range[0].from_value == 1 and "[frames]" in d.description
        result = node.set_parameters([Parameter("min_run", value=0)])[0]
        assert not result.successful
        assert node.set_parameters([Parameter("min_run", value=5)])[0].successful
    finally:
        node.destroy_node()
    with pytest.raises(InvalidParameterValueException):
        SquatPhaseClassifier(parameter_overrides=[Parameter("min_rep", value=-1)])


def _names(entities, attr: str) -> set[str]:
    return {getattr(e, attr) for e in entities}


#: Endpoints every rclpy node or lifecycle node creates for itself.
BUILTIN = ("/rosout", "/parameter_events", "/describe_parameters", "/get_parameters",
           "/get_parameter_types", "/list_parameters", "/set_parameters",
           "/set_parameters_atomically", "/get_type_description", "/change_state",
           "/get_state", "/get_available_states", "/get_available_transitions",
           "/get_transition_graph", "/transition_event")


def _own(names: set[str]) -> set[str]:
    return {n for n in names if not n.endswith(BUILTIN)}


def _documented(node, endpoints, config, resolve: bool = True) -> set[str]:
    """The documented endpoints that exist under ``config`` (their ``when`` holds); topic
    names resolved as rclpy reports them, service names as given (rclpy keeps those)."""
    out = set()
    for e in endpoints:
        when = e.when
        if when.startswith("scene ") and f"scene {config.scene}" not in when:
            continue
        if when.endswith("stream_enabled") and not config.stream_enabled:
            continue
        out.add(node.resolve_topic_name(e.name) if resolve else e.name)
    return out


@pytest.mark.ros
@pytest.mark.parametrize("spec, overrides", [
    (bringup.REAL2SIM_CONVERTER, {}), (bringup.SQUAT_PHASE_CLASSIFIER, {}),
    (bringup.TACTILE_ALIGNMENT, {}), (bringup.GRASP_REASONING, {"backend": "cnn"}),
    (bringup.MUJOCO_BRIDGE, {"scene": "squat"}), (bringup.MUJOCO_BRIDGE, {"scene": "tabletop"}),
], ids=lambda x: getattr(x, "name", None) or str(x))
def test_configured_nodes_create_exactly_their_documented_interface(rclpy_context, spec,
                                                                    overrides):
    node = spec.node_class()(parameter_overrides=[Parameter(k, value=v)
                                                   for k, v in overrides.items()])
    try:
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        iface, config = node.INTERFACE, node.config
        assert _own(_names(node.publishers, "topic_name")) == \
            _documented(node, iface.publishes, config)
        assert _own(_names(node.subscriptions, "topic_name")) == \
            _documented(node, iface.subscribes, config)
        assert _own(_names(node.services, "srv_name")) == \
            _documented(node, iface.services, config, resolve=False)
        node.trigger_cleanup()
    finally:
        node.destroy_node()
