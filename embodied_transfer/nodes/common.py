"""What every node module shares: parameter declaration with descriptors and ``main``."""
from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Sequence

import rclpy
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn
from rclpy.node import Node
from rclpy.task import Future

from embodied_transfer.errors import PACKAGE_ERRORS


def declare(node: Node, name: str, default: Any, description: str, *,
            read_only: bool = False) -> Any:
    """Declare a parameter with a description and return its value.

    The value type is taken from ``default`` (a list of strings needs a non-empty default
    or an explicit type; use :func:`declare_string_array`). Defaults here mirror
    ``config/<node>.yaml``; test_graph checks that every key there is declared.
    """
    descriptor = ParameterDescriptor(description=description, read_only=read_only)
    return node.declare_parameter(name, default, descriptor).value


def declare_string_array(node: Node, name: str, default: Sequence[str],
                         description: str) -> list[str]:
    """Declare a string-array parameter (possibly empty by default) and return it."""
    descriptor = ParameterDescriptor(description=description)
    # An empty list cannot carry its type, so declare a blank entry instead.
    value = node.declare_parameter(name, list(default) or [""], descriptor).value
    # ROS 2 YAML cannot type an empty list, so config files write [""]: drop blanks.
    return [v for v in (value or []) if v]


class Executor(SingleThreadedExecutor):
    """The executor of every process this package starts (bringup and ``ros2 run``).

    Single-threaded on purpose: with rclpy Kilted's MultiThreadedExecutor, a main loop of
    ``spin_once`` calls busy-waits while callbacks are in flight and starves the worker
    threads of the GIL (a 20 Hz timer ran at 3 Hz; a recorder received a 0.5 s replay as
    one burst), and its shutdown destroys a guard condition before joining its threads.
    Callbacks here are short; anything slow (bag writing, playback) has its own thread.
    """


def destroy_entities(node: Node, entities) -> None:
    """Destroy publishers, subscriptions, services and timers of ``node`` (each kind has its
    own ``destroy_*``; the one that knows the entity returns True)."""
    for entity in entities:
        any(destroy(entity) for destroy in (node.destroy_publisher, node.destroy_subscription,
                                            node.destroy_service, node.destroy_timer))


def autostart(node: Node) -> bool:
    """Configure and activate a lifecycle node (what bringup and ``ros2 run`` do).

    Returns False, with the reason already logged by the node, if a transition failed.
    Plain nodes are left alone and count as started.
    """
    if not isinstance(node, LifecycleNode):
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
    """rclpy initialised for the block; Ctrl-C and an external shutdown end it quietly."""
    rclpy.init(args=args)
    try:
        yield
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if rclpy.ok():
            rclpy.shutdown()


def run(factory: Callable[[], Node], args: Sequence[str] | None = None,
        until: Callable[[Node], Future] | None = None) -> int:
    """Entry point body for ``ros2 run embodied_transfer <node>``: init, start, spin.

    Spins until Ctrl-C, or until the future ``until(node)`` completes. Errors of the
    package's own types are logged as one line and give exit status 1.
    """
    node = None
    with ros_context(list(sys.argv if args is None else args)):
        try:
            node = factory()
            if not autostart(node):
                return 1
            executor = Executor()
            executor.add_node(node)
            if until is None:
                executor.spin()
            else:
                future = until(node)
                executor.spin_until_future_complete(future)
                if future.exception() is not None:
                    return 1
        except PACKAGE_ERRORS as exc:
            print(f"{getattr(node, 'get_name', lambda: 'node')()}: error: {exc}",
                  file=sys.stderr)
            return 1
        finally:
            if node is not None:
                node.destroy_node()
    return 0
