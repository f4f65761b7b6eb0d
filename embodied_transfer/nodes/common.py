"""What every node module shares: parameter declaration with descriptors and ``main``."""
from __future__ import annotations

import math
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator, NamedTuple, Sequence

import rclpy
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.exceptions import InvalidParameterValueException
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.executors import Executor as RclpyExecutor
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn
from rclpy.node import Node
from rclpy.task import Future

from embodied_transfer.core.config import Setting, from_values, settings
from embodied_transfer.core.errors import EmbodiedTransferError
from embodied_transfer.core.runtime import NODE_TORCH_THREADS, configure_process

RCLError = _rclpy.RCLError
#: Longest single wait of :func:`spin_until`, so a shutdown is noticed within this time.
SPIN_PERIOD_S = 0.1
INT64_MAX = 2**63 - 1


class Endpoint(NamedTuple):
    """A topic or service of a node, as the docs list it: relative (remappable) ``name``,
    ``type`` (``pkg/Type``) and ``when`` it exists ("" always; else a condition)."""

    name: str
    type: str
    when: str = ""


@dataclass(frozen=True)
class Interface:
    """What a node subscribes, publishes and serves once configured (besides rcl's own
    parameter and lifecycle services); the docs' nodes table is made from it and a test
    checks it against the running nodes."""

    subscribes: tuple[Endpoint, ...] = ()
    publishes: tuple[Endpoint, ...] = ()
    services: tuple[Endpoint, ...] = ()


DIAGNOSTICS = Endpoint("/diagnostics", "diagnostic_msgs/DiagnosticArray")


def descriptor(item: Setting) -> ParameterDescriptor:
    """The ROS parameter descriptor of a setting: description (with unit and choices) and,
    for numbers with bounds, the range rclpy enforces on every set."""
    d = ParameterDescriptor(description=item.doc, read_only=item.read_only)
    if item.choices:
        d.additional_constraints = "one of: " + ", ".join(repr(c) for c in item.choices)
    if item.kind in (int, float) and (item.low is not None or item.high is not None):
        if item.kind is float:
            d.floating_point_range = [FloatingPointRange(
                from_value=-math.inf if item.low is None else float(item.low),
                to_value=math.inf if item.high is None else float(item.high), step=0.0)]
        else:
            d.integer_range = [IntegerRange(
                from_value=-INT64_MAX - 1 if item.low is None else int(item.low),
                to_value=INT64_MAX if item.high is None else int(item.high), step=1)]
    return d


def declare_config(node: Node, config_type: type) -> None:
    """Declare every setting of ``config_type`` as a parameter of ``node``.

    A list setting is a string array; ROS 2 YAML cannot type an empty list, so its default
    and parameter files write ``[""]`` and :func:`read_config` drops the blanks.
    """
    for item in settings(config_type):
        default = (list(item.default) or [""]) if item.kind is list else item.default
        node.declare_parameter(item.name, default, descriptor(item))


def read_config(node: Node, config_type: type):
    """The current parameter values of ``node`` as a validated ``config_type``
    (:class:`~embodied_transfer.core.errors.ConfigError` names every value outside its range
    or choices)."""
    values = {}
    for item in settings(config_type):
        value = node.get_parameter(item.name).value
        values[item.name] = [v for v in (value or []) if v] if item.kind is list else value
    return from_values(config_type, values)


class Executor(SingleThreadedExecutor):
    """The executor of every process this package starts (bringup and ``ros2 run``).

    Single-threaded on purpose: with rclpy Kilted's MultiThreadedExecutor, a main loop of
    ``spin_once`` calls busy-waits while callbacks are in flight and starves the worker
    threads of the GIL (a 20 Hz timer ran at 3 Hz; a recorder received a 0.5 s replay as
    one burst), and its shutdown destroys a guard condition before joining its threads.
    Callbacks here are short; anything slow (bag writing, playback) has its own thread.
    """


def destroy_entities(node: Node, entities) -> None:
    """Destroy publishers (lifecycle ones too), subscriptions, services and timers of
    ``node`` (each kind has its own ``destroy_*``; the one that knows the entity returns
    True)."""
    publisher = getattr(node, "destroy_lifecycle_publisher", node.destroy_publisher)
    for entity in entities:
        any(destroy(entity) for destroy in (publisher, node.destroy_subscription,
                                            node.destroy_service, node.destroy_timer))


def autostart(node: Node) -> bool:
    """Configure and activate a lifecycle node (what bringup and ``ros2 run`` do), unless
    its ``autostart`` parameter is false: then it stays unconfigured for a lifecycle
    manager to drive.

    Returns False, with the reason already logged by the node, if a transition failed.
    Plain nodes are left alone and count as started.
    """
    if not isinstance(node, LifecycleNode):
        return True
    if node.has_parameter("autostart") and not node.get_parameter("autostart").value:
        node.get_logger().info("autostart is false: unconfigured, waiting for a lifecycle "
                               "manager (change_state: configure, activate)")
        return True
    if node.trigger_configure() != TransitionCallbackReturn.SUCCESS:
        node.get_logger().error("configure failed; node stays unconfigured")
        return False
    if node.trigger_activate() != TransitionCallbackReturn.SUCCESS:
        node.get_logger().error("activate failed; node stays inactive")
        return False
    return True


@contextmanager
def ros_context(args: Sequence[str] | None = None) -> Iterator[None]:
    """rclpy initialised for the block; Ctrl-C and an external shutdown end it quietly.

    rclpy's signal handler shuts the context down from another thread, so a SIGINT or
    SIGTERM can land in the middle of an rcl call, which then raises ``RCLError`` (context
    not valid) instead of ``ExternalShutdownException``. Such an error once the context is
    down is the shutdown itself; with the context still up it is a real error and re-raised.
    """
    rclpy.init(args=args)
    try:
        yield
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except RCLError:
        if rclpy.ok():
            raise
    finally:
        if rclpy.ok():
            rclpy.shutdown()


def spin_until(executor: RclpyExecutor, done: Callable[[], bool] = lambda: False,
               period: float = SPIN_PERIOD_S) -> None:
    """Spin ``executor`` until its context shuts down or ``done()`` is true.

    Every wait is bounded by ``period``: with an unbounded wait (``executor.spin()``), a
    signal that lands between the executor's context check and its wait is never seen,
    and the process hung on SIGTERM (about once in 100 tries on a loaded CPU).
    """
    while executor.context.ok() and not done():
        executor.spin_once(timeout_sec=period)


def spin_node(node: Node, done: Callable[[], bool] = lambda: False) -> None:
    """Spin ``node`` on its own :class:`Executor` with :func:`spin_until`; nothing if the
    context is already down (a signal came first: no executor can be made on it)."""
    if not rclpy.ok():
        return
    executor = Executor()
    executor.add_node(node)
    spin_until(executor, done)


def run(factory: Callable[[], Node], args: Sequence[str] | None = None,
        until: Callable[[Node], Future] | None = None) -> int:
    """Entry point body for ``ros2 run embodied_transfer <node>``: init, start, spin.

    Spins until Ctrl-C, or until the future ``until(node)`` completes. Errors of the
    package's own types, and parameter values outside their declared ranges, are logged as
    one line and give exit status 1. Sets the process-wide settings once
    (:func:`~embodied_transfer.core.runtime.configure_process`).
    """
    configure_process(torch_threads=NODE_TORCH_THREADS)
    node = None
    with ros_context(list(sys.argv if args is None else args)):
        try:
            node = factory()
            if not autostart(node):
                # A signal during configure fails the transition too: that is a shutdown.
                return 1 if rclpy.ok() else 0
            future = until(node) if until is not None else None
            spin_node(node, lambda: future is not None and future.done())
            if future is not None and future.done() and future.exception() is not None:
                return 1
        except (EmbodiedTransferError, InvalidParameterValueException) as exc:
            print(f"{getattr(node, 'get_name', lambda: 'node')()}: error: {exc}",
                  file=sys.stderr)
            return 1
        finally:
            if node is not None:
                node.destroy_node()
    return 0
