"""Paired tactile frames from physical contacts: the Shadow Hand grasping objects in MuJoCo.

The robot hand's domain is either its touch-grid skin (``shadow_grid_600``, the default:
MuJoCo's ``touch_grid`` sensors of :mod:`embodied_transfer.sim.shadow_hand`, read through
:func:`grid_skin`) or the hand's own touch sensors on the palmar side (``shadow_palmar_62``:
pads, tips, palm; the ``*_back_*`` sites of the phalanges are left out, as the canonical
surface is palmar), each reading ``1 - exp(-F / ROBOT_SCALE_N)``.
The glove's domain is a human hand wearing the 137-taxel glove and making the same grasp:
every hand-object contact of the frame is retargeted to the canonical (human) surface by
anatomy: the phalanx it touches (Shadow ``ff/mf/rf/lf`` proximal/middle/distal → index ...
little, ``thmiddle``/``thdistal`` → the thumb's two phalanges; palm, little-finger
metacarpal and ``thproximal`` → the palm and its thenar corner), along the phalanx (``t``)
and around it (``s``, from the thumb side); the glove then reads the contacts as pressure
patches through its own response model (:class:`~.data.Device`), as for the synthetic
patches. Both readings come from the same simulation step.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from embodied_transfer.sim.hand_grasp import HandEpisode, generate
from embodied_transfer.sim.shadow_hand import TOUCH_GRIDS, build_model, touch_sensors
from embodied_transfer.tactile.data import Device, Episode, TactileSet
from embodied_transfer.tactile.errors import TactileError
from embodied_transfer.tactile.layouts import GLOVE, SHADOW, SHADOW_GRID
from embodied_transfer.tactile.surface import segment_index, segments

#: Force [N] at which a robot touch reading reaches 1 - 1/e.
ROBOT_SCALE_N = 2.0
#: The touch-grid skin (:func:`grid_skin`): spread of a contact over neighbouring bins (σ,
#: bins) and the force [N] at which a bin reads 1 - 1/e (chosen by cross-validation over
#: two training / validation seed pairs, see docs/tactile.md).
SKIN_BLUR_BINS = 1.5
GRID_SCALE_N = 0.2
#: Total robot touch force [N] of a frame counted as holding (TactileSet.envelope ≥ HOLD).
HOLD_FORCE_N = 1.0
FINGER_NAMES = {"ff": "index", "mf": "middle", "rf": "ring", "lf": "little"}
#: Shadow phalanx body → (canonical segment, extent along its z axis in m).
PHALANGES: dict[str, tuple[str, float]] = {
    **{f"{k}{p}": (f"{v}_{p}", length) for k, v in FINGER_NAMES.items()
       for p, length in (("proximal", 0.045), ("middle", 0.025), ("distal", 0.031))},
    "thmiddle": ("thumb_proximal", 0.032), "thdistal": ("thumb_distal", 0.031),
}
#: Palm-frame extent of the Shadow palm (x across, thumb side +x; z towards the fingers), m.
PALM_X = (-0.043, 0.043)
PALM_Z = (-0.011, 0.087)
#: Bodies whose contacts land on the palm segment, and their origin in the palm frame (m):
#: the little finger's metacarpal and the thumb's base phalanx (the thenar eminence).
PALM_BODIES = {"palm": (0.0, 0.0, 0.0), "lfmetacarpal": (-0.017, 0.0, 0.044),
               "thproximal": (0.034, -0.009, 0.029)}


#: Bodies with collision geometry but no glove underneath (the forearm, the wrist and the
#: thumb's joint hubs): their contacts are dropped like those on the back of a phalanx.
OFF_GLOVE = frozenset({"forearm", "wrist", "thbase", "thhub"})


def contact_st(body: str, point) -> tuple[int, float, float] | None:
    """A contact on Shadow ``body`` at ``point`` (its frame, m) → (canonical segment
    index, s, t), or None when no glove taxel lies there (the back of a phalanx, or a body
    in :data:`OFF_GLOVE`)."""
    if body in OFF_GLOVE:
        return None
    x, y, z = (float(v) for v in point)
    if body in PALM_BODIES:
        ox, _, oz = PALM_BODIES[body]
        s = (PALM_X[1] - (x + ox)) / (PALM_X[1] - PALM_X[0])
        t = ((z + oz) - PALM_Z[0]) / (PALM_Z[1] - PALM_Z[0])
        return segment_index("palm"), float(np.clip(s, 0, 1)), float(np.clip(t, 0, 1))
    if body not in PHALANGES:
        raise TactileError(f"no canonical segment for Shadow body {body!r}")
    name, length = PHALANGES[body]
    angle = math.atan2(x, -y)                 # 0 on the pad, +π/2 on the thumb side
    if abs(angle) > math.pi / 2:
        return None
    return (segment_index(name), float(np.clip(0.5 - angle / math.pi, 0, 1)),
            float(np.clip(z / length, 0, 1)))


def retargeted_episode(ep: HandEpisode) -> tuple[Episode, int]:
    """The grasp's contacts on the canonical surface as a tactile :class:`~.data.Episode`
    (one patch per contact, present in its own frame only; patch radius from the force,
    Hertz-like: 2.5 mm · F^(1/3), 1.5-8 mm), and the number of contacts dropped (where no
    glove taxel lies: :func:`contact_st`)."""
    rows, dropped = [], 0
    for k, body, point, force in zip(ep.contact_frame, ep.contact_body, ep.contact_point,
                                     ep.contact_force):
        place = contact_st(body, point)
        if place is None:
            dropped += 1
            continue
        rows.append((int(k), *place, float(force)))
    frames, count = ep.frames, len(rows)
    frame = np.array([r[0] for r in rows], dtype=np.int64)
    force = np.array([r[4] for r in rows], dtype=np.float64)
    radius = np.clip(2.5 * np.cbrt(force), 1.5, 8.0)
    tremor = np.zeros((frames, count))
    tremor[frame, np.arange(count)] = 1.0     # each patch in its own frame only
    return Episode(ep.label, np.array([r[1] for r in rows], dtype=np.int64),
                   np.array([r[2:4] for r in rows], dtype=np.float64).reshape(-1, 2),
                   np.stack([radius, radius], axis=-1), np.zeros(count), force,
                   np.ones(frames), np.zeros((count, 2)), tremor, ep.seed), dropped


def robot_readings(ep: HandEpisode, sensors: np.ndarray) -> np.ndarray:
    """The robot domain's readings (T, len(sensors)) in [0, 1] of the touch sensors ``sensors``."""
    return (1.0 - np.exp(-ep.touch[:, sensors] / ROBOT_SCALE_N)).astype(np.float32)


@dataclass
class PhysicalSet:
    """Paired glove / robot frames of simulated grasps, and what was lost on the way."""

    frames: TactileSet
    sensors: list[str]            # names of the robot domain's touch sensors, reading order
    held: np.ndarray              # (episodes,) bool: the object stayed in the hand
    dropped_contacts: int         # contacts where the glove has no taxel (contact_st)


def palmar_touch_sensors() -> list:
    """The Shadow Hand's touch sensors (:class:`~embodied_transfer.sim.shadow_hand.TouchSensor`)
    not on the back of a phalanx, in reading order: the ``shadow_palmar_62`` layout."""
    return [s for s in touch_sensors(build_model("box")) if "_back_" not in s.name]


def palmar_sensors() -> tuple[np.ndarray, list[str]]:
    """Indices and names of the Shadow Hand's touch sensors not on the back of a phalanx."""
    keep = palmar_touch_sensors()
    return np.array([s.index for s in keep]), [s.name for s in keep]


def shadow_taxels() -> list[tuple[str, float, float, float]]:
    """The ``shadow_palmar_62`` layout: each palmar touch site as (canonical segment, s, t,
    sensing area mm²), placed where :func:`contact_st` puts a contact at the site's centre;
    the spherical ``*_tip`` sites, centred on the phalanx axis, at the middle of the
    phalanx's far end. Area: the site's palmar face (boxes) or its disc (spheres)."""
    taxels = []
    for sensor in palmar_touch_sensors():
        place = contact_st(sensor.body, sensor.pos)
        if place is None:                       # a tip sphere on the phalanx's axis
            place = (segment_index(PHALANGES[sensor.body][0]), 0.5, 1.0)
        size = np.asarray(sensor.size, dtype=float) * 1e3
        area = math.pi * size[0] ** 2 if sensor.site_type == "sphere" else 4 * size[0] * size[2]
        taxels.append((segments()[place[0]].name, place[1], place[2], float(area)))
    return taxels


def _bin_point(grid, azimuth: float, elevation: float) -> np.ndarray:
    """Where the ray of a touch-grid bin direction (degrees) meets the body's palmar skin,
    in the body's frame (m): a cylinder of radius ``grid.surface`` around a phalanx's axis,
    or the plane of a flat face (palm, metacarpal)."""
    a, e = math.radians(azimuth), math.radians(elevation)
    dx, dy, dz = math.cos(e) * math.sin(a), math.sin(e), -math.cos(e) * math.cos(a)
    direction = np.array([-dx, dz, dy])          # site axes: x = -x, y = z, z = y of the body
    origin = np.array([grid.centre_x, grid.depth, grid.centre_z])
    if grid.flat:
        reach = (-grid.surface - grid.depth) / direction[1]
    else:
        reach = grid.surface / max(math.hypot(direction[0], direction[1]), 1e-9)
    return origin + reach * direction


def grid_taxels() -> list[tuple[str, float, float, float]]:
    """The ``shadow_grid_600`` layout: every bin of the Shadow Hand's touch grids
    (:data:`~embodied_transfer.sim.shadow_hand.TOUCH_GRIDS`, in reading order) as (canonical
    segment, s, t, sensing area mm²): the bin's centre ray meets the skin where
    :func:`contact_st` places it; its area is that of the skin between its four corner rays."""
    taxels = []
    for grid in TOUCH_GRIDS:
        az = np.linspace(-grid.fov[0], grid.fov[0], grid.cols + 1)
        el = np.linspace(-grid.fov[1], grid.fov[1], grid.rows + 1)
        for r in range(grid.rows):
            for c in range(grid.cols):
                seg, s, t = contact_st(grid.body, _bin_point(
                    grid, (az[c] + az[c + 1]) / 2, (el[r] + el[r + 1]) / 2))
                p00, p10, p11, p01 = (_bin_point(grid, az[c + i], el[r + j]) * 1e3
                                      for i, j in ((0, 0), (1, 0), (1, 1), (0, 1)))
                area = 0.5 * np.linalg.norm(np.cross(p11 - p00, p01 - p10))
                taxels.append((segments()[seg].name, s, t, float(area)))
    return taxels


def _gaussian(n: int, sigma: float) -> np.ndarray:
    """(n, n) Gaussian spread over ``n`` bins (σ in bins; each column sums to at most 1:
    what spreads past the grid's edge is lost)."""
    i = np.arange(n)
    return np.exp(-0.5 * ((i[:, None] - i[None]) / sigma) ** 2) / (math.sqrt(2 * math.pi) * sigma)


def grid_skin(force: np.ndarray, sigma: float = SKIN_BLUR_BINS,
              scale: float = GRID_SCALE_N) -> np.ndarray:
    """Touch-grid forces (T, 600) N → the grid skin's readings in [0, 1]: MuJoCo puts each
    contact's force in one bin, a skin's elastomer spreads it over its neighbours (a
    Gaussian of ``sigma`` bins within each grid), then ``1 - exp(-F / scale)``."""
    out, start = [], 0
    for g in TOUCH_GRIDS:
        x = force[:, start:start + g.size].reshape(-1, g.rows, g.cols)
        start += g.size
        if sigma > 0:
            x = np.einsum("ij,tjk,lk->til", _gaussian(g.rows, sigma), x,
                          _gaussian(g.cols, sigma))
        out.append(x.reshape(len(force), -1))
    return (1.0 - np.exp(-np.concatenate(out, axis=1) / scale)).astype(np.float32)


def robot_frames(ep: HandEpisode, robot: str, sensors: np.ndarray) -> np.ndarray:
    """The robot domain ``robot``'s readings of ``ep``: the palmar touch sites ``sensors``
    (:data:`SHADOW`) or the touch-grid skin (:data:`SHADOW_GRID`, :func:`grid_skin`)."""
    if robot == SHADOW_GRID:
        if ep.grid is None:
            raise TactileError("the episode was simulated without touch grids")
        return grid_skin(ep.grid)
    return robot_readings(ep, sensors)


ROBOT_DOMAINS = (SHADOW, SHADOW_GRID)


def shadow_layout(domains, what: str) -> str:
    """The Shadow Hand layout of ``domains`` (those of a model or its training), which must be
    the glove and one of :data:`ROBOT_DOMAINS`; ``what`` names them in the error."""
    domains = list(domains)
    robots = [d for d in domains if d != GLOVE]
    if GLOVE not in domains or len(robots) != 1 or robots[0] not in ROBOT_DOMAINS:
        raise TactileError(f"{what} does not pair {GLOVE} with one Shadow Hand layout "
                           f"({' or '.join(ROBOT_DOMAINS)}) but has {', '.join(domains)}")
    return robots[0]


def physical_paired_set(episodes: int = 300, seed: int = 0, glove_unit: int = 0,
                        robot: str = SHADOW) -> PhysicalSet:
    """``episodes`` grasps (300 × 80 frames = 10 min at 40 Hz) read by the glove and the
    robot hand: domains ``glove_137`` and ``robot`` (:data:`ROBOT_DOMAINS`: the palmar touch
    sites, or the touch grids); ``frames.episodes``: each grasp's contacts on the canonical
    surface."""
    if episodes < 1:
        raise TactileError(f"need at least one episode, got {episodes}")
    if robot not in ROBOT_DOMAINS:
        raise TactileError(f"unknown Shadow Hand layout {robot!r} (known: "
                           f"{', '.join(ROBOT_DOMAINS)})")
    if robot == SHADOW_GRID:
        index = np.zeros(0, np.int64)
        names = [f"{g.name}[{k}]" for g in TOUCH_GRIDS for k in range(g.size)]
    else:
        index, names = palmar_sensors()
    glove = Device.make(GLOVE, glove_unit)
    rng = np.random.default_rng([seed, 7])
    gloves, robots, labels, ep_ids, env, held, dropped, eps = [], [], [], [], [], [], 0, []
    for i, ep in enumerate(generate(episodes, seed, touch_grids=robot == SHADOW_GRID)):
        tactile, lost = retargeted_episode(ep)
        dropped += lost
        eps.append(tactile)
        gloves.append(glove.read(tactile, rng, retarget=False))
        robots.append(robot_frames(ep, robot, index))
        labels.append(np.full(ep.frames, ep.label))
        ep_ids.append(np.full(ep.frames, i))
        env.append(np.minimum(ep.touch.sum(axis=1) / HOLD_FORCE_N, 1.0))
        held.append(ep.held)
    frames = TactileSet({GLOVE: np.concatenate(gloves), robot: np.concatenate(robots)},
                        np.concatenate(labels), np.concatenate(ep_ids),
                        np.concatenate(env).astype(np.float32), eps)
    return PhysicalSet(frames, names, np.array(held), dropped)
