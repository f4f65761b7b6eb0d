#!/usr/bin/env bash
# Workstation-style build: colcon (from PyPI) builds both packages of this repository in a
# scratch workspace, against the ROS 2 wheels of the venv given as $1. Checks that the
# README's `colcon build --base-paths src src/embodied_transfer/interfaces` works and
# installs the launch files, config, executables and interface libraries.
set -euo pipefail
VENV=${1:?usage: colcon_build.sh VENV}
REPO=$(cd "$(dirname "$0")/.." && pwd)
WS=$(mktemp -d)
trap 'rm -rf "$WS"' EXIT
mkdir -p "$WS/src/embodied_transfer"
(cd "$REPO" && git ls-files -co --exclude-standard | tar -cf - -T -) | tar -xf - -C "$WS/src/embodied_transfer"
cd "$WS"
export AMENT_PREFIX_PATH="$VENV" PATH="$VENV/bin:$PATH"
colcon --log-base log build --base-paths src src/embodied_transfer/interfaces \
  --cmake-args -DBUILD_TESTING=OFF -DPython3_EXECUTABLE="$VENV/bin/python" >"$WS/build.log" 2>&1 \
  || { tail -40 "$WS/build.log"; exit 1; }
for f in install/embodied_transfer/share/embodied_transfer/launch/sim.launch.py \
         install/embodied_transfer/share/embodied_transfer/config/bag_player.yaml \
         install/embodied_transfer/lib/embodied_transfer/bag_player \
         install/embodied_transfer_interfaces/share/embodied_transfer_interfaces/msg/GraspPose.msg; do
  test -e "$f" || { echo "colcon install lacks $f"; exit 1; }
done
ls install/embodied_transfer_interfaces/lib/libembodied_transfer_interfaces__rosidl_typesupport_c.so >/dev/null
echo "colcon build ok: $(grep -c 'Finished <<<' "$WS/build.log") packages"
