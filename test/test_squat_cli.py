"""``embodied-transfer squat``: simulate, csv2bag and plot from the command line."""
from __future__ import annotations

from conftest import require_real_data
from embodied_transfer.squat.data import real_squat_dir

import re
from pathlib import Path

import numpy as np
import pytest

from embodied_transfer.sim.dataset import SquatDataset
from embodied_transfer.squat.real import COLUMNS, load_real_csv

DATA = real_squat_dir()
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def real_recording() -> Path:
    return require_real_data(DATA / "recording_1.csv")


def tiny_csv(path: Path, bad_line: int | None = None) -> Path:
    """A small valid recording (2 s, one squat); ``bad_line`` gets an unknown phase label."""
    phases = ["Stop"] * 10 + ["Down"] * 10 + ["Up"] * 10 + ["Stop"] * 10
    rows = [",".join(COLUMNS)]
    for i, phase in enumerate(phases):
        line = i + 2
        uwb = f"{0.8 + 0.01 * i:.2f} m" if i % 3 == 0 else ""
        label = "Sideways" if line == bad_line else phase
        rows.append(f"{0.05 * i + 0.01:.3f},{uwb},0.01,-0.02,{0.1 * np.sin(i / 5):.4f},"
                    f"0.1,0.2,-0.3,{label}, Squat")
    path.write_text("\n".join(rows) + "\n")
    return path


def assert_one_line_error(rc: int, out: str, err: str, *patterns: str) -> str:
    assert rc == 2, (out, err)
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("embodied-transfer: error: ")
    for pattern in patterns:
        assert re.search(pattern, lines[0]), (pattern, lines[0])
    return lines[0]


def load_arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as npz:
        return {name: npz[name] for name in npz.files}


def test_simulate_is_reproducible_and_plots_against_a_real_recording(cli, tmp_path):
    first, second = tmp_path / "a.npz", tmp_path / "b.npz"
    rc, out, err = cli("squat", "simulate", "--squats", "6", "--seed", "1", "--workers", "2",
                       "--out", str(first))
    assert rc == 0, err
    assert re.match(rf"wrote {re.escape(str(first))}: 6 episodes, 6 squats, \d+ frames at 20 Hz",
                    out), out
    assert "simulating" in err and "6/6" in err          # the progress bar, on stderr
    rc, out, err = cli("squat", "simulate", "--squats", "6", "--seed", "1", "--workers", "1",
                       "--out", str(second))
    assert rc == 0, err
    a, b = load_arrays(first), load_arrays(second)
    assert sorted(a) == sorted(b)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    dataset = SquatDataset.load(first)
    assert dataset.episodes == 6 and dataset.meta["seed"] == 1
    assert f"{len(dataset.t)} frames" in out

    recording = real_recording()
    png = tmp_path / "plots" / "domains.png"
    rc, out, err = cli("squat", "plot", "--csv", str(recording), "--sim", str(first),
                       "--out", str(png), timeout=120.0)
    assert rc == 0, err
    data = png.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 10_000
    lines = out.strip().splitlines()
    assert lines[0] == f"wrote {png}"
    assert lines[1].split() == ["channel", "sim", "mean", "sim", "std", "real", "mean", "real",
                                "std"]
    table = {line.split()[0]: [float(v) for v in line.split()[1:]] for line in lines[2:]}
    assert list(table) == ["accel_x", "accel_y", "accel_z", "gyro_x", "gyro_y", "gyro_z", "uwb"]
    rec = load_real_csv(recording)
    assert table["uwb"][2] == pytest.approx(rec.uwb_at_imu.mean(), abs=1e-3)
    assert table["accel_z"][3] == pytest.approx(rec.accel[:, 2].std(), abs=1e-3)
    for channel in ("accel_x", "accel_y", "accel_z"):      # sim shown as user acceleration
        assert abs(table[channel][0]) < 0.5 and 0.0 < table[channel][1] < 3.0
    assert 0.1 < table["uwb"][0] < 5.0


def test_plot_simulates_when_no_dataset_is_given(cli, tmp_path):
    csv = tiny_csv(tmp_path / "tiny.csv")
    png = tmp_path / "fresh.png"
    rc, out, err = cli("squat", "plot", "--csv", str(csv), "--sim-reps", "1", "--seed", "3",
                       "--seconds", "5", "--out", str(png), timeout=120.0)
    assert rc == 0, err
    assert png.read_bytes().startswith(PNG_SIGNATURE)
    assert out.splitlines()[0] == f"wrote {png}" and len(out.strip().splitlines()) == 9


def test_csv2bag_then_info(cli, tmp_path):
    recording = real_recording()
    bag = tmp_path / "squats"
    rc, out, err = cli("squat", "csv2bag", str(recording), "--out", str(bag))
    assert rc == 0, err
    assert re.search(r"^total\s+1716\s+\d+\s+85\.6\s+12\b", out, re.M), out
    rec = load_real_csv(recording)
    rc, out, err = cli("info", str(bag))
    assert rc == 0, err
    counts = dict(re.findall(r"^\s+(/\S+)\s+\S+\s+(\d+)$", out, re.M))
    assert counts == {"/imu": str(rec.frames), "/uwb/range": str(rec.uwb.size),
                      "/squat/phase_truth": str(rec.frames)}
    assert rec.frames == 1716
    # the bag exists now: a second conversion to it is refused
    rc, out, err = cli("squat", "csv2bag", str(recording), "--out", str(bag))
    assert_one_line_error(rc, out, err, "already exists")


def test_bad_input_gives_one_line_errors(cli, tmp_path):
    png = tmp_path / "p.png"
    rc, out, err = cli("squat", "plot", "--csv", str(tmp_path / "missing.csv"),
                       "--out", str(png))
    assert_one_line_error(rc, out, err, re.escape(str(tmp_path / "missing.csv")),
                          "no such file")
    assert not png.exists()

    rc, out, err = cli("squat", "simulate", "--squats", "0", "--out", str(tmp_path / "z.npz"))
    assert_one_line_error(rc, out, err, "at least one squat")
    rc, out, err = cli("squat", "simulate", "--squats", "2", "--workers", "-1",
                       "--out", str(tmp_path / "z.npz"))
    assert_one_line_error(rc, out, err, "workers")
    assert not (tmp_path / "z.npz").exists()

    bad = tiny_csv(tmp_path / "bad.csv", bad_line=7)
    rc, out, err = cli("squat", "csv2bag", str(bad), "--out", str(tmp_path / "bag"))
    assert_one_line_error(rc, out, err, rf"{re.escape(str(bad))}:7: .*'Sideways'")
    assert not (tmp_path / "bag").exists()

    good = tiny_csv(tmp_path / "good.csv")
    not_npz = tmp_path / "data.npz"
    not_npz.write_text("not a dataset\n")
    rc, out, err = cli("squat", "plot", "--csv", str(good), "--sim", str(not_npz),
                       "--out", str(png))
    assert_one_line_error(rc, out, err, re.escape(str(not_npz)), "not a squat dataset")
    assert not png.exists()
