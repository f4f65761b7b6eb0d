"""Typed settings: one dataclass per node, the single source of each setting.

A node's settings are a dataclass whose fields are made with :func:`setting` (default,
description, unit, range, choices). From it come the node's ROS parameters (declared with
descriptors and ranges by :func:`embodied_transfer.nodes.common.declare_config`), the
parameter files ``config/<node>.yaml`` and the docs' parameter tables
(:mod:`embodied_transfer.app.docs` writes both; a test checks they are current), and
:func:`validate` checks a filled-in config before a node uses it. Pure Python: no ROS.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Sequence

from embodied_transfer.core.errors import ConfigError


@dataclass(frozen=True)
class Setting:
    """One setting as declared: what a parameter, a YAML line and a docs row are made of."""

    name: str
    default: Any
    description: str
    unit: str = ""
    low: float | None = None          # inclusive bounds (None: open)
    high: float | None = None
    choices: tuple = ()
    read_only: bool = False

    @property
    def doc(self) -> str:
        """The description with its unit, as parameter descriptors and the docs show it."""
        return self.description + (f" [{self.unit}]" if self.unit else "")

    @property
    def kind(self) -> type:
        """The parameter type: bool, int, float, str or list (of str)."""
        return type(self.default) if not isinstance(self.default, (list, tuple)) else list

    def check(self, value: Any) -> str:
        """Why ``value`` is not allowed ("" when it is)."""
        if self.choices and value not in self.choices:
            return (f"{self.name} must be one of {', '.join(map(repr, self.choices))}, "
                    f"got {value!r}")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):
                return f"{self.name} must be finite, got {value!r}"
            if self.low is not None and value < self.low:
                return f"{self.name} must be >= {self.low:g}, got {value!r}"
            if self.high is not None and value > self.high:
                return f"{self.name} must be <= {self.high:g}, got {value!r}"
        return ""


def setting(default: Any, description: str, *, unit: str = "", low: float | None = None,
            high: float | None = None, choices: Sequence = (), read_only: bool = False):
    """A dataclass field that carries its documentation and constraints."""
    meta = {"setting": dict(description=description, unit=unit, low=low, high=high,
                            choices=tuple(choices), read_only=read_only)}
    if isinstance(default, list):
        return dataclasses.field(default_factory=lambda: list(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def duration(default: float, description: str):
    """A setting in seconds, 0 or more (the most common kind of node setting)."""
    return setting(default, description, unit="s", low=0.0)


def settings(config_type: type) -> list[Setting]:
    """The :class:`Setting` of every field of ``config_type`` (a dataclass of settings)."""
    out = []
    for f in dataclasses.fields(config_type):
        if "setting" not in f.metadata:
            raise TypeError(f"{config_type.__name__}.{f.name} is not declared with setting()")
        default = f.default_factory() if f.default is dataclasses.MISSING else f.default
        out.append(Setting(f.name, default, **f.metadata["setting"]))
    return out


def validate(config: Any) -> None:
    """Raise ConfigError (a ValueError) naming every setting of ``config`` outside its
    range or choices."""
    problems = [problem for item in settings(type(config))
                if (problem := item.check(getattr(config, item.name)))]
    if problems:
        raise ConfigError("; ".join(problems))


def from_values(config_type: type, values: dict[str, Any]):
    """``config_type`` filled from ``values`` (missing keys keep their defaults), validated."""
    known = {s.name for s in settings(config_type)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"unknown {config_type.__name__} setting(s): {', '.join(unknown)}")
    config = config_type(**values)
    validate(config)
    return config


@dataclass
class LifecycleSettings:
    """Settings every lifecycle node of the package has (its own settings extend these)."""

    autostart: bool = setting(
        True, "Configure and activate on start; false: stay unconfigured for a lifecycle "
              "manager (nav2_lifecycle_manager, launch_ros events) to drive the transitions")
