"""Canonical hand surface and sensor layouts: geometry, counts, data files, errors."""
from __future__ import annotations

import pytest

from embodied_transfer.tactile import TactileError
from embodied_transfer.tactile.layouts import (FINGERTIPS, GLOVE, ROBOT, SHADOW, available,
                                               build_layouts, load_layout)
from embodied_transfer.tactile.surface import GROUPS, segment, segments, uv_grid


def test_segments_tile_a_hand_without_overlap():
    segs = segments()
    assert len(segs) == 1 + 2 + 4 * 3                       # palm, thumb 2, fingers 3 each
    assert {s.group for s in segs} == set(range(len(GROUPS)))
    for i, a in enumerate(segs):
        assert 0 <= a.u0 and a.u0 + a.width <= 1 and 0 <= a.v0 and a.v0 + a.height <= 1
        for b in segs[i + 1:]:
            overlap_u = min(a.u0 + a.width, b.u0 + b.width) - max(a.u0, b.u0)
            overlap_v = min(a.v0 + a.height, b.v0 + b.height) - max(a.v0, b.v0)
            assert overlap_u <= 1e-9 or overlap_v <= 1e-9, (a.name, b.name)
    _, mask, group = uv_grid(32)
    assert 0.2 < mask.mean() < 0.7 and (group[mask.ravel()] >= 0).all()
    with pytest.raises(TactileError, match="unknown hand segment"):
        segment("sixth_finger")


def test_layouts_have_the_documented_sizes_and_lie_on_the_hand():
    assert {GLOVE, ROBOT, FINGERTIPS} <= set(available())
    sizes = {GLOVE: 137, ROBOT: 1062, FINGERTIPS: 200}
    for layout_id, n in sizes.items():
        lay = load_layout(layout_id)
        assert lay.size == n and lay.uv.shape == (n, 2) and (lay.area > 0).all()
        for i, seg_index in enumerate(lay.segment):
            seg = segments()[seg_index]
            assert seg.u0 <= lay.uv[i, 0] <= seg.u0 + seg.width
            assert seg.v0 <= lay.uv[i, 1] <= seg.v0 + seg.height
    robot, glove = load_layout(ROBOT), load_layout(GLOVE)
    assert robot.area.mean() < glove.area.mean() / 5           # much denser
    tips = load_layout(FINGERTIPS)
    assert all(segments()[i].name.endswith("_distal") for i in tips.segment)


def test_layout_files_are_reproducible(tmp_path):
    build_layouts(tmp_path)
    for layout_id in (GLOVE, ROBOT, FINGERTIPS, SHADOW):
        assert load_layout(str(tmp_path / f"{layout_id}.json")).digest == \
            load_layout(layout_id).digest


def test_bad_layouts_raise_tactile_error(tmp_path):
    with pytest.raises(TactileError, match="unknown tactile layout"):
        load_layout("glove_9000")
    bad = tmp_path / "bad.json"
    bad.write_text('{"segment": ["palm"], "st": [[0.5, 0.5]]}')
    with pytest.raises(TactileError, match="not a tactile layout"):
        load_layout(str(bad))
