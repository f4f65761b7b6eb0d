"""Tests for embodied_transfer.ros.conversions (no rclpy.init needed)."""

from __future__ import annotations

import array
import math
import sys

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import CameraInfo, Image, Imu, Range
from std_msgs.msg import Header

from embodied_transfer.core import units
from embodied_transfer.ros import conversions as conv
from embodied_transfer.ros.conversions import ConversionError

RNG = np.random.default_rng(1234)

# encoding -> (dtype, shape suffix after HxW)
SPECS = {
    "rgb8": (np.uint8, (3,)),
    "bgr8": (np.uint8, (3,)),
    "mono8": (np.uint8, ()),
    "16UC1": (np.uint16, ()),
    "32FC1": (np.float32, ()),
}


def random_image(encoding: str, height: int = 6, width: int = 5) -> np.ndarray:
    dtype, suffix = SPECS[encoding]
    shape = (height, width) + suffix
    if dtype is np.float32:
        return RNG.standard_normal(shape).astype(np.float32) * 1000
    return RNG.integers(0, np.iinfo(dtype).max, shape, endpoint=True, dtype=dtype)


def wire(msg):
    """Serialize and deserialize, as a subscriber would receive ``msg``."""
    return deserialize_message(serialize_message(msg), type(msg))


def hand_made_image(
    values: np.ndarray, encoding: str, *, big_endian: bool = False, pad: int = 0
) -> Image:
    """An Image message built byte by byte, with ``pad`` garbage bytes after each row."""
    dtype = values.dtype.newbyteorder(">" if big_endian else "<")
    rows = values.astype(dtype).reshape(values.shape[0], -1).view(np.uint8)
    garbage = np.full((rows.shape[0], pad), 0xAB, dtype=np.uint8)
    padded = np.hstack([rows, garbage])
    return Image(
        height=values.shape[0],
        width=values.shape[1],
        encoding=encoding,
        is_bigendian=int(big_endian),
        step=padded.shape[1],
        data=array.array("B", padded.tobytes()),
    )


# --------------------------------------------------------------------------- images


@pytest.mark.parametrize("encoding", list(SPECS))
def test_image_round_trip(encoding):
    image = random_image(encoding)
    msg = conv.numpy_to_image(image, encoding)
    assert (msg.encoding, msg.height, msg.width) == (encoding, 6, 5)
    assert msg.step == 5 * image.dtype.itemsize * (3 if image.ndim == 3 else 1)
    assert msg.is_bigendian == (sys.byteorder == "big")
    out = conv.image_to_numpy(wire(msg))
    assert out.dtype == image.dtype and out.shape == image.shape
    np.testing.assert_array_equal(out, image)


@pytest.mark.parametrize("encoding", list(SPECS))
def test_image_round_trip_non_contiguous_input(encoding):
    base = random_image(encoding, height=12, width=10)
    views = [base[::2, ::3], base[::-1], np.swapaxes(base, 0, 1)]
    for view in views:
        assert not view.flags.c_contiguous
        out = conv.image_to_numpy(conv.numpy_to_image(view, encoding))
        np.testing.assert_array_equal(out, view)


def test_image_accepts_hxwx1_for_single_channel_and_foreign_byte_order():
    depth = random_image("16UC1")
    out = conv.image_to_numpy(conv.numpy_to_image(depth[:, :, np.newaxis], "16UC1"))
    np.testing.assert_array_equal(out, depth)
    swapped = depth.astype(depth.dtype.newbyteorder())
    msg = conv.numpy_to_image(swapped, "16UC1")
    assert msg.is_bigendian == (sys.byteorder == "big")
    np.testing.assert_array_equal(conv.image_to_numpy(msg), depth)


@pytest.mark.parametrize("encoding", list(SPECS))
@pytest.mark.parametrize("pad", [1, 3, 8])
def test_image_padded_step(encoding, pad):
    image = random_image(encoding)
    msg = hand_made_image(image, encoding, pad=pad)
    assert msg.step > msg.width * image.itemsize * (3 if image.ndim == 3 else 1)
    np.testing.assert_array_equal(conv.image_to_numpy(wire(msg)), image)


@pytest.mark.parametrize("encoding", ["16UC1", "32FC1"])
@pytest.mark.parametrize("pad", [0, 3])
def test_image_big_endian(encoding, pad):
    image = random_image(encoding)
    msg = hand_made_image(image, encoding, big_endian=True, pad=pad)
    out = conv.image_to_numpy(msg)
    assert out.dtype == image.dtype and out.dtype.isnative
    np.testing.assert_array_equal(out, image)


def test_image_big_endian_known_bytes():
    msg = Image(height=1, width=2, encoding="16UC1", is_bigendian=1, step=4,
                data=array.array("B", [0x01, 0x02, 0xFF, 0x00]))
    np.testing.assert_array_equal(conv.image_to_numpy(msg), [[0x0102, 0xFF00]])
    msg = Image(height=1, width=1, encoding="32FC1", is_bigendian=1, step=4,
                data=array.array("B", [0x3F, 0xC0, 0x00, 0x00]))
    np.testing.assert_array_equal(conv.image_to_numpy(msg), [[1.5]])


def test_image_output_owns_its_memory():
    image = random_image("rgb8")
    msg = conv.numpy_to_image(image, "rgb8")
    out = conv.image_to_numpy(msg)
    assert out.flags.owndata and out.flags.writeable and out.flags.c_contiguous
    out[:] = 0
    np.testing.assert_array_equal(conv.image_to_numpy(msg), image)
    msg.data.append(0)  # msg.data is not locked by an exported buffer
    image[:] = 0  # and the message does not alias the input array
    assert any(msg.data)


def test_image_data_size_mismatch():
    msg = Image(height=480, width=640, encoding="rgb8", step=1920,
                data=array.array("B", bytes(100)))
    with pytest.raises(ConversionError) as err:
        conv.image_to_numpy(msg)
    assert str(err.value) == (
        "image data has 100 bytes, expected 921600 for 640x480 rgb8 with step 1920"
    )


def test_image_step_too_small():
    msg = Image(height=2, width=4, encoding="16UC1", step=6, data=array.array("B", bytes(12)))
    with pytest.raises(ConversionError, match=r"image step 6 is smaller than .* = 8 for 4x2 16UC1"):
        conv.image_to_numpy(msg)


def test_image_unsupported_encoding():
    expected = "unsupported image encoding 'yuv422' (supported: rgb8, bgr8, mono8, 16UC1, 32FC1)"
    msg = Image(height=1, width=2, encoding="yuv422", step=4, data=array.array("B", bytes(4)))
    with pytest.raises(ConversionError) as err:
        conv.image_to_numpy(msg)
    assert str(err.value) == expected
    with pytest.raises(ConversionError) as err:
        conv.numpy_to_image(np.zeros((1, 2, 2), np.uint8), "yuv422")
    assert str(err.value) == expected


@pytest.mark.parametrize(
    ("array_", "encoding", "message"),
    [
        (np.zeros((4, 4, 3), np.uint16), "rgb8", "rgb8 image needs dtype uint8, got uint16"),
        (np.zeros((4, 4), np.float64), "32FC1", "32FC1 image needs dtype float32, got float64"),
        (np.zeros((4, 4), np.int16), "16UC1", "16UC1 image needs dtype uint16, got int16"),
        (np.zeros((4, 4), np.uint8), "bgr8", r"bgr8 image must be HxWx3, got shape \(4, 4\)"),
        (np.zeros((4, 4, 4), np.uint8), "rgb8", r"rgb8 image must be HxWx3, got shape \(4, 4, 4\)"),
        (np.zeros((4, 4, 3), np.uint8), "mono8", r"mono8 image must be HxW, got shape \(4, 4, 3\)"),
        (np.zeros(4, np.uint8), "mono8", r"mono8 image must be HxW, got shape \(4,\)"),
        (np.zeros((0, 4), np.uint8), "mono8", r"mono8 image is empty \(shape \(0, 4\)\)"),
        ([[1, 2]], "mono8", "mono8 image must be a numpy array, got list"),
    ],
)
def test_numpy_to_image_rejects(array_, encoding, message):
    with pytest.raises(ConversionError, match=message):
        conv.numpy_to_image(array_, encoding)


class FakeBridge:
    """Stands in for cv_bridge.CvBridge (ROS 2 row logic), recording its calls."""

    def __init__(self):
        self.calls = []

    def imgmsg_to_cv2(self, msg, desired_encoding):
        self.calls.append(("imgmsg_to_cv2", desired_encoding))
        dtype, suffix = SPECS[msg.encoding]
        pixels_per_row = msg.step // np.dtype(dtype).itemsize // (suffix[0] if suffix else 1)
        rows = np.ndarray((msg.height, pixels_per_row) + suffix, dtype=dtype, buffer=msg.data)
        return np.ascontiguousarray(rows[:, : msg.width])  # a view of msg.data when unpadded

    def cv2_to_imgmsg(self, image, encoding):
        self.calls.append(("cv2_to_imgmsg", encoding))
        assert image.flags.c_contiguous and image.dtype.isnative
        return Image(height=image.shape[0], width=image.shape[1], encoding=encoding,
                     step=image.strides[0], data=array.array("B", image.tobytes()))


def test_cv_bridge_is_used_when_available(monkeypatch):
    bridge = FakeBridge()
    monkeypatch.setattr(conv, "_BRIDGE", bridge)
    image = random_image("16UC1")
    header = conv.make_header(5, "cam")
    msg = conv.numpy_to_image(image[::-1], "16UC1", header=header)
    assert msg.header == header
    out = conv.image_to_numpy(msg)
    assert bridge.calls == [("cv2_to_imgmsg", "16UC1"), ("imgmsg_to_cv2", "passthrough")]
    np.testing.assert_array_equal(out, image[::-1])
    assert out.flags.owndata  # the bridge's view of msg.data was copied
    # cv_bridge mishandles foreign byte order and padding that is not whole pixels.
    conv.image_to_numpy(hand_made_image(image, "16UC1", big_endian=sys.byteorder == "little"))
    conv.image_to_numpy(hand_made_image(image, "16UC1", pad=3))
    assert len(bridge.calls) == 2
    padded = conv.image_to_numpy(hand_made_image(image, "16UC1", pad=4))
    assert len(bridge.calls) == 3
    np.testing.assert_array_equal(padded, image)


def test_convert_color():
    rgb = random_image("rgb8")
    bgr = conv.convert_color(rgb, "rgb8", "bgr8")
    np.testing.assert_array_equal(bgr, rgb[:, :, ::-1])
    assert bgr.flags.c_contiguous
    np.testing.assert_array_equal(conv.convert_color(bgr, "bgr8", "rgb8"), rgb)
    same = conv.convert_color(rgb, "rgb8", "rgb8")
    assert same is not rgb
    np.testing.assert_array_equal(same, rgb)
    mono = conv.convert_color(rgb, "rgb8", "mono8")
    assert mono.shape == rgb.shape[:2] and mono.dtype == np.uint8
    np.testing.assert_array_equal(conv.convert_color(bgr, "bgr8", "mono8"), mono)
    white = np.full((1, 1, 3), 255, np.uint8)
    assert conv.convert_color(white, "rgb8", "mono8")[0, 0] == 255
    grey = conv.convert_color(mono, "mono8", "bgr8")
    assert grey.shape == rgb.shape
    np.testing.assert_array_equal(grey[:, :, 1], mono)
    with pytest.raises(ConversionError, match="unsupported colour conversion encoding '16UC1'"):
        conv.convert_color(rgb, "rgb8", "16UC1")


def test_convert_color_matches_opencv():
    cv2 = pytest.importorskip("cv2")
    rgb = RNG.integers(0, 256, (64, 80, 3), dtype=np.uint8)
    np.testing.assert_array_equal(conv.convert_color(rgb, "rgb8", "mono8"),
                                  cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
    np.testing.assert_array_equal(conv.convert_color(rgb, "bgr8", "mono8"),
                                  cv2.cvtColor(rgb, cv2.COLOR_BGR2GRAY))


# --------------------------------------------------------------------------- stamps


@pytest.mark.parametrize(
    "ns",
    [0, 1, 999_999_999, 1_000_000_000, 1_700_000_000_123_456_789,
     (2**31 - 1) * 10**9 + 999_999_999, -1, -(2**31) * 10**9],
)
def test_stamp_round_trip(ns):
    stamp = conv.ns_to_stamp(ns)
    assert 0 <= stamp.nanosec < 10**9
    assert conv.stamp_to_ns(wire(stamp)) == ns


def test_stamp_details():
    assert conv.ns_to_stamp(np.int64(1_500_000_000)) == Time(sec=1, nanosec=500_000_000)
    assert conv.ns_to_stamp(-1) == Time(sec=-1, nanosec=999_999_999)
    assert conv.stamp_to_ns(Time(sec=1_700_000_000, nanosec=1)) == 1_700_000_000_000_000_001
    with pytest.raises(ConversionError, match="integer number of nanoseconds, got float"):
        conv.ns_to_stamp(1.5e9)
    with pytest.raises(ConversionError, match="outside the int32 seconds range"):
        conv.ns_to_stamp(2**31 * 10**9)
    header = conv.make_header(3_000_000_007, "imu_link")
    assert header == Header(stamp=Time(sec=3, nanosec=7), frame_id="imu_link")


# --------------------------------------------------------------------------- IMU


def test_imu_round_trip():
    accel, gyro = np.array([0.1, -0.2, 9.81]), np.array([0.01, 0.02, -0.03])
    q = np.array([0.0, 0.0, math.sin(0.25), math.cos(0.25)])
    accel_cov = np.diag([0.1, 0.2, 0.3])
    gyro_cov = np.arange(9.0)
    header = conv.make_header(42, "imu")
    msg = conv.numpy_to_imu(accel, gyro, header=header, orientation=q,
                            accel_cov=accel_cov, gyro_cov=gyro_cov)
    assert msg.header == header
    o = msg.orientation
    assert [o.x, o.y, o.z, o.w] == q.tolist()
    assert msg.orientation_covariance[0] == 0.0
    received = wire(msg)
    np.testing.assert_array_equal(received.linear_acceleration_covariance, accel_cov.reshape(9))
    np.testing.assert_array_equal(received.angular_velocity_covariance, gyro_cov)
    a, g = conv.imu_to_numpy(received)
    assert a.dtype == g.dtype == np.float64 and a.shape == g.shape == (3,)
    np.testing.assert_array_equal(a, accel)
    np.testing.assert_array_equal(g, gyro)
    gyro_cov[0] = 99.0  # the message does not alias the caller's covariance
    assert msg.angular_velocity_covariance[0] == 0.0


def test_imu_without_orientation_marks_it_unknown():
    msg = conv.numpy_to_imu([0.0, 0.0, units.STANDARD_GRAVITY], (0, 0, 0))
    assert msg.orientation_covariance[0] == -1.0
    assert not msg.linear_acceleration_covariance.any()  # all zero: covariance unknown
    assert not msg.angular_velocity_covariance.any()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"accel": [0, math.nan, 0]}, "accel has non-finite values"),
        ({"gyro": [0, 0, math.inf]}, "gyro has non-finite values"),
        ({"accel": [0, 0]}, r"accel must have shape \(3,\), got \(2,\)"),
        ({"gyro": np.zeros((3, 1))}, r"gyro must have shape \(3,\), got \(3, 1\)"),
        ({"accel": ["a", 0, 0]}, "accel must be numeric"),
        ({"orientation": [0, 0, 0, 2]}, "orientation quaternion .* unit norm, got 2"),
        ({"orientation": [0, 0, 1]}, r"orientation must have shape \(4,\)"),
        ({"accel_cov": np.full(9, math.nan)}, "accel_cov has non-finite values"),
        ({"gyro_cov": np.eye(2)}, r"gyro_cov must have shape \(3, 3\) or \(9,\), got \(2, 2\)"),
    ],
)
def test_numpy_to_imu_rejects(kwargs, message):
    args = {"accel": [0.0, 0.0, 9.8], "gyro": [0.0, 0.0, 0.0]} | kwargs
    with pytest.raises(ConversionError, match=message):
        conv.numpy_to_imu(**args)


def test_imu_to_numpy_rejects_nan_and_unavailable():
    msg = conv.numpy_to_imu([0.0, 0.0, 9.8], [0.0, 0.0, 0.0])
    msg.angular_velocity.y = math.nan
    with pytest.raises(ConversionError, match="angular_velocity has non-finite values"):
        conv.imu_to_numpy(msg)
    msg = Imu()
    msg.linear_acceleration_covariance[0] = -1.0
    with pytest.raises(ConversionError, match=r"linear_acceleration as unavailable"):
        conv.imu_to_numpy(msg)


def test_g_to_mps2():
    assert units.STANDARD_GRAVITY == 9.80665
    assert units.g_to_mps2(1.0) == 9.80665
    np.testing.assert_allclose(units.g_to_mps2(np.array([0.0, -0.5, 2.0])),
                               [0.0, -4.903325, 19.6133])


# --------------------------------------------------------------------------- Range


def range_msg(value: float, min_range: float = 0.2, max_range: float = 10.0) -> Range:
    return Range(range=value, min_range=min_range, max_range=max_range)


@pytest.mark.parametrize(
    ("value", "status"),
    [
        (5.0, "valid"),
        (0.2, "valid"),
        (10.0, "valid"),
        (math.inf, "too_far"),
        (-math.inf, "too_close"),
        (math.nan, "invalid"),
        (0.1, "invalid"),
        (10.5, "invalid"),
        (-3.0, "invalid"),
    ],
)
def test_range_reading_status(value, status):
    reading = conv.range_reading(wire(range_msg(value)))
    assert isinstance(reading, conv.RangeReading)
    assert reading.status == status
    assert reading.value == pytest.approx(value, nan_ok=True)


def test_range_to_float():
    assert conv.range_to_float(range_msg(5.0)) == 5.0
    assert conv.range_to_float(range_msg(math.inf)) == math.inf
    assert conv.range_to_float(range_msg(-math.inf)) == -math.inf
    with pytest.raises(ConversionError, match=r"range is NaN \(invalid measurement, REP-117\)"):
        conv.range_to_float(range_msg(math.nan))
    with pytest.raises(ConversionError, match=r"range 10.5 m is outside \[0.2.*, 10.0\] m"):
        conv.range_to_float(range_msg(10.5))
    with pytest.raises(ConversionError, match="0 <= min_range <= max_range"):
        conv.range_reading(range_msg(1.0, min_range=2.0, max_range=1.0))


def test_numpy_to_range_round_trip_and_defaults():
    header = conv.make_header(7, "uwb_tag")
    msg = conv.numpy_to_range(np.float32(12.25), header=header, variance=0.01)
    assert msg.header == header
    assert msg.radiation_type == Range.INFRARED
    assert msg.field_of_view == pytest.approx(2 * math.pi)
    assert (msg.min_range, msg.max_range) == (0.0, 50.0)
    received = wire(msg)
    assert received.variance == pytest.approx(0.01)
    assert conv.range_reading(received) == conv.RangeReading(12.25, "valid")
    for value in (math.inf, -math.inf):
        assert conv.range_to_float(wire(conv.numpy_to_range(value))) == value
    nan_msg = conv.numpy_to_range(math.nan, allow_nan=True)
    assert conv.range_reading(nan_msg).status == "invalid"
    ultrasound = conv.numpy_to_range(1.0, radiation_type=Range.ULTRASOUND, field_of_view=0.3,
                                     min_range=0.02, max_range=4.0)
    assert ultrasound.radiation_type == Range.ULTRASOUND
    assert conv.range_to_float(ultrasound) == 1.0


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((math.nan,), {}, "range is NaN; pass allow_nan=True"),
        ((60.0,), {}, r"range 60.0 m is outside \[0.0, 50.0\] m; send \+inf"),
        ((0.5,), {"min_range": 1.0}, r"range 0.5 m is outside \[1.0, 50.0\] m"),
        (([1.0, 2.0],), {}, r"range must be a scalar, got shape \(2,\)"),
        (("far",), {}, "range must be a number"),
        ((1.0,), {"radiation_type": 2}, "radiation_type must be Range.ULTRASOUND"),
        ((1.0,), {"max_range": math.inf}, "range limits must be finite"),
        ((1.0,), {"min_range": -1.0}, r"0 <= min_range <= max_range, got \[-1.0, 50.0\]"),
        ((1.0,), {"field_of_view": -0.1}, "field_of_view must be finite and >= 0"),
        ((1.0,), {"variance": math.nan}, "variance must be finite and >= 0"),
    ],
)
def test_numpy_to_range_rejects(args, kwargs, message):
    with pytest.raises(ConversionError, match=message):
        conv.numpy_to_range(*args, **kwargs)


# --------------------------------------------------------------------------- CameraInfo

K = np.array([[525.0, 0.0, 319.5], [0.0, 526.0, 239.5], [0.0, 0.0, 1.0]])


def test_camera_info_round_trip():
    D = np.array([0.1, -0.2, 0.001, 0.002, 0.03])
    header = conv.make_header(11, "camera_optical")
    msg = conv.intrinsics_to_camera_info(K, 640, 480, D=D, header=header)
    assert msg.header == header
    intr = conv.camera_info_to_intrinsics(wire(msg))
    np.testing.assert_array_equal(intr["K"], K)
    np.testing.assert_array_equal(intr["D"], D)
    np.testing.assert_array_equal(intr["R"], np.eye(3))
    np.testing.assert_array_equal(intr["P"], np.hstack([K, np.zeros((3, 1))]))
    assert (intr["width"], intr["height"]) == (640, 480)
    assert intr["distortion_model"] == "plumb_bob"
    assert intr["frame_id"] == "camera_optical"


def test_camera_info_defaults_and_explicit_p():
    msg = conv.intrinsics_to_camera_info(K.tolist(), 640, 480)
    assert list(msg.d) == [0.0] * 5
    P = np.hstack([K, [[-30.0], [0.0], [0.0]]])
    intr = conv.camera_info_to_intrinsics(
        conv.intrinsics_to_camera_info(K, 640, 480, D=np.zeros(8),
                                       distortion_model="rational_polynomial", P=P))
    np.testing.assert_array_equal(intr["P"], P)
    assert intr["D"].shape == (8,)
    fisheye = conv.intrinsics_to_camera_info(K, 640, 480, distortion_model="equidistant")
    assert len(fisheye.d) == 4


def test_camera_info_uncalibrated():
    msg = CameraInfo()
    msg.header.frame_id = "cam"
    message = r"camera 'cam' is uncalibrated \(CameraInfo K\[0\] == 0\)"
    with pytest.raises(ConversionError, match=message):
        conv.camera_info_to_intrinsics(msg)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"K": np.diag([0.0, 500.0, 1.0])}, "K must have positive focal lengths, got fx=0.0"),
        ({"K": np.diag([500.0, 0.0, 1.0])}, "focal lengths, got fx=500.0, fy=0.0"),
        ({"K": np.eye(2)}, r"K must have shape \(3, 3\), got \(2, 2\)"),
        ({"K": np.ones(9)}, r"K must have shape \(3, 3\), got \(9,\)"),
        ({"K": np.diag([500.0, 500.0, 2.0])}, r"K must have last row \[0, 0, 1\]"),
        ({"K": np.full((3, 3), math.nan)}, "K has non-finite values"),
        ({"D": np.zeros(4)}, "distortion model 'plumb_bob' needs 5 coefficients in D, got 4"),
        ({"D": np.zeros((5, 1))}, r"D must be one-dimensional, got shape \(5, 1\)"),
        ({"P": K}, r"P must have shape \(3, 4\), got \(3, 3\)"),
        ({"width": 0}, "width must be positive, got 0"),
        ({"height": 480.0}, "height must be an integer"),
    ],
)
def test_intrinsics_to_camera_info_rejects(kwargs, message):
    args = {"K": K, "width": 640, "height": 480} | kwargs
    with pytest.raises(ConversionError, match=message):
        conv.intrinsics_to_camera_info(**args)


def test_camera_info_to_intrinsics_rejects_bad_k():
    msg = conv.intrinsics_to_camera_info(K, 640, 480)
    msg.k[4] = 0.0
    with pytest.raises(ConversionError, match="fy=0.0"):
        conv.camera_info_to_intrinsics(msg)


def test_conversion_error_is_value_error():
    assert issubclass(ConversionError, ValueError)
