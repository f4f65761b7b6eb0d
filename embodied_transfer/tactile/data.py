"""Synthetic grasp contacts → pressure field on the canonical surface → device readings.

An *episode* is one grasp of one object (2 s at 40 Hz): a set of contact patches
(anisotropic Gaussians in surface millimetres, each on one segment and spreading only
within its group) whose force ramps up, holds with tremor and slip, and releases. The
pressure field is defined on the canonical surface; each device reads it through its own
:class:`ResponseModel`: its taxel placement (layout), spatial blur and footprint, per-taxel
gain, a sensitivity curve with saturation, noise, dead taxels, quantisation, and (glove)
misregistration: each digit's offset as the glove is worn (fixed per unit: one donning for
a recording session, like its per-taxel gains) plus a smaller shift of the fabric per grasp.
The robot embodiments press with stiffer skin (smaller, peakier patches) and retarget the
human grasp imperfectly (patch positions and forces jittered).

Readings are in [0, 1], float32, in layout order. Datasets:

* :func:`paired_set`: the same episodes read by every device (the human–robot pairs);
* :func:`unpaired_set`: episodes read by one device only;
each with object class labels, episode ids and the force envelope per frame.
"""
from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field, replace

import numpy as np

from embodied_transfer.tactile.errors import TactileError
from embodied_transfer.tactile.layouts import FINGERTIPS, GLOVE, ROBOT, FINGERS, Layout, load_layout
from embodied_transfer.tactile.surface import CANVAS_MM, segments, uv_grid

RATE_HZ = 40.0
FRAMES = 80                                  # frames per episode (2 s)
CLASSES = ("small_sphere", "large_sphere", "thin_cylinder", "thick_cylinder", "box", "card",
           "handle", "disk")
HOLD = 0.5                                   # envelope above which a frame counts as "holding"


@dataclass(frozen=True)
class ResponseModel:
    """How one device turns pressure (kPa) into readings in [0, 1]."""

    curve: str                   # "exp": 1-exp(-p/scale); "power": ((p-threshold)+/scale)^gamma;
    scale_kpa: float             # "tanh": tanh(p/scale)
    gamma: float = 1.0
    threshold_kpa: float = 0.0
    blur_mm: float = 1.0         # std of the skin/fabric spatial blur
    gain_sigma: float = 0.1      # per-taxel log-normal sensitivity spread (fixed per unit)
    offset_max: float = 0.0      # per-taxel baseline offset, uniform [0, offset_max]
    noise: float = 0.01          # std of additive reading noise
    dead_fraction: float = 0.0   # taxels that always read 0 (fixed per unit)
    levels: int = 0              # quantisation levels (0: none)
    fit_offset_mm: float = 0.0   # per-digit misregistration as worn (std; fixed per unit)
    fit_jitter_mm: float = 0.0   # per-episode, per-digit shift of the worn glove (std)
    patch_scale: float = 1.0     # contact patch size factor of the embodiment
    retarget_st: float = 0.0     # std of per-patch position jitter (segment units)
    retarget_force: float = 0.0  # log-std of per-patch force jitter

    def curve_of(self, p: np.ndarray) -> np.ndarray:
        if self.curve == "exp":
            return 1.0 - np.exp(-p / self.scale_kpa)
        if self.curve == "power":
            return (np.maximum(p - self.threshold_kpa, 0.0) / self.scale_kpa) ** self.gamma
        if self.curve == "tanh":
            return np.tanh(p / self.scale_kpa)
        raise TactileError(f"unknown response curve {self.curve!r}")


#: The devices of the shipped data (one physical unit each).
RESPONSES: dict[str, ResponseModel] = {
    GLOVE: ResponseModel("exp", 18.0, blur_mm=5.0, gain_sigma=0.35, offset_max=0.03,
                         noise=0.03, dead_fraction=0.06, fit_offset_mm=2.5,
                         fit_jitter_mm=1.0),
    ROBOT: ResponseModel("power", 80.0, gamma=0.75, threshold_kpa=1.5, blur_mm=1.0,
                         gain_sigma=0.1, noise=0.01, dead_fraction=0.02, levels=256,
                         patch_scale=0.7, retarget_st=0.05, retarget_force=0.15),
    FINGERTIPS: ResponseModel("tanh", 50.0, blur_mm=2.0, gain_sigma=0.15, noise=0.02,
                              dead_fraction=0.03, levels=64, patch_scale=0.7,
                              retarget_st=0.05, retarget_force=0.15),
}


def response_for(domain: str) -> ResponseModel:
    try:
        return RESPONSES[domain]
    except KeyError:
        raise TactileError(f"no response model for domain {domain!r} "
                           f"(known: {', '.join(RESPONSES)})") from None


# --- contact patches -------------------------------------------------------------------

@dataclass
class Episode:
    """One grasp: K patches (segment, s, t, sx, sy [mm], angle [rad], force [N]) and the
    per-frame envelope, slip and tremor."""

    label: int
    seg: np.ndarray              # (K,) segment index
    st: np.ndarray               # (K, 2)
    size: np.ndarray             # (K, 2) mm
    angle: np.ndarray            # (K,)
    force: np.ndarray            # (K,) N
    envelope: np.ndarray         # (T,)
    slip: np.ndarray             # (K, 2) mm drift over the episode
    tremor: np.ndarray           # (T, K) multiplicative force tremor
    seed: int = 0
    extra: dict = field(default_factory=dict)


def _recipe(label: int, rng: np.random.Generator) -> list[tuple]:
    """Nominal patches (segment, s, t, sx, sy, angle_deg, force, optional?) of a class."""
    f = FINGERS
    name = CLASSES[label]
    out: list[tuple] = []
    if name == "small_sphere":           # tripod precision grasp
        out = [("thumb_distal", .5, .6, 4, 4, 0, 2.0, False),
               ("index_distal", .5, .6, 4, 4, 0, 1.5, False),
               ("middle_distal", .5, .6, 3.5, 3.5, 0, 1.2, True)]
    elif name == "large_sphere":         # spherical power grasp
        for d in f:
            out += [(f"{d}_distal", .5, .5, 5, 5, 0, 1.2, d == "little"),
                    (f"{d}_middle", .5, .5, 5, 5, 0, 1.0, True)]
        out += [("thumb_distal", .5, .5, 6, 6, 0, 2.0, False),
                ("palm", .5, .6, 14, 14, 0, 4.0, False)]
    elif name == "thin_cylinder":        # pen in a power grasp
        for d in f:
            out += [(f"{d}_proximal", .5, .45, 9, 2.5, 0, 1.5, d == "little"),
                    (f"{d}_middle", .5, .5, 9, 2.5, 0, 1.0, True)]
        out += [("thumb_distal", .5, .5, 3, 7, 0, 1.5, False),
                ("palm", .45, .75, 30, 3, 25, 2.0, False)]
    elif name == "thick_cylinder":       # bottle
        for d in f:
            out += [(f"{d}_distal", .5, .5, 6, 7, 0, 1.0, True),
                    (f"{d}_middle", .5, .5, 6, 8, 0, 1.0, d == "little"),
                    (f"{d}_proximal", .5, .5, 7, 12, 0, 1.5, False)]
        out += [("thumb_proximal", .5, .5, 7, 12, 0, 1.5, False),
                ("thumb_distal", .5, .5, 6, 7, 0, 1.5, True),
                ("palm", .5, .75, 35, 10, -20, 4.0, False)]
    elif name == "box":                  # flat faces on the finger pads
        for d in f[:3]:
            out += [(f"{d}_distal", .5, .45, 6, 6, 0, 1.3, d == "ring"),
                    (f"{d}_middle", .5, .5, 6, 6, 0, 1.0, True)]
        out += [("thumb_distal", .5, .5, 7, 7, 0, 2.5, False)]
    elif name == "card":                 # lateral pinch
        out = [("thumb_distal", .5, .65, 4, 6, 0, 2.5, False),
               ("index_middle", .1, .5, 2.5, 7, 0, 2.0, False),
               ("index_distal", .1, .3, 2.5, 4, 0, 0.8, True)]
    elif name == "handle":               # hook grasp, no thumb, no palm
        for d in f:
            out += [(f"{d}_middle", .5, .5, 9, 3, 0, 1.5, d == "little"),
                    (f"{d}_proximal", .5, .9, 9, 3, 0, 1.2, True)]
    elif name == "disk":                 # lid: five fingertips spread
        for d in ("thumb",) + f:
            out.append((f"{d}_distal", .5, .8, 3, 3, 0, 1.0, d == "little"))
    return out


def make_episode(label: int, rng: np.random.Generator) -> Episode:
    """A random grasp of class ``label`` (positions, sizes, forces, timing vary)."""
    rows = []
    for seg_name, s, t, sx, sy, ang, force, optional in _recipe(label, rng):
        if optional and rng.random() < 0.3:
            continue
        rows.append((seg_name, s, t, sx, sy, ang, force))
    if rng.random() < 0.3:               # an incidental contact somewhere else
        seg = segments()[rng.integers(len(segments()))]
        rows.append((seg.name, rng.uniform(.2, .8), rng.uniform(.2, .8), 4, 4, 0, 0.6))
    k = len(rows)
    seg = np.array([[s.name for s in segments()].index(r[0]) for r in rows])
    st = np.clip(np.array([r[1:3] for r in rows]) + rng.normal(0, 0.08, (k, 2)), 0.05, 0.95)
    obj = rng.lognormal(0, 0.15)         # object size factor
    size = np.array([r[3:5] for r in rows]) * obj * rng.lognormal(0, 0.2, (k, 1))
    angle = np.radians(np.array([r[5] for r in rows]) + rng.normal(0, 10, k))
    force = np.array([r[6] for r in rows]) * rng.lognormal(0, 0.3) * rng.lognormal(0, 0.3, k)
    t = np.arange(FRAMES)
    up, down = rng.integers(8, 20), rng.integers(8, 20)
    start, end = rng.integers(0, 8), FRAMES - rng.integers(0, 8)
    env = np.clip(np.minimum((t - start) / up, (end - t) / down), 0, 1)
    slip = rng.normal(0, 1.0, (k, 2))
    tremor = 1 + 0.08 * np.sin(2 * np.pi * rng.uniform(3, 9) * t[:, None] / RATE_HZ
                               + rng.uniform(0, 2 * np.pi, k)) + rng.normal(0, 0.03, (FRAMES, k))
    return Episode(label, seg, st, size, angle, force, env, slip, tremor)


def retargeted(ep: Episode, resp: ResponseModel, rng: np.random.Generator) -> Episode:
    """``ep`` as an embodiment's imperfect retargeting places it: per-patch position and
    force jitter of ``resp`` (``ep`` itself when it has none)."""
    if not (resp.retarget_st or resp.retarget_force):
        return ep
    st, force = ep.st, ep.force
    if resp.retarget_st:
        st = np.clip(st + rng.normal(0, resp.retarget_st, st.shape), 0.02, 0.98)
    if resp.retarget_force:
        force = force * rng.lognormal(0, resp.retarget_force, len(force))
    return replace(ep, st=st, force=force)


def _patch_geometry(ep: Episode, resp: ResponseModel):
    """Per-embodiment patches: centres (K, 2) mm, covariances (K, 2, 2), forces (K,)."""
    st, force = ep.st, ep.force
    segs = segments()
    centre = np.stack([segs[i].to_uv(*st[j]) for j, i in enumerate(ep.seg)]) * CANVAS_MM
    size = ep.size * resp.patch_scale
    c, s = np.cos(ep.angle), np.sin(ep.angle)
    rot = np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], -2)      # (K, 2, 2)
    cov = rot @ (np.eye(2) * (size ** 2)[:, None, :]) @ rot.transpose(0, 2, 1)
    return centre, cov, force


def _field_at(points_mm: np.ndarray, group: np.ndarray, var: np.ndarray, ep: Episode,
              centre: np.ndarray, cov: np.ndarray, force: np.ndarray) -> np.ndarray:
    """Pressure (kPa) of every frame at ``points`` seen through isotropic Gaussian
    footprints of variance ``var`` (per point): (T, P)."""
    groups = np.array([segments()[i].group for i in ep.seg])
    total = cov[:, None] + var[None, :, None, None] * np.eye(2)              # (K, P, 2, 2)
    det_total = total[..., 0, 0] * total[..., 1, 1] - total[..., 0, 1] ** 2
    inv = np.stack([np.stack([total[..., 1, 1], -total[..., 0, 1]], -1),
                    np.stack([-total[..., 1, 0], total[..., 0, 0]], -1)], -2)
    inv /= det_total[..., None, None]
    det_cov = cov[:, 0, 0] * cov[:, 1, 1] - cov[:, 0, 1] ** 2
    same = groups[:, None] == group[None, :]                                  # (K, P)
    # peak pressure (kPa) of a Gaussian patch carrying force F: F / (2π sqrt|Σ|) N/mm² ·1000
    peak = 1000.0 * force / (2 * math.pi * np.sqrt(det_cov))
    amp = peak[:, None] * np.sqrt(det_cov[:, None] / det_total) * same       # (K, P)
    frac = np.linspace(0, 1, len(ep.envelope))
    out = np.zeros((len(ep.envelope), len(points_mm)))
    for k in range(len(force)):
        if not same[k].any():
            continue
        cols = np.flatnonzero(same[k])
        ctr = centre[k][None, :] + frac[:, None] * ep.slip[k][None, :]        # (T, 2)
        d = points_mm[None, cols, :] - ctr[:, None, :]                        # (T, P', 2)
        q = np.einsum("tpi,pij,tpj->tp", d, inv[k, cols], d)
        out[:, cols] += (ep.envelope * ep.tremor[:, k])[:, None] * amp[k, cols] * np.exp(-0.5 * q)
    return out


@dataclass(frozen=True)
class Device:
    """One physical sensor unit: a layout, its response model and its fixed imperfections."""

    layout: Layout
    response: ResponseModel
    gain: np.ndarray
    offset: np.ndarray
    alive: np.ndarray
    fit: np.ndarray              # (6, 2) mm offset of each taxel group as worn

    @classmethod
    def make(cls, domain: str, unit: int = 0) -> "Device":
        layout, resp = load_layout(domain), response_for(domain)
        rng = np.random.default_rng([zlib.crc32(domain.encode()), unit])
        n = layout.size
        return cls(layout, resp, rng.lognormal(0, resp.gain_sigma, n),
                   rng.uniform(0, resp.offset_max, n) if resp.offset_max else np.zeros(n),
                   rng.random(n) >= resp.dead_fraction, rng.normal(0, resp.fit_offset_mm, (6, 2)))

    def read(self, ep: Episode, rng: np.random.Generator, retarget: bool = True,
             noise: bool = True) -> np.ndarray:
        """Readings (T, N) in [0, 1] of ``ep`` (through this embodiment's retargeting unless
        ``retarget`` is False; without reading noise if ``noise`` is False)."""
        lay, resp = self.layout, self.response
        if retarget:
            ep = retargeted(ep, resp, rng)
        centre, cov, force = _patch_geometry(ep, resp)
        pts = lay.mm + self.fit[lay.group]
        if resp.fit_jitter_mm:
            pts = pts + rng.normal(0, resp.fit_jitter_mm, (6, 2))[lay.group]
        var = np.full(lay.size, resp.blur_mm ** 2) + lay.area / 12.0
        p = _field_at(pts, lay.group, var, ep, centre, cov, force)
        r = self.gain * resp.curve_of(p) + self.offset
        if noise:
            r = r + rng.normal(0, resp.noise, r.shape)
        r = np.clip(r, 0.0, 1.0) * self.alive
        if resp.levels:
            r = np.round(r * (resp.levels - 1)) / (resp.levels - 1)
        return r.astype(np.float32)


def pressure_field(ep: Episode, resolution: int = 64) -> np.ndarray:
    """The true (human-hand) pressure field, kPa, of every frame on the UV grid: (T, R, R)."""
    centres, _, group = uv_grid(resolution)
    centre, cov, force = _patch_geometry(ep, ResponseModel("exp", 1.0))
    pix = (CANVAS_MM / resolution) ** 2 / 12.0
    f = _field_at(centres * CANVAS_MM, group, np.full(len(centres), pix), ep, centre, cov, force)
    return f.reshape(len(ep.envelope), resolution, resolution)


# --- data sets -------------------------------------------------------------------------

@dataclass
class TactileSet:
    """Frames of one or more domains (paired when several share the episodes)."""

    readings: dict[str, np.ndarray]          # domain → (M, N_d) float32
    labels: np.ndarray                       # (M,) object class
    episode: np.ndarray                      # (M,) episode id
    envelope: np.ndarray                     # (M,) force envelope (0 = no contact)
    episodes: list[Episode] = field(default_factory=list, repr=False)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def holding(self) -> np.ndarray:
        """Mask of frames with the grasp held (envelope ≥ HOLD)."""
        return self.envelope >= HOLD

    def hold_frames(self) -> list[np.ndarray]:
        """Row indices of each episode's held frames (episodes without a hold left out)."""
        return [f for f in (np.flatnonzero((self.episode == e) & self.holding)
                            for e in np.unique(self.episode)) if len(f)]

    def middle_hold_frames(self) -> np.ndarray:
        """One row per episode with a hold: the middle frame of its hold."""
        return np.array([f[len(f) // 2] for f in self.hold_frames()])


def middle_hold(envelope: np.ndarray) -> int:
    """Index of the middle frame of one episode's hold (envelope ≥ HOLD)."""
    hold = np.flatnonzero(envelope >= HOLD)
    if not len(hold):
        raise TactileError("episode has no held frame")
    return int(hold[len(hold) // 2])


def _make_set(domains: list[str], episodes: int, seed: int, progress: bool = False) -> TactileSet:
    devices = {d: Device.make(d) for d in domains}
    rng = np.random.default_rng(seed)
    out: dict[str, list] = {d: [] for d in domains}
    labels, ep_ids, env, eps = [], [], [], []
    it = range(episodes)
    if progress:
        from tqdm import tqdm
        it = tqdm(it, desc=f"episodes ({'+'.join(domains)})", leave=False)
    for i in it:
        ep = make_episode(i % len(CLASSES), rng)
        for d, dev in devices.items():
            out[d].append(dev.read(ep, rng))
        labels.append(np.full(FRAMES, ep.label))
        ep_ids.append(np.full(FRAMES, i))
        env.append(ep.envelope)
        eps.append(ep)
    return TactileSet({d: np.concatenate(v) for d, v in out.items()},
                      np.concatenate(labels), np.concatenate(ep_ids),
                      np.concatenate(env).astype(np.float32), eps)


#: The devices of a paired set by default, in reading order. The devices share one random
#: stream, so a set drawn with fewer devices has other grasps after its first one.
DEVICES = (GLOVE, ROBOT, FINGERTIPS)


def paired_set(episodes: int = 300, seed: int = 0, domains=DEVICES,
               progress: bool = False) -> TactileSet:
    """``episodes`` grasps read by every device (300 × 80 frames = 10 min at 40 Hz)."""
    return _make_set(list(domains), episodes, seed, progress)


def unpaired_set(domain: str, episodes: int = 600, seed: int = 1,
                 progress: bool = False) -> TactileSet:
    """``episodes`` grasps read by one device only."""
    return _make_set([domain], episodes, seed, progress)
