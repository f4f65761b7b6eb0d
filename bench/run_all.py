"""Run the registered benchmarks; write ``bench/results/<name>.json`` and print a table.

    python -m bench.run_all [--only NAME]

A benchmark is a module ``bench.<name>`` with ``run() -> dict``. When the result has a
``"cases"`` mapping, each case is one table row; the module's optional ``TABLE_COLUMNS``
((header, dotted key), ...) picks the columns, otherwise every scalar is shown.
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import socket
import subprocess
import sys
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

from embodied_transfer.core.runtime import configure_process

#: Benchmark modules under bench/, run in this order.
BENCHMARKS = ["ros_transport", "squat_sim", "real2sim", "grasp", "tactile", "editing"]

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
REPO = BENCH_DIR.parent


def _git(*args: str) -> str | None:
    try:
        proc = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True,
                              timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def _rmw_implementation() -> str | None:
    try:
        import rclpy
    except ImportError:
        return None
    get = getattr(rclpy, "get_rmw_implementation_identifier", None)
    try:
        return get() if get else None
    except Exception:  # noqa: BLE001 - metadata only
        return None


def metadata(started: datetime, wall_s: float) -> dict:
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {
        "timestamp_utc": started.isoformat(timespec="seconds"),
        "wall_s": round(wall_s, 2),
        "hostname": socket.gethostname(),
        "cpu_count": os.cpu_count(),
        "python_version": platform.python_version(),
        "rmw_implementation": _rmw_implementation(),
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": None if status is None else bool(status),
    }


def _lookup(row: dict, dotted: str):
    for part in dotted.split("."):
        row = row.get(part) if isinstance(row, dict) else None
    return row


def _flatten(row: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in row.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        elif isinstance(value, (int, float, str, bool)) or value is None:
            flat[f"{prefix}{key}"] = value
    return flat


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)


def print_table(name: str, module, result: dict) -> None:
    cases = result.get("cases") if isinstance(result, dict) else None
    if not isinstance(cases, dict):
        cases = {name: result}
    columns = getattr(module, "TABLE_COLUMNS", None)
    if columns is None:
        keys = list(dict.fromkeys(k for row in cases.values() for k in _flatten(row)))
        columns = [(k, k) for k in keys]
    rows = [[case] + [_fmt(_lookup(row, key)) for _, key in columns]
            for case, row in cases.items()]
    header = [name] + [title for title, _ in columns]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for i, row in enumerate([header, *rows]):
        cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:])]
        print("  ".join(cells))
        if i == 0:
            print("  ".join("-" * w for w in widths))


def run_one(name: str) -> Path:
    module = importlib.import_module(f"bench.{name}")
    started = datetime.now(timezone.utc)
    t0 = time.perf_counter()
    result = module.run()
    meta = metadata(started, time.perf_counter() - t0)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps({"benchmark": name, "metadata": meta, "result": result},
                               indent=2) + "\n")
    print_table(name, module, result)
    print(f"-> {path.relative_to(REPO)} ({meta['wall_s']:.1f} s)")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the benchmarks under bench/.")
    parser.add_argument("--only", metavar="NAME", choices=BENCHMARKS,
                        help=f"run one benchmark ({', '.join(BENCHMARKS)})")
    args = parser.parse_args(argv)
    configure_process()     # headless MuJoCo rendering (each benchmark sets its threads)
    failed = []
    for name in [args.only] if args.only else BENCHMARKS:
        try:
            run_one(name)
        except Exception:  # noqa: BLE001 - report and go on with the next benchmark
            traceback.print_exc()
            print(f"{name}: FAILED", file=sys.stderr)
            failed.append(name)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
