"""Sample messages and service answers shared by a test and the peer process it starts."""
from __future__ import annotations

import math

from builtin_interfaces.msg import Time
from embodied_transfer_interfaces.msg import GraspPose, SimDomainFeatures, SquatPhase, TactileFrame
from embodied_transfer_interfaces.srv import AlignTactile, PlanGrasp
from std_msgs.msg import Header


def header(frame: str) -> Header:
    return Header(stamp=Time(sec=1_700_000_000, nanosec=123_456_789), frame_id=frame)


def samples() -> dict[str, object]:
    """topic → one message of each custom type, with every field set."""
    return {
        "grasp": GraspPose(header=header("camera_color_optical_frame"), x=320.5, y=240.25,
                           theta=-math.pi / 4, width=42.0, score=0.875,
                           reasoning="mugs are grasped by the handle or the rim"),
        "phase": SquatPhase(header=header("watch_imu"), phase=SquatPhase.DOWN, confidence=0.5,
                            rep_count=7),
        "features": SimDomainFeatures(header=header("watch_imu"),
                                      channels=["accel_x", "gyro_z", "uwb_range"],
                                      values=[9.75, -0.5, 0.6697363257408142]),
        "tactile": TactileFrame(header=header("glove_base"), domain="glove_137",
                                values=[0.0, 0.25, 1.0]),
    }


def fields(msg) -> dict:
    """A message as nested plain values, for comparisons."""
    out = {}
    for name in msg.get_fields_and_field_types():
        value = getattr(msg, name)
        if hasattr(value, "get_fields_and_field_types"):
            value = fields(value)
        elif not isinstance(value, (str, bytes, int, float)):
            value = list(value)
        out[name] = value
    return out


def answer_align(request: AlignTactile.Request, response: AlignTactile.Response):
    """Deterministic answer the peer gives: latent = values reversed, domain swapped."""
    if not request.target_domain:
        response.success = False
        response.message = "no target domain"
        return response
    response.success = True
    response.message = f"{request.frame.domain}->{request.target_domain}"
    response.latent = list(reversed(request.frame.values))
    response.converted = TactileFrame(header=request.frame.header, domain=request.target_domain,
                                      values=[2.0 * v for v in request.frame.values])
    return response


def answer_plan(request: PlanGrasp.Request, response: PlanGrasp.Response):
    """Deterministic answer: a grasp at the image centre, instruction echoed as reasoning."""
    image = request.image
    response.success = image.width > 0
    response.message = "ok" if response.success else "empty image"
    response.grasp = GraspPose(header=image.header, x=image.width / 2.0, y=image.height / 2.0,
                               theta=0.0, width=float(len(request.instruction)), score=1.0,
                               reasoning=request.instruction)
    return response
