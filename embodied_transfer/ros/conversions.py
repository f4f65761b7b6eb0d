"""Conversions between ROS 2 messages and numpy arrays.

Pure functions: they only build and read message objects, so they work without
``rclpy.init()``. Every rejected input raises :class:`ConversionError` with a one-line
message naming what was wrong.

Conventions followed: REP-103 (SI units: m/s^2, rad/s, m), REP-117 (+inf/-inf/NaN in
range readings), REP-145 and Imu.msg (covariance element 0 == -1 marks "no estimate";
all zeros marks "covariance unknown"), CameraInfo.msg (K[0] == 0 marks an uncalibrated
camera). Image semantics match cv_bridge with ``desired_encoding="passthrough"``; when
``cv_bridge`` is importable it does the conversion, behind the same two functions.
"""

from __future__ import annotations

import array as pyarray
import math
import operator
import sys
from typing import Literal, NamedTuple, TypedDict

import numpy as np
from builtin_interfaces.msg import Time
from sensor_msgs.msg import CameraInfo, Image, Imu, Range
from std_msgs.msg import Header

from embodied_transfer.core.errors import EmbodiedTransferError

try:
    from cv_bridge import CvBridge

    _BRIDGE = CvBridge()
except ImportError:
    _BRIDGE = None

__all__ = [
    "ConversionError",
    "IMAGE_ENCODINGS",
    "image_to_numpy",
    "numpy_to_image",
    "convert_color",
    "stamp_to_ns",
    "ns_to_stamp",
    "make_header",
    "imu_to_numpy",
    "numpy_to_imu",
    "RangeStatus",
    "RangeReading",
    "range_reading",
    "range_to_float",
    "numpy_to_range",
    "Intrinsics",
    "camera_info_to_intrinsics",
    "intrinsics_to_camera_info",
]


class ConversionError(EmbodiedTransferError, ValueError):
    """A message or array cannot be converted; the text says what was wrong."""


# ---------------------------------------------------------------------------------------
# Shared validation helpers
# ---------------------------------------------------------------------------------------


def _float_array(value: object, name: str, *shapes: tuple[int, ...]) -> np.ndarray:
    """``value`` as a new finite float64 array, of one of ``shapes`` when any are given."""
    try:
        out = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConversionError(f"{name} must be numeric, got {value!r}") from None
    if shapes and out.shape not in shapes:
        wanted = " or ".join(str(shape) for shape in shapes)
        raise ConversionError(f"{name} must have shape {wanted}, got {out.shape}")
    if not np.all(np.isfinite(out)):
        raise ConversionError(f"{name} has non-finite values: {out.tolist()}")
    return out


def _scalar(value: object, name: str) -> float:
    """``value`` as a Python float (NaN and infinities allowed)."""
    try:
        out = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConversionError(f"{name} must be a number, got {value!r}") from None
    if out.shape != ():
        raise ConversionError(f"{name} must be a scalar, got shape {out.shape}")
    return float(out)


def _positive_int(value: object, name: str) -> int:
    try:
        out = operator.index(value)
    except TypeError:
        raise ConversionError(f"{name} must be an integer, got {value!r}") from None
    if out <= 0:
        raise ConversionError(f"{name} must be positive, got {out}")
    return out


# ---------------------------------------------------------------------------------------
# Images
# ---------------------------------------------------------------------------------------


class _Encoding(NamedTuple):
    dtype: np.dtype  # native byte order
    channels: int

    @property
    def pixel_bytes(self) -> int:
        return self.dtype.itemsize * self.channels


_ENCODINGS: dict[str, _Encoding] = {
    "rgb8": _Encoding(np.dtype(np.uint8), 3),
    "bgr8": _Encoding(np.dtype(np.uint8), 3),
    "mono8": _Encoding(np.dtype(np.uint8), 1),
    "16UC1": _Encoding(np.dtype(np.uint16), 1),
    "32FC1": _Encoding(np.dtype(np.float32), 1),
}

#: Image encodings handled by :func:`image_to_numpy` and :func:`numpy_to_image`.
IMAGE_ENCODINGS: tuple[str, ...] = tuple(_ENCODINGS)


def _encoding(encoding: str) -> _Encoding:
    try:
        return _ENCODINGS[encoding]
    except KeyError:
        raise ConversionError(
            f"unsupported image encoding {encoding!r} (supported: {', '.join(_ENCODINGS)})"
        ) from None


def _check_image_msg(msg: Image) -> _Encoding:
    """Encoding of ``msg`` after checking that step and data length are consistent."""
    enc = _encoding(msg.encoding)
    size = f"{msg.width}x{msg.height} {msg.encoding}"
    row_bytes = msg.width * enc.pixel_bytes
    if msg.step < row_bytes:
        raise ConversionError(
            f"image step {msg.step} is smaller than width*bytes_per_pixel = {row_bytes} "
            f"for {size}"
        )
    expected = msg.step * msg.height
    if len(msg.data) != expected:
        raise ConversionError(
            f"image data has {len(msg.data)} bytes, expected {expected} for {size} "
            f"with step {msg.step}"
        )
    return enc


def _check_image_array(image: object, encoding: str) -> np.ndarray:
    """``image`` as a C-contiguous, native-byte-order array for ``encoding``.

    Single-channel encodings take HxW (or HxWx1, as cv_bridge does); rgb8/bgr8 take HxWx3.
    Any byte order of the right dtype is accepted. Empty images are rejected.
    """
    enc = _encoding(encoding)
    if not isinstance(image, np.ndarray):
        raise ConversionError(
            f"{encoding} image must be a numpy array, got {type(image).__name__}"
        )
    if image.dtype.kind != enc.dtype.kind or image.dtype.itemsize != enc.dtype.itemsize:
        raise ConversionError(f"{encoding} image needs dtype {enc.dtype.name}, got {image.dtype}")
    if enc.channels == 1 and image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if enc.channels == 1 and image.ndim != 2:
        raise ConversionError(f"{encoding} image must be HxW, got shape {image.shape}")
    if enc.channels > 1 and (image.ndim != 3 or image.shape[2] != enc.channels):
        raise ConversionError(
            f"{encoding} image must be HxWx{enc.channels}, got shape {image.shape}"
        )
    if image.size == 0:
        raise ConversionError(f"{encoding} image is empty (shape {image.shape})")
    return np.ascontiguousarray(image, dtype=enc.dtype)


def _bridge_can_decode(msg: Image, enc: _Encoding) -> bool:
    """Whether cv_bridge decodes ``msg`` correctly.

    cv_bridge views each row as ``step // pixel_bytes`` whole pixels (wrong when the row
    padding is not a whole number of pixels) and byte-swaps with ``ndarray.newbyteorder``
    (gone in numpy 2); such messages go to the package's own decoder.
    """
    native = bool(msg.is_bigendian) == (sys.byteorder == "big")
    return native and msg.step % enc.pixel_bytes == 0


def _decode_image(msg: Image, enc: _Encoding) -> np.ndarray:
    """The package's own decoder: strided view over ``msg.data``, copied to native order."""
    wire_dtype = enc.dtype.newbyteorder(">" if msg.is_bigendian else "<")
    view = np.ndarray(
        shape=(msg.height, msg.width, enc.channels),
        dtype=wire_dtype,
        buffer=msg.data,
        strides=(msg.step, enc.pixel_bytes, enc.dtype.itemsize),
    )
    out = view.astype(enc.dtype, order="C")  # always a copy
    return out if enc.channels > 1 else out.reshape(msg.height, msg.width)


def image_to_numpy(msg: Image) -> np.ndarray:
    """Decode a ``sensor_msgs/Image`` (passthrough: no colour conversion).

    Returns HxWx3 uint8 for rgb8/bgr8, HxW uint8/uint16/float32 for mono8/16UC1/32FC1,
    in native byte order. Row padding (``step``) and ``is_bigendian`` are honoured. The
    result is always a new, writable, C-contiguous array that owns its memory: it never
    aliases ``msg.data``.
    """
    enc = _check_image_msg(msg)
    if _BRIDGE is not None and _bridge_can_decode(msg, enc):
        out = _BRIDGE.imgmsg_to_cv2(msg, desired_encoding="passthrough")
        return out if out.flags.owndata else out.copy()
    return _decode_image(msg, enc)


def numpy_to_image(array: np.ndarray, encoding: str, header: Header | None = None) -> Image:
    """Encode ``array`` as a ``sensor_msgs/Image`` with unpadded rows in native byte order.

    ``array`` may be non-contiguous or of either byte order; its dtype and shape must match
    ``encoding`` (see :func:`image_to_numpy`). The message does not alias ``array``.
    """
    image = _check_image_array(array, encoding)
    if _BRIDGE is not None:
        msg = _BRIDGE.cv2_to_imgmsg(image, encoding=encoding)
    else:
        height, width = image.shape[:2]
        msg = Image(
            height=height,
            width=width,
            encoding=encoding,
            is_bigendian=int(sys.byteorder == "big"),
            step=width * _ENCODINGS[encoding].pixel_bytes,
        )
        data = pyarray.array("B")
        data.frombytes(memoryview(image).cast("B"))
        msg.data = data
    if header is not None:
        msg.header = header
    return msg


_COLOR_ENCODINGS = ("rgb8", "bgr8", "mono8")


def convert_color(array: np.ndarray, from_encoding: str, to_encoding: str) -> np.ndarray:
    """Convert between rgb8, bgr8 and mono8; always returns a new array.

    Colour to mono uses the ITU-R BT.601 luma weights with OpenCV 4's 15-bit fixed-point
    rounding, so the result equals ``cv2.cvtColor(..., COLOR_RGB2GRAY)``. Mono to colour
    replicates the channel.
    """
    for encoding in (from_encoding, to_encoding):
        if encoding not in _COLOR_ENCODINGS:
            raise ConversionError(
                f"unsupported colour conversion encoding {encoding!r} "
                f"(supported: {', '.join(_COLOR_ENCODINGS)})"
            )
    image = _check_image_array(array, from_encoding)
    if from_encoding == to_encoding:
        return image.copy()
    if from_encoding == "mono8":
        return np.repeat(image[:, :, np.newaxis], 3, axis=2)
    rgb = image if from_encoding == "rgb8" else image[:, :, ::-1]
    if to_encoding == "mono8":
        r, g, b = (rgb[:, :, i].astype(np.uint32) for i in range(3))
        return ((r * 9798 + g * 19235 + b * 3735 + (1 << 14)) >> 15).astype(np.uint8)
    return np.ascontiguousarray(image[:, :, ::-1])


# ---------------------------------------------------------------------------------------
# Stamps and headers
# ---------------------------------------------------------------------------------------

_NS_PER_S = 1_000_000_000


def stamp_to_ns(stamp: Time) -> int:
    """``builtin_interfaces/Time`` as integer nanoseconds (exact, no float rounding)."""
    return stamp.sec * _NS_PER_S + stamp.nanosec


def ns_to_stamp(ns: int) -> Time:
    """Integer nanoseconds as ``builtin_interfaces/Time`` (nanosec in [0, 1e9)).

    Floats are rejected (they cannot hold nanosecond stamps exactly), as are times whose
    seconds do not fit the message's int32.
    """
    try:
        ns = operator.index(ns)
    except TypeError:
        raise ConversionError(
            f"stamp must be an integer number of nanoseconds, got {type(ns).__name__}"
        ) from None
    sec, nanosec = divmod(ns, _NS_PER_S)
    if not -(2**31) <= sec < 2**31:
        raise ConversionError(
            f"stamp {ns} ns is outside the int32 seconds range of builtin_interfaces/Time"
        )
    return Time(sec=sec, nanosec=nanosec)


def make_header(stamp_ns: int, frame_id: str = "") -> Header:
    """``std_msgs/Header`` stamped ``stamp_ns`` nanoseconds, in frame ``frame_id``."""
    return Header(stamp=ns_to_stamp(stamp_ns), frame_id=frame_id)


# ---------------------------------------------------------------------------------------
# IMU (REP-103: m/s^2, rad/s)
# ---------------------------------------------------------------------------------------

#: Standard gravity in m/s^2 (CGPM 1901), to convert accelerometers that report in g.
def imu_to_numpy(msg: Imu) -> tuple[np.ndarray, np.ndarray]:
    """``(accel, gyro)``: linear acceleration [m/s^2] and angular velocity [rad/s].

    Both are new float64 arrays of shape (3,). Raises if either holds a non-finite value
    or its covariance marks it unavailable (element 0 == -1).
    """
    fields = (
        ("linear_acceleration", msg.linear_acceleration, msg.linear_acceleration_covariance),
        ("angular_velocity", msg.angular_velocity, msg.angular_velocity_covariance),
    )
    out = []
    for name, vector, covariance in fields:
        if covariance[0] == -1.0:
            raise ConversionError(
                f"IMU message marks {name} as unavailable ({name}_covariance[0] == -1)"
            )
        out.append(_float_array([vector.x, vector.y, vector.z], name, (3,)))
    return out[0], out[1]


def _covariance(value: object, name: str) -> np.ndarray:
    """A 3x3 or 9-element covariance as a new row-major float64 array of 9."""
    return _float_array(value, name, (3, 3), (9,)).reshape(9)


def numpy_to_imu(
    accel: np.ndarray,
    gyro: np.ndarray,
    header: Header | None = None,
    orientation: np.ndarray | None = None,
    accel_cov: np.ndarray | None = None,
    gyro_cov: np.ndarray | None = None,
) -> Imu:
    """Build a ``sensor_msgs/Imu`` from accel [m/s^2] and gyro [rad/s], each of shape (3,).

    ``orientation`` is a unit quaternion (x, y, z, w); without one the message says
    "orientation unknown" (orientation_covariance[0] = -1). Covariances are 3x3 or
    9-element row-major; omitted ones stay all zero ("covariance unknown").
    """
    msg = Imu()
    if header is not None:
        msg.header = header
    a = msg.linear_acceleration
    a.x, a.y, a.z = _float_array(accel, "accel", (3,)).tolist()
    w = msg.angular_velocity
    w.x, w.y, w.z = _float_array(gyro, "gyro", (3,)).tolist()
    if orientation is None:
        msg.orientation_covariance[0] = -1.0
    else:
        q = _float_array(orientation, "orientation", (4,))
        norm = float(np.linalg.norm(q))
        if abs(norm - 1.0) > 1e-3:
            raise ConversionError(
                f"orientation quaternion (x, y, z, w) must have unit norm, got {norm:.6g}"
            )
        o = msg.orientation
        o.x, o.y, o.z, o.w = q.tolist()
    if accel_cov is not None:
        msg.linear_acceleration_covariance = _covariance(accel_cov, "accel_cov")
    if gyro_cov is not None:
        msg.angular_velocity_covariance = _covariance(gyro_cov, "gyro_cov")
    return msg


# ---------------------------------------------------------------------------------------
# Range (REP-117)
# ---------------------------------------------------------------------------------------

RangeStatus = Literal["valid", "too_far", "too_close", "invalid"]


class RangeReading(NamedTuple):
    """A range in metres as sent, and what REP-117 says it means."""

    value: float
    #: valid | too_far (+inf) | too_close (-inf) | invalid (NaN or finite out of limits)
    status: RangeStatus


def _check_limits(min_range: float, max_range: float) -> None:
    if not (
        math.isfinite(min_range) and math.isfinite(max_range) and 0.0 <= min_range <= max_range
    ):
        raise ConversionError(
            "range limits must be finite with 0 <= min_range <= max_range, "
            f"got [{min_range}, {max_range}]"
        )


def range_reading(msg: Range) -> RangeReading:
    """Classify ``msg.range`` per REP-117; never raises for the reading itself.

    Raises only when the message's own limits are malformed.
    """
    _check_limits(msg.min_range, msg.max_range)
    value = float(msg.range)
    status: RangeStatus
    if math.isnan(value):
        status = "invalid"
    elif value == math.inf:
        status = "too_far"
    elif value == -math.inf:
        status = "too_close"
    elif msg.min_range <= value <= msg.max_range:
        status = "valid"
    else:
        status = "invalid"
    return RangeReading(value, status)


def range_to_float(msg: Range) -> float:
    """The range in metres; +inf (nothing within max_range) and -inf (closer than
    min_range) pass through as valid REP-117 readings.

    Raises for invalid readings (NaN, or finite outside [min_range, max_range]); use
    :func:`range_reading` to classify without exceptions.
    """
    value, status = range_reading(msg)
    if status != "invalid":
        return value
    if math.isnan(value):
        raise ConversionError("range is NaN (invalid measurement, REP-117)")
    raise ConversionError(
        f"range {value} m is outside [{msg.min_range}, {msg.max_range}] m "
        "(invalid measurement, REP-117)"
    )


def numpy_to_range(
    value: float,
    header: Header | None = None,
    *,
    radiation_type: int = Range.INFRARED,
    field_of_view: float = 2.0 * math.pi,
    min_range: float = 0.0,
    max_range: float = 50.0,
    variance: float = 0.0,
    allow_nan: bool = False,
) -> Range:
    """Build a ``sensor_msgs/Range``; defaults describe a UWB ranging radio.

    Range.msg has no radio type: INFRARED is the default because, like UWB, it is
    electromagnetic time-of-flight (ULTRASOUND is acoustic). A field of view of 2*pi
    marks an omnidirectional antenna; variance 0 means "unknown". +inf / -inf pass
    through (REP-117); NaN is rejected unless ``allow_nan``; finite values outside
    [min_range, max_range] are rejected (send +inf/-inf instead).
    """
    reading = _scalar(value, "range")
    min_range = _scalar(min_range, "min_range")
    max_range = _scalar(max_range, "max_range")
    _check_limits(min_range, max_range)
    if radiation_type not in (Range.ULTRASOUND, Range.INFRARED):
        raise ConversionError(
            f"radiation_type must be Range.ULTRASOUND (0) or Range.INFRARED (1), "
            f"got {radiation_type!r}"
        )
    fov = _scalar(field_of_view, "field_of_view")
    if not (math.isfinite(fov) and fov >= 0.0):
        raise ConversionError(f"field_of_view must be finite and >= 0 rad, got {fov}")
    var = _scalar(variance, "variance")
    if not (math.isfinite(var) and var >= 0.0):
        raise ConversionError(f"variance must be finite and >= 0 m^2, got {var}")
    if math.isnan(reading) and not allow_nan:
        raise ConversionError(
            "range is NaN; pass allow_nan=True to publish an invalid measurement (REP-117)"
        )
    if math.isfinite(reading) and not min_range <= reading <= max_range:
        raise ConversionError(
            f"range {reading} m is outside [{min_range}, {max_range}] m; send +inf "
            "(nothing within max_range) or -inf (closer than min_range) per REP-117"
        )
    msg = Range(
        radiation_type=radiation_type,
        field_of_view=fov,
        min_range=min_range,
        max_range=max_range,
        range=reading,
        variance=var,
    )
    if header is not None:
        msg.header = header
    return msg


# ---------------------------------------------------------------------------------------
# CameraInfo
# ---------------------------------------------------------------------------------------

#: Number of distortion coefficients per model (sensor_msgs/distortion_models.hpp).
_DISTORTION_LENGTHS = {"plumb_bob": 5, "rational_polynomial": 8, "equidistant": 4}


class Intrinsics(TypedDict):
    """Camera calibration read from a ``sensor_msgs/CameraInfo``."""

    K: np.ndarray  # 3x3 intrinsic matrix of the raw image
    D: np.ndarray  # distortion coefficients, length per distortion_model
    R: np.ndarray  # 3x3 rectification rotation
    P: np.ndarray  # 3x4 projection matrix of the rectified image
    width: int
    height: int
    distortion_model: str
    frame_id: str


def _check_k(value: object) -> np.ndarray:
    k = _float_array(value, "K", (3, 3))
    if k[0, 0] <= 0.0 or k[1, 1] <= 0.0:
        raise ConversionError(
            f"K must have positive focal lengths, got fx={k[0, 0]}, fy={k[1, 1]}"
        )
    if k[2].tolist() != [0.0, 0.0, 1.0]:
        raise ConversionError(f"K must have last row [0, 0, 1], got {k[2].tolist()}")
    return k


def camera_info_to_intrinsics(msg: CameraInfo) -> Intrinsics:
    """Read the calibration of ``msg``; raises if the camera is uncalibrated (K[0] == 0)."""
    if msg.k[0] == 0.0:
        raise ConversionError(
            f"camera {msg.header.frame_id!r} is uncalibrated (CameraInfo K[0] == 0)"
        )
    return Intrinsics(
        K=_check_k(np.reshape(msg.k, (3, 3))),
        D=np.array(msg.d, dtype=np.float64),
        R=np.array(msg.r, dtype=np.float64).reshape(3, 3),
        P=np.array(msg.p, dtype=np.float64).reshape(3, 4),
        width=msg.width,
        height=msg.height,
        distortion_model=msg.distortion_model,
        frame_id=msg.header.frame_id,
    )


def intrinsics_to_camera_info(
    K: np.ndarray,
    width: int,
    height: int,
    D: np.ndarray | None = None,
    distortion_model: str = "plumb_bob",
    header: Header | None = None,
    P: np.ndarray | None = None,
) -> CameraInfo:
    """Build a ``sensor_msgs/CameraInfo`` for a monocular camera.

    ``D`` defaults to zeros of the model's length (empty for unknown models); a ``D`` of
    the wrong length for a known model is rejected. ``P`` defaults to [K | 0]; R is the
    identity.
    """
    k = _check_k(K)
    if D is None:
        d = np.zeros(_DISTORTION_LENGTHS.get(distortion_model, 0))
    else:
        d = _float_array(D, "D")
        if d.ndim != 1:
            raise ConversionError(f"D must be one-dimensional, got shape {d.shape}")
        expected = _DISTORTION_LENGTHS.get(distortion_model)
        if expected is not None and d.size != expected:
            raise ConversionError(
                f"distortion model {distortion_model!r} needs {expected} coefficients in D, "
                f"got {d.size}"
            )
    p = np.hstack([k, np.zeros((3, 1))]) if P is None else _float_array(P, "P", (3, 4))
    msg = CameraInfo(
        width=_positive_int(width, "width"),
        height=_positive_int(height, "height"),
        distortion_model=distortion_model,
    )
    if header is not None:
        msg.header = header
    msg.d = d.tolist()
    msg.k = k.reshape(9)
    msg.r = np.eye(3).reshape(9)
    msg.p = p.reshape(12)
    return msg
