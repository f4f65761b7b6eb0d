"""Build an ament_cmake interface package into a Python wheel (no ROS install needed).

This is only for environments where ROS 2 comes from the ``ros-*`` wheels on PyPI (see the
top-level Makefile). On a ROS 2 workstation, colcon builds this directory with CMake as a
normal ament_cmake package and never runs this file.

The wheel holds what ``cmake --install`` produces: the Python package in purelib, the
shared libraries under ``<prefix>/lib`` (found at run time through the LD_LIBRARY_PATH
that the ``ros_wheels_bootstrapper`` sets) and ``share/`` (ament index, CMake config), so a
later CMake build can ``find_package(embodied_transfer_interfaces)`` in the same prefix.

Build with ``pip install --no-build-isolation ./interfaces`` from a venv that already holds
the rosidl/ament wheels; ``AMENT_PREFIX_PATH`` defaults to that venv. The package built is the
one whose ``package.xml`` lies beside this file as it was invoked (``vendor/tf2_msgs`` links
to it), so the path is not resolved through links.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from setuptools import Distribution, setup
from setuptools.command.build import build
from setuptools.command.install import install
from distutils.command.install_data import install_data  # setuptools ships distutils

HERE = Path(os.path.abspath(__file__)).parent
NAME = re.search(r"<name>\s*(\S+?)\s*</name>", (HERE / "package.xml").read_text()).group(1)
BUILD = HERE / "build" / "cmake"
STAGE = HERE / "build" / "stage"


def _cmake_build() -> None:
    """Configure, build and install the package into STAGE (once per setup.py run)."""
    if getattr(_cmake_build, "done", False):
        return
    prefix = sys.prefix
    env = dict(os.environ)
    env.setdefault("AMENT_PREFIX_PATH", prefix)
    BUILD.mkdir(parents=True, exist_ok=True)
    if STAGE.exists():
        shutil.rmtree(STAGE)
    configure = [
        "cmake", "-S", str(HERE), "-B", str(BUILD),
        f"-DCMAKE_INSTALL_PREFIX={STAGE}",
        f"-DCMAKE_PREFIX_PATH={prefix}",
        f"-DPython3_EXECUTABLE={sys.executable}",
        "-DCMAKE_BUILD_TYPE=Release",
        "-DBUILD_TESTING=OFF",
    ]
    jobs = str(os.cpu_count() or 1)
    for cmd in (configure, ["cmake", "--build", str(BUILD), "-j", jobs],
                ["cmake", "--install", str(BUILD)]):
        subprocess.run(cmd, check=True, env=env)
    _cmake_build.done = True


def _staged_python_dir() -> Path:
    found = sorted(STAGE.glob(f"lib/python*/*-packages/{NAME}"))
    if not found:
        raise RuntimeError(f"cmake install produced no Python package {NAME} under {STAGE}")
    return found[0]


class Build(build):
    """Run CMake, then copy the generated Python package into the wheel."""

    def run(self) -> None:
        super().run()
        _cmake_build()
        target = Path(self.build_lib) / NAME
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(_staged_python_dir(), target,
                        ignore=shutil.ignore_patterns("__pycache__", "*.c"))


class InstallData(install_data):
    """Add the staged lib/*.so and share/ tree as data files (installed under the prefix)."""

    def run(self) -> None:
        _cmake_build()
        files: dict[str, list[str]] = {}
        for path in sorted(STAGE.rglob("*")):
            rel = path.relative_to(STAGE)
            if path.is_dir() or rel.parts[0] not in ("lib", "share") or "python" in rel.parts[1]:
                continue
            files.setdefault(str(rel.parent), []).append(str(path))
        for directory, names in self.data_files or []:
            files.setdefault(directory, [])[:0] = [n for n in names if Path(n).name not in
                                                  {Path(f).name for f in files[directory]}]
        self.data_files = sorted(files.items())
        super().run()


class Install(install):
    """Compiled extension modules live in the package: install it as platlib."""

    def finalize_options(self) -> None:
        super().finalize_options()
        self.install_lib = self.install_platlib


class BinaryDistribution(Distribution):
    def has_ext_modules(self) -> bool:  # the package carries compiled .so files
        return True


setup(
    name=NAME,
    version="0.1.0",
    description=f"ROS 2 interfaces {NAME}, built with rosidl from {HERE.name}/",
    packages=[],
    # Non-empty so that setuptools runs install_data, which adds the staged files.
    data_files=[(f"share/{NAME}", ["package.xml"])],
    distclass=BinaryDistribution,
    cmdclass={"build": Build, "install_data": InstallData, "install": Install},
    python_requires=f">={sysconfig.get_python_version()}",
    zip_safe=False,
)
