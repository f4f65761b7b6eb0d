"""rosbag2 files through ``rosbags`` (no ROS install, no rclpy): open, read, write.

Bags written here use the rosbag2 layout the real ``ros2 bag`` reads (metadata.yaml and a
sqlite3 ``.db3`` or an ``.mcap`` file, CDR payloads, ROS 2 type names such as
``sensor_msgs/msg/Imu``, the message definition stored per topic). Types that are not in the
Kilted type store are looked up as ``.msg`` files in the ament share directories (this
package's interfaces among them) when writing, and taken from the definitions stored in the
bag when reading.
"""
from __future__ import annotations

import os
import queue
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from rosbags.rosbag2 import Reader, ReaderError, StoragePlugin, Writer, WriterError
from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

from embodied_transfer.core.errors import EmbodiedTransferError

STORAGES = {"sqlite3": StoragePlugin.SQLITE3, "mcap": StoragePlugin.MCAP}
#: rosbag2 metadata version written by Kilted's ros2 bag.
BAG_VERSION = 9
#: The ROS distribution bags are written for (metadata ``ros_distro``): the sourced one, or
#: the Kilted of the package's wheels.
ROS_DISTRO = os.environ.get("ROS_DISTRO") or "kilted"


class BagError(EmbodiedTransferError):
    """A bag could not be opened, read or written; the message says which and why."""


def storage_plugin(name: str) -> StoragePlugin:
    """Map a storage id (``sqlite3`` or ``mcap``) to rosbags' enum."""
    try:
        return STORAGES[name]
    except KeyError:
        raise BagError(f"unknown storage '{name}' (choose one of: {', '.join(STORAGES)})") from None


def share_dirs() -> list[Path]:
    """Ament prefixes' share/ directories to look for interface definitions in."""
    prefixes = [p for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]
    prefixes.append(sys.prefix)
    seen: list[Path] = []
    for prefix in prefixes:
        share = Path(prefix) / "share"
        if share.is_dir() and share not in seen:
            seen.append(share)
    return seen


def _msg_file(msgtype: str) -> Path:
    package, kind, name = _split_type(msgtype)
    for share in share_dirs():
        candidate = share / package / kind / f"{name}.msg"
        if candidate.is_file():
            return candidate
    raise BagError(f"no definition for message type '{msgtype}': {package}/{kind}/{name}.msg "
                   f"is not in any of {[str(s) for s in share_dirs()]}")


def _split_type(msgtype: str) -> tuple[str, str, str]:
    parts = msgtype.split("/")
    if len(parts) != 3 or not all(parts):
        raise BagError(f"'{msgtype}' is not a ROS 2 type name like 'sensor_msgs/msg/Imu'")
    return parts[0], parts[1], parts[2]


def register_type(typestore: Typestore, msgtype: str) -> None:
    """Register ``msgtype`` (and the types it uses) from .msg files in the share dirs."""
    pending = [msgtype]
    while pending:
        name = pending.pop()
        if name in typestore.fielddefs:
            continue
        types = get_types_from_msg(_msg_file(name).read_text(), name)
        deps = {_field_type(field) for _, fields in types.values() for _, field in fields}
        missing = sorted(d for d in deps if d and d not in typestore.fielddefs and d not in types)
        if missing:
            pending.append(name)
            pending.extend(missing)
            continue
        typestore.register(types)


def _field_type(field) -> str | None:
    """The message type a field refers to, if any (rosbags' field description tuples)."""
    kind, detail = field
    if getattr(kind, "name", "") == "NAME":
        return detail
    if getattr(kind, "name", "") in ("ARRAY", "SEQUENCE"):
        inner_kind, inner = detail[0]
        if getattr(inner_kind, "name", "") == "NAME":
            return inner
    return None


def make_typestore(msgtypes: Iterable[str] = ()) -> Typestore:
    """The Kilted type store plus ``msgtypes`` (found as .msg files when not built in)."""
    typestore = get_typestore(Stores.ROS2_KILTED)
    for msgtype in msgtypes:
        register_type(typestore, msgtype)
    return typestore


@dataclass(frozen=True)
class BagMessage:
    """One stored message: topic, type, receive time (ns since epoch) and CDR bytes."""

    topic: str
    msgtype: str
    timestamp: int
    data: bytes


def _describe(path: Path) -> str:
    if not path.exists():
        return f"bag '{path}' does not exist"
    return f"'{path}' is not a readable rosbag2 bag"


class BagReader:
    """Open a bag for reading; a context manager that raises :class:`BagError` on failure."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise BagError(_describe(self.path))
        try:
            self._reader = Reader(self.path)
            self._reader.open()
        except (ReaderError, OSError, ValueError, KeyError) as exc:
            raise BagError(f"{_describe(self.path)}: {exc}") from None
        self.typestore = self._typestore_from_definitions()

    def __enter__(self) -> "BagReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._reader.close()

    @property
    def topics(self) -> dict[str, str]:
        """Topic name → message type."""
        return {c.topic: c.msgtype for c in self._reader.connections}

    @property
    def message_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for c in self._reader.connections:
            counts[c.topic] = counts.get(c.topic, 0) + c.msgcount
        return counts

    @property
    def start_time(self) -> int:
        return self._reader.start_time

    @property
    def duration_ns(self) -> int:
        return self._reader.duration

    def _typestore_from_definitions(self) -> Typestore:
        """Kilted types plus every type whose definition is stored in the bag."""
        typestore = get_typestore(Stores.ROS2_KILTED)
        for conn in self._reader.connections:
            if conn.msgtype in typestore.fielddefs:
                continue
            text = getattr(conn.msgdef, "data", "") or ""
            if not text:
                continue  # no stored definition: deserialize() says so if asked
            try:
                typestore.register(get_types_from_msg(text, conn.msgtype))
            except Exception as exc:  # rosbags raises several parser errors
                raise BagError(f"bad message definition for {conn.msgtype} on {conn.topic} "
                               f"in '{self.path}': {exc}") from None
        return typestore

    def offered_qos(self, topic: str) -> list:
        """The QoS profiles the topic's publishers offered when it was recorded (rosbags
        ``Qos``; empty when the bag does not say)."""
        return [q for c in self._reader.connections if c.topic == topic
                for q in (getattr(c.ext, "offered_qos_profiles", None) or [])]

    def check_topics(self, topics: Iterable[str]) -> list[str]:
        """Return ``topics`` as a list, or raise naming those not in the bag."""
        topics = list(topics)
        missing = [t for t in topics if t not in self.topics]
        if missing:
            raise BagError(f"topic(s) {', '.join(missing)} not in bag '{self.path}' "
                           f"(it has: {', '.join(sorted(self.topics)) or 'no topics'})")
        return topics

    def messages(self, topics: Iterable[str] | None = None) -> Iterator[BagMessage]:
        """Messages in storage order (by receive time), optionally for some topics only."""
        wanted = None if topics is None else set(self.check_topics(topics))
        conns = [c for c in self._reader.connections if wanted is None or c.topic in wanted]
        try:
            for conn, timestamp, data in self._reader.messages(connections=conns):
                yield BagMessage(conn.topic, conn.msgtype, timestamp, bytes(data))
        except (ReaderError, OSError) as exc:
            raise BagError(f"'{self.path}' is corrupt: {exc}") from None

    def deserialize(self, message: BagMessage):
        """Decode a message with the bag's own type definitions (rosbags dataclass)."""
        if message.msgtype not in self.typestore.fielddefs:
            raise BagError(f"bag '{self.path}' stores no definition for {message.msgtype}")
        return self.typestore.deserialize_cdr(message.data, message.msgtype)


class BagWriter:
    """Write a new bag; topics are added with their type, payloads are CDR bytes."""

    def __init__(self, path: str | Path, storage: str = "sqlite3",
                 typestore: Typestore | None = None) -> None:
        self.path = Path(path)
        if self.path.exists():
            raise BagError(f"'{self.path}' already exists; choose a new output path")
        self.typestore = typestore or make_typestore()
        try:
            self._writer = Writer(self.path, version=BAG_VERSION,
                                  storage_plugin=storage_plugin(storage))
            self._writer.open()
        except (WriterError, OSError) as exc:
            raise BagError(f"cannot create bag '{self.path}': {exc}") from None
        self._connections: dict[str, object] = {}

    def __enter__(self) -> "BagWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def add_topic(self, topic: str, msgtype: str, offered_qos: Iterable = ()) -> None:
        """Declare a topic (idempotent); its definition and its publishers' offered QoS
        profiles (rosbags ``Qos``) are stored in the bag."""
        if topic in self._connections:
            return
        register_type(self.typestore, msgtype)
        self._connections[topic] = self._writer.add_connection(
            topic, msgtype, typestore=self.typestore, offered_qos_profiles=list(offered_qos))

    def write(self, topic: str, timestamp_ns: int, data: bytes) -> None:
        """Append one CDR payload received at ``timestamp_ns``."""
        try:
            conn = self._connections[topic]
        except KeyError:
            raise BagError(f"topic '{topic}' was not added to bag '{self.path}'") from None
        self._writer.write(conn, int(timestamp_ns), data)

    def close(self) -> None:
        self._writer.close()
        # rosbags names itself as the distribution; name the one the bag is written for
        meta = self.path / "metadata.yaml"
        if meta.is_file():
            text = meta.read_text()
            meta.write_text(text.replace("ros_distro: rosbags", f"ros_distro: {ROS_DISTRO}", 1))


class BackgroundBagWriter:
    """A :class:`BagWriter` owned by one thread, fed through a queue.

    rosbags' sqlite3 storage may only be used from the thread that opened it, while rclpy
    executors call back on any thread; this also keeps disk I/O out of the callbacks.
    Errors opening the bag or declaring a topic are raised in the caller.
    """

    _STOP = object()

    def __init__(self, path: str | Path, storage: str = "sqlite3") -> None:
        storage_plugin(storage)
        self.path = Path(path)
        self._check_types = make_typestore()
        self._queue: queue.Queue = queue.Queue()
        self._opened = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._work, args=(path, storage), daemon=True,
                                        name="bag-writer")
        self._thread.start()
        self._opened.wait()
        if self._error is not None:
            raise self._error

    def _work(self, path, storage) -> None:
        try:
            writer = BagWriter(path, storage)
        except BagError as exc:
            self._error = exc
            self._opened.set()
            return
        self._opened.set()
        with writer:
            while (item := self._queue.get()) is not self._STOP:
                method, args = item
                getattr(writer, method)(*args)

    def add_topic(self, topic: str, msgtype: str, offered_qos: Iterable = ()) -> None:
        register_type(self._check_types, msgtype)  # raises BagError here if unknown
        self._queue.put(("add_topic", (topic, msgtype, list(offered_qos))))

    def write(self, topic: str, timestamp_ns: int, data: bytes) -> None:
        self._queue.put(("write", (topic, timestamp_ns, data)))

    def close(self) -> None:
        """Write what is queued, then close the bag."""
        if self._thread.is_alive():
            self._queue.put(self._STOP)
            self._thread.join()
