"""tactile_alignment: tactile frames of one sensor layout → shared latent and other layouts.

Serves ``align_tactile`` (AlignTactile.srv): a TactileFrame of one domain (glove_137,
robot_hand_1062, fingertips_5x40, …) → its latent in the shared space and, when
``target_domain`` is set, the frame converted into that layout (header copied from the
request). In streaming mode (``stream_enabled``) every TactileFrame on ``tactile/input``
(sensor QoS) is converted into ``stream_target_domain`` and published on
``tactile/converted`` (reliable) with the input's header. Compare latents by Euclidean
distance: for the shipped ``glove_space`` model it is the Mahalanobis distance of glove
readings, and for unit-length latents (``local_uv``) it ranks as the cosine does.

Bad input (unknown domain, wrong number of values, NaN/inf, values outside [0, 1]) gives
``success=false`` with the reason on the service and is dropped on the stream; both are
counted per reason on /diagnostics (``rejected_<reason>``). The node keeps serving.

Lifecycle: configure loads the model (a missing or unreadable model, or an unknown stream
target, fails the transition with the reason), activate starts answering, cleanup frees it.
"""
from __future__ import annotations

import array
import time

import numpy as np
from embodied_transfer_interfaces.msg import TactileFrame
from embodied_transfer_interfaces.srv import AlignTactile

from embodied_transfer.nodes.common import DIAGNOSTICS, Endpoint, Interface, run
from embodied_transfer.nodes.lifecycle import ManagedNode
from embodied_transfer.ros.qos import RELIABLE_QOS, SENSOR_QOS
from embodied_transfer.tactile.config import TactileNodeConfig
from embodied_transfer.tactile.errors import TactileError


def to_float32_array(values: np.ndarray) -> array.array:
    """A float32 numpy vector as the ``array('f')`` a float32[] message field holds."""
    out = array.array("f")
    out.frombytes(np.ascontiguousarray(values, dtype=np.float32).tobytes())
    return out


def from_message(values) -> np.ndarray:
    """A float32[] message field as a numpy vector (no copy for array('f'))."""
    if isinstance(values, array.array) and values.typecode == "f":
        return np.frombuffer(values, dtype=np.float32)
    return np.asarray(values, dtype=np.float32)


class TactileAlignment(ManagedNode):
    """Serves the tactile alignment model (see the module docstring)."""

    CONFIG = TactileNodeConfig
    INTERFACE = Interface(
        subscribes=(Endpoint("tactile/input", "embodied_transfer_interfaces/TactileFrame",
                             "stream_enabled"),),
        publishes=(Endpoint("tactile/converted", "embodied_transfer_interfaces/TactileFrame",
                            "stream_enabled"), DIAGNOSTICS),
        services=(Endpoint("align_tactile", "embodied_transfer_interfaces/AlignTactile"),))

    def __init__(self, **kwargs) -> None:
        super().__init__("tactile_alignment", **kwargs)
        self.aligner = None
        self._served = 0

    def _extra_values(self) -> list[tuple[str, str]]:
        domains = ",".join(self.aligner.domains) if self.aligner else ""
        target = self.config.stream_target_domain if self.config else ""
        return [("domains", domains), ("stream_target_domain", target),
                ("service_calls", str(self._served)), *super()._extra_values()]

    # --- lifecycle ---------------------------------------------------------------------
    def _load(self, config: TactileNodeConfig) -> list:
        from embodied_transfer.tactile.models import Aligner

        path = config.model_path or None
        try:
            self.aligner = Aligner.load(path)
        except TactileError as exc:
            raise TactileError(f"cannot load tactile alignment model: {exc}") from None
        target = config.stream_target_domain
        if config.stream_enabled and target not in self.aligner.domains:
            raise TactileError(f"stream_target_domain {target!r} is not a domain of the "
                               f"model (known: {', '.join(self.aligner.domains)})")
        self.health.model_info = f"{path or '(shipped)'}: {', '.join(self.aligner.domains)}"
        entities = [self.create_service(AlignTactile, "align_tactile", self._on_align)]
        if config.stream_enabled:
            self._pub = self.create_lifecycle_publisher(TactileFrame, "tactile/converted", RELIABLE_QOS)
            entities += [self._pub, self.create_subscription(
                TactileFrame, "tactile/input", self._on_frame, SENSOR_QOS)]
        return entities

    def _release(self) -> None:
        self.aligner = None

    # --- inputs ------------------------------------------------------------------------
    def _convert(self, frame: TactileFrame, target: str):
        """(latent, converted values or None); TactileError on bad input."""
        return self.aligner.align(frame.domain, from_message(frame.values), target)

    def _on_frame(self, msg: TactileFrame) -> None:
        if not self._active:
            return
        self.health.input()
        start = time.perf_counter()
        target = self.config.stream_target_domain
        try:
            _, values = self._convert(msg, target)
        except TactileError as exc:
            self._reject(exc.reason, str(exc))
            return
        self._pub.publish(TactileFrame(header=msg.header, domain=target,
                                       values=to_float32_array(values)))
        self.health.output(time.perf_counter() - start)

    def _on_align(self, request: AlignTactile.Request,
                  response: AlignTactile.Response) -> AlignTactile.Response:
        self.health.input()
        self._served += 1
        response.converted.header = request.frame.header
        if not self._active:
            response.success, response.message = False, "node is not active"
            return response
        start = time.perf_counter()
        try:
            latent, values = self._convert(request.frame, request.target_domain)
        except TactileError as exc:
            self._reject(exc.reason, str(exc))
            response.success, response.message = False, str(exc)
            return response
        response.success = True
        response.latent = to_float32_array(latent)
        if values is not None:
            response.converted.domain = request.target_domain
            response.converted.values = to_float32_array(values)
        self.health.output(time.perf_counter() - start)
        return response


def main(args=None) -> int:
    return run(TactileAlignment, args)


if __name__ == "__main__":
    raise SystemExit(main())
