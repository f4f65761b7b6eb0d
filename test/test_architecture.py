"""The package's layers hold (import-linter contract in .importlinter), and the pieces that
make them: typed settings, process-wide settings set by entry points only."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "embodied_transfer"


def test_import_linter_contracts_are_kept():
    """Layers import downward only; nothing below ros/ imports ROS (see .importlinter)."""
    lint = Path(sys.executable).with_name("lint-imports")
    proc = subprocess.run([str(lint), "--config", str(REPO / ".importlinter")], cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "2 kept, 0 broken" in proc.stdout


def test_the_layer_contract_names_every_subpackage():
    """A new subpackage must be placed in a layer, or the contract would not see it."""
    contract = (REPO / ".importlinter").read_text()
    for sub in PACKAGE.iterdir():
        if (sub / "__init__.py").is_file():
            assert f"embodied_transfer.{sub.name}" in contract, f"{sub.name} is in no layer"


def _calls(path: Path, names: set[str]) -> list[str]:
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in names:
                found.append(f"{path.relative_to(REPO)}:{node.lineno}")
    return found


def test_nodes_do_not_set_process_wide_settings():
    """torch's thread count is process-wide: in the one-process bringup the last node to set
    it would win, so only the entry points set it (core/runtime.configure_process)."""
    offenders = [hit for path in (PACKAGE / "nodes").glob("*.py")
                 for hit in _calls(path, {"set_num_threads"})]
    assert offenders == []


def test_no_library_module_sets_mujoco_gl():
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "runtime.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and node.func.attr in ("setdefault", "__setitem__") and node.args \
                    and isinstance(node.args[0], ast.Constant) \
                    and node.args[0].value == "MUJOCO_GL":
                offenders.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert offenders == []


def test_architecture_doc_names_files_that_exist():
    """Every path docs/architecture.md names in backticks exists (so its 'where to make a
    change' stays true as files move)."""
    import re

    text = (REPO / "docs" / "architecture.md").read_text()
    paths = {p for p in re.findall(r"`([\w./<>-]+)`", text)
             if "/" in p and "<" not in p and not p.startswith(("~", "/"))}
    assert len(paths) > 30
    missing = sorted(p for p in paths if not (REPO / p).exists())
    assert missing == []
    for how in ("Add a node parameter", "Add a CLI command", "Add a grasp backend"):
        assert f"**{how}.**" in text
    readme = (REPO / "README.md").read_text()
    assert "docs/architecture.md" in readme


def test_user_docs_stay_short_and_current():
    """README ≤ 12 KB and model cards ≤ 10 KB, with no tuning diary in either."""
    import re

    readme = REPO / "README.md"
    assert readme.stat().st_size <= 12 * 1024
    cards = sorted((PACKAGE / "models").glob("*/MODEL_CARD.md"))
    assert len(cards) == 4
    for path in [readme, *cards]:
        assert path.stat().st_size <= (12 if path == readme else 10) * 1024, path
        assert not re.search(r"\bSession \d+", path.read_text()), path
