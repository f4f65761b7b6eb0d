"""What every node module shares: parameter declaration with descriptors and ``main``."""
from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Sequence

import rclpy
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.executors import Executor as RclpyExecutor
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn
from rclpy.node import Node
from rclpy.task import Future

from embodied_transfer.core.errors import EmbodiedTransferError

RCLError = _rclpy.RCLError
#: Longest single wait of :func:`spin_until`, so a shutdown is noticed within this time.
SPIN_PERIOD_S = 0.1


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
    package's own types are logged as one line and give exit status 1.
    """
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
        except EmbodiedTransferError as exc:
            print(f"{getattr(node, 'get_name', lambda: 'node')()}: error: {exc}",
                  file=sys.stderr)
            return 1
        finally:
            if node is not None:
                node.destroy_node()
    return 0
