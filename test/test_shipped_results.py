"""The SHIPPED models, run through the command line, against their committed results (issue 32).

Each test runs ``python -m embodied_transfer ...`` in a child process with the shipped models
(no ``--model`` / ``--models``) and compares the JSON it writes with a committed file:

* ``squat evaluate`` on the real recording_3 vs ``models/squat/evaluate_recording_3.json``
* ``tactile evaluate`` vs ``models/tactile/heldout_eval.json``
* ``grasp evaluate`` (cnn on the plain samples, tiny-vlm on the instructed ones) of a fixed
  set of exported tabletop scenes vs ``models/grasp/pinned_eval.json``, which this file
  writes: ``python test/test_shipped_results.py --repin-grasp`` after a deliberate change to
  the shipped grasp models, the scene export or the evaluation (then commit the file).

Tolerances. Reruns are bit-identical here: two runs of each command gave the same JSON but
for the timing fields, and so did OMP_NUM_THREADS=1 against 2. The tolerances only have to
absorb float differences between machines (CPU, BLAS build), not run-to-run noise:

* ``ACC_TOL = 0.005`` absolute on every accuracy-like fraction (accuracies, top-1/top-5,
  rates): 6 of the 1203 moving frames of recording_3, 9 of its 1822 frames. For the grasp
  scores (1/20 and 1/61 per sample) and the tactile pair retrieval (1/160 per pair) it is
  less than one sample: their counts must match exactly. Squat confusion cells get the same
  fraction of the frames, in frames.
* errors (MAE, the keys with ``error`` in their path): ``ERR_RTOL = 0.01`` relative, with
  an absolute floor of ``ERR_ATOL = 1e-6`` for the ones that are practically 0.
* counts (repetitions, frames, samples, objects) and labels: exactly equal.
* timings, file names and paths: not compared.
"""
from __future__ import annotations

import json
import math
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import require_real_data
from embodied_transfer.squat.data import real_squat_dir

REPO = Path(__file__).resolve().parent.parent
MODELS = REPO / "embodied_transfer" / "models"
SQUAT_PINNED = MODELS / "squat" / "evaluate_recording_3.json"
TACTILE_PINNED = MODELS / "tactile" / "heldout_eval.json"
PHYSICAL_PINNED = {"evaluate": MODELS / "tactile_shadow" / "heldout_eval.json",
                   "skill": MODELS / "tactile_shadow" / "skill_eval.json"}
GRASP_PINNED = MODELS / "grasp" / "pinned_eval.json"

ACC_TOL = 0.005
ERR_RTOL = 0.01
ERR_ATOL = 1e-6

#: The grasp scenes and runs that ``pinned_eval.json`` pins (``DIR``: the export folder,
#: ``OUT``: the result file). Seed 1 is the held-out seed of the grasp bench (the shipped
#: models trained on seeds 0, 3 and 4 and were validated on 2). 20 scenes: 20 plain
#: samples and 61 instructed ones; the tiny VLM takes about 0.6 s a sample on one thread.
GRASP_EXPORT = "embodied-transfer grasp export --out DIR --scenes 20 --seed 1"
GRASP_RUNS = {
    "cnn_plain": "embodied-transfer grasp evaluate --backend cnn --dataset DIR/plain --json OUT",
    "cnn_tabletop_plain": "embodied-transfer grasp evaluate --backend cnn --model "
                          "embodied_transfer/models/grasp/cnn_tabletop --dataset DIR/plain "
                          "--json OUT",
    "tiny_vlm_instructed": "embodied-transfer grasp evaluate --backend tiny-vlm "
                           "--dataset DIR/instructed --json OUT",
}
#: The score fields of a ``grasp evaluate`` result that are pinned (not the timings
#: ``ms_per_image`` / ``ms_median``, nor the paths ``dataset`` / ``model``).
GRASP_SCORE_KEYS = ("backend", "n", "n_rectangle", "rectangle_accuracy", "n_target",
                    "target_accuracy", "parse_failures", "decoding", "views", "refine",
                    "restatements_held", "scene_reading")


def run_cli(command: str, timeout: float = 600.0, **subst: str) -> subprocess.CompletedProcess:
    """Run an ``embodied-transfer ...`` command line as ``python -m embodied_transfer ...``
    from the repository root, with ``subst`` (``DIR`` → a folder, ``OUT`` → a file)
    replaced in each argument. One torch/OpenMP thread: the same results as two (checked),
    and several times faster on a 2-core machine that something else is also using."""
    args = shlex.split(command)
    assert args[0] == "embodied-transfer", command
    for key, value in subst.items():
        args = [a.replace(key, value) for a in args]
    env = dict(os.environ, OMP_NUM_THREADS="1", MUJOCO_GL=os.environ.get("MUJOCO_GL", "egl"))
    proc = subprocess.run([sys.executable, "-m", "embodied_transfer", *args[1:]], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        pytest.fail(f"{' '.join(args)} exited {proc.returncode}:\n{proc.stderr[-3000:]}",
                    pytrace=False)
    return proc


def load(path: Path) -> dict:
    return json.loads(Path(path).read_text())


def differences(actual, expected, rule, path: tuple = ()) -> list[str]:
    """Every place where ``actual`` differs from ``expected`` beyond what ``rule(path,
    value)`` allows: ``("skip",)``, ``("exact",)``, ``("abs", tol)`` or ``("rel",)``."""
    how = rule(path, expected)
    where = "/".join(map(str, path)) or "(top)"
    if how[0] == "skip":
        return []
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{where}: expected an object, got {actual!r}"]
        out = []
        for key in sorted(set(expected) | set(actual)):
            if rule((*path, key), expected.get(key, actual.get(key)))[0] == "skip":
                continue
            if key not in actual:
                out.append(f"{where}/{key}: missing (pinned {expected[key]!r})")
            elif key not in expected:
                out.append(f"{where}/{key}: not pinned (got {actual[key]!r})")
            else:
                out += differences(actual[key], expected[key], rule, (*path, key))
        return out
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return [f"{where}: expected {expected!r}, got {actual!r}"]
        return [d for i, (a, e) in enumerate(zip(actual, expected))
                for d in differences(a, e, rule, (*path, i))]
    numeric = (isinstance(expected, (int, float)) and not isinstance(expected, bool)
               and isinstance(actual, (int, float)) and not isinstance(actual, bool))
    if how[0] == "abs" and numeric:
        ok = abs(actual - expected) <= how[1] + 1e-12
        tol = f"±{how[1]:g}"
    elif how[0] == "rel" and numeric:
        ok = math.isclose(actual, expected, rel_tol=ERR_RTOL, abs_tol=ERR_ATOL)
        tol = f"±{ERR_RTOL:.0%} (or {ERR_ATOL:g})"
    else:
        ok = type(actual) is type(expected) and actual == expected
        tol = "exact"
    return [] if ok else [f"{where}: got {actual!r}, pinned {expected!r} ({tol})"]


def assert_matches(actual: dict, expected: dict, rule, what: str) -> None:
    diffs = differences(actual, expected, rule)
    assert not diffs, f"{what} differs from its pinned result:\n  " + "\n  ".join(diffs)


# squat ----------------------------------------------------------------------------------------

def squat_rule(frames: int):
    def rule(path: tuple, value):
        if path[:1] == ("models",) or (path[:1] == ("reps",) and path[-1] == "file"):
            return ("skip",)            # where the models / the CSV were: paths
        if path and str(path[0]).startswith("accuracy"):
            return ("abs", ACC_TOL)
        if path[:1] == ("confusion",):
            return ("abs", round(ACC_TOL * frames))
        return ("exact",)               # reps (true, counted, suppressed), frames
    return rule


def test_shipped_squat_models_on_recording_3(tmp_path):
    """``squat evaluate --csv recording_3.csv``: accuracies within ACC_TOL, repetition
    counts and frame counts exact."""
    csv = require_real_data(real_squat_dir() / "recording_3.csv")
    pinned = load(SQUAT_PINNED)
    out = tmp_path / "evaluate_recording_3.json"
    run_cli("embodied-transfer squat evaluate --csv CSV --json OUT", CSV=str(csv), OUT=str(out))
    result = load(out)
    assert {"accuracy", "accuracy_3class", "accuracy_unfiltered", "reps"} <= set(pinned)
    assert_matches(result, pinned, squat_rule(pinned["frames"]), "squat evaluate")


# tactile --------------------------------------------------------------------------------------

def tactile_rule(path: tuple, value):
    if path and path[-1] in ("seconds", "png"):
        return ("skip",)                # timing; the picture's file name
    if any("error" in str(p) for p in path):
        return ("rel",)                 # reconstruction / conversion MAEs
    if isinstance(value, float):
        return ("abs", ACC_TOL)         # retrieval top-k, transfer / glove accuracies, chance
    return ("exact",)                   # gallery sizes, classes, data counts and seed


def test_shipped_tactile_model_heldout_eval(tmp_path):
    """``tactile evaluate``: retrieval, transfer accuracies and errors vs heldout_eval.json."""
    pinned = load(TACTILE_PINNED)
    out = tmp_path / "tactile.json"
    run_cli("embodied-transfer tactile evaluate --json OUT", OUT=str(out))
    assert_matches(load(out), pinned, tactile_rule, "tactile evaluate")


@pytest.mark.parametrize("command", ["evaluate --source mujoco", "skill"])
def test_shipped_physical_tactile_model(tmp_path, command):
    """``tactile evaluate --source mujoco`` and ``tactile skill`` on the shipped
    tactile_shadow model: every score within ACC_TOL of its pinned file."""
    pinned = load(PHYSICAL_PINNED[command.split()[0]])
    out = tmp_path / "out.json"
    run_cli(f"embodied-transfer tactile {command} --json OUT", OUT=str(out))
    assert_matches(load(out), pinned, tactile_rule, f"tactile {command}")


# grasp ----------------------------------------------------------------------------------------

def grasp_rule(path: tuple, value):
    if isinstance(value, float):
        return ("abs", ACC_TOL)         # less than one sample here: the counts must match
    return ("exact",)


def grasp_scores(result: dict) -> dict:
    return {key: result[key] for key in GRASP_SCORE_KEYS if key in result}


def grasp_evaluate(name: str, scenes: Path, out_dir: Path) -> dict:
    out = out_dir / f"{name}.json"
    run_cli(GRASP_RUNS[name], DIR=str(scenes), OUT=str(out))
    return grasp_scores(load(out))


@pytest.fixture(scope="module")
def grasp_scenes(tmp_path_factory) -> Path:
    scenes = tmp_path_factory.mktemp("grasp") / "scenes"
    run_cli(GRASP_EXPORT, DIR=str(scenes))
    return scenes


def test_grasp_pin_records_the_commands_run_here():
    pinned = load(GRASP_PINNED)
    assert pinned["export"] == GRASP_EXPORT
    assert {name: run["command"] for name, run in pinned["runs"].items()} == GRASP_RUNS


@pytest.mark.parametrize("name", sorted(GRASP_RUNS))
def test_shipped_grasp_models_on_pinned_scenes(name, grasp_scenes, tmp_path):
    """``grasp evaluate`` of the shipped cnn / tiny-vlm on the fixed scenes: rectangle and
    target accuracy, scene reading within ACC_TOL (= the same samples), counts exact."""
    pinned = load(GRASP_PINNED)["runs"][name]["metrics"]
    assert_matches(grasp_evaluate(name, grasp_scenes, tmp_path), pinned, grasp_rule,
                   f"grasp {name}")


def repin_grasp() -> None:
    """Rewrite ``pinned_eval.json`` from a fresh export and runs (commit it after checking)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        scenes = Path(tmp) / "scenes"
        run_cli(GRASP_EXPORT, DIR=str(scenes))
        runs = {name: {"command": command, "metrics": grasp_evaluate(name, scenes, Path(tmp))}
                for name, command in GRASP_RUNS.items()}
    pinned = {
        "about": "Shipped grasp models on a fixed set of tabletop scenes, pinned by "
                 "test/test_shipped_results.py (DIR: the export folder, OUT: the result file; "
                 "score fields only, no timings). Rewrite with `python "
                 "test/test_shipped_results.py --repin-grasp` after a deliberate change.",
        "export": GRASP_EXPORT,
        "runs": runs,
    }
    GRASP_PINNED.write_text(json.dumps(pinned, indent=2) + "\n")
    print(f"wrote {GRASP_PINNED}")


if __name__ == "__main__":
    if sys.argv[1:] != ["--repin-grasp"]:
        sys.exit("usage: python test/test_shipped_results.py --repin-grasp")
    repin_grasp()
